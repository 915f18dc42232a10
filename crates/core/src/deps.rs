//! Plugin dependencies as Claude Code reads them from `plugin.json` (`dependencies`, and
//! `optionalDependencies` since 2.1.331), and npm-style version ranges checked against the
//! versions a tenant serves.
//!
//! The forms are those of the 2.1.328 client's schema: a string
//! `name`, `name@marketplace`, `name@^range` or `name@marketplace@^range` (a part after `@` is
//! a range only when it starts with `^`, anything else names a marketplace), or an object
//! `{"name", "marketplace"?, "version"?}` whose `version` is any npm range.

use serde_json::Value;

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub marketplace: Option<String>,
    /// An npm range (`^1.2.0`, `>=1 <3`, `1.x || 2.x`), if one is given.
    pub range: Option<String>,
    /// As written, for messages.
    pub written: String,
    /// Written as a string (`name@^range`): Claude Code 2.1.328 drops a string's range and
    /// installs what the catalogue serves; only an object's `version` constrains.
    pub string_form: bool,
}

/// A declaration Claude Code would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin.json: `{field}[{index}]` ({written}) {problem}")]
pub struct DependencyError {
    /// `dependencies` or `optionalDependencies`.
    pub field: &'static str,
    pub index: usize,
    pub written: String,
    pub problem: String,
}

/// The two fields that declare dependencies.
pub const FIELDS: [&str; 2] = ["dependencies", "optionalDependencies"];

fn is_part(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

const FORMS: &str = "is not a dependency Claude Code reads: write \"name\", \"name@marketplace\", \"name@^1.0.0\" or {\"name\": \"…\", \"marketplace\": \"…\", \"version\": \"^1.0.0\"}";

/// Parses one field's value (`None`: the field is absent).
pub fn parse(field: &'static str, value: Option<&Value>) -> Result<Vec<Dependency>, DependencyError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let fail = |index: usize, written: String, problem: &str| DependencyError {
        field,
        index,
        written,
        problem: problem.to_string(),
    };
    let Value::Array(items) = value else {
        return Err(fail(0, value.to_string(), "must be a list of dependencies"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let dep = match item {
            Value::String(s) => parse_string(s).ok_or_else(|| fail(index, format!("\"{s}\""), FORMS))?,
            Value::Object(o) => {
                let text = |k: &str| o.get(k).and_then(Value::as_str);
                let name = text("name")
                    .filter(|n| is_part(n))
                    .ok_or_else(|| fail(index, item.to_string(), FORMS))?;
                let marketplace = match o.get("marketplace") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(m)) if is_part(m) => Some(m.clone()),
                    Some(_) => return Err(fail(index, item.to_string(), FORMS)),
                };
                let range = match o.get("version") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(r)) => Some(r.clone()),
                    Some(_) => return Err(fail(index, item.to_string(), "has a `version` that is not a string range")),
                };
                Dependency {
                    name: name.to_string(),
                    marketplace,
                    range,
                    written: item.to_string(),
                    string_form: false,
                }
            }
            other => return Err(fail(index, other.to_string(), FORMS)),
        };
        if let Some(r) = &dep.range
            && Range::parse(r).is_none()
        {
            return Err(fail(
                index,
                dep.written.clone(),
                "has a version range that is not a valid npm range",
            ));
        }
        out.push(dep);
    }
    Ok(out)
}

/// `name`, `name@marketplace`, `name@^range`, `name@marketplace@^range`.
fn parse_string(s: &str) -> Option<Dependency> {
    let (head, range) = match s.split_once("@^") {
        Some((head, rest)) if !rest.contains('@') => (head, Some(format!("^{rest}"))),
        Some(_) => return None,
        None => (s, None),
    };
    let (name, marketplace) = match head.split_once('@') {
        Some((name, m)) => (name, Some(m)),
        None => (head, None),
    };
    if !is_part(name) || marketplace.is_some_and(|m| !is_part(m)) {
        return None;
    }
    Some(Dependency {
        name: name.to_string(),
        marketplace: marketplace.map(str::to_string),
        range,
        written: format!("\"{s}\""),
        string_form: true,
    })
}

/// An npm version range: alternatives (`||`) of comparator sets, each read as a Cargo-style
/// requirement after translating npm's spellings (a bare version is exact; `1.2` is `1.2.x`;
/// `a - b` is inclusive).
#[derive(Debug, Clone)]
pub struct Range(Vec<Option<semver::VersionReq>>);

impl Range {
    pub fn parse(text: &str) -> Option<Range> {
        let mut alternatives = Vec::new();
        for alt in text.split("||") {
            let alt = alt.trim();
            if alt.is_empty() || alt == "*" || alt.eq_ignore_ascii_case("x") {
                alternatives.push(None);
                continue;
            }
            let tokens: Vec<&str> = alt.split_whitespace().collect();
            let comparators: Vec<String> = if let [low, "-", high] = tokens.as_slice() {
                vec![
                    format!(">={}", low.trim_start_matches('v')),
                    format!("<={}", high.trim_start_matches('v')),
                ]
            } else {
                // `>= 1.0.0` (operator and version apart) is one comparator.
                let mut joined: Vec<String> = Vec::new();
                let mut pending = String::new();
                for t in tokens {
                    if t.chars().all(|c| matches!(c, '<' | '>' | '=' | '^' | '~')) {
                        pending.push_str(t);
                    } else {
                        joined.push(comparator(&format!("{pending}{t}")));
                        pending.clear();
                    }
                }
                if !pending.is_empty() {
                    return None;
                }
                joined
            };
            alternatives.push(Some(semver::VersionReq::parse(&comparators.join(", ")).ok()?));
        }
        Some(Range(alternatives))
    }

