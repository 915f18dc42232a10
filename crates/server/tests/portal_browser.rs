//! The portal in a real browser: Debian's chromium driven by npm `playwright-core`
//! (`tests/browser/walk.mjs`, headless, never a downloaded browser) against the server binary
//! on 127.0.0.1. The curator's walk: sign in, see the failed mirror's chip, compose a plugin
//! from registered pieces with an inline hook, preview, publish; a CSRF-less post refused; the
//! public page's search and copy buttons; a member kept off admin pages. Then the real Claude
//! Code client installs the plugin with the two copied commands, and the installed files are
//! exactly the composer's preview. Screenshots (desktop and phone) go to
//! `$CARGO_TARGET_DIR/portal-screenshots/`.
//!
//! Needs `/usr/bin/chromium` (or `SKILL_POOL_TEST_CHROMIUM`), `node`, and playwright-core in
//! `tests/browser/node_modules` (or `SKILL_POOL_TEST_PLAYWRIGHT_MODULES`): `.ci/run` installs
//! them. Without them the test says why and skips; under `CI=true` it fails.

#![allow(clippy::disallowed_methods)] // drives real programs (node, chromium, the binaries, Claude Code) as a user would

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::claude::{Claude, snapshot};
use common::process::ServerProcess;
use common::server::workspace_bin;
use common::upstream::{Fault, Upstream};
use serde_json::{Value, json};
use skill_pool_store::testing::{TestDb, ci};

const PASSWORD: &str = "correct horse battery staple";

struct BrowserTools {
    chromium: PathBuf,
    modules: PathBuf,
}

fn skip(why: &str) -> Option<BrowserTools> {
    if ci() {
        panic!("CI=true: {why} (.ci/run installs chromium and the browser test's npm modules)");
    }
    eprintln!("skipping the browser test: {why}");
    None
}

fn browser_tools() -> Option<BrowserTools> {
    let chromium = std::env::var_os("SKILL_POOL_TEST_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return skip(&format!("{} is missing (apt-get install chromium)", chromium.display()));
    }
    if Command::new("node")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return skip("node is not on PATH");
    }
    let modules = std::env::var_os("SKILL_POOL_TEST_PLAYWRIGHT_MODULES")
        .filter(|v| !v.is_empty())
        .map_or_else(|| browser_dir().join("node_modules"), PathBuf::from);
    if !modules.join("playwright-core/package.json").exists() {
        return skip(&format!(
            "playwright-core is not installed in {} (npm ci in crates/server/tests/browser)",
            modules.display()
        ));
    }
    Some(BrowserTools { chromium, modules })
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `$CARGO_TARGET_DIR/portal-screenshots` (next to the test binaries' folder).
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(|d| d.parent()).and_then(|d| d.parent()).unwrap();
    target.join("portal-screenshots")
}

