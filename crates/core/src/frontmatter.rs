//! YAML frontmatter of `SKILL.md`, agent and command files: the block between a first line
//! `---` and the next `---` line.
//!
//! Read the way Claude Code reads it: strict YAML first; when that fails, a fallback that
//! reads plain `key: value` lines, so that `name` and `description` of the many published
//! files whose frontmatter is not strict YAML (a description holding `: `, say) still reach
//! the registry. The raw file always stays the source of truth: nothing here rewrites it.
//! What the fallback had to do is reported as a warning, never as a refusal.

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
    /// What the reader had to work around (not strict YAML, a `name` that is not text…).
    pub warnings: Vec<String>,
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
    #[error("the frontmatter has no `{0}`")]
    MissingKey(&'static str),
    #[error("the frontmatter's `{0}` must be a non-empty string")]
    NotString(&'static str),
}

/// Parses the frontmatter of a file, if it has one. Only a file that is not UTF-8, a block
/// with no closing line and an oversized block are errors; YAML that does not parse is read
/// by the `key: value` fallback, with a warning.
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
    let mut warnings = Vec::new();
    let fields = match strict_yaml(yaml) {
        Ok(fields) => fields,
        Err(reason) => {
            warnings.push(format!(
                "the frontmatter is not strict YAML ({reason}); read as plain `key: value` lines, as Claude Code does when it loads the file"
            ));
            lenient_lines(yaml)
        }
    };
    let mut text_field = |key: &'static str| -> Option<String> {
        match fields.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::String(_)) => {
                warnings.push(format!("the frontmatter's `{key}` is empty"));
                None
            }
            Some(other) => {
                warnings.push(format!("the frontmatter's `{key}` is not text ({}): it is ignored", kind_of(other)));
                None
            }
        }
    };
    let name = text_field("name");
    let description = text_field("description");
    Ok(Some(Frontmatter {
        name,
        description,
        fields,
        body_offset: bom + open_len + consumed,
        warnings,
    }))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The block as strict YAML: a mapping (or nothing), else the reason it is not one.
fn strict_yaml(yaml: &str) -> Result<Map<String, Value>, String> {
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| e.to_string())?;
    match docs.into_iter().next() {
        None | Some(Yaml::Null) => Ok(Map::new()),
        Some(Yaml::Hash(h)) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err("a key is not a plain value".into()),
                };
                map.insert(key, to_json(v));
            }
            Ok(map)
        }
        Some(_) => Err("it is not a mapping of keys to values".into()),
    }
}

/// The fallback: top-level `key: value` lines; indented lines continue the previous value
/// (joined by newlines after `|`, by spaces otherwise); matching outer quotes are removed.
/// Every value is text. Lines that are neither are skipped.
fn lenient_lines(yaml: &str) -> Map<String, Value> {
    struct Open {
        key: String,
        value: String,
        literal: bool,
    }
    fn close(map: &mut Map<String, Value>, open: Option<Open>) {
        if let Some(o) = open {
            map.insert(o.key, Value::String(unquote(o.value.trim()).to_string()));
        }
    }
    let mut map = Map::new();
    let mut open: Option<Open> = None;
    for raw in yaml.lines() {
        let line = raw.trim_end_matches('\r');
        let continues = line.starts_with([' ', '\t']) || line.trim().is_empty();
        if continues {
            if let Some(o) = open.as_mut() {
                let piece = line.trim();
                if o.literal {
                    if !o.value.is_empty() {
                        o.value.push('\n');
                    }
                    o.value.push_str(piece);
                } else if !piece.is_empty() {
                    if !o.value.is_empty() {
                        o.value.push(' ');
                    }
                    o.value.push_str(piece);
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            close(&mut map, open.take());
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            close(&mut map, open.take());
            continue;
        }
        close(&mut map, open.take());
        let value = value.trim();
        let block = value
            .strip_prefix(['|', '>'])
            .filter(|rest| rest.chars().all(|c| matches!(c, '-' | '+' | '1'..='9')));
        open = Some(Open {
            key: key.to_string(),
            value: if block.is_some() { String::new() } else { value.to_string() },
            literal: block.is_some() && value.starts_with('|'),
        });
    }
    close(&mut map, open.take());
    map
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
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
            return Err(match fm.fields.get(*key) {
                Some(v) if !v.is_null() => FrontmatterError::NotString(key),
                _ => FrontmatterError::MissingKey(key),
            });
        }
    }
    Ok(fm)
}

/// A single `SKILL.md` published on its own: frontmatter with `name` and `description` (the
/// registry lists a skill by them).
pub fn check_skill(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    require(data, &["name", "description"])
}

/// A single agent file: frontmatter with `description` (`name` falls back to the file name,
/// as Claude Code does).
pub fn check_agent(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    require(data, &["description"])
}

/// A single command file: frontmatter with `description` (what Claude Code shows in `/help`).
pub fn check_command(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    require(data, &["description"])
}

