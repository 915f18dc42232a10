//! The real Claude Code client (`SKILL_POOL_TEST_CLAUDE_BIN`, installed by scripts/test.sh),
//! each instance in its own temporary HOME, talking only to 127.0.0.1.
//!
//! Every command runs with a cleared environment: `PATH` (node and git), the temporary `HOME`,
//! and the switches that keep the client off the network (no auto-update, telemetry, error
//! reporting or other non-essential traffic), and proxy variables pointing at a closed port for
//! everything but loopback, so the only server the client can reach is the test server.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Claude {
    bin: PathBuf,
    home: tempfile::TempDir,
    /// More environment for every command (e.g. `NODE_EXTRA_CA_CERTS`), and folders put
    /// before `PATH`.
    env: Vec<(String, String)>,
    path_prefix: Vec<PathBuf>,
}

/// What one `claude …` command did.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Per command; the client's own git clone timeout is 120 s too.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The environment the client gets besides `PATH` and `HOME`.
const OFFLINE_ENV: &[(&str, &str)] = &[
    ("DISABLE_AUTOUPDATER", "1"),
    ("DISABLE_TELEMETRY", "1"),
    ("DISABLE_ERROR_REPORTING", "1"),
    ("DISABLE_BUG_COMMAND", "1"),
    ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    // Anything not on loopback goes to a proxy that is not there, so it fails at once instead
    // of reaching the internet (node and git both honour these).
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    // skill-pool.test: the host name of the https tests (scripts/test-ca.sh maps it to 127.0.0.1).
    ("NO_PROXY", "127.0.0.1,localhost,skill-pool.test,.skill-pool.test"),
    ("no_proxy", "127.0.0.1,localhost,skill-pool.test,.skill-pool.test"),
    // Never wait for a person: git must not prompt for credentials.
    ("GIT_TERMINAL_PROMPT", "0"),
    ("NO_COLOR", "1"),
    ("LANG", "C.UTF-8"),
];

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl Claude {
    /// `None` (with the reason printed) when the client is not installed; under `CI=true` a
    /// missing client fails the test instead.
    pub fn new() -> Option<Claude> {
        match std::env::var_os("SKILL_POOL_TEST_CLAUDE_BIN").filter(|v| !v.is_empty()) {
            Some(bin) => {
                let bin = PathBuf::from(bin);
                assert!(
                    bin.exists(),
                    "SKILL_POOL_TEST_CLAUDE_BIN={} does not exist (scripts/test.sh installs Claude Code)",
                    bin.display()
                );
                Some(Claude {
                    bin,
                    home: tempfile::Builder::new().prefix("claude-home-").tempdir().expect("temp HOME"),
                    env: Vec::new(),
                    path_prefix: Vec::new(),
                })
            }
            None if ci() => {
                panic!(
                    "SKILL_POOL_TEST_CLAUDE_BIN is not set under CI=true: run the tests with scripts/test.sh, which installs Claude Code"
                )
            }
            None => {
                eprintln!("skipping: SKILL_POOL_TEST_CLAUDE_BIN not set (scripts/test.sh installs Claude Code)");
                None
            }
        }
    }

    /// Sets a variable for every later command.
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
    }

    /// Makes `claude -p …` a headless session start: the model endpoint is dead (only the
    /// start-up work matters: adding declared marketplaces, fetching managed plugins), nothing is
    /// retried, and the session waits for its plugin work instead of ending before it
    /// (measured on 2.1.328: without `CLAUDE_CODE_SYNC_PLUGIN_INSTALL` it runs in the background).
    pub fn for_headless_sessions(&mut self) {
        self.set_env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9");
        self.set_env("ANTHROPIC_API_KEY", "sk-ant-test-dummy");
        self.set_env("CLAUDE_CODE_MAX_RETRIES", "0");
        self.set_env("CLAUDE_CODE_SYNC_PLUGIN_INSTALL", "1");
    }

    /// Puts `dir` before `PATH` for every later command (e.g. where `skill-pool` is).
    pub fn prepend_path(&mut self, dir: &Path) {
        self.path_prefix.push(dir.to_path_buf());
    }

    /// The `PATH` commands get.
    pub fn path_var(&self) -> std::ffi::OsString {
        let base = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = self.path_prefix.clone();
        dirs.extend(std::env::split_paths(&base));
        std::env::join_paths(dirs).unwrap_or(base)
    }

    /// The client's temporary HOME; its state is under `<home>/.claude`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `<home>/.claude/plugins`.
    pub fn plugins_dir(&self) -> PathBuf {
        self.home.path().join(".claude/plugins")
    }

    /// Runs `claude <args>` with a clean environment, bounded in time. Never panics on the
    /// command's failure; see [`Claude::ok`].
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", self.path_var())
            .env("HOME", self.home.path())
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout also stops the git processes it started.
            .process_group(0);
        for (k, v) in OFFLINE_ENV {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // Not while another test (of any process on this machine) has its managed settings in
        // /etc/claude-code, which this client would read too.
        let _shared = managed_settings_lock(false);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        // Drain both pipes while waiting, so a chatty command cannot block on a full pipe.
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for claude") {
                break status;
            }
            if started.elapsed() > TIMEOUT {
                // The negative id names the group this command (and only it) runs in.
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "claude {args:?} took longer than {TIMEOUT:?}\nstdout: {}\nstderr: {}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run {
            ok: status.success(),
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            r.ok,
            "claude {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            r.status, r.stdout, r.stderr
        );
        r.stdout
    }

    /// `claude plugin marketplace add <url>`.
    pub fn marketplace_add(&self, url: &str) -> String {
        self.ok(&["plugin", "marketplace", "add", url])
    }

    /// `claude plugin marketplace update <name>`.
    pub fn marketplace_update(&self, name: &str) -> String {
        self.ok(&["plugin", "marketplace", "update", name])
    }

    /// `claude plugin install <plugin>@<marketplace>`.
    pub fn install(&self, id: &str) -> String {
        self.ok(&["plugin", "install", id])
    }

    /// `claude plugin update <plugin>@<marketplace>`.
    pub fn update(&self, id: &str) -> String {
        self.ok(&["plugin", "update", id])
    }

    /// `claude plugin validate <path>` (a marketplace.json or a plugin folder).
    pub fn validate(&self, path: &Path) -> Run {
        self.run(&["plugin", "validate", path.to_str().expect("utf-8 path")])
    }

    /// `claude plugin validate <path> --json`: every error the client's validator reports, as
    /// (file relative to `path`, or the manifest's, and message).
    pub fn validation_errors(&self, path: &Path) -> Vec<(String, String)> {
        let run = self.run(&["plugin", "validate", path.to_str().expect("utf-8 path"), "--json"]);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "`claude plugin validate --json` printed no JSON ({e}):\n{}\n{}",
                run.stdout, run.stderr
            )
        });
        let mut out = Vec::new();
        let sections = std::iter::once(&report["manifest"]).chain(report["contents"].as_array().into_iter().flatten());
        for section in sections {
            let file = section["file"].as_str().unwrap_or("");
            let file = Path::new(file)
                .strip_prefix(path)
                .map_or(file.to_string(), |p| p.display().to_string());
            for e in section["errors"].as_array().into_iter().flatten() {
                out.push((file.clone(), e["message"].as_str().unwrap_or("").to_string()));
            }
        }
        out
    }

    /// `~/.claude/plugins/installed_plugins.json`, parsed.
    pub fn installed_plugins(&self) -> serde_json::Value {
        let path = self.plugins_dir().join("installed_plugins.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (nothing installed?)", path.display()));
        serde_json::from_str(&text).expect("installed_plugins.json is JSON")
    }

    /// The install record of `<plugin>@<marketplace>`: (installPath, version).
    pub fn installed(&self, id: &str) -> (PathBuf, String) {
        let v = self.installed_plugins();
        let record = &v["plugins"][id][0];
        let install = record["installPath"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} is not installed: {v}"));
        (PathBuf::from(install), record["version"].as_str().unwrap_or_default().to_string())
    }

    /// Where `<plugin>@<marketplace>` is installed (its `installPath`).
    pub fn installed_path(&self, marketplace: &str, plugin: &str) -> PathBuf {
        self.installed(&format!("{plugin}@{marketplace}")).0
    }
}