    pub fn matches(&self, version: &semver::Version) -> bool {
        self.0.iter().any(|alt| alt.as_ref().is_none_or(|req| req.matches(version)))
    }
}

/// One npm comparator as the `semver` crate reads it.
fn comparator(c: &str) -> String {
    let op_len = c.find(|ch: char| !matches!(ch, '<' | '>' | '=' | '^' | '~')).unwrap_or(c.len());
    let (op, version) = c.split_at(op_len);
    let version = version.trim_start_matches(['v', 'V']);
    if !op.is_empty() {
        return format!("{op}{version}");
    }
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<&str> = core.split('.').collect();
    let wild = |p: &str| matches!(p, "x" | "X" | "*");
    if parts.len() == 3 && !parts.iter().any(|p| wild(p)) {
        // npm: a full version alone means exactly it (Cargo would read a caret).
        format!("={version}")
    } else {
        let fixed: Vec<&str> = parts.iter().copied().take_while(|p| !wild(p)).collect();
        format!("{}.*", fixed.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (name, marketplace, range) of each dependency; `Err` for a refused declaration.
    type Want<'a> = Result<Vec<(&'a str, Option<&'a str>, Option<&'a str>)>, ()>;

    fn check(input: Value, want: Want) {
        let got =
            parse("dependencies", Some(&input)).map(|deps| deps.into_iter().map(|d| (d.name, d.marketplace, d.range)).collect::<Vec<_>>());
        let want = want.map(|w| {
            w.into_iter()
                .map(|(n, m, r)| (n.to_string(), m.map(str::to_string), r.map(str::to_string)))
                .collect::<Vec<_>>()
        });
        assert_eq!(got.map_err(|_| ()), want, "{input}");
    }

    #[test]
    fn forms_the_client_reads() {
        check(json!(["hello"]), Ok(vec![("hello", None, None)]));
        check(json!(["hello@acme"]), Ok(vec![("hello", Some("acme"), None)]));
        check(json!(["hello@^1.0.0"]), Ok(vec![("hello", None, Some("^1.0.0"))]));
        check(json!(["hello@acme@^1.2"]), Ok(vec![("hello", Some("acme"), Some("^1.2"))]));
        // A part after `@` that does not start with `^` names a marketplace, even `1.0.0`.
        check(json!(["hello@1.0.0"]), Ok(vec![("hello", Some("1.0.0"), None)]));
        check(
            json!([{"name": "x", "marketplace": "m", "version": ">=1.0.0 <2"}]),
            Ok(vec![("x", Some("m"), Some(">=1.0.0 <2"))]),
        );
        check(json!([{"name": "x"}]), Ok(vec![("x", None, None)]));
        check(json!([]), Ok(vec![]));
    }

    #[test]
    fn forms_the_client_refuses() {
        for bad in [
            json!(["hello@~1.0"]),
            json!(["hello@>=1"]),
            json!(["-x"]),
            json!([""]),
            json!(["a@b@c"]),
            json!(["a@^1@b"]),
            json!([{"marketplace": "m"}]),
            json!([{"name": "a b"}]),
            json!([{"name": "x", "version": 1}]),
            json!([{"name": "x", "version": "not a range"}]),
            json!([3]),
            json!("hello"),
        ] {
            check(bad, Err(()));
        }
    }

    #[test]
    fn npm_ranges() {
        let cases = [
            ("^1.0.0", "1.4.2", true),
            ("^1.0.0", "2.0.0", false),
            ("1.0.0", "1.0.0", true),
            ("1.0.0", "1.0.1", false),
            ("1.2", "1.2.9", true),
            ("1.2", "1.3.0", false),
            ("1.x || 3.x", "3.1.0", true),
            ("1.x || 3.x", "2.1.0", false),
            (">=1.0.0 <2", "1.9.0", true),
            (">= 1.0.0 < 2", "2.0.0", false),
            ("1.0.0 - 1.5.0", "1.5.0", true),
            ("1.0.0 - 1.5.0", "1.5.1", false),
            ("*", "9.9.9", true),
            ("~1.2.0", "1.2.5", true),
            ("~1.2.0", "1.3.0", false),
        ];
        for (range, version, want) in cases {
            let r = Range::parse(range).unwrap_or_else(|| panic!("{range} parses"));
            assert_eq!(r.matches(&semver::Version::parse(version).unwrap()), want, "{range} vs {version}");
        }
        assert!(Range::parse("banana").is_none());
        assert!(Range::parse(">=").is_none());
    }
}
