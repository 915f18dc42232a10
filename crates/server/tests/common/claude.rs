//! The real Claude Code client (`SKILL_POOL_TEST_CLAUDE_BIN`, installed by scripts/test.sh),
//! each instance in its own temporary HOME, talking only to 127.0.0.1.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Claude {
    bin: PathBuf,
    home: tempfile::TempDir,
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

const TIMEOUT: Duration = Duration::from_secs(120);

impl Claude {
    /// `None` (with the reason printed) when the client is not installed; under `CI=true` a
    /// missing client fails the test instead.
    pub fn new() -> Option<Claude> {
        match std::env::var_os("SKILL_POOL_TEST_CLAUDE_BIN").filter(|v| !v.is_empty()) {
            Some(bin) => Some(Claude {
                bin: PathBuf::from(bin),
                home: tempfile::tempdir().expect("temp HOME"),
            }),
            None if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("SKILL_POOL_TEST_CLAUDE_BIN is not set under CI=true: run the tests with scripts/test.sh")
            }
            None => {
                eprintln!("skipping: SKILL_POOL_TEST_CLAUDE_BIN is not set (scripts/test.sh installs Claude Code)");
                None
            }
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs `claude <args>` with a clean environment, bounded in time.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run claude");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("wait for claude").is_some() {
                break;
            }
            if started.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!("claude {args:?} took longer than {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("claude output");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.ok, "claude {args:?} failed:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
        r.stdout
    }

    pub fn marketplace_add(&self, url: &str) -> String {
        self.ok(&["plugin", "marketplace", "add", url])
    }

    pub fn marketplace_update(&self, name: &str) -> String {
        self.ok(&["plugin", "marketplace", "update", name])
    }

    pub fn install(&self, id: &str) -> String {
        self.ok(&["plugin", "install", id])
    }

    pub fn update(&self, id: &str) -> String {
        self.ok(&["plugin", "update", id])
    }

    /// `claude plugin validate <path>`.
    pub fn validate(&self, path: &Path) -> Run {
        self.run(&["plugin", "validate", path.to_str().expect("utf-8 path")])
    }

    /// The install record of `<plugin>@<marketplace>`: (installPath, version).
    pub fn installed(&self, id: &str) -> (PathBuf, String) {
        let path = self.home.path().join(".claude/plugins/installed_plugins.json");
        let text = std::fs::read_to_string(&path).expect("installed_plugins.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("installed_plugins.json is JSON");
        let record = &v["plugins"][id][0];
        let install = record["installPath"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} is not installed: {text}"));
        (PathBuf::from(install), record["version"].as_str().unwrap_or_default().to_string())
    }
}

/// Every file under `dir`: path → (kind, executable, bytes), where kind is `file` or `link`.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (&'static str, bool, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (&'static str, bool, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read dir").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            // Claude Code's own markers and git metadata are not plugin content.
            if [".git", ".in_use", ".orphaned_at"].contains(&name.as_str()) && dir == root {
                continue;
            }
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    ("link", false, std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes().to_vec()),
                );
            } else if meta.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, ("file", meta.permissions().mode() & 0o111 != 0, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts two folders hold the same files, byte for byte, with the same executable bits.
pub fn assert_same_tree(published: &Path, installed: &Path) {
    let a = snapshot(published);
    let b = snapshot(installed);
    let only_a: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "missing after install: {only_a:?}; extra after install: {only_b:?}"
    );
    for (path, want) in &a {
        let got = &b[path];
        assert_eq!((want.0, want.1), (got.0, got.1), "{path}: kind/executable bit differ");
        assert!(want.2 == got.2, "{path}: content differs");
    }
}
