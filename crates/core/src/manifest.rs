//! `.claude-plugin/plugin.json`: checked with the rules Claude Code applies (field types,
//! `author` an object, `homepage` a URL), rendered for composed plugins.

use serde_json::{Map, Value};

use crate::api::PluginMetadata;

#[derive(Debug, Clone, PartialEq)]
pub struct PluginManifest {
    pub name: String,
    pub version: Option<String>,
    /// Every field as written.
    pub raw: Map<String, Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("plugin.json is not UTF-8 text")]
    NotUtf8,
    #[error("plugin.json is not valid JSON: {0}")]
    Json(String),
    #[error("plugin.json must be a JSON object")]
    NotObject,
    #[error("plugin.json: `name` is required")]
    MissingName,
    #[error("plugin.json: `{field}` {expected}")]
    Field { field: String, expected: &'static str },
}

fn field(field: &str, expected: &'static str) -> ManifestError {
    ManifestError::Field {
        field: field.to_string(),
        expected,
    }
}

/// Parses and checks a `plugin.json`.
pub fn parse_plugin_json(data: &[u8]) -> Result<PluginManifest, ManifestError> {
    let text = std::str::from_utf8(data).map_err(|_| ManifestError::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(|e| ManifestError::Json(e.to_string()))?;
    let Value::Object(raw) = value else {
        return Err(ManifestError::NotObject);
    };
    let name = match raw.get("name") {
        None | Some(Value::Null) => return Err(ManifestError::MissingName),
        Some(Value::String(s)) if !s.trim().is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()) => s.clone(),
        Some(_) => return Err(field("name", "must be a non-empty string without spaces")),
    };
    let version = match raw.get("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(field("version", "must be a string such as \"1.0.0\"")),
    };
    for key in ["description", "displayName", "license"] {
        if let Some(v) = raw.get(key)
            && !v.is_string()
        {
            return Err(field(key, "must be a string"));
        }
    }
    if let Some(author) = raw.get("author") {
        check_person("author", author)?;
    }
    if let Some(homepage) = raw.get("homepage") {
        match homepage.as_str() {
            Some(s) if is_url(s) => {}
            _ => return Err(field("homepage", "must be a URL such as \"https://example.com\"")),
        }
    }
    match raw.get("repository") {
        Some(Value::String(repo)) if is_script_link(repo) => return Err(field("repository", SCRIPT_LINK)),
        Some(repo) if !repo.is_string() => return Err(field("repository", "must be a string (a URL)")),
        _ => {}
    }
    if let Some(keywords) = raw.get("keywords") {
        match keywords.as_array() {
            Some(items) if items.iter().all(Value::is_string) => {}
            _ => return Err(field("keywords", "must be an array of strings")),
        }
    }
    Ok(PluginManifest { name, version, raw })
}

/// `author` (and similar) must be `{name, email?, url?}`; Claude Code refuses a plain string.
pub fn check_person(what: &str, v: &Value) -> Result<(), ManifestError> {
    let Value::Object(o) = v else {
        return Err(field(
            what,
            "must be an object like {\"name\": \"…\", \"email\": \"…\"}, not a string",
        ));
    };
    match o.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            return Err(ManifestError::Field {
                field: format!("{what}.name"),
                expected: "is required and must be a non-empty string",
            });
        }
    }
    for key in ["email", "url"] {
        if let Some(v) = o.get(key)
            && !v.is_string()
        {
            return Err(ManifestError::Field {
                field: format!("{what}.{key}"),
                expected: "must be a string",
            });
        }
    }
    if let Some(Value::String(url)) = o.get("url")
        && is_script_link(url)
    {
        return Err(ManifestError::Field {
            field: format!("{what}.url"),
            expected: SCRIPT_LINK,
        });
    }
    Ok(())
}

/// What a refused link field is told.
const SCRIPT_LINK: &str =
    "must be a web address: `javascript:`, `data:` and `vbscript:` links are refused (a catalogue page would run them)";

/// A link a browser would run or inline rather than visit: `javascript:`, `data:`, `vbscript:`,
/// spelled as a browser reads a URL (leading spaces and control characters, tabs and newlines
/// anywhere, and case ignored).
pub fn is_script_link(s: &str) -> bool {
    let scheme: String = s
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "data:", "vbscript:"].iter().any(|p| scheme.starts_with(p))
}

/// The link fields of a catalogue entry or metadata object as given (`homepage`, `repository`,
/// `author.url`): refused when a browser would run them.
pub fn check_links(fields: &Map<String, Value>) -> Result<(), ManifestError> {
    for key in ["homepage", "repository"] {
        if let Some(Value::String(v)) = fields.get(key)
            && is_script_link(v)
        {
            return Err(field(key, SCRIPT_LINK));
        }
    }
    if let Some(Value::String(v)) = fields.get("author").and_then(|a| a.get("url"))
        && is_script_link(v)
    {
        return Err(field("author.url", SCRIPT_LINK));
    }
    Ok(())
}

