//! Edits of Claude Code's `settings.json` that keep everything else: other keys, their order,
//! comments, indentation and line endings (a concrete syntax tree, `jsonc-parser`'s CST). A
//! value that is in the way (an entry of the same name with another meaning) is an error,
//! never overwritten.

use std::path::{Path, PathBuf};

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not valid JSON ({message}): fix it, skill-pool does not overwrite it")]
    Invalid { path: String, message: String },
    #[error("{path}: {message}")]
    InTheWay { path: String, message: String },
}

/// What happened to one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    AlreadyThere,
    /// The user set it otherwise on purpose (e.g. a plugin disabled with `false`); left alone.
    KeptUsers,
}

pub struct Settings {
    path: PathBuf,
    original: Option<String>,
    root: CstRootNode,
}

fn to_input(v: &Value) -> CstInputValue {
    match v {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(a) => CstInputValue::Array(a.iter().map(to_input).collect()),
        Value::Object(o) => CstInputValue::Object(o.iter().map(|(k, v)| (k.clone(), to_input(v))).collect()),
    }
}

impl Settings {
    /// Reads the file; a missing file is an empty object (written only if something is added).
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let original = match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Self::parse(path, original)
    }

    fn parse(path: &Path, original: Option<String>) -> Result<Settings, SettingsError> {
        let text = match original.as_deref() {
            Some(t) if !t.trim().is_empty() => t.to_string(),
            _ => "{\n}\n".to_string(),
        };
        let root = CstRootNode::parse(&text, &ParseOptions::default()).map_err(|e| SettingsError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if root.value().is_some() && root.object_value().is_none() {
            return Err(SettingsError::Invalid {
                path: path.display().to_string(),
                message: "the top level is not an object".into(),
            });
        }
        Ok(Settings {
            path: path.to_path_buf(),
            original,
            root,
        })
    }

    #[cfg(test)]
    fn from_text(text: &str) -> Result<Settings, SettingsError> {
        Self::parse(Path::new("settings.json"), Some(text.to_string()))
    }

    fn in_the_way(&self, message: String) -> SettingsError {
        SettingsError::InTheWay {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// The object under `key` of `parent`, created if missing; an error if it is something else.
    fn object_under(&self, parent: &CstObject, key: &str, what: &str) -> Result<CstObject, SettingsError> {
        parent
            .object_value_or_create(key)
            .ok_or_else(|| self.in_the_way(format!("`{what}` is not an object; fix it by hand")))
    }

    fn top(&self) -> CstObject {
        self.root.object_value_or_set()
    }

    fn value_of(obj: &CstObject, key: &str) -> Option<Value> {
        obj.get(key)?.value()?.to_serde_value()
    }

    /// Declares the marketplace `name` as a URL marketplace at `url` in
    /// `extraKnownMarketplaces`. The same name with another source is an error.
    pub fn declare_marketplace(&self, name: &str, url: &str) -> Result<Change, SettingsError> {
        let markets = self.object_under(&self.top(), "extraKnownMarketplaces", "extraKnownMarketplaces")?;
        if let Some(existing) = Self::value_of(&markets, name) {
            let source = existing.get("source");
            let same = source.and_then(|s| s.get("source")).and_then(Value::as_str) == Some("url")
                && source
                    .and_then(|s| s.get("url"))
                    .and_then(Value::as_str)
                    .map(|u| u.trim_end_matches('/'))
                    == Some(url.trim_end_matches('/'));
            return if same {
                Ok(Change::AlreadyThere)
            } else {
                Err(self.in_the_way(format!(
                    "extraKnownMarketplaces declares `{name}` with another source ({}); remove that entry or point the manifest at it",
                    source.map(Value::to_string).unwrap_or_else(|| "none".into())
                )))
            };
        }
        markets.append(name, to_input(&serde_json::json!({ "source": { "source": "url", "url": url } })));
        Ok(Change::Added)
    }

    /// Declares the marketplace `name` with exactly this `source` object (a URL source with
    /// `headersHelper` or `headers`, say). An entry of the same name for the same URL gets the
    /// new source (its other keys, e.g. `autoUpdate`, are kept); one for another URL is an
    /// error, never overwritten.
    pub fn declare_marketplace_source(&self, name: &str, source: &Value) -> Result<Change, SettingsError> {
        let url = source.get("url").and_then(Value::as_str).unwrap_or_default();
        let markets = self.object_under(&self.top(), "extraKnownMarketplaces", "extraKnownMarketplaces")?;
        let Some(entry) = markets.get(name) else {
            markets.append(name, to_input(&serde_json::json!({ "source": source })));
            return Ok(Change::Added);
        };
        let existing = entry.value().and_then(|v| v.to_serde_value()).unwrap_or(Value::Null);
        let old = existing.get("source");
        let old_url = old.and_then(|s| s.get("url")).and_then(Value::as_str);
        if old_url.map(|u| u.trim_end_matches('/')) != Some(url.trim_end_matches('/')) {
            return Err(self.in_the_way(format!(
                "extraKnownMarketplaces declares `{name}` with another source ({}); remove that entry first",
                old.map(Value::to_string).unwrap_or_else(|| "none".into())
            )));
        }
        if old == Some(source) {
            return Ok(Change::AlreadyThere);
        }
        let obj = entry
            .value()
            .and_then(|v| v.as_object())
            .ok_or_else(|| self.in_the_way(format!("extraKnownMarketplaces.`{name}` is not an object; fix it by hand")))?;
        match obj.get("source") {
            Some(prop) => prop.set_value(to_input(source)),
            None => {
                obj.append("source", to_input(source));
            }
        }
        Ok(Change::Added)
    }

    /// Merges a managed-settings fragment (`skill-pool managed-settings`) into this file, keeping
    /// every other key: its marketplaces replace entries of the same name, its allow-list entries
    /// are added to `strictKnownMarketplaces`, its plugins are enabled, and plugins of its
    /// marketplaces that it no longer enables are removed from `enabledPlugins`. Returns one line
    /// per change.
    pub fn merge_managed(&self, fragment: &Value) -> Result<Vec<String>, SettingsError> {
        let mut changes = Vec::new();
        let top = self.top();
        let mut marketplaces = Vec::new();
        if let Some(Value::Object(extra)) = fragment.get("extraKnownMarketplaces") {
            let markets = self.object_under(&top, "extraKnownMarketplaces", "extraKnownMarketplaces")?;
            for (name, entry) in extra {
                marketplaces.push(name.clone());
                match markets.get(name) {
                    None => {
                        markets.append(name, to_input(entry));
                        changes.push(format!("extraKnownMarketplaces.{name}: added"));
                    }
                    Some(prop) if prop.value().and_then(|v| v.to_serde_value()).as_ref() == Some(entry) => {}
                    Some(prop) => {
                        prop.set_value(to_input(entry));
                        changes.push(format!("extraKnownMarketplaces.{name}: replaced"));
                    }
                }
            }
        }
        if let Some(Value::Array(allow)) = fragment.get("strictKnownMarketplaces") {
            let list = top
                .array_value_or_create("strictKnownMarketplaces")
                .ok_or_else(|| self.in_the_way("`strictKnownMarketplaces` is not an array; fix it by hand".into()))?;
            let present: Vec<Value> = list.elements().iter().filter_map(|e| e.to_serde_value()).collect();
            for entry in allow {
                if !present.contains(entry) {
                    list.append(to_input(entry));
                    changes.push(format!("strictKnownMarketplaces: allowed {entry}"));
                }
            }
        }
        if let Some(Value::Object(plugins)) = fragment.get("enabledPlugins") {
            let enabled = self.object_under(&top, "enabledPlugins", "enabledPlugins")?;
            for prop in enabled.properties() {
                let Some(id) = prop.name().and_then(|n| n.decoded_value().ok()) else {
                    continue;
                };
                let ours = id.rsplit_once('@').is_some_and(|(_, m)| marketplaces.iter().any(|n| n == m));
                if ours && !plugins.contains_key(&id) {
                    prop.remove();
                    changes.push(format!("enabledPlugins.{id}: removed (no longer required)"));
                }
            }
            for (id, value) in plugins {
                match enabled.get(id) {
                    None => {
                        enabled.append(id, to_input(value));
                        changes.push(format!("enabledPlugins.{id}: enabled"));
                    }
                    Some(prop) if prop.value().and_then(|v| v.to_serde_value()).as_ref() == Some(value) => {}
                    Some(prop) => {
                        prop.set_value(to_input(value));
                        changes.push(format!("enabledPlugins.{id}: enabled"));
                    }
                }
            }
        }
        Ok(changes)
    }

    pub fn has_marketplace(&self, name: &str, url: &str) -> bool {
        self.top()
            .object_value("extraKnownMarketplaces")
            .and_then(|m| Self::value_of(&m, name))
            .and_then(|v| {
                v.get("source")?
                    .get("url")?
                    .as_str()
                    .map(|u| u.trim_end_matches('/') == url.trim_end_matches('/'))
            })
            .unwrap_or(false)
    }

    /// Sets `enabledPlugins[id] = true`, unless the user set it to `false`.
    pub fn enable_plugin(&self, id: &str) -> Result<Change, SettingsError> {
        let enabled = self.object_under(&self.top(), "enabledPlugins", "enabledPlugins")?;
        match Self::value_of(&enabled, id) {
            Some(Value::Bool(true)) => Ok(Change::AlreadyThere),
            Some(Value::Bool(false)) => Ok(Change::KeptUsers),
            Some(other) => Err(self.in_the_way(format!("enabledPlugins.`{id}` is {other}, not true or false"))),
            None => {
                enabled.append(id, CstInputValue::Bool(true));
                Ok(Change::Added)
            }
        }
    }

    /// `Some(true|false)` as `enabledPlugins[id]` says, `None` when absent.
    pub fn plugin_enabled(&self, id: &str) -> Option<bool> {
        Self::value_of(&self.top().object_value("enabledPlugins")?, id)?.as_bool()
    }

    /// Removes `enabledPlugins[id]` if it is `true` (what `ensure` wrote).
    pub fn forget_plugin(&self, id: &str) -> bool {
        let Some(enabled) = self.top().object_value("enabledPlugins") else {
            return false;
        };
        match enabled.get(id) {
            Some(prop) if prop.value().and_then(|v| v.to_serde_value()) == Some(Value::Bool(true)) => {
                prop.remove();
                true
            }
            _ => false,
        }
    }

    /// Adds a `SessionStart` hook running `command`, unless a hook already runs a command
    /// containing `marker`.
    pub fn add_session_start_hook(&self, command: &str, marker: &str, timeout_secs: u64) -> Result<Change, SettingsError> {
        let hooks = self.object_under(&self.top(), "hooks", "hooks")?;
        if let Some(existing) = Self::value_of(&hooks, "SessionStart") {
            let Some(groups) = existing.as_array() else {
                return Err(self.in_the_way("`hooks.SessionStart` is not an array; fix it by hand".into()));
            };
            let present = groups.iter().any(|g| {
                g.get("hooks").and_then(Value::as_array).is_some_and(|hs| {
                    hs.iter()
                        .any(|h| h.get("command").and_then(Value::as_str).is_some_and(|c| c.contains(marker)))
                })
            });
            if present {
                return Ok(Change::AlreadyThere);
            }
        }
        let list = hooks
            .array_value_or_create("SessionStart")
            .ok_or_else(|| self.in_the_way("`hooks.SessionStart` is not an array; fix it by hand".into()))?;
        list.append(to_input(&serde_json::json!({
            "hooks": [{ "type": "command", "command": command, "timeout": timeout_secs }]
        })));
        Ok(Change::Added)
    }

    /// The text as it would be written.
    pub fn text(&self) -> String {
        let mut text = self.root.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// True when the text differs from what was read.
    pub fn changed(&self) -> bool {
        match &self.original {
            Some(o) => *o != self.text() && o.trim_end() != self.text().trim_end(),
            None => self.root.object_value().is_some_and(|o| !o.properties().is_empty()),
        }
    }

    /// Writes the file if it changed (atomically; folders created). Returns whether it wrote.
    pub fn save(&self) -> std::io::Result<bool> {
        self.save_with_mode(None)
    }

    /// As [`Settings::save`], readable by its owner only (it holds a token).
    pub fn save_private(&self) -> std::io::Result<bool> {
        self.save_with_mode(Some(0o600))
    }

    fn save_with_mode(&self, mode: Option<u32>) -> std::io::Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        if !self.changed() {
            if let Some(mode) = mode
                && self.path.exists()
            {
                std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))?;
            }
            return Ok(false);
        }
        let dir = self.path.parent().expect("settings.json has a folder");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(".settings.json.skill-pool-tmp");
        std::fs::write(&tmp, self.text())?;
        if let Some(mode) = mode {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        } else if let Ok(meta) = std::fs::metadata(&self.path) {
            // Keep the mode the user gave the file.
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, &self.path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real-world shapes of settings files: each keeps every byte outside what was added.
    #[test]
    fn merges_keep_the_rest_of_the_file() {
        let cases = [
            // empty object, one line
            "{}",
            // two-space indentation with permissions and env
            "{\n  \"permissions\": {\n    \"allow\": [\"Bash(npm run test:*)\"],\n    \"deny\": [\"Read(./.env)\"]\n  },\n  \"env\": { \"FOO\": \"1\" }\n}\n",
            // four-space indentation, existing enabledPlugins and marketplaces
            "{\n    \"enabledPlugins\": {\n        \"other@elsewhere\": true\n    },\n    \"extraKnownMarketplaces\": {\n        \"elsewhere\": { \"source\": { \"source\": \"github\", \"repo\": \"o/r\" } }\n    },\n    \"model\": \"opus\"\n}\n",
            // tabs and a comment
            "{\n\t// team defaults\n\t\"includeCoAuthoredBy\": false,\n\t\"hooks\": {\n\t\t\"PostToolUse\": [ { \"matcher\": \"Edit\", \"hooks\": [ { \"type\": \"command\", \"command\": \"fmt\" } ] } ]\n\t}\n}\n",
        ];
        for original in cases {
            let s = Settings::from_text(original).unwrap();
            assert_eq!(s.declare_marketplace("acme", "http://h/t/acme").unwrap(), Change::Added);
            assert_eq!(s.enable_plugin("p@acme").unwrap(), Change::Added);
            assert_eq!(
                s.add_session_start_hook("skill-pool ensure --hook", "skill-pool ensure", 30)
                    .unwrap(),
                Change::Added
            );
            let text = s.text();
            let value: Value = CstRootNode::parse(&text, &ParseOptions::default())
                .unwrap_or_else(|e| panic!("{e}: {text}"))
                .to_serde_value()
                .unwrap();
            let before: Value = CstRootNode::parse(original, &ParseOptions::default())
                .unwrap()
                .to_serde_value()
                .unwrap();
            for (k, v) in before.as_object().unwrap() {
                match k.as_str() {
                    "enabledPlugins" | "extraKnownMarketplaces" | "hooks" => {
                        for (ik, iv) in v.as_object().unwrap() {
                            assert_eq!(&value[k][ik], iv, "{k}.{ik} kept in {text}");
                        }
                    }
                    _ => assert_eq!(&value[k], v, "{k} kept in {text}"),
                }
            }
            assert_eq!(value["enabledPlugins"]["p@acme"], Value::Bool(true));
            assert_eq!(value["extraKnownMarketplaces"]["acme"]["source"]["url"], "http://h/t/acme");
            assert_eq!(value["hooks"]["SessionStart"][0]["hooks"][0]["command"], "skill-pool ensure --hook");
            if original.contains("// team defaults") {
                assert!(text.contains("// team defaults"), "comments kept: {text}");
                assert!(text.contains("\n\t\"includeCoAuthoredBy\""), "tabs kept: {text}");
            }
            if original.contains("        \"other@elsewhere\"") {
                assert!(text.contains("        \"p@acme\": true"), "indentation followed: {text}");
            }
            // A second pass changes nothing.
            let again = Settings::from_text(&text).unwrap();
            assert_eq!(again.declare_marketplace("acme", "http://h/t/acme/").unwrap(), Change::AlreadyThere);
            assert_eq!(again.enable_plugin("p@acme").unwrap(), Change::AlreadyThere);
            assert_eq!(
                again
                    .add_session_start_hook("skill-pool ensure --hook", "skill-pool ensure", 30)
                    .unwrap(),
                Change::AlreadyThere
            );
            assert!(!again.changed(), "{}", again.text());
        }
    }

    #[test]
    fn never_clobbers() {
        let s = Settings::from_text("{\"extraKnownMarketplaces\": {\"acme\": {\"source\": {\"source\": \"github\", \"repo\": \"x/y\"}}}}")
            .unwrap();
        assert!(matches!(
            s.declare_marketplace("acme", "http://h/t/acme"),
            Err(SettingsError::InTheWay { .. })
        ));
        let s = Settings::from_text("{\"enabledPlugins\": {\"p@acme\": false}}").unwrap();
        assert_eq!(s.enable_plugin("p@acme").unwrap(), Change::KeptUsers);
        assert!(!s.forget_plugin("p@acme"), "a user's false stays");
        assert!(!s.changed());
        let s = Settings::from_text("{\"enabledPlugins\": [\"p\"]}").unwrap();
        assert!(matches!(s.enable_plugin("p@acme"), Err(SettingsError::InTheWay { .. })));
        assert!(matches!(Settings::from_text("{\"a\": "), Err(SettingsError::Invalid { .. })));
        assert!(matches!(Settings::from_text("[1]"), Err(SettingsError::Invalid { .. })));
        let s = Settings::from_text("{\"enabledPlugins\": {\"p@acme\": true, \"q@acme\": true}}").unwrap();
        assert!(s.forget_plugin("p@acme"));
        let v: Value = serde_json::from_str(&s.text()).unwrap();
        assert_eq!(v["enabledPlugins"], serde_json::json!({"q@acme": true}));
    }
}
