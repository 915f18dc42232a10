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
    /// `{old: new | null}`, kept from imported upstream catalogues (Claude Code migrates installs).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub renames: Map<String, Value>,
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
    /// Any other entry field (`strict`, `skills`, `tags`, `lspServers`…), verbatim: what an
    /// external listing or an imported upstream entry carried. A key here wins over `metadata`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CatalogueEntry {
    /// An entry whose `extra` keys replace the same keys of `metadata` (so an upstream value is
    /// emitted exactly as given, never twice).
    pub fn new(
        name: String,
        source: Value,
        version: Option<String>,
        metadata: PluginMetadata,
        extra: Map<String, Value>,
    ) -> CatalogueEntry {
        let metadata = if extra.is_empty() {
            metadata
        } else {
            let mut fields = match serde_json::to_value(&metadata) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            fields.retain(|k, _| !extra.contains_key(k));
            serde_json::from_value(Value::Object(fields)).unwrap_or_default()
        };
        let version = if extra.contains_key("version") { None } else { version };
        CatalogueEntry {
            name,
            source,
            version,
            metadata,
            extra,
        }
    }
}

/// Keys of an entry that are not "other fields": the entry's name and source, and what the
/// registry itself decides.
pub const ENTRY_OWN_KEYS: &[&str] = &["name", "source"];

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

/// A source Claude Code would not use, or that is unsafe on a developer's machine: the field
/// at fault (`source.repo`, `source.url`…) and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct SourceError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> SourceError {
    SourceError {
        field: format!("source.{field}").trim_end_matches('.').to_string(),
        message: message.into(),
    }
}

/// The source types an external entry may have (what Claude Code installs from).
pub const SOURCE_TYPES: &[&str] = &["github", "url", "git-subdir", "npm", "archive"];

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuses what a git or npm command line could read as an option, and what cannot be typed
/// on one line: a leading `-`, `--upload-pack`/`-o` smuggled into a URL, whitespace, control
/// characters.
fn check_plain(field: &str, v: &str) -> Result<(), SourceError> {
    if v.starts_with('-') {
        return Err(bad(field, format!("`{v}` starts with `-`: git and npm would read it as an option")));
    }
    if v.contains("--upload-pack") || v.contains("--receive-pack") || v.contains("--config") || v.contains("--exec") {
        return Err(bad(field, format!("`{v}` carries a git option")));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(field, "must not contain spaces or control characters"));
    }
    Ok(())
}

