//! Inline configuration of a composed plugin (hooks, MCP servers, LSP servers, monitors):
//! checked against the shapes Claude Code accepts, with errors that name the field, and
//! rendered to the files Claude Code reads.

use serde_json::{Map, Value};

use crate::api::PluginBlobs;
use crate::archive::{FileMode, UploadFile};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct BlobError {
    /// A path into the JSON, e.g. `blobs.hooks.hooks.PreToolUse[0].hooks[0].command`.
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> BlobError {
    BlobError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Hook events Claude Code 2.1.328 knows.
pub const HOOK_EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "Notification",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "SessionStart",
    "SessionEnd",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "PreModelSwitch",
    "PostModelSwitch",
    "PermissionRequest",
    "PermissionDenied",
    "Setup",
    "TeammateIdle",
    "TaskCreated",
    "TaskCompleted",
    "Elicitation",
    "ElicitationResult",
    "ConfigChange",
    "WorktreeCreate",
    "WorktreeRemove",
    "InstructionsLoaded",
    "CwdChanged",
    "FileChanged",
    "DirectoryAdded",
    "MessageDisplay",
];

fn object<'a>(field: &str, v: &'a Value) -> Result<&'a Map<String, Value>, BlobError> {
    v.as_object()
        .ok_or_else(|| err(field, format!("expected an object, got {}", type_name(v))))
}

fn array<'a>(field: &str, v: &'a Value) -> Result<&'a Vec<Value>, BlobError> {
    v.as_array()
        .ok_or_else(|| err(field, format!("expected an array, got {}", type_name(v))))
}

fn string(field: &str, v: Option<&Value>, required: bool) -> Result<(), BlobError> {
    match v {
        None if required => Err(err(field, "is required")),
        None => Ok(()),
        Some(Value::String(s)) if !required || !s.trim().is_empty() => Ok(()),
        Some(Value::String(_)) => Err(err(field, "must not be empty")),
        Some(other) => Err(err(field, format!("expected a string, got {}", type_name(other)))),
    }
}

fn string_list(field: &str, v: Option<&Value>) -> Result<(), BlobError> {
    if let Some(v) = v {
        for (i, item) in array(field, v)?.iter().enumerate() {
            string(&format!("{field}[{i}]"), Some(item), false)?;
        }
    }
    Ok(())
}

fn string_map(field: &str, v: Option<&Value>) -> Result<(), BlobError> {
    if let Some(v) = v {
        for (k, item) in object(field, v)? {
            string(&format!("{field}.{k}"), Some(item), false)?;
        }
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `hooks/hooks.json`: `{"description"?, "hooks": {<Event>: [{"matcher"?, "hooks": [{"type": "command", "command", "timeout"?}]}]}}`.
pub fn check_hooks(v: &Value) -> Result<(), BlobError> {
    let root = object("hooks", v)?;
    for key in root.keys() {
        if !matches!(key.as_str(), "description" | "hooks" | "modules") {
            return Err(err(
                &format!("hooks.{key}"),
                "unknown key: hooks.json holds `description` and `hooks` (events go inside `hooks`)",
            ));
        }
    }
    string("hooks.description", root.get("description"), false)?;
    let Some(events) = root.get("hooks") else {
        return Err(err("hooks.hooks", "is required: an object of hook events"));
    };
    for (event, matchers) in object("hooks.hooks", events)? {
        let f = format!("hooks.hooks.{event}");
        if !HOOK_EVENTS.contains(&event.as_str()) {
            return Err(err(&f, format!("unknown hook event; Claude Code knows {}", HOOK_EVENTS.join(", "))));
        }
        for (i, m) in array(&f, matchers)?.iter().enumerate() {
            let f = format!("{f}[{i}]");
            let m = object(&f, m)?;
            string(&format!("{f}.matcher"), m.get("matcher"), false)?;
            let Some(hooks) = m.get("hooks") else {
                return Err(err(&format!("{f}.hooks"), "is required: a list of hooks"));
            };
            for (j, h) in array(&format!("{f}.hooks"), hooks)?.iter().enumerate() {
                let f = format!("{f}.hooks[{j}]");
                let h = object(&f, h)?;
                let kind = h
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(&format!("{f}.type"), "is required: \"command\", \"prompt\", \"agent\" or \"http\""))?;
                match kind {
                    "command" => string(&format!("{f}.command"), h.get("command"), true)?,
                    "prompt" | "agent" => string(&format!("{f}.prompt"), h.get("prompt"), true)?,
                    "http" => string(&format!("{f}.url"), h.get("url"), true)?,
                    other => {
                        return Err(err(
                            &format!("{f}.type"),
                            format!("`{other}` is not a hook type: use \"command\", \"prompt\", \"agent\" or \"http\""),
                        ));
                    }
                }
                if let Some(t) = h.get("timeout")
                    && !t.as_f64().is_some_and(|t| t > 0.0)
                {
                    return Err(err(&format!("{f}.timeout"), "must be a positive number of seconds"));
                }
            }
        }
    }
    Ok(())
}

/// The `.mcp.json` document for `v`: taken as is when it has `mcpServers`, else `v` is read as
/// the map of servers itself and wrapped.
pub fn mcp_document(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.contains_key("mcpServers") => v.clone(),
        other => serde_json::json!({ "mcpServers": other }),
    }
}