/// `skill-pool-server <args>` on the test's database, `stdin` fed in; answers stdout.
fn admin(db: &TestDb, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(workspace_bin("skill-pool-server"))
        .args(args)
        .env("SKILL_POOL_DATA_DIR", db.data_path())
        .env("SKILL_POOL_DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn api(http: &reqwest::Client, method: reqwest::Method, url: &str, token: &str, body: Option<(&str, Vec<u8>)>) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some((ct, bytes)) = body {
        req = req.header("content-type", ct).body(bytes);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn wait_job(http: &reqwest::Client, root: &str, token: &str, id: i64) -> Value {
    for _ in 0..240 {
        let (_, job) = api(http, reqwest::Method::GET, &format!("{root}/v1/jobs/{id}"), token, None).await;
        if job["state"] == "done" || job["state"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("job {id} did not end within 60 s");
}

fn write(dir: &Path, rel: &str, body: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_curator_composes_in_the_browser_and_claude_code_installs_it() {
    let Some(tools) = browser_tools() else { return };
    let Some(claude) = Claude::new() else { return };
    let db = TestDb::sqlite();

    // The tenant, an admin and a member, as an operator makes them.
    admin(&db, &["tenant", "create", "acme", "--display-name", "Acme Platform"], None);
    admin(
        &db,
        &["user", "create", "--tenant", "acme", "--username", "ana", "--role", "admin"],
        Some(&format!("{PASSWORD}\n")),
    );
    admin(
        &db,
        &["user", "create", "--tenant", "acme", "--username", "max", "--role", "member"],
        Some(&format!("{PASSWORD}\n")),
    );
    let out = admin(
        &db,
        &["token", "create", "--tenant", "acme", "--role", "admin", "--name", "setup"],
        None,
    );
    let token = out.lines().last().unwrap().trim().to_string();

    let up = Upstream::start().await;
    let mut cmd = Command::new(workspace_bin("skill-pool-server"));
    cmd.arg("serve")
        .env("SKILL_POOL_DATA_DIR", db.data_path())
        .env("SKILL_POOL_DATABASE_URL", &db.url)
        .env("SKILL_POOL_MIRROR_ALLOWED_HOSTS", "127.0.0.1")
        .env("SKILL_POOL_MIRROR_TIMEOUT_SECS", "10");
    let server = ServerProcess::start(cmd);
    let root = format!("{}/t/acme", server.url());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // Registered pieces: a skill in two versions and an agent.
    for (v, body) in [("1.0.0", "Review the diff."), ("1.1.0", "Review the diff, twice.")] {
        let md = format!("---\nname: review\ndescription: Reviews code\n---\n{body}\n");
        let gz = common::server::tar_gz(&[("SKILL.md", 0o644, md.as_bytes())]);
        let (st, b) = api(
            &http,
            reqwest::Method::POST,
            &format!("{root}/v1/skills?slug=review&version={v}"),
            &token,
            Some(("application/gzip", gz)),
        )
        .await;
        assert!(st < 300, "{b}");
    }
    let (st, b) = api(
        &http,
        reqwest::Method::POST,
        &format!("{root}/v1/agents?slug=helper&version=1.0.0"),
        &token,
        Some(("text/markdown", b"---\nname: helper\ndescription: Helps\n---\nHelp.\n".to_vec())),
    )
    .await;
    assert!(st < 300, "{b}");

    // A mirror that pulled once, then failed: the upstream answers 500 now.
    let work = up.create("upstream-kit");
    write(
        &work,
        ".claude-plugin/plugin.json",
        br#"{"name": "upstream-kit", "version": "0.3.0", "description": "Mirrored from upstream", "keywords": ["misc"]}"#,
    );
    write(&work, "commands/hello.md", b"---\ndescription: Hello\n---\nSay hello.\n");
    up.commit_and_push(&work, "0.3.0", false);
    let (st, accepted) = api(
        &http,
        reqwest::Method::POST,
        &format!("{root}/v1/plugins/import"),
        &token,
        Some(("application/json", json!({"url": up.url("upstream-kit")}).to_string().into_bytes())),
    )
    .await;
    assert_eq!(st, 202, "{accepted}");
    let slug = accepted["plugin"].as_str().unwrap().to_string();
    let job = wait_job(&http, &root, &token, accepted["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    up.set_fault(Fault::Status(500));
    let (st, refresh) = api(
        &http,
        reqwest::Method::POST,
        &format!("{root}/v1/plugins/{slug}/refresh"),
        &token,
        None,
    )
    .await;
    assert_eq!(st, 202, "{refresh}");
    let job = wait_job(&http, &root, &token, refresh["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");

    // The walk in the browser.
    let shots = screenshot_dir();
    let result_file = db.data_path().join("walk-result.json");
    let mut node = Command::new("node");
    node.arg(browser_dir().join("walk.mjs"))
        .env("ROOT", &root)
        .env("TENANT", "acme")
        .env("ADMIN_USER", "ana")
        .env("MEMBER_USER", "max")
        .env("PASSWORD", PASSWORD)
        .env("MIRROR_SLUG", &slug)
        .env("SCREENSHOTS", &shots)
        .env("RESULT", &result_file)
        .env("CHROMIUM", &tools.chromium)
        .env("PLAYWRIGHT_MODULES", &tools.modules)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let out = tokio::task::spawn_blocking(move || node.output().unwrap()).await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the browser walk failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    eprintln!("{stdout}\nscreenshots in {}", shots.display());
    let result: Value = serde_json::from_slice(&std::fs::read(&result_file).unwrap()).unwrap();

    // The copy buttons put the two commands on the clipboard.
    assert_eq!(result["clipboard"]["add"], format!("/plugin marketplace add {root}"));
    assert_eq!(result["clipboard"]["install"], "/plugin install team-tools@acme");
    assert!(result["screenshots"].as_array().unwrap().len() >= 20);

    // The audit log names the user who published.
    let (_, audit) = api(&http, reqwest::Method::GET, &format!("{root}/v1/audit?limit=500"), &token, None).await;
    let published = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "plugin.compose")
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(published["actor"].as_str().unwrap().starts_with("user:ana#"), "{published}");

    // Claude Code installs it with the copied commands; the files are the preview's.
    let add = result["clipboard"]["add"].as_str().unwrap().to_string();
    let install = result["clipboard"]["install"].as_str().unwrap().to_string();
    let (installed, preview) = tokio::task::spawn_blocking(move || {
        claude.marketplace_add(add.strip_prefix("/plugin marketplace add ").unwrap());
        claude.install(install.strip_prefix("/plugin install ").unwrap());
        let path = claude.installed_path("acme", "team-tools");
        let files: BTreeSet<String> = snapshot(&path).into_keys().collect();
        (files, result["preview"].clone())
    })
    .await
    .unwrap();
    let preview: BTreeSet<String> = preview
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(installed, preview, "installed files vs the composer's preview");
    assert!(installed.contains("hooks/hooks.json") && installed.contains("agents/helper.md"));
    drop(server);
}