/// Cloud metadata and link-local hosts, as Claude Code's archive rule lists them: no plugin
/// lives there, and a request from a developer's machine or a CI runner there can leak
/// credentials. Spelled any way a resolver accepts (`169.254.169.254`, `0xa9fea9fe`,
/// `[::ffff:169.254.169.254]`, `metadata.google.internal.`).
pub fn is_metadata_host(host: &str) -> bool {
    let host = normal_host(host);
    let name = host.trim_end_matches('.');
    if matches!(name, "metadata" | "metadata.google.internal" | "metadata.goog") || name.starts_with("instance-data") {
        return true;
    }
    match parse_ip(&host) {
        Some(std::net::IpAddr::V4(v4)) => is_metadata_v4(v4),
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            (s[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.to_ipv4_mapped().is_some_and(is_metadata_v4)
        }
        None => false,
    }
}

fn is_metadata_v4(v4: std::net::Ipv4Addr) -> bool {
    let o = v4.octets();
    (o[0] == 169 && o[1] == 254) || o[0] == 0 || [[100, 100, 100, 200], [168, 63, 129, 16], [192, 0, 0, 192]].contains(&o)
}

/// Loopback hosts (Claude Code refuses them for archive downloads).
fn is_loopback_host(host: &str) -> bool {
    let host = normal_host(host);
    let name = host.trim_end_matches('.');
    if matches!(
        name,
        "localhost" | "localhost.localdomain" | "localhost4" | "localhost6" | "ip6-localhost" | "ip6-loopback"
    ) || name.ends_with(".localhost")
    {
        return true;
    }
    match parse_ip(&host) {
        Some(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Some(std::net::IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        None => false,
    }
}

/// A host as a WHATWG URL parser spells it (lowercase; IPv4 in any notation made dotted).
fn normal_host(host: &str) -> String {
    url::Url::parse(&format!("http://{host}/"))
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| host.to_ascii_lowercase())
}

fn parse_ip(host: &str) -> Option<std::net::IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// The host of a source URL: not an option, not a metadata or link-local address.
fn check_host(field: &str, u: &str, host: &str) -> Result<(), SourceError> {
    if host.is_empty() || host.starts_with('-') {
        return Err(bad(field, format!("`{u}`: the host would be read by ssh as an option")));
    }
    if is_metadata_host(host) {
        return Err(bad(
            field,
            format!("`{u}` points at a cloud metadata or link-local address: plugins cannot come from there"),
        ));
    }
    Ok(())
}

fn check_git_url(field: &str, u: &str) -> Result<(), SourceError> {
    check_plain(field, u)?;
    if u.starts_with("git://") {
        return Err(bad(
            field,
            format!("`{u}`: git:// is not supported by Claude Code (unencrypted); use https://"),
        ));
    }
    // scp-like `git@host:path` (no scheme).
    if !u.contains("://") {
        if let Some((user_host, path)) = u.split_once(':')
            && let Some((user, host)) = user_host.split_once('@')
            && !user.is_empty()
            && !host.is_empty()
            && !host.starts_with('-')
            && !path.is_empty()
            && !path.starts_with('-')
        {
            return check_host(field, u, host);
        }
        return Err(bad(
            field,
            format!("`{u}` is not a git URL Claude Code can clone (https://…, http://…, ssh://… or git@host:path)"),
        ));
    }
    match url::Url::parse(u) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http" | "ssh") => {
            let host = parsed.host_str().unwrap_or("");
            if parsed.username().starts_with('-') || parsed.username().starts_with("%2d") || parsed.username().starts_with("%2D") {
                return Err(bad(field, format!("`{u}`: the user would be read by ssh as an option")));
            }
            // ssh takes the host as it is written: only plain host names and addresses.
            if parsed.scheme() == "ssh"
                && !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'))
            {
                return Err(bad(field, format!("`{u}`: an ssh host has only letters, digits, `.`, `-` and `_`")));
            }
            check_host(field, u, host)
        }
        Ok(parsed) => Err(bad(
            field,
            format!("`{}://` is not allowed: use https, http or ssh", parsed.scheme()),
        )),
        Err(e) => Err(bad(field, format!("`{u}` is not a URL: {e}"))),
    }
}

/// `owner/name`, each part letters, digits, `.`, `_`, `-`, not starting with `-` or `.`.
fn check_repo(field: &str, repo: &str) -> Result<(), SourceError> {
    let parts: Vec<&str> = repo.split('/').collect();
    let ok_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with(['-', '.'])
            && p.len() <= 100
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if parts.len() != 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(bad(
            field,
            format!("must be `owner/name` (letters, digits, `.`, `_`, `-`), not `{repo}`"),
        ));
    }
    Ok(())
}

fn check_subdir_path(field: &str, path: &str) -> Result<(), SourceError> {
    check_plain(field, path)?;
    let trimmed = path.trim_start_matches("./");
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad(field, format!("`{path}` must be a relative path inside the repository")));
    }
    if trimmed.split('/').any(|seg| seg == "..") {
        return Err(bad(field, format!("`{path}` must stay inside the repository (no `..`)")));
    }
    // `.git` as Windows and macOS read it too (`.GIT.`, `git~1`, `.g<U+200C>it`).
    if trimmed.split('/').any(crate::names::is_dotgit) {
        return Err(bad(field, format!("`{path}` points inside `.git`")));
    }
    if trimmed.is_empty() || trimmed == "." {
        return Err(bad(
            field,
            "must name a folder of the repository; for the repository root use a `url` source",
        ));
    }
    Ok(())
}

