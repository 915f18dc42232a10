//! `skill-pool ensure` as a developer runs it: the real binary in a temporary project folder
//! against a real server (SQLite and PostgreSQL). First run installs every kind and writes the
//! lock; a second run makes no request (counted at the server) and changes no file; local edits
//! are kept; `--update`, `--locked` and `--check`; an unreachable server cools down; a `claude`
//! killed by a signal is reported as such; and the real Claude Code client finds the plugins.

#![allow(clippy::disallowed_methods)] // drives real programs (the binaries, Claude Code) as a user would

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use common::server::{TestServer, TestTenant, cli, skill_md, workspace_bin};
use serde_json::Value;
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A project folder and a HOME of its own.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
    /// PATH for the runs (no `claude` unless a test puts one there).
    path: String,
}

impl Project {
    fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(dir.join(".skill-pool")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        Project {
            dir,
            home,
            path: "/usr/local/bin:/usr/bin:/bin".into(),
            _tmp: tmp,
        }
    }

    /// A project whose runs find the real `claude` on PATH and share the client harness's HOME.
    fn with_claude(claude: &common::claude::Claude) -> Project {
        let mut p = Project::new();
        let bin = p.home.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(claude_bin(), bin.join("claude")).unwrap();
        p.path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        p.home = claude.home().to_path_buf();
        p
    }

    fn manifest(&self, body: &str) {
        std::fs::write(self.dir.join(".skill-pool/manifest.toml"), body).unwrap();
    }

    fn lock(&self) -> String {
        std::fs::read_to_string(self.dir.join(".skill-pool/manifest.lock")).unwrap_or_default()
    }

    /// Runs `skill-pool <args>` in the project with only the given environment.
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(workspace_bin("skill-pool"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("XDG_CACHE_HOME", self.home.join("cache"))
            .env("PATH", &self.path)
            .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run skill-pool")
    }

    fn ok(&self, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
        let out = self.run(env, args);
        assert!(
            out.status.success(),
            "skill-pool {args:?}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Every file under the project with its bytes and modification time (the lock included).
    fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let meta = std::fs::symlink_metadata(e.path()).unwrap();
                if meta.is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(&self.dir).unwrap().display().to_string();
                    out.insert(rel, (std::fs::read(e.path()).unwrap_or_default(), meta.modified().unwrap()));
                }
            }
        }
        out
    }
}