pub(crate) fn is_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// The `plugin.json` of a composed plugin: stable key order, two-space indent, trailing newline.
pub fn render_plugin_json(name: &str, version: Option<&str>, meta: &PluginMetadata, dependencies: &[Value]) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(name));
    if let Some(v) = version {
        m.insert("version".into(), Value::from(v));
    }
    if let Some(v) = &meta.display_name {
        m.insert("displayName".into(), Value::from(v.as_str()));
    }
    if let Some(v) = &meta.description {
        m.insert("description".into(), Value::from(v.as_str()));
    }
    if let Some(a) = &meta.author {
        m.insert("author".into(), serde_json::to_value(a).unwrap_or(Value::Null));
    }
    if let Some(v) = &meta.homepage {
        m.insert("homepage".into(), Value::from(v.as_str()));
    }
    if let Some(v) = &meta.repository {
        m.insert("repository".into(), Value::from(v.as_str()));
    }
    if let Some(v) = &meta.license {
        m.insert("license".into(), Value::from(v.as_str()));
    }
    if !meta.keywords.is_empty() {
        m.insert("keywords".into(), Value::from(meta.keywords.clone()));
    }
    if !dependencies.is_empty() {
        m.insert("dependencies".into(), Value::from(dependencies.to_vec()));
    }
    let mut out = serde_json::to_vec_pretty(&Value::Object(m)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Checks curator-given metadata with the same rules as plugin.json.
pub fn check_metadata(meta: &PluginMetadata) -> Result<(), ManifestError> {
    if let Some(h) = &meta.homepage
        && !is_url(h)
    {
        return Err(field("homepage", "must be a URL such as \"https://example.com\""));
    }
    if let Some(a) = &meta.author
        && a.name.trim().is_empty()
    {
        return Err(ManifestError::Field {
            field: "author.name".into(),
            expected: "must be a non-empty string",
        });
    }
    if meta.author.as_ref().and_then(|a| a.url.as_deref()).is_some_and(is_script_link) {
        return Err(field("author.url", SCRIPT_LINK));
    }
    if meta.repository.as_deref().is_some_and(is_script_link) {
        return Err(field("repository", SCRIPT_LINK));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_claude_code_manifests() {
        let m =
            parse_plugin_json(br#"{"name":"hello","version":"1.0.0","author":{"name":"A"},"homepage":"https://x.dev","keywords":["a"]}"#)
                .unwrap();
        assert_eq!(m.name, "hello");
        assert_eq!(m.version.as_deref(), Some("1.0.0"));
    }

    #[test]
    fn names_the_wrong_field() {
        let err = |s: &str| parse_plugin_json(s.as_bytes()).unwrap_err().to_string();
        assert!(err("{").contains("not valid JSON"));
        assert!(err("[]").contains("object"));
        assert!(err("{}").contains("`name`"));
        assert!(err(r#"{"name":"x","version":1}"#).contains("`version`"));
        assert!(err(r#"{"name":"x","author":"me"}"#).contains("`author`"));
        assert!(err(r#"{"name":"x","author":{}}"#).contains("`author.name`"));
        assert!(err(r#"{"name":"x","homepage":"nope"}"#).contains("`homepage`"));
        assert!(err(r#"{"name":"x","keywords":"a"}"#).contains("`keywords`"));
    }

    #[test]
    fn script_links_are_refused_with_the_field() {
        let field_of = |s: &str| match parse_plugin_json(s.as_bytes()).unwrap_err() {
            ManifestError::Field { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(field_of(r#"{"name":"x","repository":"javascript:alert(1)"}"#), "repository");
        assert_eq!(
            field_of(r#"{"name":"x","author":{"name":"a","url":" JavaScript:alert(1)"}}"#),
            "author.url"
        );
        assert_eq!(
            field_of(r#"{"name":"x","author":{"name":"a","url":"java\tscript:x"}}"#),
            "author.url"
        );
        assert_eq!(
            field_of(r#"{"name":"x","homepage":"data:text/html,<script>x</script>"}"#),
            "homepage"
        );
        assert_eq!(field_of(r#"{"name":"x","repository":"VBScript:x"}"#), "repository");
        parse_plugin_json(br#"{"name":"x","repository":"https://github.com/o/r","author":{"name":"a","url":"https://a.dev"}}"#).unwrap();
        parse_plugin_json(br#"{"name":"x","repository":"git@github.com:o/r.git"}"#).unwrap();

        let meta = |json: serde_json::Value| check_metadata(&serde_json::from_value::<PluginMetadata>(json).unwrap());
        let field_of = |r: Result<(), ManifestError>| match r.unwrap_err() {
            ManifestError::Field { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(field_of(meta(serde_json::json!({"repository": "javascript:x"}))), "repository");
        assert_eq!(
            field_of(meta(serde_json::json!({"author": {"name": "a", "url": "data:x"}}))),
            "author.url"
        );
        assert_eq!(field_of(meta(serde_json::json!({"homepage": "javascript://x"}))), "homepage");
        meta(
            serde_json::json!({"homepage": "https://x.dev", "repository": "https://x.dev/r", "author": {"name": "a", "url": "https://a"}}),
        )
        .unwrap();

        let links = |json: serde_json::Value| check_links(json.as_object().unwrap());
        assert_eq!(field_of(links(serde_json::json!({"homepage": "javascript:x"}))), "homepage");
        assert_eq!(
            field_of(links(serde_json::json!({"author": {"url": "\u{1}javascript:x"}}))),
            "author.url"
        );
        links(serde_json::json!({"homepage": "https://x", "author": "plain string", "repository": 3})).unwrap();
    }

    #[test]
    fn renders() {
        let meta = PluginMetadata {
            description: Some("d".into()),
            ..Default::default()
        };
        let out = render_plugin_json("p", Some("1.0.0"), &meta, &[]);
        let back = parse_plugin_json(&out).unwrap();
        assert_eq!(back.version.as_deref(), Some("1.0.0"));
        assert!(out.ends_with(b"}\n"));
    }
}
