//! Versions: strict semver (`1.2.3`, `1.2.3-rc.1`), as Claude Code compares version strings.

use semver::Version;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("version `{0}` is not semver: write it as MAJOR.MINOR.PATCH, e.g. 1.0.0")]
    NotSemver(String),
    #[error("version `{0}` starts with `v`: write it without, e.g. {1}")]
    LeadingV(String, String),
    #[error("version `{0}` carries build metadata (`+…`), which does not change what Claude Code installs: drop it")]
    BuildMetadata(String),
}

/// Parses a strict semver version.
pub fn parse_version(s: &str) -> Result<Version, VersionError> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix(['v', 'V'])
        && Version::parse(rest).is_ok()
    {
        return Err(VersionError::LeadingV(s.to_string(), rest.to_string()));
    }
    let v = Version::parse(s).map_err(|_| VersionError::NotSemver(s.to_string()))?;
    if !v.build.is_empty() {
        return Err(VersionError::BuildMetadata(s.to_string()));
    }
    Ok(v)
}

/// The version after `latest`: its next patch (`1.2.3` → `1.2.4`; a pre-release `1.3.0-rc.1`
/// → `1.3.0`), or `1.0.0` when there is none.
pub fn next_patch(latest: Option<&Version>) -> Version {
    match latest {
        None => Version::new(1, 0, 0),
        Some(v) if !v.pre.is_empty() => Version::new(v.major, v.minor, v.patch),
        Some(v) => Version::new(v.major, v.minor, v.patch + 1),
    }
}

/// The highest of `versions`.
pub fn latest<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Option<&'a Version> {
    versions.into_iter().max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(parse_version("1.2.3").unwrap(), Version::new(1, 2, 3));
        assert!(parse_version("1.2.3-rc.1").is_ok());
        assert!(matches!(parse_version("v1.2.3"), Err(VersionError::LeadingV(..))));
        assert!(parse_version("1.2").is_err());
        assert!(parse_version("banana").is_err());
        assert!(parse_version("1.0.0+build").is_err());
    }

    #[test]
    fn next() {
        assert_eq!(next_patch(None), Version::new(1, 0, 0));
        assert_eq!(next_patch(Some(&Version::new(1, 2, 3))), Version::new(1, 2, 4));
        assert_eq!(next_patch(Some(&Version::parse("1.3.0-rc.1").unwrap())), Version::new(1, 3, 0));
    }
}
