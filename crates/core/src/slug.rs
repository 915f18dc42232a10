//! Validated names: tenant, plugin and piece slugs.
//!
//! A slug is `^[a-z0-9][a-z0-9-]{0,62}$`: safe in URLs, file names, git refs and Claude Code
//! plugin ids (`<plugin>@<marketplace>`), and the same on every platform.

use serde::{Deserialize, Serialize};

/// The longest slug, in bytes.
pub const MAX_SLUG_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlugError {
    #[error("the name is empty")]
    Empty,
    #[error("`{0}` is longer than {MAX_SLUG_LEN} characters")]
    TooLong(String),
    #[error(
        "`{name}` is not a valid name: {why} (use lowercase letters, digits and `-`, starting with a letter or digit, e.g. `{suggestion}`)"
    )]
    Invalid {
        name: String,
        why: &'static str,
        suggestion: String,
    },
    #[error("`{0}` is a marketplace name Claude Code reserves or blocks: choose another")]
    Reserved(String),
    #[error("`{0}` looks like an official Anthropic marketplace name, which Claude Code refuses: choose another")]
    Impersonation(String),
}

impl Slug {
    pub fn parse(s: &str) -> Result<Slug, SlugError> {
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.len() > MAX_SLUG_LEN {
            return Err(SlugError::TooLong(s.to_string()));
        }
        let invalid = |why| SlugError::Invalid {
            name: s.to_string(),
            why,
            suggestion: suggest(s),
        };
        let first = s.as_bytes()[0];
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(invalid("it must start with a lowercase letter or a digit"));
        }
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("it has upper-case letters"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(invalid("it has characters other than a-z, 0-9 and `-`"));
        }
        // A slug becomes a folder or file name on developers' machines (`skills/<slug>`,
        // `agents/<slug>.md`, the plugin's cache folder): Windows cannot hold device names.
        if crate::names::is_windows_device(s) {
            return Err(SlugError::Invalid {
                name: s.to_string(),
                why: "it is a Windows device name (con, prn, aux, nul, com0–9, lpt0–9)",
                suggestion: format!("{s}-1"),
            });
        }
        Ok(Slug(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A kebab-case suggestion for a refused name.
fn suggest(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(MAX_SLUG_LEN).collect();
    if out.is_empty() { "my-name".into() } else { out }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Slug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, SlugError> {
        Slug::parse(s)
    }
}

impl TryFrom<String> for Slug {
    type Error = SlugError;
    fn try_from(s: String) -> Result<Self, SlugError> {
        Slug::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

/// Marketplace names only Anthropic's own GitHub sources may use (Claude Code 2.1.328).
const RESERVED_MARKETPLACE_NAMES: &[&str] = &[
    "claude-code-marketplace",
    "claude-code-plugins",
    "claude-plugins-official",
    "anthropic-marketplace",
    "anthropic-plugins",
    "agent-skills",
    "anthropic-agent-skills",
    "life-sciences",
    "knowledge-work-plugins",
    "claude-for-legal",
    "claude-for-financial-services",
    "financial-services-plugins",
    "first-party-plugins",
    "claude-tag-plugins",
    "claude-community",
    "claude-plugins-community",
    "healthcare",
    "anthropic-plugin-directory",
    "claude-plugin-directory",
];

/// Marketplace names Claude Code never accepts.
const BLOCKED_MARKETPLACE_NAMES: &[&str] = &["inline", "builtin", "skills-dir", "synced", "claude-plugin-test"];

/// A tenant slug: a valid slug that Claude Code accepts as a marketplace name (the tenant
/// slug is the catalogue's `name`, so a refused one would make the marketplace unusable).
pub fn check_tenant_slug(s: &str) -> Result<Slug, SlugError> {
    let slug = Slug::parse(s)?;
    if RESERVED_MARKETPLACE_NAMES.contains(&s) || BLOCKED_MARKETPLACE_NAMES.contains(&s) {
        return Err(SlugError::Reserved(s.to_string()));
    }
    if impersonates_anthropic(s) {
        return Err(SlugError::Impersonation(s.to_string()));
    }
    Ok(slug)
}

/// Claude Code's impersonation rule: `official` next to `anthropic`/`claude`, or a name that
/// starts with `anthropic`/`claude` followed (after separators) by marketplace, plugins,
/// official, directory or directories.
fn impersonates_anthropic(s: &str) -> bool {
    let brand = s.contains("anthropic") || s.contains("claude");
    if brand && s.contains("official") {
        return true;
    }
    for prefix in ["anthropic", "claude"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let rest = rest.trim_start_matches(['-', '_', '.', ' ']);
            if ["marketplace", "plugins", "official", "directory", "directories"]
                .iter()
                .any(|w| rest.starts_with(w))
            {
                return true;
            }
        }
    }
    false
}

/// Plugin names `claude plugin validate` refuses although the client installs them.
pub fn validator_refused_plugin_name(s: &str) -> bool {
    ["claude-", "anthropic-", "anthropics-", "cc-plugin-"]
        .iter()
        .any(|p| s.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "acme", "my-team-2", "0day", &"a".repeat(63)] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "a_b",
            "a b",
            "a/b",
            "..",
            "ü",
            &"a".repeat(64),
            "a.b",
            "con",
            "aux",
            "nul",
            "com1",
            "lpt9",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        let e = Slug::parse("My_Skill").unwrap_err().to_string();
        assert!(e.contains("my-skill"), "{e}");
        let e = Slug::parse("aux").unwrap_err().to_string();
        assert!(e.contains("Windows device") && e.contains("aux-1"), "{e}");
        for ok in ["console", "com10", "auxiliary", "nul-checker"] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn tenant_names_claude_code_refuses() {
        for bad in [
            "claude-plugins-official",
            "agent-skills",
            "inline",
            "builtin",
            "claude-plugins-acme",
            "anthropicplugins",
            "my-official-claude",
            "claude-marketplace",
            "claude-code-plugins",
        ] {
            assert!(check_tenant_slug(bad).is_err(), "{bad}");
        }
        for ok in [
            "claude-tools",
            "claude-code-tools",
            "acme-claude-plugins",
            "anthropic-tools",
            "default",
            "acme",
        ] {
            assert!(check_tenant_slug(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn validator_prefixes() {
        assert!(validator_refused_plugin_name("claude-helper"));
        assert!(validator_refused_plugin_name("cc-plugin-x"));
        assert!(!validator_refused_plugin_name("helper-claude"));
    }
}
