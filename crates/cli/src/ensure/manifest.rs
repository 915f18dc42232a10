//! `.skill-pool/manifest.toml`: what a project needs from a skill-pool server.
//!
//! ```toml
//! url = "https://pool.example.com/t/acme"   # optional: else SKILL_POOL_URL or the saved login
//!
//! [[skills]]
//! slug = "code-review"
//! version = "^1.2"        # a semver requirement; `1.2.3` alone means exactly 1.2.3
//!
//! [[plugins]]
//! name = "deploy-tools"
//! ```
//!
//! Unknown keys, bad slugs, bad versions and duplicates are errors that name the line.

use std::fmt;
use std::ops::Range;

use semver::{Version, VersionReq};
use serde::Deserialize;
use skill_pool_core::api::PieceKind;
use skill_pool_core::slug::Slug;
use toml::Spanned;

/// What a manifest entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// No `version`: the newest version (pieces) or whatever the marketplace serves (plugins).
    Any,
    /// `version = "1.2.3"`: exactly that version.
    Exact(Version),
    /// `version = "^1.2"`, `">=1, <2"`, `~1.4`…
    Req(VersionReq),
}

impl Want {
    /// True when `version` satisfies this want. A version string that is not semver (a plugin
    /// versioned by commit, `3f2a9c1b7d4e`) satisfies only [`Want::Any`].
    pub fn accepts(&self, version: &str) -> bool {
        match self {
            Want::Any => true,
            Want::Exact(v) => Version::parse(version).is_ok_and(|got| &got == v),
            Want::Req(r) => Version::parse(version).is_ok_and(|got| r.matches(&got)),
        }
    }

