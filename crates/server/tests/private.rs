//! Private tenants and the `reader` role (issue 13, point 1): a private tenant's catalogue,
//! tenant root, marketplace pages and git endpoint answer `401` without a credential of the
//! tenant; a reader token reads them and nothing else; `skill-pool setup claude` and the two
//! helpers (`auth header`, `auth git-credential`) make real git clone with no token in any URL.
//! Over HTTP here (the real Claude Code client over https is in `private_claude.rs`), on SQLite
//! and PostgreSQL.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries) as a user would

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::server::{TestServer, TestTenant, tar_gz, tree, workspace_bin};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

pub async fn publish(s: &TestServer, t: &TestTenant, version: &str) {
    let manifest = json!({"name": "tool", "version": version, "description": "a tool"}).to_string();
    let body = tar_gz(&[
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("commands/hello.md", 0o644, b"---\ndescription: hello\n---\nSay hello.\n"),
        ("scripts/run.sh", 0o755, b"#!/bin/sh\necho run\n"),
    ]);
    let (status, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    assert!(status.is_success(), "{status} {v}");
}

async fn reader_token(s: &TestServer, t: &TestTenant) -> String {
    let (status, v) = s
        .post_json(
            &format!("{}/v1/tokens", t.root),
            &t.admin,
            &json!({"name": "laptops", "role": "reader"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["token"]["role"], "reader");
    v["secret"].as_str().unwrap().to_string()
}

/// `skill-pool <args>` with `HOME` (and nothing else of the caller's configuration).
fn sp(home: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(workspace_bin("skill-pool"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_PROXY", "*")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run skill-pool");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `git <args>` as a user with `HOME` (their ~/.gitconfig), never prompting.
fn git(home: &Path, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_PROXY", "*")
        .output()
        .unwrap()
}

async fn get(s: &TestServer, url: &str, auth: Option<&str>, accept: &str) -> reqwest::Response {
    let mut req = s.http.get(url).header("accept", accept);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

both_backends!(a_private_tenant_needs_a_credential_of_its_own_everywhere, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let other = s.tenant("other").await;
    publish(&s, &t, "1.0.0").await;
    publish(&s, &other, "1.0.0").await;
    let reader = reader_token(&s, &t).await;
    let catalogue = format!("{}/.claude-plugin/marketplace.json", t.root);
    let info_refs = format!("{}/git/plugins/tool.git/info/refs?service=git-upload-pack", t.root);
    assert_eq!(
        get(&s, &catalogue, None, "application/json").await.status(),
        200,
        "public by default"
    );

    // An admin makes it private with the CLI.
    let out = common::server::cli(&t, &t.admin, &["tenant", "set", "--visibility", "private"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("visibility   private"), "{}", text(&out));
    let (_, settings) = s.get_json(&format!("{}/v1/tenant", t.root), &t.member).await;
    assert_eq!(settings["visibility"], "private");

    // Without a credential: 401 everywhere, with the challenge of each client and advice.
    for url in [&catalogue, &t.root] {
        let res = get(&s, url, None, "application/json, text/plain, */*").await;
        assert_eq!(res.status(), 401, "{url}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"skill-pool acme\"");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["message"].as_str().unwrap().contains("skill-pool setup claude"), "{body}");
    }
    let res = get(&s, &info_refs, None, "*/*").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"skill-pool acme\"");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(res.text().await.unwrap().contains("credential helper"));
    // The marketplace pages send a browser to sign in (and show nothing).
    let browser = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for page in ["/marketplace", "/marketplace/tool", ""] {
        let url = format!("{}{page}", t.root);
        let res = browser.get(&url).header("accept", "text/html").send().await.unwrap();
        let status = res.status();
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let body = res.text().await.unwrap();
        assert_eq!(status, StatusCode::SEE_OTHER, "{url}: {body}");
        assert!(location.unwrap().starts_with("/t/acme/portal/login?next="));
        assert!(!body.contains("tool"), "{body}");
    }
    // Wrong, foreign and malformed credentials are refused alike.
    for auth in [
        "Bearer sp_not_a_token".to_string(),
        format!("Bearer {}", other.admin),
        "Basic !!!".to_string(),
        "Token abc".to_string(),
    ] {
        let res = get(&s, &catalogue, Some(&auth), "application/json").await;
        assert_eq!(res.status(), 401, "{auth}");
        let res = get(&s, &info_refs, Some(&auth), "*/*").await;
        assert_eq!(res.status(), 401, "{auth}");
    }

    // A reader token: the catalogue (not for shared caches), git (Basic, any user name).
    let res = get(&s, &catalogue, Some(&format!("Bearer {reader}")), "application/json").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "private, no-cache");
    assert!(res.headers()["vary"].to_str().unwrap().contains("Authorization"));
    let cat: Value = res.json().await.unwrap();
    let git_url = cat["plugins"][0]["source"]["url"].as_str().unwrap().to_string();
    assert!(!git_url.contains("sp_") && !git_url.contains('@'), "no token in a URL: {git_url}");
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{reader}"))
    );
    assert_eq!(get(&s, &info_refs, Some(&basic), "*/*").await.status(), 200);
    // … and nothing else of /v1 beyond whoami; it writes nothing.
    let (status, who) = s.get_json(&format!("{}/v1/whoami", t.root), &reader).await;
    assert_eq!((status, who["role"].as_str()), (StatusCode::OK, Some("reader")));
    for path in [
        "/v1/plugins",
        "/v1/plugins/tool",
        "/v1/skills",
        "/v1/commands",
        "/v1/tenant",
        "/v1/usage",
        "/v1/tokens",
        "/v1/audit",
    ] {
        let (status, v) = s.get_json(&format!("{}{path}", t.root), &reader).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    let (status, _) = s
        .post_json(&format!("{}/v1/tokens", t.root), &reader, &json!({"name": "x", "role": "admin"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &reader, "application/gzip", vec![0; 10])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant stays public.
    let other_cat = format!("{}/.claude-plugin/marketplace.json", other.root);
    assert_eq!(get(&s, &other_cat, None, "application/json").await.status(), 200);

    // A developer: login with the reader token, `setup claude`, then plain git clones through
    // the credential helper, with no token in the URL.
    let home = tempfile::tempdir().unwrap();
    let out = sp(home.path(), &["login", "--url", &t.root, "--token", &reader], None, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sp(home.path(), &["setup", "claude"], None, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("plain http") && said.contains("stored in"),
        "warns about the static header: {said}"
    );
    let settings_path = home.path().join(".claude/settings.json");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(&settings_path).unwrap()).unwrap();
    let source = &settings["extraKnownMarketplaces"]["acme"]["source"];
    assert_eq!(source["url"], t.root.as_str());
    assert_eq!(source["headers"]["Authorization"], format!("Bearer {reader}"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&settings_path).unwrap().permissions().mode() & 0o777, 0o600);
    let gitconfig = std::fs::read_to_string(home.path().join(".gitconfig")).unwrap();
    assert!(gitconfig.contains("auth git-credential"), "{gitconfig}");
    // Twice is the same as once.
    let out = sp(home.path(), &["setup", "claude"], None, &[]);
    assert!(text(&out).contains("already"), "{}", text(&out));
    let gitconfig_again = std::fs::read_to_string(home.path().join(".gitconfig")).unwrap();
    assert_eq!(gitconfig, gitconfig_again);

    let work = tempfile::tempdir().unwrap();
    let out = git(
        home.path(),
        work.path(),
        &["-c", "protocol.version=2", "clone", "-q", "--depth", "1", &git_url, "tool"],
    );
    assert!(out.status.success(), "clone through the helper: {}", text(&out));
    let files = tree(&work.path().join("tool"));
    assert!(
        files.contains_key("commands/hello.md") && files["scripts/run.sh"].0,
        "{:?}",
        files.keys()
    );
    // Without the helper (another HOME), git gets the 401 and nothing.
    let stranger = tempfile::tempdir().unwrap();
    let out = git(stranger.path(), work.path(), &["clone", "-q", "--depth", "1", &git_url, "nothing"]);
    assert!(!out.status.success());
    assert!(!work.path().join("nothing/commands").exists());

    // The helpers themselves.
    let port_host = url::Url::parse(&t.root).unwrap();
    let host = format!("{}:{}", port_host.host_str().unwrap(), port_host.port().unwrap());
    let out = sp(
        home.path(),
        &["auth", "git-credential", "get"],
        Some(&format!("protocol=http\nhost={host}\n\n")),
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("username=skill-pool\npassword={reader}\n")
    );
    let out = sp(
        home.path(),
        &["auth", "git-credential", "get"],
        Some("protocol=https\nhost=github.com\n\n"),
        &[],
    );
    assert!(out.status.success() && out.stdout.is_empty(), "nothing for another host");
    let out = sp(
        home.path(),
        &["auth", "header"],
        None,
        &[("CLAUDE_CODE_MARKETPLACE_URL", &catalogue)],
    );
    let header: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(header["Authorization"], format!("Bearer {reader}"));
    let out = sp(
        home.path(),
        &["auth", "header"],
        None,
        &[("CLAUDE_CODE_MARKETPLACE_URL", "https://elsewhere.example/m.json")],
    );
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "no token for another server: {}",
        text(&out)
    );

    // Public again: anyone reads it.
    let out = common::server::cli(&t, &t.admin, &["tenant", "set", "--visibility", "public"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(get(&s, &catalogue, None, "application/json").await.status(), 200);
    let (_, audit) = s.get_json(&format!("{}/v1/audit?action=tenant.update", t.root), &t.admin).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    s.stop().await;
});

both_backends!(tokens_expire_and_members_cannot_change_the_tenant, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let (status, v) = s
        .post_json(
            &format!("{}/v1/tokens", t.root),
            &t.admin,
            &json!({"name": "short", "role": "reader", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(v["token"]["expires_at"].is_string(), "{v}");
    let (status, v) = s
        .post_json(
            &format!("{}/v1/tokens", t.root),
            &t.admin,
            &json!({"name": "forever", "role": "reader", "expires_in_days": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // A member reads the settings but cannot change them; bad values are refused with a reason.
    let (status, _) = s.get_json(&format!("{}/v1/tenant", t.root), &t.member).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .patch_json(&format!("{}/v1/tenant", t.root), &t.member, &json!({"visibility": "private"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .patch_json(&format!("{}/v1/tenant", t.root), &t.admin, &json!({"visibility": "secret"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, settings) = s.get_json(&format!("{}/v1/tenant", t.root), &t.member).await;
    assert_eq!(settings["visibility"], "public");
    s.stop().await;
});
