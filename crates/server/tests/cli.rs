//! The real `skill-pool` binary against a real server: login, publishing and reading pieces and
//! plugins, `--json`, and the exit codes (0 done, 1 failed, 2 usage).

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::server::{TestServer, TestTenant, skill_md, workspace_bin};
use serde_json::Value;
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// Runs the CLI with its config under `home` and only the given environment.
fn run(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(workspace_bin("skill-pool"));
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PATH", std::env::var_os("PATH").unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run skill-pool")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn env(t: &TestTenant) -> Vec<(&'static str, String)> {
    vec![("SKILL_POOL_URL", t.root.clone()), ("SKILL_POOL_TOKEN", t.admin.clone())]
}

both_backends!(login_publish_and_read_with_the_cli, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = t.root.clone();
    let admin = t.admin.clone();
    let work_path = work.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let work = work_path.as_path();
        // Nothing configured: a usage error (2) that says what to do.
        let out = run(&home, &[], &["skill", "list"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("skill-pool login"), "{}", text(&out.stderr));
        // clap's own usage errors are 2 as well.
        assert_eq!(run(&home, &[], &["skill", "publish"]).status.code(), Some(2));

        // A wrong token: refused, nothing saved.
        let out = run(&home, &[], &["login", "--url", &root, "--token", "sp_wrong"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(!home.join("config/skill-pool/config.toml").exists());
        let out = run(&home, &[], &["login", "--url", &root, "--token", &admin]);
        assert!(ok(&out).contains("logged in to acme"), "{}", text(&out.stdout));
        let cfg = home.join("config/skill-pool/config.toml");
        assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);
        let me: Value = serde_json::from_str(&ok(&run(&home, &[], &["whoami", "--json"]))).unwrap();
        assert_eq!(me["tenant"], "acme");

        // A skill folder, named by its folder.
        let skill = work.join("greet");
        std::fs::create_dir_all(skill.join("scripts")).unwrap();
        std::fs::write(skill.join("SKILL.md"), skill_md("greeting", "Greets", "Say hi.")).unwrap();
        std::fs::write(skill.join("scripts/run.sh"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(skill.join("scripts/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = ok(&run(&home, &[], &["skill", "publish", skill.to_str().unwrap()]));
        assert!(out.contains("published skill greet 1.0.0"), "{out}");
        let out = ok(&run(&home, &[], &["skill", "publish", skill.to_str().unwrap()]));
        assert!(out.contains("unchanged"), "republishing identical content is a no-op: {out}");
        let list: Value = serde_json::from_str(&ok(&run(&home, &[], &["skill", "list", "--json"]))).unwrap();
        assert_eq!(list[0]["slug"], "greet");
        assert_eq!(list[0]["latest"]["version"], "1.0.0");
        let show: Value = serde_json::from_str(&ok(&run(&home, &[], &["skill", "show", "greet", "--json"]))).unwrap();
        assert_eq!(show["latest"]["files"].as_array().unwrap().len(), 2);
        assert!(ok(&run(&home, &[], &["skill", "list"])).contains("greet"));

        // A changed skill under the same explicit version: 409, exit 1, the server's message.
        std::fs::write(skill.join("SKILL.md"), skill_md("greeting", "Greets", "Say hello.")).unwrap();
        let out = run(&home, &[], &["skill", "publish", skill.to_str().unwrap(), "--version", "1.0.0"]);
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains("version_conflict") && err.contains("1.0.1"), "{err}");

        // Download round trip keeps the executable bit.
        let dl = work.join("dl");
        ok(&run(&home, &[], &["skill", "download", "greet", "--output", dl.to_str().unwrap()]));
        assert_ne!(
            std::fs::metadata(dl.join("scripts/run.sh")).unwrap().permissions().mode() & 0o111,
            0
        );

        // Agents and commands from files.
        let agent = work.join("reviewer.md");
        std::fs::write(&agent, "---\nname: reviewer\ndescription: Reviews\n---\nReview.\n").unwrap();
        assert!(ok(&run(&home, &[], &["agent", "publish", agent.to_str().unwrap()])).contains("published agent reviewer 1.0.0"));
        let command = work.join("deploy.md");
        std::fs::write(&command, "---\ndescription: Deploys\n---\nDeploy.\n").unwrap();
        assert!(
            ok(&run(
                &home,
                &[],
                &["command", "publish", command.to_str().unwrap(), "--version", "2.0.0"]
            ))
            .contains("published command deploy 2.0.0")
        );
        let bad = work.join("bad.md");
        std::fs::write(&bad, "no frontmatter here\n").unwrap();
        let out = run(&home, &[], &["command", "publish", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("frontmatter"), "{}", text(&out.stderr));

        // Logout forgets; the environment still works.
        ok(&run(&home, &[], &["logout"]));
        assert!(!cfg.exists());
    })
    .await
    .unwrap();
    // The environment alone is enough.
    let e = env(&t);
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(work.path(), &e, &["agent", "list", "--json"]);
    let agents: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(agents[0]["slug"], "reviewer");
    s.stop().await;
});

both_backends!(plugin_commands_of_the_cli, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("hello");
    std::fs::create_dir_all(dir.join("skills/greet")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("skills/greet/SKILL.md"), skill_md("greet", "Greets", "Hi.")).unwrap();
    std::fs::write(dir.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("bin/hello"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = env(&t);
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let home = work.path();
    let d = dir.to_str().unwrap();

    // Dry run: lists the files and uploads nothing.
    let out = run(home, &e, &["plugin", "publish", d, "--dry-run"]);
    ok(&out);
    let err = text(&out.stderr);
    assert!(
        err.contains("bin/hello") && err.contains("executable") && err.contains("nothing was uploaded"),
        "{err}"
    );
    let list: Value = serde_json::from_str(&ok(&run(home, &e, &["plugin", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0);

    // Without plugin.json: named by its folder, versioned with --version.
    let out = ok(&run(home, &e, &["plugin", "publish", d, "--version", "0.1.0"]));
    assert!(out.contains("published plugin hello 0.1.0"), "{out}");
    assert!(out.contains("skill greet 1.0.0 (new version)"), "{out}");
    let shown: Value = serde_json::from_str(&ok(&run(home, &e, &["plugin", "show", "hello", "--json"]))).unwrap();
    assert_eq!(shown["current"]["version"], "0.1.0");
    assert!(
        shown["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "bin/hello" && f["mode"] == "executable")
    );
    assert!(ok(&run(home, &e, &["plugin", "list"])).contains("hello"));

    // The marketplace URL and the commands to paste into Claude Code.
    let out = run(home, &e, &["plugin", "marketplace-url"]);
    assert_eq!(text(&out.stdout).trim(), t.root);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("/plugin marketplace add {}", t.root)) && err.contains("/plugin install hello@acme"),
        "{err}"
    );

    // A plugin.json that disagrees with --slug: refused before anything is stored.
    std::fs::create_dir_all(dir.join(".claude-plugin")).unwrap();
    std::fs::write(dir.join(".claude-plugin/plugin.json"), r#"{"name": "other"}"#).unwrap();
    let out = run(home, &e, &["plugin", "publish", d, "--slug", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("other"), "{}", text(&out.stderr));
    // An invalid plugin.json is caught locally.
    std::fs::write(dir.join(".claude-plugin/plugin.json"), r#"{"name": "hello", "author": "me"}"#).unwrap();
    let out = run(home, &e, &["plugin", "publish", d, "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("author"), "{}", text(&out.stderr));

    // A member may read but not publish.
    let member = vec![("SKILL_POOL_URL", t.root.as_str()), ("SKILL_POOL_TOKEN", t.member.as_str())];
    std::fs::remove_dir_all(dir.join(".claude-plugin")).unwrap();
    let out = run(home, &member, &["plugin", "publish", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("forbidden"), "{}", text(&out.stderr));
    ok(&run(home, &member, &["plugin", "show", "hello"]));

    ok(&run(home, &e, &["plugin", "delete", "hello"]));
    let out = run(home, &e, &["plugin", "show", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    s.stop().await;
});

both_backends!(audit_is_filtered_by_actor_action_target_and_time, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let work_path = work.path().to_path_buf();
    let env = env(&t);
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let skill = work_path.join("audited_skill_dir").join("audited");
        std::fs::create_dir_all(&skill).unwrap();
        std::fs::write(skill.join("SKILL.md"), skill_md("audited", "for the audit", "Body.")).unwrap();
        ok(&run(&home, &env, &["skill", "publish", skill.to_str().unwrap()]));
        ok(&run(&home, &env, &["token", "create", "--name", "ci_bot", "--role", "member"]));
        let entries = |args: &[&str]| -> Vec<Value> {
            let mut all = vec!["audit", "--json"];
            all.extend_from_slice(args);
            let page: Value = serde_json::from_str(&ok(&run(&home, &env, &all))).unwrap();
            page["items"].as_array().unwrap().clone()
        };
        let tokens = entries(&["--action", "token."]);
        assert!(
            !tokens.is_empty() && tokens.iter().all(|e| e["action"].as_str().unwrap().starts_with("token.")),
            "{tokens:?}"
        );
        // `_` is a literal, not a wildcard.
        let by_target = entries(&["--target", "ci_bot"]);
        assert_eq!(by_target.len(), 1, "{by_target:?}");
        assert!(entries(&["--target", "ci%bot"]).is_empty());
        let skills = entries(&["--target", "skill:audited"]);
        assert!(!skills.is_empty(), "{skills:?}");
        assert!(entries(&["--actor", "nobody-at-all"]).is_empty());
        assert!(!entries(&["--actor", "test-admin", "--since", "2000-01-01", "--until", "2999-12-31"]).is_empty());
        assert!(entries(&["--since", "2999-01-01"]).is_empty());
        let out = run(&home, &env, &["audit", "--since", "yesterday"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("RFC 3339"), "{}", text(&out.stderr));
    })
    .await
    .unwrap();
    s.stop().await;
});

both_backends!(serve_policy_and_usage_from_the_cli, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let work_path = work.path().to_path_buf();
    let env = env(&t);
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for version in ["1.0.0", "1.1.0"] {
            let dir = work_path.join(format!("tool-{version}"));
            std::fs::create_dir_all(dir.join(".claude-plugin")).unwrap();
            std::fs::write(
                dir.join(".claude-plugin/plugin.json"),
                format!("{{\"name\": \"tool\", \"version\": \"{version}\"}}"),
            )
            .unwrap();
            std::fs::write(dir.join("README.md"), version).unwrap();
            ok(&run(&home, &env, &["plugin", "publish", dir.to_str().unwrap()]));
        }
        let out = ok(&run(&home, &env, &["plugin", "serve", "tool", "1.0.0"]));
        assert!(out.contains("serving 1.0.0 (pinned"), "{out}");
        let plugin: Value = serde_json::from_str(&ok(&run(&home, &env, &["plugin", "show", "tool", "--json"]))).unwrap();
        assert_eq!(plugin["current"]["effective_version"], "1.0.0");
        assert!(ok(&run(&home, &env, &["plugin", "serve", "tool", "--latest"])).contains("newest version, 1.1.0"));
        // Neither a version nor --latest: a usage error.
        assert_eq!(run(&home, &env, &["plugin", "serve", "tool"]).status.code(), Some(2));
        assert_eq!(
            ok(&run(&home, &env, &["plugin", "policy", "tool", "auto-install"])).trim(),
            "tool: auto_install"
        );
        assert_eq!(run(&home, &env, &["plugin", "policy", "tool", "mandatory"]).status.code(), Some(2));
        let usage: Value = serde_json::from_str(&ok(&run(&home, &env, &["usage", "--json"]))).unwrap();
        assert_eq!(usage["plugins"], 1, "{usage}");
        assert_eq!(usage["plugin_versions"], 2, "{usage}");
        let out = ok(&run(&home, &env, &["usage"]));
        assert!(out.contains("plugin versions  2 (no quota)"), "{out}");
    })
    .await
    .unwrap();
    s.stop().await;
});