/// One entry of a folder snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file: executable bit, content.
    File { executable: bool, bytes: Vec<u8> },
    /// A symbolic link and its target.
    Link(PathBuf),
}

/// Names that are not plugin content: Claude Code's own markers and git metadata.
// `.links_materialized`: written into plugins the client installs by itself (managed settings).
const IGNORED: &[&str] = &[".git", ".in_use", ".orphaned_at", ".links_materialized"];

/// Every file and symbolic link under `dir` by relative path, leaving out [`IGNORED`] names at
/// any depth. Directories are not entries (git, and so the client, keeps no empty ones).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Entry> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            if IGNORED.contains(&name.as_str()) {
                continue;
            }
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(std::fs::read_link(&p).unwrap()));
            } else if meta.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    rel,
                    Entry::File {
                        executable: meta.permissions().mode() & 0o111 != 0,
                        bytes: std::fs::read(&p).unwrap(),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts two folders hold the same files, byte for byte, with the same executable bits and
/// the same symbolic links (Claude Code's `.in_use`/`.orphaned_at` markers and `.git` ignored).
pub fn assert_same_tree(published: &Path, installed: &Path) {
    let a = snapshot(published);
    let b = snapshot(installed);
    let only_a: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "{} vs {}: missing after install: {only_a:?}; extra after install: {only_b:?}",
        published.display(),
        installed.display()
    );
    for (path, want) in &a {
        match (want, &b[path]) {
            (Entry::File { executable: x1, bytes: b1 }, Entry::File { executable: x2, bytes: b2 }) => {
                assert_eq!(x1, x2, "{path}: the executable bit differs (published {x1}, installed {x2})");
                assert!(
                    b1 == b2,
                    "{path}: content differs ({} bytes published, {} installed)",
                    b1.len(),
                    b2.len()
                );
            }
            (w, g) => assert_eq!(w, g, "{path}: differs"),
        }
    }
}