/// `.mcp.json`: `{"mcpServers": {<name>: {"command", "args"?, "env"?} | {"type": "http"|"sse"|"ws", "url", "headers"?}}}`;
/// the bare map of servers is accepted too (see [`mcp_document`]).
pub fn check_mcp_servers(v: &Value) -> Result<(), BlobError> {
    let doc = mcp_document(v);
    let root = object("mcp_servers", &doc)?;
    let Some(servers) = root.get("mcpServers") else {
        return Err(err(
            "mcp_servers.mcpServers",
            "is required: .mcp.json is {\"mcpServers\": {\"<name>\": {…}}}",
        ));
    };
    if let Some(key) = root.keys().find(|k| *k != "mcpServers") {
        return Err(err(&format!("mcp_servers.{key}"), "unknown key: servers go inside `mcpServers`"));
    }
    for (name, server) in object("mcp_servers.mcpServers", servers)? {
        let f = format!("mcp_servers.mcpServers.{name}");
        let s = object(&f, server)?;
        match s.get("type").and_then(Value::as_str) {
            None | Some("stdio") => {
                string(&format!("{f}.command"), s.get("command"), true)?;
                string_list(&format!("{f}.args"), s.get("args"))?;
                string_map(&format!("{f}.env"), s.get("env"))?;
            }
            Some("http" | "sse" | "ws") => {
                string(&format!("{f}.url"), s.get("url"), true)?;
                string_map(&format!("{f}.headers"), s.get("headers"))?;
            }
            Some(other) => {
                return Err(err(
                    &format!("{f}.type"),
                    format!("`{other}` is not a server type: use stdio, http, sse or ws"),
                ));
            }
        }
        if s.get("type").is_some_and(|t| !t.is_string()) {
            return Err(err(&format!("{f}.type"), "expected a string"));
        }
    }
    Ok(())
}

/// `.lsp.json`: `{<name>: {"command", "extensionToLanguage": {".rs": "rust"}, "args"?, "transport"?, "env"?}}`.
pub fn check_lsp_servers(v: &Value) -> Result<(), BlobError> {
    for (name, server) in object("lsp_servers", v)? {
        let f = format!("lsp_servers.{name}");
        let s = object(&f, server)?;
        string(&format!("{f}.command"), s.get("command"), true)?;
        string_list(&format!("{f}.args"), s.get("args"))?;
        string_map(&format!("{f}.env"), s.get("env"))?;
        let Some(map) = s.get("extensionToLanguage") else {
            return Err(err(&format!("{f}.extensionToLanguage"), "is required, e.g. {\".rs\": \"rust\"}"));
        };
        string_map(&format!("{f}.extensionToLanguage"), Some(map))?;
        if let Some(t) = s.get("transport")
            && !matches!(t.as_str(), Some("stdio" | "socket"))
        {
            return Err(err(&format!("{f}.transport"), "must be \"stdio\" or \"socket\""));
        }
    }
    Ok(())
}