/// `@scope/name` or `name`: lowercase letters, digits, `-`, `.`, `_`, `~`; not starting with `.` or `_`.
fn check_npm_package(field: &str, name: &str) -> Result<(), SourceError> {
    check_plain(field, name)?;
    let bare = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, rest)) if !scope.is_empty() => {
                if !scope
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~'))
                {
                    return Err(bad(field, format!("`{name}` is not an npm package name")));
                }
                rest
            }
            _ => return Err(bad(field, format!("`{name}` is not an npm package name (`@scope/name`)"))),
        },
        None => name,
    };
    let ok = !bare.is_empty()
        && bare.len() <= 214
        && !bare.starts_with(['.', '_'])
        && bare
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~'));
    if !ok {
        return Err(bad(field, format!("`{name}` is not an npm package name")));
    }
    Ok(())
}

/// Checks an external plugin's `source` as Claude Code would read it — `github`, `url`,
/// `git-subdir`, `npm`, `archive` — and refuses what would be unsafe on a developer's machine.
/// Returns it unchanged (other keys of the object included): the catalogue emits it as given.
pub fn check_external_source(v: &Value) -> Result<Value, SourceError> {
    let Value::Object(o) = v else {
        return Err(bad(
            "",
            "must be an object such as {\"source\": \"github\", \"repo\": \"owner/repo\"}",
        ));
    };
    let kind = o
        .get("source")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("source", format!("is required: one of {}", SOURCE_TYPES.join(", "))))?;
    let text = |key: &str| -> Result<Option<&str>, SourceError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.as_str())),
            Some(_) => Err(bad(key, "must be a non-empty string")),
        }
    };
    let required =
        |key: &str| -> Result<&str, SourceError> { text(key)?.ok_or_else(|| bad(key, format!("is required for a {kind} source"))) };
    match kind {
        "github" => check_repo("repo", required("repo")?)?,
        "url" => check_git_url("url", required("url")?)?,
        "git-subdir" => {
            let u = required("url")?;
            // `owner/repo` shorthand for GitHub, else a git URL.
            if u.split('/').count() == 2 && !u.contains(':') {
                check_repo("url", u)?;
            } else {
                check_git_url("url", u)?;
            }
            check_subdir_path("path", required("path")?)?;
        }
        "npm" => {
            check_npm_package("package", required("package")?)?;
            if let Some(v) = text("version")? {
                check_plain("version", v)?;
            }
            if let Some(r) = text("registry")? {
                check_plain("registry", r)?;
                match url::Url::parse(r) {
                    Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
                        check_host("registry", r, u.host_str().unwrap_or(""))?;
                    }
                    _ => return Err(bad("registry", "must be an http(s) URL")),
                }
            }
        }
        "archive" => {
            let u = required("url")?;
            check_plain("url", u)?;
            match url::Url::parse(u) {
                Ok(parsed) if parsed.scheme() == "https" && parsed.host_str().is_some() => {
                    let host = parsed.host_str().unwrap_or("");
                    check_host("url", u, host)?;
                    if is_loopback_host(host) {
                        return Err(bad(
                            "url",
                            format!("`{u}` points at this machine: Claude Code downloads archives only from other hosts"),
                        ));
                    }
                }
                _ => {
                    return Err(bad(
                        "url",
                        "must be an https:// URL (Claude Code downloads archives over https only)",
                    ));
                }
            }
            if let Some(sum) = text("sha256")?
                && !is_sha256(sum)
            {
                return Err(bad("sha256", "must be 64 hex characters"));
            }
        }
        other => {
            return Err(bad(
                "source",
                format!(
                    "`{other}` is not a source type Claude Code installs from: use {}",
                    SOURCE_TYPES.join(", ")
                ),
            ));
        }
    }
    if matches!(kind, "github" | "url" | "git-subdir") {
        if let Some(r) = text("ref")? {
            check_plain("ref", r)?;
            if r.contains("..") || r.ends_with(".lock") || r.contains(['~', '^', ':', '?', '*', '[']) {
                return Err(bad("ref", format!("`{r}` is not a valid git branch, tag or commit")));
            }
        }
        if let Some(sha) = o.get("sha")
            && !sha.as_str().is_some_and(is_sha)
        {
            return Err(bad("sha", "must be a full commit id: 40 lowercase hex characters"));
        }
    }
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
                extra: Map::new(),
            }],
            renames: Map::new(),
        };
        let v: Value = serde_json::from_slice(&c.to_json_bytes()).unwrap();
        assert_eq!(v["plugins"][0]["displayName"], "P");
        assert_eq!(v["plugins"][0]["source"]["source"], "url");
        assert!(v["plugins"][0].get("author").is_none());
    }

    #[test]
    fn external_sources() {
        let sha = "a".repeat(40);
        for ok in [
            json!({"source": "github", "repo": "o/r"}),
            json!({"source": "github", "repo": "anthropics/claude-code", "ref": "v1.2.0", "sha": sha}),
            json!({"source": "url", "url": "https://git.example.com/x.git", "sha": sha}),
            json!({"source": "url", "url": "http://127.0.0.1:8080/x.git"}),
            json!({"source": "url", "url": "ssh://git@git.example.com/x.git"}),
            json!({"source": "url", "url": "git@github.com:o/r.git", "ref": "main"}),
            json!({"source": "git-subdir", "url": "o/r", "path": "plugins/x"}),
            json!({"source": "git-subdir", "url": "https://h/r.git", "path": "./plugins/x", "ref": "release/1"}),
            json!({"source": "npm", "package": "@acme/tools", "version": "^1.2.0", "registry": "https://npm.acme.dev"}),
            json!({"source": "archive", "url": "https://h/p.zip", "sha256": "b".repeat(64)}),
            json!({"source": "url", "url": "https://10.1.2.3/r.git"}),
            json!({"source": "url", "url": "http://localhost:8080/r.git"}),
            json!({"source": "url", "url": "ssh://git@[2001:db8::1]/r.git"}),
            json!({"source": "npm", "package": "x", "registry": "http://127.0.0.1:4873/"}),
            // Other keys of the object are the client's business: kept as given.
            json!({"source": "github", "repo": "o/r", "extra": 1}),
        ] {
            assert_eq!(check_external_source(&ok).as_ref(), Ok(&ok), "{ok}");
        }
        for (bad, field) in [
            (json!("./local"), "source"),
            (json!({"repo": "o/r"}), "source.source"),
            (json!({"source": "s3"}), "source.source"),
            (json!({"source": "github", "repo": "nope"}), "source.repo"),
            (json!({"source": "github", "repo": "-o/r"}), "source.repo"),
            (json!({"source": "github", "repo": "o/r", "sha": "abc"}), "source.sha"),
            (
                json!({"source": "github", "repo": "o/r", "ref": "--upload-pack=evil"}),
                "source.ref",
            ),
            (json!({"source": "github", "repo": "o/r", "ref": "a..b"}), "source.ref"),
            (json!({"source": "url", "url": "git://x/y"}), "source.url"),
            (json!({"source": "url", "url": "file:///etc"}), "source.url"),
            (json!({"source": "url", "url": "ssh://-oProxyCommand=evil/x"}), "source.url"),
            (json!({"source": "url", "url": "-u/evil"}), "source.url"),
            (json!({"source": "url", "url": "https://h/x.git --upload-pack=evil"}), "source.url"),
            (json!({"source": "url", "url": "git@-oevil:x"}), "source.url"),
            (json!({"source": "git-subdir", "url": "o/r", "path": "../x"}), "source.path"),
            (json!({"source": "git-subdir", "url": "o/r", "path": "a/.git/hooks"}), "source.path"),
            (
                json!({"source": "git-subdir", "url": "o/r", "path": "a/.GIT./hooks"}),
                "source.path",
            ),
            (json!({"source": "git-subdir", "url": "o/r", "path": "git~1/hooks"}), "source.path"),
            (
                json!({"source": "git-subdir", "url": "o/r", "path": "a/.g\u{200c}it"}),
                "source.path",
            ),
            (json!({"source": "git-subdir", "url": "o/r", "path": "/abs"}), "source.path"),
            (json!({"source": "git-subdir", "url": "o/r"}), "source.path"),
            (json!({"source": "npm", "package": "-evil"}), "source.package"),
            (json!({"source": "npm", "package": "Bad Name"}), "source.package"),
            (
                json!({"source": "npm", "package": "ok", "version": "--registry=x"}),
                "source.version",
            ),
            (json!({"source": "npm", "package": "ok", "registry": "ftp://x"}), "source.registry"),
            (json!({"source": "archive", "url": "http://h/p.zip"}), "source.url"),
            (
                json!({"source": "archive", "url": "https://h/p.zip", "sha256": "x"}),
                "source.sha256",
            ),
            // Values a command line would read as an option, however they are dressed.
            (json!({"source": "url", "url": "-u@x:y"}), "source.url"),
            (json!({"source": "url", "url": "ssh://-oProxyCommand=touch%20x@h/r"}), "source.url"),
            (json!({"source": "url", "url": "ssh://%2doProxyCommand=x/r"}), "source.url"),
            (json!({"source": "url", "url": "ssh://%2DoProxy@h/r"}), "source.url"),
            (json!({"source": "url", "url": "https://h/r.git", "ref": "-b"}), "source.ref"),
            (json!({"source": "git-subdir", "url": "-o/r", "path": "p"}), "source.url"),
            (json!({"source": "git-subdir", "url": "o/r", "path": "-p"}), "source.path"),
            (json!({"source": "github", "repo": "o/-r"}), "source.repo"),
            (json!({"source": "npm", "package": "--ignore-scripts=false"}), "source.package"),
            // Metadata and link-local hosts, in any spelling.
            (json!({"source": "url", "url": "http://169.254.169.254/r.git"}), "source.url"),
            (json!({"source": "url", "url": "http://0xa9fea9fe/r.git"}), "source.url"),
            (json!({"source": "url", "url": "http://2852039166/r.git"}), "source.url"),
            (json!({"source": "url", "url": "http://[fe80::1]/r.git"}), "source.url"),
            (
                json!({"source": "url", "url": "http://[::ffff:169.254.169.254]/r.git"}),
                "source.url",
            ),
            (json!({"source": "url", "url": "ssh://git@169.254.169.254/r.git"}), "source.url"),
            (
                json!({"source": "url", "url": "git@metadata.google.internal:o/r.git"}),
                "source.url",
            ),
            (
                json!({"source": "url", "url": "https://Metadata.Google.Internal./r.git"}),
                "source.url",
            ),
            (
                json!({"source": "npm", "package": "x", "registry": "http://169.254.169.254/"}),
                "source.registry",
            ),
            (
                json!({"source": "npm", "package": "x", "registry": "http://metadata.goog/"}),
                "source.registry",
            ),
            (
                json!({"source": "npm", "package": "x", "registry": "http://[fd00:ec2::254]/"}),
                "source.registry",
            ),
            (json!({"source": "archive", "url": "https://100.100.100.200/p.zip"}), "source.url"),
            (json!({"source": "archive", "url": "https://instance-data/p.zip"}), "source.url"),
            (json!({"source": "archive", "url": "https://127.0.0.1/p.zip"}), "source.url"),
            (json!({"source": "archive", "url": "https://x.localhost/p.zip"}), "source.url"),
            (
                json!({"source": "git-subdir", "url": "https://168.63.129.16/r.git", "path": "p"}),
                "source.url",
            ),
        ] {
            let err = check_external_source(&bad).expect_err(&bad.to_string());
            assert_eq!(err.field, field, "{bad}: {err}");
        }
    }
}