/// The number of requests the server's tenant routes have answered (from `/metrics`).
async fn requests_served(s: &TestServer) -> u64 {
    let body = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    body.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn publish_skill(t: &TestTenant, work: &Path, slug: &str, version: &str, body: &str) {
    let dir = work.join(format!("{slug}-{version}")).join(slug);
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::write(dir.join("SKILL.md"), skill_md(slug, &format!("{slug} skill"), body)).unwrap();
    std::fs::write(dir.join("scripts/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("scripts/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = cli(t, &t.admin, &["skill", "publish", dir.to_str().unwrap(), "--version", version]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn publish_md(t: &TestTenant, work: &Path, kind: &str, slug: &str, version: &str) {
    let file = work.join(format!("{slug}.md"));
    std::fs::write(
        &file,
        format!("---\nname: {slug}\ndescription: the {slug} {kind}\n---\nDo the {slug} thing ({version}).\n"),
    )
    .unwrap();
    let out = cli(t, &t.admin, &[kind, "publish", file.to_str().unwrap(), "--version", version]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn publish_plugin(t: &TestTenant, work: &Path, name: &str, version: &str) -> PathBuf {
    let dir = work.join(format!("plugin-{name}-{version}"));
    std::fs::create_dir_all(dir.join(".claude-plugin")).unwrap();
    std::fs::create_dir_all(dir.join("commands")).unwrap();
    std::fs::write(
        dir.join(".claude-plugin/plugin.json"),
        serde_json::json!({"name": name, "version": version, "description": "a plugin for ensure"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("commands/hello.md"),
        format!("---\ndescription: say hello\n---\nSay hello ({version}).\n"),
    )
    .unwrap();
    let out = cli(t, &t.admin, &["plugin", "publish", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

both_backends!(installs_every_kind_then_does_nothing, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || {
        publish_skill(&t2, &w, "review", "1.0.0", "Review the code.");
        publish_skill(&t2, &w, "review", "2.0.0", "Review the code, v2.");
        publish_md(&t2, &w, "agent", "critic", "1.0.0");
        publish_md(&t2, &w, "command", "ship", "1.0.0");
        publish_plugin(&t2, &w, "tools", "1.0.0");
    })
    .await
    .unwrap();

    let p = Project::new();
    p.manifest(&format!(
        "url = \"{}\"\n\n[[skills]]\nslug = \"review\"\nversion = \"^1\"\n\n[[agents]]\nslug = \"critic\"\n\n[[commands]]\nslug = \"ship\"\nversion = \"1.0.0\"\n\n[[plugins]]\nname = \"tools\"\n",
        t.root
    ));
    // The user's own settings, which the merge must keep.
    std::fs::create_dir_all(p.dir.join(".claude")).unwrap();
    std::fs::write(
        p.dir.join(".claude/settings.json"),
        "{\n    \"permissions\": {\n        \"allow\": [\"Bash(make:*)\"]\n    },\n    \"model\": \"opus\"\n}\n",
    )
    .unwrap();
    let env = [("SKILL_POOL_TOKEN", t.member.as_str())];

    let (out, err) = p.ok(&env, &["ensure"]);
    assert!(out.starts_with("done:"), "{out}\n{err}");
    assert!(err.contains("installed skill review 1.0.0 (2 files)"), "{err}");
    assert!(p.file(".claude/skills/review/SKILL.md").contains("Review the code."));
    let mode = std::fs::metadata(p.dir.join(".claude/skills/review/scripts/run.sh")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o111, 0o111, "the executable bit arrives");
    assert!(p.file(".claude/agents/critic.md").contains("the critic agent"));
    assert!(p.file(".claude/commands/ship.md").contains("Do the ship thing"));
    let settings: Value = serde_json::from_str(&p.file(".claude/settings.json")).unwrap();
    assert_eq!(settings["model"], "opus", "other keys kept");
    assert_eq!(settings["permissions"]["allow"][0], "Bash(make:*)");
    assert_eq!(settings["enabledPlugins"]["tools@acme"], true);
    assert_eq!(settings["extraKnownMarketplaces"]["acme"]["source"]["url"], t.root.as_str());
    assert!(p.file(".claude/settings.json").contains("\n    \"model\""), "indentation kept");
    let lock = p.lock();
    assert!(lock.contains("slug = \"review\"") && lock.contains("version = \"1.0.0\""), "{lock}");
    assert!(lock.contains("\"skills/review/SKILL.md\" = \""), "{lock}");
    assert!(
        lock.contains("name = \"tools\"") && lock.contains("marketplace = \"acme\""),
        "{lock}"
    );

    // Second run: no request, no write, one line.
    let before = p.snapshot();
    let served = requests_served(&s).await;
    let (out, err) = p.ok(&env, &["ensure"]);
    assert_eq!(
        out.trim(),
        "up to date: 1 skill, 1 agent, 1 command, 1 plugin as locked (no request made)"
    );
    assert!(err.is_empty(), "{err}");
    assert_eq!(requests_served(&s).await, served, "the second run made no request");
    assert_eq!(p.snapshot(), before, "the second run changed no file");
    // --check agrees.
    p.ok(&env, &["ensure", "--check"]);

    // A local edit: reported and kept, and --check notices it.
    std::fs::write(p.dir.join(".claude/agents/critic.md"), "my own critic\n").unwrap();
    let (out, err) = p.ok(&env, &["ensure"]);
    assert!(out.starts_with("up to date"), "{out}");
    assert!(err.contains("kept local edit: .claude/agents/critic.md"), "{err}");
    assert_eq!(p.file(".claude/agents/critic.md"), "my own critic\n");
    assert_eq!(p.run(&env, &["ensure", "--check"]).status.code(), Some(1));
    // --force puts it back.
    let (_, err) = p.ok(&env, &["ensure", "--force"]);
    assert!(err.contains("restored agent critic 1.0.0"), "{err}");
    assert!(p.file(".claude/agents/critic.md").contains("the critic agent"));

    // A new matching version: the lock holds until --update.
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || publish_skill(&t2, &w, "review", "1.1.0", "Review the code, 1.1."))
        .await
        .unwrap();
    let (out, _) = p.ok(&env, &["ensure"]);
    assert!(out.starts_with("up to date"), "{out}");
    let (_, err) = p.ok(&env, &["ensure", "--update"]);
    assert!(err.contains("updated from 1.0.0 to skill review 1.1.0"), "{err}");
    assert!(p.file(".claude/skills/review/SKILL.md").contains("1.1."));
    assert!(p.lock().contains("version = \"1.1.0\""));

    // The manifest grows: --locked refuses and changes nothing; --check says out of sync.
    p.manifest(&format!(
        "url = \"{}\"\n[[skills]]\nslug = \"review\"\nversion = \"^1\"\n[[agents]]\nslug = \"critic\"\n[[commands]]\nslug = \"ship\"\nversion = \"1.0.0\"\n[[plugins]]\nname = \"tools\"\n[[skills]]\nslug = \"missing-one\"\n",
        t.root
    ));
    let lock_before = p.lock();
    let out = p.run(&env, &["ensure", "--locked"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("--locked"), "{}", text(&out.stderr));
    assert_eq!(p.lock(), lock_before);
    let out = p.run(&env, &["ensure", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("out of sync"), "{}", text(&out.stdout));
    // A plain run: the missing skill is a classified 404 naming it, the rest is kept.
    let out = p.run(&env, &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("skill `missing-one` (manifest line 13)") && err.contains("[not_found]"),
        "{err}"
    );

    // Entries leave the manifest: their unchanged files go, edited ones stay.
    std::fs::write(p.dir.join(".claude/commands/ship.md"), "edited\n").unwrap();
    p.manifest(&format!("url = \"{}\"\n[[skills]]\nslug = \"review\"\nversion = \"^1\"\n", t.root));
    let (_, err) = p.ok(&env, &["ensure"]);
    assert!(err.contains("removed agent critic"), "{err}");
    assert!(err.contains("removed plugin tools@acme"), "{err}");
    assert!(err.contains("kept local edit: .claude/commands/ship.md"), "{err}");
    assert!(!p.dir.join(".claude/agents").exists(), "{err}");
    assert_eq!(p.file(".claude/commands/ship.md"), "edited\n");
    let settings: Value = serde_json::from_str(&p.file(".claude/settings.json")).unwrap();
    assert!(settings["enabledPlugins"].get("tools@acme").is_none(), "{settings}");
    assert_eq!(settings["model"], "opus");
    let lock = p.lock();
    assert!(!lock.contains("critic") && !lock.contains("tools"), "{lock}");
    s.stop().await;
});

both_backends!(failures_are_classified, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || {
        publish_skill(&t2, &w, "review", "1.0.0", "Review.");
        publish_plugin(&t2, &w, "tools", "1.0.0");
    })
    .await
    .unwrap();
    let p = Project::new();

    // No manifest: says how to make one.
    let out = p.run(&[], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("skill-pool init"), "{}", text(&out.stderr));
    // init writes a commented manifest that parses (and names nothing).
    p.ok(&[("SKILL_POOL_URL", &t.root)], &["init"]);
    assert!(p.file(".skill-pool/manifest.toml").contains("[[skills]]"));
    assert_eq!(p.run(&[], &["init"]).status.code(), Some(1), "init does not overwrite");
    let (out, _) = p.ok(&[], &["ensure"]);
    assert!(out.contains("names nothing"), "{out}");

    // A bad manifest names the line.
    p.manifest("[[skills]]\nslug = \"review\"\nversoin = \"1\"\n");
    let out = p.run(&[], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("manifest.toml:3: unknown field `versoin`"),
        "{}",
        text(&out.stderr)
    );

    // A wrong token: 401 with the hint.
    p.manifest(&format!("url = \"{}\"\n[[skills]]\nslug = \"review\"\n", t.root));
    let out = p.run(&[("SKILL_POOL_TOKEN", "sp_wrong")], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("[unauthorized]") && err.contains("skill-pool login"), "{err}");

    // A settings.json that is not JSON: skills still install; a plugin is refused, the file untouched.
    std::fs::create_dir_all(p.dir.join(".claude")).unwrap();
    std::fs::write(p.dir.join(".claude/settings.json"), "{ \"model\": ").unwrap();
    p.ok(&[("SKILL_POOL_TOKEN", &t.member)], &["ensure"]);
    assert!(p.dir.join(".claude/skills/review/SKILL.md").is_file());
    p.manifest(&format!(
        "url = \"{}\"\n[[skills]]\nslug = \"review\"\n[[plugins]]\nname = \"tools\"\n",
        t.root
    ));
    let out = p.run(&[("SKILL_POOL_TOKEN", &t.member)], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("is not valid JSON") && err.contains("[conflict]"), "{err}");
    assert_eq!(p.file(".claude/settings.json"), "{ \"model\": ");
    std::fs::remove_file(p.dir.join(".claude/settings.json")).unwrap();

    // A plugin pinned to a version the marketplace does not serve: says which exist.
    p.manifest(&format!(
        "url = \"{}\"\n[[plugins]]\nname = \"tools\"\nversion = \"0.9.0\"\n",
        t.root
    ));
    let out = p.run(&[("SKILL_POOL_TOKEN", &t.member)], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("serves 1.0.0") && err.contains("versions published: 1.0.0") && err.contains("[version]"),
        "{err}"
    );

    // A `claude` on PATH that is killed by SIGKILL: said so, not silence.
    let bin = p.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("claude"), "#!/bin/sh\nkill -9 $$\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut with_claude = Project::new();
    with_claude.path = format!("{}:/usr/bin:/bin", bin.display());
    with_claude.manifest(&format!("url = \"{}\"\n[[plugins]]\nname = \"tools\"\n", t.root));
    let out = with_claude.run(&[("SKILL_POOL_NOW", "1000000")], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("killed by signal 9") && err.contains("[signal]"), "{err}");
    assert!(
        !with_claude.lock().contains("tools"),
        "a failed install is not locked: {}",
        with_claude.lock()
    );
    // A signal is a failure of the environment: the next run within the hour skips.
    let out = with_claude.run(&[("SKILL_POOL_NOW", "1000060")], &["ensure", "--hook"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("skipped"), "{}", text(&out.stderr));
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_costs_one_line_per_window() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Project::new();
    p.manifest(&format!(
        "url = \"http://127.0.0.1:{port}/t/acme\"\n[[skills]]\nslug = \"review\"\n"
    ));
    let at = |t: i64| t.to_string();
    let now = 2_000_000_000i64;
    let run = |t: i64, args: &[&str]| p.run(&[("SKILL_POOL_NOW", &at(t)), ("SKILL_POOL_TOKEN", "sp_x")], args);

    let out = run(now, &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("[unreachable]"), "{err}");
    assert!(text(&out.stdout).contains("cooldown"), "{}", text(&out.stdout));
    let markers: Vec<_> = std::fs::read_dir(p.home.join("cache/skill-pool/ensure")).unwrap().collect();
    assert_eq!(markers.len(), 1, "one cooldown marker");

    // Within the window: one line, no attempt; exit 0 under --hook, 1 otherwise.
    let out = run(now + 600, &["ensure", "--hook"]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("skipped") && err.contains("unreachable"), "{err}");
    assert!(out.stdout.is_empty(), "a hook prints nothing on stdout");
    assert_eq!(run(now + 600, &["ensure"]).status.code(), Some(1));
    // --force tries anyway (and fails the same way).
    let out = run(now + 700, &["ensure", "--force"]);
    assert!(text(&out.stderr).contains("[unreachable]"), "{}", text(&out.stderr));
    // After the window: one attempt goes through (a hook still exits 0).
    let out = run(now + 700 + 3601, &["ensure", "--hook"]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("unreachable") && !err.contains("skipped"), "{err}");
    // --cooldown sets the window: 2 minutes after that attempt, a 90 s window is over.
    let later = now + 700 + 3601 + 120;
    assert!(text(&run(later, &["ensure", "--hook"]).stderr).contains("skipped"));
    let out = run(later, &["ensure", "--hook", "--cooldown", "90s"]);
    assert!(!text(&out.stderr).contains("skipped"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_hook_adds_one_session_start_hook() {
    let p = Project::new();
    p.manifest("");
    std::fs::create_dir_all(p.dir.join(".claude")).unwrap();
    std::fs::write(p.dir.join(".claude/settings.json"), "{\n  \"model\": \"opus\"\n}\n").unwrap();
    let (out, _) = p.ok(&[], &["ensure", "--install-hook"]);
    assert!(out.contains("added a SessionStart hook"), "{out}");
    let (out, _) = p.ok(&[], &["ensure", "--install-hook"]);
    assert!(out.contains("already has"), "{out}");
    let settings: Value = serde_json::from_str(&p.file(".claude/settings.json")).unwrap();
    assert_eq!(settings["model"], "opus");
    let hooks = settings["hooks"]["SessionStart"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["hooks"][0]["command"], "skill-pool ensure --hook");
    assert_eq!(hooks[0]["hooks"][0]["type"], "command");
}

#[test]
fn completions_for_every_shell() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        let (out, _) = p.ok(&[], &["completions", shell]);
        assert!(out.contains("ensure") && out.contains("skill-pool"), "{shell}");
    }
}

/// The real Claude Code client finds the plugin enabled and installed in the project, and the
/// skills where it looks for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_finds_what_ensure_installed() {
    let Some(claude) = common::claude::Claude::new() else { return };
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    let published = tokio::task::spawn_blocking(move || {
        publish_skill(&t2, &w, "review", "1.0.0", "Review.");
        publish_plugin(&t2, &w, "tools", "1.0.0")
    })
    .await
    .unwrap();

    // `claude` on PATH, sharing the HOME of the client harness.
    let p = Project::with_claude(&claude);
    p.manifest(&format!(
        "url = \"{}\"\n[[skills]]\nslug = \"review\"\n[[plugins]]\nname = \"tools\"\n",
        t.root
    ));
    let env = [("SKILL_POOL_TOKEN", t.member.as_str())];
    let out = p.run(&env, &["ensure"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{}\n{err}", text(&out.stdout));
    assert!(err.contains("installed plugin tools@acme 1.0.0"), "{err}");
    assert!(p.dir.join(".claude/skills/review/SKILL.md").is_file());

    // `claude plugin list` in the project shows it, enabled; the files are the published ones.
    let listed = claude_in(&claude, &p.dir, &["plugin", "list", "--json"]);
    let list: Value = serde_json::from_str(listed.trim()).unwrap_or_else(|e| panic!("{e}: {listed}"));
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "tools@acme")
        .unwrap_or_else(|| panic!("tools@acme not listed: {listed}"));
    assert_eq!(entry["enabled"], true, "{entry}");
    assert_eq!(entry["scope"], "project", "{entry}");
    let (installed, version) = claude.installed("tools@acme");
    assert_eq!(version, "1.0.0");
    common::claude::assert_same_tree(&published, &installed);

    // Nothing changed: the second run is a no-op, without running claude or asking the server.
    let served = requests_served(&s).await;
    let (out, _) = p.ok(&env, &["ensure"]);
    assert!(out.starts_with("up to date"), "{out}");
    assert_eq!(requests_served(&s).await, served);

    // A new version of the plugin reaches Claude Code through `ensure --update`.
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || publish_plugin(&t2, &w, "tools", "1.1.0"))
        .await
        .unwrap();
    let (_, err) = p.ok(&env, &["ensure", "--update"]);
    assert!(err.contains("updated plugin tools@acme from 1.0.0 to 1.1.0"), "{err}");
    assert_eq!(claude.installed("tools@acme").1, "1.1.0");
    s.stop().await;
}

fn claude_bin() -> PathBuf {
    PathBuf::from(std::env::var_os("SKILL_POOL_TEST_CLAUDE_BIN").expect("checked by Claude::new"))
}

/// `claude <args>` in `dir` with the harness's HOME.
fn claude_in(claude: &common::claude::Claude, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(claude_bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", claude.home())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run claude");
    assert!(out.status.success(), "claude {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A full disk is named as such (and the lock keeps what was there). Needs a small tmpfs, which
/// only root can mount: elsewhere the test says so and does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_as_such() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || {
        let dir = w.join("big").join("big");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("SKILL.md"), skill_md("big", "a big skill", "Big.")).unwrap();
        // 3 MiB that do not compress, on a 1 MiB disk.
        std::fs::write(dir.join("data.bin"), common::server::noise(3 << 20, 1)).unwrap();
        let out = cli(&t2, &t2.admin, &["skill", "publish", dir.to_str().unwrap(), "--version", "1.0.0"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    })
    .await
    .unwrap();
    let p = Project::new();
    let mount = p.dir.join(".claude");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mount)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping: cannot mount a small tmpfs here (needs root)");
        s.stop().await;
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mount.clone());
    p.manifest(&format!("url = \"{}\"\n[[skills]]\nslug = \"big\"\n", t.root));
    let out = p.run(&[("SKILL_POOL_TOKEN", t.member.as_str())], &["ensure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("[disk_full]") && err.contains("the disk is full"), "{err}");
    assert!(!p.lock().contains("big"), "a failed install is not locked: {}", p.lock());
    s.stop().await;
}

/// `--user`: pieces go to `~/.claude`, plugins are installed by Claude Code at user scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_gets_user_scope_plugins_with_ensure_user() {
    let Some(claude) = common::claude::Claude::new() else { return };
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || {
        publish_md(&t2, &w, "agent", "critic", "1.0.0");
        publish_plugin(&t2, &w, "tools", "1.0.0");
    })
    .await
    .unwrap();
    let p = Project::with_claude(&claude);
    p.manifest(&format!(
        "url = \"{}\"\n[[agents]]\nslug = \"critic\"\n[[plugins]]\nname = \"tools\"\n",
        t.root
    ));
    let env = [("SKILL_POOL_TOKEN", t.member.as_str())];
    let (_, err) = p.ok(&env, &["ensure", "--user"]);
    assert!(err.contains("installed plugin tools@acme 1.0.0"), "{err}");
    assert!(claude.home().join(".claude/agents/critic.md").is_file(), "{err}");
    assert!(!p.dir.join(".claude/agents").exists(), "--user writes nothing into the project");
    let installed = claude.installed_plugins();
    assert_eq!(installed["plugins"]["tools@acme"][0]["scope"], "user", "{installed}");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(claude.home().join(".claude/settings.json")).unwrap()).unwrap();
    assert_eq!(settings["enabledPlugins"]["tools@acme"], true, "{settings}");
    // In sync: the second run asks nothing.
    let served = requests_served(&s).await;
    let (out, _) = p.ok(&env, &["ensure", "--user"]);
    assert!(out.starts_with("up to date"), "{out}");
    assert_eq!(requests_served(&s).await, served);
    s.stop().await;
}