    /// The exact version, if this want names one.
    pub fn exact(&self) -> Option<&Version> {
        match self {
            Want::Exact(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Any => f.write_str("any version"),
            Want::Exact(v) => write!(f, "={v}"),
            Want::Req(r) => write!(f, "{r}"),
        }
    }
}

/// One `[[skills]]`, `[[agents]]` or `[[commands]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceWant {
    pub kind: PieceKind,
    pub slug: String,
    pub want: Want,
    /// 1-based line of the entry's `slug`, for messages.
    pub line: usize,
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginWant {
    pub name: String,
    pub want: Want,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The tenant root, if the manifest names one.
    pub url: Option<String>,
    /// Skills, then agents, then commands, each in manifest order.
    pub pieces: Vec<PieceWant>,
    pub plugins: Vec<PluginWant>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{path}:{line}: {message}")]
pub struct ManifestError {
    /// The manifest file, as the user named it.
    pub path: String,
    /// 1-based line, 0 when the file could not be read at all.
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    url: Option<Spanned<String>>,
    #[serde(default)]
    skills: Vec<RawPiece>,
    #[serde(default)]
    agents: Vec<RawPiece>,
    #[serde(default)]
    commands: Vec<RawPiece>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPiece {
    slug: Spanned<String>,
    version: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    version: Option<Spanned<String>>,
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Parses a `version` value: a bare semver is exact, anything else a requirement.
pub fn parse_want(raw: &str) -> Result<Want, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "*" {
        return Ok(Want::Any);
    }
    if let Ok(v) = Version::parse(raw.strip_prefix('=').unwrap_or(raw)) {
        return Ok(Want::Exact(v));
    }
    VersionReq::parse(raw)
        .map(Want::Req)
        .map_err(|e| format!("`{raw}` is neither a version (1.2.3) nor a semver requirement (^1.2, ~1.4, >=1, <2): {e}"))
}

impl Manifest {
    /// Parses manifest text; `path` is used in messages only.
    pub fn parse(text: &str, path: &str) -> Result<Manifest, ManifestError> {
        let err = |span: Option<Range<usize>>, message: String| ManifestError {
            path: path.to_string(),
            line: span.map_or(1, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            // toml's message repeats the position and the source line; keep its first line.
            let message = e.message().lines().next().unwrap_or("not valid TOML").to_string();
            err(e.span(), message)
        })?;
        let url = match raw.url {
            Some(u) => {
                let value = u.get_ref().trim().trim_end_matches('/').to_string();
                match url::Url::parse(&value) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => Some(value),
                    _ => {
                        return Err(err(
                            Some(u.span()),
                            format!(
                                "url `{}` is not a tenant URL: give the tenant root, e.g. https://pool.example.com/t/acme",
                                u.get_ref()
                            ),
                        ));
                    }
                }
            }
            None => None,
        };
        let mut manifest = Manifest {
            url,
            ..Manifest::default()
        };
        for (kind, block) in [
            (PieceKind::Skill, raw.skills),
            (PieceKind::Agent, raw.agents),
            (PieceKind::Command, raw.commands),
        ] {
            for entry in block {
                let slug = entry.slug.get_ref().clone();
                let line = line_of(text, entry.slug.span().start);
                Slug::parse(&slug).map_err(|e| err(Some(entry.slug.span()), format!("{kind} slug: {e}")))?;
                if let Some(first) = manifest.pieces.iter().find(|p| p.kind == kind && p.slug == slug) {
                    return Err(err(
                        Some(entry.slug.span()),
                        format!("{kind} `{slug}` is already listed on line {}", first.line),
                    ));
                }
                let want = match &entry.version {
                    Some(v) => parse_want(v.get_ref()).map_err(|m| err(Some(v.span()), format!("{kind} `{slug}`: {m}")))?,
                    None => Want::Any,
                };
                manifest.pieces.push(PieceWant { kind, slug, want, line });
            }
        }
        for entry in raw.plugins {
            let name = entry.name.get_ref().clone();
            let line = line_of(text, entry.name.span().start);
            Slug::parse(&name).map_err(|e| err(Some(entry.name.span()), format!("plugin name: {e}")))?;
            if let Some(first) = manifest.plugins.iter().find(|p| p.name == name) {
                return Err(err(
                    Some(entry.name.span()),
                    format!("plugin `{name}` is already listed on line {}", first.line),
                ));
            }
            let want = match &entry.version {
                Some(v) => parse_want(v.get_ref()).map_err(|m| err(Some(v.span()), format!("plugin `{name}`: {m}")))?,
                None => Want::Any,
            };
            manifest.plugins.push(PluginWant { name, want, line });
        }
        Ok(manifest)
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty() && self.plugins.is_empty()
    }
}

/// What `skill-pool init` writes: every block, commented, so the file documents itself.
pub fn starter(url: Option<&str>) -> String {
    let url_line = match url {
        Some(u) => format!("url = \"{u}\"\n"),
        None => "# url = \"https://pool.example.com/t/acme\"\n".to_string(),
    };
    format!(
        "# What this project needs from skill-pool. `skill-pool ensure` installs it all and records what it\n\
         # resolved in manifest.lock (commit both files). Reference: docs/manifest.md.\n\
         #\n\
         # The tenant to install from (else SKILL_POOL_URL, else what `skill-pool login` saved):\n\
         {url_line}\n\
         # Skills go to .claude/skills/<slug>/, agents to .claude/agents/<slug>.md, commands to\n\
         # .claude/commands/<slug>.md. `version` is optional: \"1.2.3\" means exactly that version,\n\
         # \"^1.2\" or \"~1.2\" a semver requirement; without it the newest version is taken.\n\
         #\n\
         # [[skills]]\n\
         # slug = \"code-review\"\n\
         # version = \"^1.2\"\n\
         #\n\
         # [[agents]]\n\
         # slug = \"reviewer\"\n\
         #\n\
         # [[commands]]\n\
         # slug = \"release-notes\"\n\
         # version = \"1.0.0\"\n\
         #\n\
         # Plugins are installed through Claude Code itself (hooks and MCP servers included): the tenant's\n\
         # marketplace and the plugins are written into .claude/settings.json, and `claude plugin install`\n\
         # runs when `claude` is on PATH. The marketplace serves one version per plugin.\n\
         #\n\
         # [[plugins]]\n\
         # name = \"deploy-tools\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, "manifest.toml")
    }

    #[test]
    fn full_manifest() {
        let m = parse(
            "url = \"http://h:1/t/acme/\"\n\n[[skills]]\nslug = \"a\"\nversion = \"^1.2\"\n\n[[skills]]\nslug = \"b\"\nversion = \"1.0.0\"\n\
             [[agents]]\nslug = \"a\"\n[[commands]]\nslug = \"c\"\nversion = \"=2.0.0\"\n[[plugins]]\nname = \"p\"\n",
        )
        .unwrap();
        assert_eq!(m.url.as_deref(), Some("http://h:1/t/acme"));
        assert_eq!(m.pieces.len(), 4);
        assert_eq!(m.pieces[0].want, Want::Req(VersionReq::parse("^1.2").unwrap()));
        assert_eq!(m.pieces[0].line, 4);
        assert_eq!(m.pieces[1].want, Want::Exact(Version::new(1, 0, 0)));
        assert_eq!(m.pieces[2].kind, PieceKind::Agent);
        assert_eq!(m.pieces[3].want, Want::Exact(Version::new(2, 0, 0)));
        assert_eq!(m.plugins[0].want, Want::Any);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("[[skills]]\nslug = \"a\"\nversoin = \"1\"\n", 3, "unknown field `versoin`"),
            ("[[skill]]\nslug = \"a\"\n", 1, "unknown field `skill`"),
            ("[[skills]]\nslug = \"A b\"\n", 2, "not a valid name"),
            ("[[skills]]\nslug = \"a\"\nversion = \"one\"\n", 3, "neither a version"),
            (
                "[[skills]]\nslug = \"a\"\n[[skills]]\nslug = \"a\"\n",
                4,
                "already listed on line 2",
            ),
            ("[[plugins]]\nslug = \"a\"\n", 2, "unknown field `slug`"),
            ("[[plugins]]\nversion = \"1.0.0\"\n", 1, "missing field `name`"),
            ("url = \"ftp://x\"\n", 1, "not a tenant URL"),
            ("\n\n[[skills]\n", 3, ""),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn wants() {
        assert!(Want::Any.accepts("3f2a9c1b7d4e"));
        assert!(!parse_want("^1.2").unwrap().accepts("3f2a9c1b7d4e"));
        assert!(parse_want("^1.2").unwrap().accepts("1.9.0"));
        assert!(!parse_want("^1.2").unwrap().accepts("2.0.0"));
        assert!(parse_want("1.2.3").unwrap().accepts("1.2.3"));
        assert!(!parse_want("1.2.3").unwrap().accepts("1.2.4"));
        assert_eq!(parse_want("").unwrap(), Want::Any);
    }

    #[test]
    fn the_starter_parses_and_is_empty() {
        let m = parse(&starter(Some("http://h/t/a"))).unwrap();
        assert!(m.is_empty());
        assert_eq!(m.url.as_deref(), Some("http://h/t/a"));
        assert!(parse(&starter(None)).unwrap().url.is_none());
    }
}