/// `monitors/monitors.json`: `[{"name", "command", "description", "when"?}]`.
pub fn check_monitors(v: &Value) -> Result<(), BlobError> {
    for (i, m) in array("monitors", v)?.iter().enumerate() {
        let f = format!("monitors[{i}]");
        let m = object(&f, m)?;
        for key in ["name", "command", "description"] {
            string(&format!("{f}.{key}"), m.get(key), true)?;
        }
        if let Some(w) = m.get("when") {
            match w.as_str() {
                Some("always") => {}
                Some(s) if s.strip_prefix("on-skill-invoke:").is_some_and(|k| !k.is_empty()) => {}
                _ => return Err(err(&format!("{f}.when"), "must be \"always\" or \"on-skill-invoke:<skill>\"")),
            }
        }
    }
    Ok(())
}

fn render(path: &str, v: &Value) -> UploadFile {
    let mut data = serde_json::to_vec_pretty(v).unwrap_or_default();
    data.push(b'\n');
    UploadFile {
        path: path.to_string(),
        mode: FileMode::Regular,
        data,
    }
}

/// Checks every blob and renders the files a composed plugin carries.
pub fn render_blob_files(blobs: &PluginBlobs) -> Result<Vec<UploadFile>, BlobError> {
    let mut files = Vec::new();
    if let Some(h) = &blobs.hooks {
        check_hooks(h)?;
        files.push(render("hooks/hooks.json", h));
    }
    if let Some(m) = &blobs.mcp_servers {
        check_mcp_servers(m)?;
        files.push(render(".mcp.json", &mcp_document(m)));
    }
    if let Some(l) = &blobs.lsp_servers {
        check_lsp_servers(l)?;
        files.push(render(".lsp.json", l));
    }
    if let Some(m) = &blobs.monitors {
        check_monitors(m)?;
        files.push(render("monitors/monitors.json", m));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hooks() {
        let ok = json!({"hooks": {"PostToolUse": [{"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/hooks/fmt.sh", "timeout": 30}]}]}});
        check_hooks(&ok).unwrap();
        let e = check_hooks(&json!({"hooks": {"PostToolUse": [{"hooks": [{"type": "command"}]}]}})).unwrap_err();
        assert_eq!(e.field, "hooks.hooks.PostToolUse[0].hooks[0].command");
        let e = check_hooks(&json!({"hooks": {"OnSave": []}})).unwrap_err();
        assert_eq!(e.field, "hooks.hooks.OnSave");
        assert!(check_hooks(&json!({"PostToolUse": []})).is_err());
    }

    #[test]
    fn mcp_lsp_monitors() {
        check_mcp_servers(&json!({"mcpServers": {"db": {"command": "npx", "args": ["-y", "x"], "env": {"A": "b"}}, "web": {"type": "http", "url": "https://x"}}})).unwrap();
        assert_eq!(
            check_mcp_servers(&json!({"mcpServers": {"db": {"args": []}}})).unwrap_err().field,
            "mcp_servers.mcpServers.db.command"
        );
        assert_eq!(
            check_mcp_servers(&json!({"mcpServers": {"db": {"command": "x", "args": "y"}}}))
                .unwrap_err()
                .field,
            "mcp_servers.mcpServers.db.args"
        );
        check_lsp_servers(&json!({"rust": {"command": "rust-analyzer", "extensionToLanguage": {".rs": "rust"}}})).unwrap();
        assert_eq!(
            check_lsp_servers(&json!({"rust": {"command": "ra"}})).unwrap_err().field,
            "lsp_servers.rust.extensionToLanguage"
        );
        check_monitors(&json!([{"name": "m", "command": "tail -f x", "description": "d", "when": "always"}])).unwrap();
        assert_eq!(
            check_monitors(&json!([{"name": "m", "command": "c", "description": "d", "when": "sometimes"}]))
                .unwrap_err()
                .field,
            "monitors[0].when"
        );
    }

    #[test]
    fn renders_files() {
        let blobs = PluginBlobs {
            mcp_servers: Some(json!({"mcpServers": {"x": {"command": "echo"}}})),
            ..Default::default()
        };
        let files = render_blob_files(&blobs).unwrap();
        assert_eq!(files[0].path, ".mcp.json");
        let bare = PluginBlobs {
            mcp_servers: Some(json!({"x": {"command": "echo"}})),
            ..Default::default()
        };
        assert_eq!(render_blob_files(&bare).unwrap(), files, "a bare server map is wrapped");
    }
}
