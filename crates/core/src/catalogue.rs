//! The marketplace catalogue (`.claude-plugin/marketplace.json`) as Claude Code reads it, and
//! the checks on curator-given external sources.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::PluginMetadata;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    /// The tenant slug: Claude Code names the marketplace after it.
    pub name: String,
    pub owner: Owner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub plugins: Vec<CatalogueEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    pub name: String,
    /// Always self-contained (a URL catalogue cannot use relative sources).
    pub source: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `description`, `author`, `homepage`, `repository`, `license`, `keywords`, `category`,
    /// `displayName`: the plugin's metadata as the registry holds it.
    #[serde(flatten)]
    pub metadata: PluginMetadata,
}

impl Catalogue {
    /// The JSON served to clients, pretty-printed (it is small and people read it).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// A `url` source pinned to a commit: what internal and mirrored plugins are listed with.
pub fn git_source(url: &str, sha: &str) -> Value {
    serde_json::json!({ "source": "url", "url": url, "sha": sha })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SourceError(pub String);

fn bad(msg: impl Into<String>) -> SourceError {
    SourceError(msg.into())
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_git_url(u: &str) -> Result<(), SourceError> {
    if u.starts_with("git://") {
        return Err(bad(format!(
            "`{u}`: git:// is not supported by Claude Code (unencrypted); use https://"
        )));
    }
    let scp_like = u.contains('@') && u.contains(':') && !u.contains("://");
    if scp_like {
        return Ok(());
    }
    match url::Url::parse(u) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http" | "ssh") && parsed.host_str().is_some() => Ok(()),
        _ => Err(bad(format!(
            "`{u}` is not a git URL Claude Code can clone (https://…, ssh://… or git@host:path)"
        ))),
    }
}

/// Checks an external plugin's `source` as Claude Code would, and returns it unchanged.
pub fn check_external_source(v: &Value) -> Result<Value, SourceError> {
    let Value::Object(o) = v else {
        return Err(bad("must be an object such as {\"source\": \"github\", \"repo\": \"owner/repo\"}"));
    };
    let kind = o
        .get("source")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`source` is required: github, url, git-subdir or npm"))?;
    let text = |key: &str| o.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    let allowed: &[&str] = match kind {
        "github" => {
            let repo = text("repo").ok_or_else(|| bad("`repo` is required for a github source, e.g. \"owner/repo\""))?;
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
                return Err(bad(format!("`repo` must be `owner/repo`, not `{repo}`")));
            }
            &["source", "repo", "ref", "sha"]
        }
        "url" => {
            check_git_url(text("url").ok_or_else(|| bad("`url` is required for a url source"))?)?;
            &["source", "url", "ref", "sha"]
        }
        "git-subdir" => {
            let u = text("url").ok_or_else(|| bad("`url` is required for a git-subdir source"))?;
            if u.split('/').count() != 2 || u.contains(':') {
                check_git_url(u)?;
            }
            let path = text("path").ok_or_else(|| bad("`path` is required for a git-subdir source"))?;
            if path.split('/').any(|p| p == "..") || path.starts_with('/') {
                return Err(bad(format!("`path` must stay inside the repository: `{path}`")));
            }
            &["source", "url", "path", "ref", "sha"]
        }
        "npm" => {
            text("package").ok_or_else(|| bad("`package` is required for an npm source"))?;
            if let Some(r) = text("registry")
                && !r.starts_with("https://")
                && !r.starts_with("http://")
            {
                return Err(bad("`registry` must be an http(s) URL"));
            }
            &["source", "package", "version", "registry"]
        }
        other => {
            return Err(bad(format!(
                "`{other}` is not a source type for an external plugin: use github, url, git-subdir or npm"
            )));
        }
    };
    for key in o.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(bad(format!(
                "`{key}` is not a field of a {kind} source (allowed: {})",
                allowed.join(", ")
            )));
        }
    }
    if let Some(sha) = o.get("sha")
        && !sha.as_str().is_some_and(is_sha)
    {
        return Err(bad("`sha` must be a full commit id: 40 lowercase hex characters"));
    }
    for key in ["ref", "version"] {
        if let Some(r) = o.get(key) {
            if text(key).is_none() {
                return Err(bad(format!("`{key}` must be a non-empty string")));
            }
            let _ = r;
        }
    }
    let _: &Map<String, Value> = o;
    Ok(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_like_claude_code_expects() {
        let c = Catalogue {
            name: "acme".into(),
            owner: Owner {
                name: "Acme".into(),
                email: None,
                url: None,
            },
            description: None,
            plugins: vec![CatalogueEntry {
                name: "p".into(),
                source: git_source("http://h/t/acme/git/plugins/p.git", &"a".repeat(40)),
                version: Some("1.0.0".into()),
                metadata: PluginMetadata {
                    display_name: Some("P".into()),
                    ..Default::default()
                },
            }],
        };
        let v: Value = serde_json::from_slice(&c.to_json_bytes()).unwrap();
        assert_eq!(v["plugins"][0]["displayName"], "P");
        assert_eq!(v["plugins"][0]["source"]["source"], "url");
        assert!(v["plugins"][0].get("author").is_none());
    }

    #[test]
    fn external_sources() {
        assert!(check_external_source(&json!({"source": "github", "repo": "o/r"})).is_ok());
        assert!(check_external_source(&json!({"source": "url", "url": "https://git.example.com/x.git", "sha": "a".repeat(40)})).is_ok());
        assert!(check_external_source(&json!({"source": "git-subdir", "url": "o/r", "path": "plugins/x"})).is_ok());
        assert!(check_external_source(&json!({"source": "github", "repo": "nope"})).is_err());
        assert!(check_external_source(&json!({"source": "url", "url": "git://x/y"})).is_err());
        assert!(check_external_source(&json!({"source": "url", "url": "https://x/y", "sha": "abc"})).is_err());
        assert!(check_external_source(&json!({"source": "git-subdir", "url": "o/r", "path": "../x"})).is_err());
        assert!(check_external_source(&json!({"source": "s3"})).is_err());
        assert!(check_external_source(&json!("./local")).is_err());
        assert!(check_external_source(&json!({"source": "github", "repo": "o/r", "extra": 1})).is_err());
    }
}