/// Where Claude Code 2.1.328 reads managed settings on Linux: a fixed folder (the client has no
/// override), so the test writes there, one test at a time across processes, and puts back
/// what was there.
pub const MANAGED_DIR: &str = "/etc/claude-code";

pub struct ManagedFile {
    path: std::path::PathBuf,
    before: Option<Vec<u8>>,
    created_dir: bool,
    _lock: std::fs::File,
}

impl ManagedFile {
    /// `None` (with the reason printed) when `/etc/claude-code` cannot be written (not root);
    /// under `CI=true` that fails the test instead.
    pub fn install(settings: &serde_json::Value) -> Option<ManagedFile> {
        let dir = Path::new(MANAGED_DIR);
        let created_dir = !dir.exists();
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| {
            let probe = dir.join(".skill-pool-probe");
            std::fs::write(&probe, b"").and_then(|_| std::fs::remove_file(&probe))
        }) {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{MANAGED_DIR} is not writable under CI=true ({e}): run the real-client tests as root");
            }
            eprintln!("skipping: {MANAGED_DIR} is not writable ({e}); Claude Code reads managed settings only there on Linux");
            return None;
        }
        let lock = managed_settings_lock(true).expect("lock /etc/claude-code");
        let path = dir.join("managed-settings.json");
        let before = std::fs::read(&path).ok();
        std::fs::write(&path, serde_json::to_vec_pretty(settings).unwrap()).expect("write managed settings");
        Some(ManagedFile {
            path,
            before,
            created_dir,
            _lock: lock,
        })
    }
}

/// Set while this process holds the managed-settings lock exclusively (its own clients then run
/// under it instead of waiting for it).
static MANAGED_HERE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The machine-wide lock on /etc/claude-code: exclusive for a test that writes its managed
/// settings, shared for every client command of the others (across processes and checkouts).
fn managed_settings_lock(exclusive: bool) -> Option<std::fs::File> {
    use std::sync::atomic::Ordering;
    if !exclusive && MANAGED_HERE.load(Ordering::SeqCst) {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("skill-pool-etc-claude-code.lock"))
        .ok()?;
    if exclusive {
        file.lock().ok()?;
        MANAGED_HERE.store(true, Ordering::SeqCst);
    } else {
        file.lock_shared().ok()?;
    }
    Some(file)
}

impl Drop for ManagedFile {
    fn drop(&mut self) {
        MANAGED_HERE.store(false, std::sync::atomic::Ordering::SeqCst);
        match &self.before {
            Some(bytes) => {
                let _ = std::fs::write(&self.path, bytes);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
                if self.created_dir {
                    let _ = std::fs::remove_dir(MANAGED_DIR);
                }
            }
        }
    }
}
