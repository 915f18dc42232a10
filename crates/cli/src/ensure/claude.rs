//! Running Claude Code's own CLI (`claude plugin …`) for the plugins of a manifest, so that
//! plugins are installed by the client itself, hooks and MCP servers included. This is the one
//! place outside `crates/git` that runs a program (see clippy.toml): bounded in time, its
//! output captured, and a death by signal reported as such (it often prints nothing). `setup
//! claude` also runs the user's own `git config --global` through it (crates/git's runner
//! deliberately ignores the user's configuration).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// How a run of `claude` ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// Could not be started.
    Spawn(String),
    /// Ran longer than allowed and was killed.
    Timeout(Duration),
    /// Killed by signal `n` (directly, or a shell reporting 128+n).
    Signal { signal: i32, output: String },
    /// Exited with a non-zero status.
    Failed { code: i32, output: String },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "could not start: {e}"),
            RunError::Timeout(d) => write!(f, "did not finish within {} s and was stopped", d.as_secs()),
            RunError::Signal { signal, output } => {
                let name = match signal {
                    9 => " (SIGKILL: often the out-of-memory killer or a memory limit)",
                    15 => " (SIGTERM)",
                    6 => " (SIGABRT)",
                    11 => " (SIGSEGV)",
                    _ => "",
                };
                write!(f, "was killed by signal {signal}{name}")?;
                if output.trim().is_empty() {
                    write!(f, " before printing anything")
                } else {
                    write!(f, ": {}", last_lines(output))
                }
            }
            RunError::Failed { code, output } => {
                write!(f, "exited with status {code}")?;
                if !output.trim().is_empty() {
                    write!(f, ": {}", last_lines(output))?;
                }
                Ok(())
            }
        }
    }
}

fn last_lines(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// The `claude` on `PATH`, if any.
pub fn find_on_path() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("claude"))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Runs `claude <args>` in `cwd`, killing it after `limit`.
pub async fn run(bin: &Path, args: &[&str], cwd: &Path, limit: Duration) -> Result<String, RunError> {
    use std::os::unix::process::ExitStatusExt;
    #[allow(clippy::disallowed_methods)] // Claude Code's CLI installs plugins: see the module comment
    let mut command = tokio::process::Command::new(bin);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| RunError::Spawn(format!("{}: {e}", bin.display())))?;
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => return Err(RunError::Timeout(limit)),
        Ok(Err(e)) => return Err(RunError::Spawn(e.to_string())),
        Ok(Ok(out)) => out,
    };
    let mut output = String::from_utf8_lossy(&out.stdout).to_string();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        return Ok(output);
    }
    if let Some(signal) = out.status.signal() {
        return Err(RunError::Signal { signal, output });
    }
    match out.status.code() {
        // What a shell reports for a child it lost to a signal.
        Some(code) if (129..=159).contains(&code) => Err(RunError::Signal {
            signal: code - 128,
            output,
        }),
        Some(code) => Err(RunError::Failed { code, output }),
        None => Err(RunError::Failed { code: -1, output }),
    }
}

/// Claude Code's own folder: `CLAUDE_CONFIG_DIR`, else `~/.claude`.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    Some(PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".claude"))
}

/// The version of plugin `id` that Claude Code has installed for `project` (project scope) or
/// for the user, read from `plugins/installed_plugins.json` (a local file: no network).
pub fn installed_version(config: &Path, id: &str, project: Option<&Path>) -> Option<String> {
    let text = std::fs::read(config.join("plugins").join("installed_plugins.json")).ok()?;
    let doc: Value = serde_json::from_slice(&text).ok()?;
    let entries = doc.get("plugins")?.get(id)?.as_array()?;
    let project = project.map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    entries.iter().find_map(|e| {
        let scope = e.get("scope")?.as_str()?;
        let matches = match &project {
            Some(root) => {
                scope == "project"
                    && e.get("projectPath")
                        .and_then(Value::as_str)
                        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)))
                        .is_some_and(|p| &p == root)
            }
            None => scope == "user",
        };
        matches.then(|| e.get("version")?.as_str().map(str::to_string))?
    })
}

/// True when Claude Code knows the marketplace `name` (in `plugins/known_marketplaces.json`).
pub fn knows_marketplace(config: &Path, name: &str) -> bool {
    std::fs::read(config.join("plugins").join("known_marketplaces.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
        .is_some_and(|doc| doc.get(name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_versions_by_scope() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("proj");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(tmp.path().join("plugins")).unwrap();
        let doc = serde_json::json!({"version": 2, "plugins": {"p@m": [
            {"scope": "user", "version": "1.0.0"},
            {"scope": "project", "projectPath": project, "version": "2.0.0"}
        ]}});
        std::fs::write(tmp.path().join("plugins/installed_plugins.json"), doc.to_string()).unwrap();
        assert_eq!(installed_version(tmp.path(), "p@m", Some(&project)).as_deref(), Some("2.0.0"));
        assert_eq!(installed_version(tmp.path(), "p@m", None).as_deref(), Some("1.0.0"));
        assert_eq!(installed_version(tmp.path(), "q@m", None), None);
        assert_eq!(installed_version(tmp.path(), "p@m", Some(tmp.path())), None);
    }

    #[test]
    fn signals_are_named_even_without_output() {
        let e = RunError::Signal {
            signal: 9,
            output: String::new(),
        };
        assert!(e.to_string().contains("killed by signal 9"), "{e}");
        assert!(e.to_string().contains("before printing anything"), "{e}");
    }
}