/// A skill, agent or command inside a plugin folder, where its folder or file name names it:
/// only a file that is not UTF-8 is refused (Claude Code cannot read it). Everything else
/// Claude Code installs and loads — no frontmatter, no closing line, no description — and
/// comes back as a warning on an otherwise empty frontmatter.
pub fn read_in_plugin(data: &[u8]) -> Result<Frontmatter, FrontmatterError> {
    let empty = |warning: String| Frontmatter {
        name: None,
        description: None,
        fields: Map::new(),
        body_offset: 0,
        warnings: vec![warning],
    };
    let mut fm = match parse(data) {
        Ok(Some(fm)) => fm,
        Ok(None) => return Ok(empty("no frontmatter block: Claude Code loads it without a description".into())),
        Err(FrontmatterError::NotUtf8) => return Err(FrontmatterError::NotUtf8),
        Err(e) => return Ok(empty(format!("{e}: Claude Code loads it without frontmatter"))),
    };
    if fm.description.is_none() && !fm.warnings.iter().any(|w| w.contains("`description`")) {
        fm.warnings
            .push("no `description` in the frontmatter: Claude Code shows none".into());
    }
    Ok(fm)
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
        assert_eq!(check_skill(b"---\n- a\n- b\n---\n"), Err(FrontmatterError::MissingKey("name")));
        assert_eq!(check_agent(&[0xff, 0xfe, 0x00]), Err(FrontmatterError::NotUtf8));
        assert!(check_command(b"---\ndescription: run it\n---\nDo it").is_ok());
    }

    /// Shapes seen in published plugins that strict YAML refuses or reads oddly, and what
    /// reaches the registry from each.
    #[test]
    fn real_world_shapes() {
        let cases: &[(&str, &str, bool)] = &[
            // One long plain scalar holding `: ` and literal `\n` sequences (common in agents).
            (
                "---\nname: reviewer\ndescription: Use this agent when: the user asks for a review.\\n\\nExamples: <example>user: check this</example>\nmodel: sonnet\n---\nBody",
                r"Use this agent when: the user asks for a review.\n\nExamples: <example>user: check this</example>",
                true,
            ),
            ("---\nname: a\ndescription: Deploys # the app\n---\n", "Deploys", false),
            (
                "---\nname: a\ndescription: @file mentions are expanded\n---\n",
                "@file mentions are expanded",
                true,
            ),
            ("---\nname: a\ndescription: `code` first\n---\n", "`code` first", true),
            (
                "---\nname: a\ndescription: >\n  Folded over\n  two lines.\n---\n",
                "Folded over two lines.",
                false,
            ),
            (
                "---\nname: a\ndescription: |\n  Line one\n  Line two\n---\n",
                "Line one\nLine two",
                false,
            ),
            (
                "---\r\nname: a\r\ndescription: Windows: line endings\r\n---\r\nbody",
                "Windows: line endings",
                true,
            ),
            ("\u{feff}---\nname: a\ndescription: after a BOM\n---\n", "after a BOM", false),
            (
                "---\nname: a\ndescription: known\nx-custom-key: {nested: [1, 2]}\n---\n",
                "known",
                false,
            ),
            ("---\nname: a\ndescription:\tTabbed in\n---\n", "Tabbed in", true),
            (
                "---\nname: a\ndescription: Tabs\tinside the value\n---\n",
                "Tabs\tinside the value",
                false,
            ),
            (
                "---\nname: \"a\"\ndescription: \"quoted: with colon\" and more\n---\n",
                "\"quoted: with colon\" and more",
                true,
            ),
        ];
        for (doc, description, lenient) in cases {
            let fm = parse(doc.as_bytes())
                .unwrap()
                .unwrap_or_else(|| panic!("no frontmatter in {doc:?}"));
            let name = if doc.contains("reviewer") { "reviewer" } else { "a" };
            assert_eq!(fm.name.as_deref(), Some(name), "{doc:?}");
            assert_eq!(fm.description.as_deref(), Some(*description), "{doc:?}");
            assert_eq!(
                fm.warnings.iter().any(|w| w.contains("not strict YAML")),
                *lenient,
                "{doc:?}: {:?}",
                fm.warnings
            );
        }
        // The fallback keeps other keys as text, so `model` and `tools` still reach the metadata.
        let fm = parse(cases[0].0.as_bytes()).unwrap().unwrap();
        assert_eq!(fm.fields["model"], "sonnet");
        assert_eq!(&cases[0].0.as_bytes()[fm.body_offset..], b"Body");
    }

    #[test]
    fn plugin_pieces_are_never_refused_for_their_frontmatter() {
        for doc in [
            "no frontmatter at all",
            "---\nname: x\nno closing line",
            "---\nname: x\n---\n",
            "---\n: : :\n---\n",
            "---\ndescription: [1, 2]\n---\n",
        ] {
            let fm = read_in_plugin(doc.as_bytes()).unwrap();
            assert_eq!(fm.description, None, "{doc:?}");
            assert!(!fm.warnings.is_empty(), "{doc:?}");
        }
        let fm = read_in_plugin(b"---\ndescription: fine\n---\n").unwrap();
        assert!(fm.warnings.is_empty(), "{:?}", fm.warnings);
        assert_eq!(read_in_plugin(b"\xff\xfe"), Err(FrontmatterError::NotUtf8));
    }
}
