//! YAML frontmatter of `SKILL.md`, agent and command files: the block between a first line
//! `---` and the next `---` line.

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Frontmatter blocks larger than this are refused (they are meant to be a few lines).
pub const MAX_FRONTMATTER_BYTES: usize = 64 * 1024;

/// A parsed frontmatter block.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontmatter {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Every key, converted to JSON (kept as the version's metadata).
    pub fields: Map<String, Value>,
    /// Byte offset where the markdown body starts.
    pub body_offset: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrontmatterError {
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("no frontmatter: the file must start with a `---` line, YAML keys (at least `{0}`), and a closing `---` line")]
    Missing(&'static str),
    #[error("the frontmatter has no closing `---` line")]
    Unclosed,
    #[error("the frontmatter is larger than {MAX_FRONTMATTER_BYTES} bytes")]
    TooLarge,
    #[error("the frontmatter is not valid YAML: {0}")]
    Yaml(String),
    #[error("the frontmatter must be a YAML mapping of keys to values")]
    NotMapping,
    #[error("the frontmatter has no `{0}`")]
    MissingKey(&'static str),
    #[error("the frontmatter's `{0}` must be a non-empty string")]
    NotString(&'static str),
}

/// Parses the frontmatter of `text`, if the file has one.
pub fn parse(data: &[u8]) -> Result<Option<Frontmatter>, FrontmatterError> {
    let text = std::str::from_utf8(data).map_err(|_| FrontmatterError::NotUtf8)?;
    let text_no_bom = text.strip_prefix('\u{feff}').unwrap_or(text);
    let bom = text.len() - text_no_bom.len();
    let Some(after_open) = strip_fence_line(text_no_bom) else {
        return Ok(None);
    };
    let open_len = text_no_bom.len() - after_open.len();
    // Find the closing fence at the start of a line.
    let mut offset = 0;
    let mut yaml_end = None;
    for line in after_open.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if trimmed.trim_end() == "---" || trimmed.trim_end() == "..." {
            yaml_end = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
        if offset > MAX_FRONTMATTER_BYTES {
            return Err(FrontmatterError::TooLarge);
        }
    }
    let (yaml_len, consumed) = yaml_end.ok_or(FrontmatterError::Unclosed)?;
    let yaml = &after_open[..yaml_len];
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| FrontmatterError::Yaml(e.to_string()))?;
    let fields = match docs.into_iter().next() {
        None | Some(Yaml::Null) => Map::new(),
        Some(Yaml::Hash(h)) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err(FrontmatterError::NotMapping),
                };
                map.insert(key, to_json(v));
            }
            map
        }
        Some(_) => return Err(FrontmatterError::NotMapping),
    };
    let text_field = |key: &'static str| -> Result<Option<String>, FrontmatterError> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(_) => Err(FrontmatterError::NotString(key)),
        }
    };
    let name = text_field("name")?;
    let description = text_field("description")?;
    Ok(Some(Frontmatter {
        name,
        description,
        fields,
        body_offset: bom + open_len + consumed,
    }))
}

/// `---` on the first line (with optional trailing spaces and `\r`); returns the rest.
fn strip_fence_line(text: &str) -> Option<&str> {
    let (line, rest) = match text.find('\n') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    (line.trim_end() == "---").then_some(rest)
}

fn to_json(y: Yaml) -> Value {
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(s)),
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        Yaml::Hash(h) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Real(r) => r,
                    Yaml::Boolean(b) => b.to_string(),
                    other => format!("{other:?}"),
                };
                map.insert(key, to_json(v));
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

fn require(data: &[u8], keys: &[&'static str]) -> Result<Frontmatter, FrontmatterError> {
    let fm = parse(data)?.ok_or(FrontmatterError::Missing(keys.first().copied().unwrap_or("description")))?;
    for key in keys {
        let present = match *key {
            "name" => fm.name.is_some(),
            "description" => fm.description.is_some(),
            _ => fm.fields.contains_key(*key),
        };
        if !present {
            return Err(FrontmatterError::MissingKey(key));
        }
    }
    Ok(fm)
}

/// `SKILL.md`: frontmatter with `name` and `description`.
pub fn check_skill(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    require(data, &["name", "description"])
}

/// An agent file: frontmatter with `description` (`name` falls back to the file name, as
/// Claude Code does).
pub fn check_agent(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    require(data, &["description"])
}

/// A command file: frontmatter with `description` (what Claude Code shows in `/help`).
pub fn check_command(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    require(data, &["description"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_skill() {
        let doc = b"---\nname: greet\ndescription: Says hello\nallowed-tools: [Bash, Read]\nmetadata:\n  owner: me\n---\n# Body\n";
        let fm = check_skill(doc).unwrap();
        assert_eq!(fm.name.as_deref(), Some("greet"));
        assert_eq!(fm.description.as_deref(), Some("Says hello"));
        assert_eq!(fm.fields["allowed-tools"], serde_json::json!(["Bash", "Read"]));
        assert_eq!(fm.fields["metadata"]["owner"], "me");
        assert_eq!(&doc[fm.body_offset..], b"# Body\n");
    }

    #[test]
    fn crlf_and_bom() {
        let doc = "\u{feff}---\r\nname: x\r\ndescription: y\r\n---\r\nbody".as_bytes();
        let fm = check_skill(doc).unwrap();
        assert_eq!(&doc[fm.body_offset..], b"body");
    }

    #[test]
    fn refusals() {
        assert_eq!(check_skill(b"# no frontmatter"), Err(FrontmatterError::Missing("name")));
        assert_eq!(check_skill(b"---\nname: x\n"), Err(FrontmatterError::Unclosed));
        assert_eq!(
            check_skill(b"---\nname: x\n---\n"),
            Err(FrontmatterError::MissingKey("description"))
        );
        assert_eq!(
            check_skill(b"---\nname: [1]\ndescription: d\n---\n"),
            Err(FrontmatterError::NotString("name"))
        );
        assert_eq!(check_skill(b"---\n- a\n- b\n---\n"), Err(FrontmatterError::NotMapping));
        assert!(matches!(
            check_skill(b"---\nname: x\n  bad: : :\n---\n"),
            Err(FrontmatterError::Yaml(_))
        ));
        assert_eq!(check_agent(&[0xff, 0xfe, 0x00]), Err(FrontmatterError::NotUtf8));
        assert!(check_command(b"---\ndescription: run it\n---\nDo it").is_ok());
    }
}
