//! Every route the server registers × every kind of credential (issue 12, point 14).
//!
//! The routes are read from the router's own source (`routes/mod.rs`, `portal/mod.rs`,
//! `lib.rs`): a route added there and not classified here fails this test, so a new route cannot
//! be forgotten. Each is called with no token, a garbage token, a revoked token, a reader token,
//! a member token and another tenant's admin token; the answer must match the route's access
//! class, and afterwards nothing of the tenant has changed. Then the tenant is made private and
//! its public surface is called again: without a credential of the tenant, no byte of it
//! leaves (catalogue, tenant root, marketplace pages, git).

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries) as a user would

mod common;

use std::collections::BTreeSet;

use common::server::{TestServer, skill_md, tar_gz};
use reqwest::Method;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// `(METHOD, path template)` of every `.route(…)` in `file` (under `crates/server/src`).
fn routes_in(file: &str) -> Vec<(String, String)> {
    let path = format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[..end];
        let Some(q1) = args.find('"') else { continue };
        let Some(q2) = args[q1 + 1..].find('"') else { continue };
        let route = args[q1 + 1..q1 + 1 + q2].to_string();
        let handlers = &args[q1 + 2 + q2..];
        for (word, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("patch(", "PATCH"),
            ("delete(", "DELETE"),
            ("put(", "PUT"),
        ] {
            let found = handlers.match_indices(word).any(|(i, _)| {
                // `get(` itself or `.get(`, not a longer name ending in `get(`.
                i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric() && handlers.as_bytes()[i - 1] != b'_'
            });
            if found {
                out.push((method.to_string(), route.clone()));
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone: the catalogue, git, the public pages, health.
    Public,
    /// Any token of the tenant, a reader's included (`whoami`).
    Reader,
    /// A member token of the tenant.
    Member,
    /// An admin token of the tenant.
    Admin,
    /// The portal: a session cookie, never a bearer token.
    Portal,
}

struct Case {
    method: &'static str,
    template: &'static str,
    access: Access,
    /// The concrete path to call, relative to the tenant root (or the server for ops routes).
    path: &'static str,
    body: Option<(&'static str, Vec<u8>)>,
    /// Outside the tenant (`/healthz`, `/metrics`).
    top_level: bool,
}

fn case(method: &'static str, template: &'static str, access: Access, path: &'static str) -> Case {
    Case {
        method,
        template,
        access,
        path,
        body: None,
        top_level: false,
    }
}

fn with_body(mut c: Case, content_type: &'static str, body: Vec<u8>) -> Case {
    c.body = Some((content_type, body));
    c
}

fn json_body(c: Case, v: Value) -> Case {
    with_body(c, "application/json", v.to_string().into_bytes())
}

fn cases() -> Vec<Case> {
    use Access::*;
    let gz = tar_gz(&[("SKILL.md", 0o644, skill_md("intruder", "d", "b").as_bytes())]);
    let plugin_gz = tar_gz(&[(".claude-plugin/plugin.json", 0o644, br#"{"name":"intruder","version":"9.9.9"}"#)]);
    let mut ops = vec![
        case("GET", "/healthz", Public, "/healthz"),
        case("GET", "/readyz", Public, "/readyz"),
        case("GET", "/metrics", Public, "/metrics"),
    ];
    for c in &mut ops {
        c.top_level = true;
    }
    let mut all = ops;
    all.extend([
        case("GET", "/", Public, "/"),
        case(
            "GET",
            "/.claude-plugin/marketplace.json",
            Public,
            "/.claude-plugin/marketplace.json",
        ),
        case("GET", "/archives/{plugin}/{file}", Public, "/archives/p/1.0.0.zip"),
        case(
            "GET",
            "/git/plugins/{repo}/info/refs",
            Public,
            "/git/plugins/p.git/info/refs?service=git-upload-pack",
        ),
        with_body(
            case(
                "POST",
                "/git/plugins/{repo}/git-upload-pack",
                Public,
                "/git/plugins/p.git/git-upload-pack",
            ),
            "application/x-git-upload-pack-request",
            b"0000".to_vec(),
        ),
        case(
            "POST",
            "/git/plugins/{repo}/git-receive-pack",
            Public,
            "/git/plugins/p.git/git-receive-pack",
        ),
        case("GET", "/v1/openapi.json", Public, "/v1/openapi.json"),
        case("GET", "/v1/whoami", Reader, "/v1/whoami"),
        case("GET", "/v1/usage", Member, "/v1/usage"),
        case("GET", "/v1/tenant", Member, "/v1/tenant"),
        json_body(case("PATCH", "/v1/tenant", Admin, "/v1/tenant"), json!({"visibility": "public"})),
        case("GET", "/v1/installs", Member, "/v1/installs?days=7"),
        case("GET", "/v1/plugins", Member, "/v1/plugins"),
        json_body(
            case("POST", "/v1/plugins", Admin, "/v1/plugins"),
            json!({"slug": "intruder", "contents": [{"kind": "skill", "slug": "greet"}]}),
        ),
        with_body(
            case("POST", "/v1/plugins/publish", Admin, "/v1/plugins/publish"),
            "application/gzip",
            plugin_gz,
        ),
        json_body(
            case("POST", "/v1/plugins/import-catalogue", Admin, "/v1/plugins/import-catalogue"),
            json!({"catalogue": {"name": "x", "owner": {"name": "x"}, "plugins": []}}),
        ),
        json_body(
            case("POST", "/v1/plugins/import", Admin, "/v1/plugins/import"),
            json!({"url": "https://example.com/x.git"}),
        ),
        case("POST", "/v1/plugins/{slug}/refresh", Admin, "/v1/plugins/p/refresh"),
        case("POST", "/v1/plugins/{slug}/accept", Admin, "/v1/plugins/p/accept"),
        case(
            "POST",
            "/v1/plugins/{slug}/versions/{version}/purge",
            Admin,
            "/v1/plugins/p/versions/1.0.0/purge",
        ),
        json_body(
            case("POST", "/v1/plugins/{slug}/serve", Admin, "/v1/plugins/p/serve"),
            json!({"latest": true}),
        ),
        json_body(
            case("POST", "/v1/plugins/{slug}/policy", Admin, "/v1/plugins/p/policy"),
            json!({"install_policy": "hidden"}),
        ),
        case("GET", "/v1/jobs/{id}", Member, "/v1/jobs/1"),
        case("GET", "/v1/plugins/{slug}", Member, "/v1/plugins/p"),
        json_body(
            case("PATCH", "/v1/plugins/{slug}", Admin, "/v1/plugins/p"),
            json!({"description": "defaced"}),
        ),
        case("DELETE", "/v1/plugins/{slug}", Admin, "/v1/plugins/p"),
        case("GET", "/v1/tokens", Admin, "/v1/tokens"),
        json_body(
            case("POST", "/v1/tokens", Admin, "/v1/tokens"),
            json!({"name": "intruder", "role": "admin"}),
        ),
        case("DELETE", "/v1/tokens/{id}", Admin, "/v1/tokens/1"),
        case("GET", "/v1/audit", Admin, "/v1/audit"),
        case("GET", "/v1/managed-settings", Admin, "/v1/managed-settings"),
        case("GET", "/v1/{kind}", Member, "/v1/skills"),
        with_body(
            case("POST", "/v1/{kind}", Admin, "/v1/skills?slug=intruder"),
            "application/gzip",
            gz,
        ),
        case("GET", "/v1/{kind}/{slug}", Member, "/v1/skills/greet"),
        case("GET", "/v1/{kind}/{slug}/versions", Member, "/v1/skills/greet/versions"),
        case(
            "GET",
            "/v1/{kind}/{slug}/versions/{version}",
            Member,
            "/v1/skills/greet/versions/1.0.0",
        ),
        case(
            "GET",
            "/v1/{kind}/{slug}/versions/{version}/download",
            Member,
            "/v1/skills/greet/versions/1.0.0/download",
        ),
        case(
            "POST",
            "/v1/{kind}/{slug}/versions/{version}/archive",
            Admin,
            "/v1/skills/greet/versions/1.0.0/archive",
        ),
        case("GET", "/-/static/portal.css", Public, "/-/static/portal.css"),
        case("GET", "/-/static/portal.js", Public, "/-/static/portal.js"),
        case("GET", "/-/brand.css", Public, "/-/brand.css"),
        case("GET", "/marketplace", Public, "/marketplace"),
        case("GET", "/marketplace/{slug}", Public, "/marketplace/p"),
        case("GET", "/portal", Portal, "/portal"),
        case("GET", "/portal/", Portal, "/portal/"),
        case("GET", "/portal/login", Public, "/portal/login"),
        with_body(
            case("POST", "/portal/login", Portal, "/portal/login"),
            "application/x-www-form-urlencoded",
            b"username=ana&password=guess".to_vec(),
        ),
        case("POST", "/portal/logout", Portal, "/portal/logout"),
        case("GET", "/portal/settings", Portal, "/portal/settings"),
        case("POST", "/portal/settings", Portal, "/portal/settings"),
        case("GET", "/portal/tokens", Portal, "/portal/tokens"),
        case("POST", "/portal/tokens", Portal, "/portal/tokens"),
        case("POST", "/portal/tokens/{id}/revoke", Portal, "/portal/tokens/1/revoke"),
        case("GET", "/portal/audit", Portal, "/portal/audit"),
        case("GET", "/portal/registry/{kind}", Portal, "/portal/registry/skills"),
        case("GET", "/portal/registry/{kind}/{slug}", Portal, "/portal/registry/skills/greet"),
        case(
            "POST",
            "/portal/registry/{kind}/{slug}/{version}/archive",
            Portal,
            "/portal/registry/skills/greet/1.0.0/archive",
        ),
        case(
            "POST",
            "/portal/registry/{kind}/{slug}/{version}/unarchive",
            Portal,
            "/portal/registry/skills/greet/1.0.0/unarchive",
        ),
        case("GET", "/portal/plugins", Portal, "/portal/plugins"),
        case("GET", "/portal/plugins/new", Portal, "/portal/plugins/new"),
        case("POST", "/portal/plugins/new", Portal, "/portal/plugins/new"),
        case("POST", "/portal/plugins/validate", Portal, "/portal/plugins/validate"),
        case("GET", "/portal/plugins/{slug}", Portal, "/portal/plugins/p"),
        case("GET", "/portal/plugins/{slug}/edit", Portal, "/portal/plugins/p/edit"),
        case("POST", "/portal/plugins/{slug}/edit", Portal, "/portal/plugins/p/edit"),
        case("POST", "/portal/plugins/{slug}/refresh", Portal, "/portal/plugins/p/refresh"),
        case("POST", "/portal/plugins/{slug}/accept", Portal, "/portal/plugins/p/accept"),
        case("GET", "/portal/plugins/{slug}/delete", Portal, "/portal/plugins/p/delete"),
        case("POST", "/portal/plugins/{slug}/delete", Portal, "/portal/plugins/p/delete"),
    ]);
    all
}

#[test]
fn every_registered_route_is_in_the_matrix() {
    let registered: BTreeSet<(String, String)> = ["routes/mod.rs", "portal/mod.rs", "lib.rs"]
        .iter()
        .flat_map(|f| routes_in(f))
        .collect();
    assert!(registered.len() > 40, "the route scan found too little: {registered:?}");
    let classified: BTreeSet<(String, String)> = cases().iter().map(|c| (c.method.to_string(), c.template.to_string())).collect();
    let missing: Vec<_> = registered.difference(&classified).collect();
    assert!(
        missing.is_empty(),
        "routes not in the credential matrix (add them to cases()): {missing:?}"
    );
    let stale: Vec<_> = classified.difference(&registered).collect();
    assert!(stale.is_empty(), "matrix entries for routes that no longer exist: {stale:?}");
}

/// Calls the case's route under `base` with `token` as a bearer: (status, body).
async fn call(http: &reqwest::Client, base: &str, c: &Case, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http.request(Method::from_bytes(c.method.as_bytes()).unwrap(), format!("{base}{path}"));
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    if let Some((ct, body)) = &c.body {
        req = req.header("content-type", *ct).body(body.clone());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// What of the tenant a caller could change: compared before and after.
async fn snapshot(s: &TestServer, root: &str, admin: &str) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/v1/plugins",
        "/v1/skills",
        "/v1/tokens",
        "/v1/plugins/p",
        "/v1/skills/greet/versions",
    ] {
        let (_, v) = s.get_json(&format!("{root}{path}"), admin).await;
        let mut v = v;
        // Token use times move with every call; what matters is which tokens exist.
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                if let Some(o) = item.as_object_mut() {
                    o.remove("last_used_at");
                }
            }
        }
        out.push(format!("{path}: {v}"));
    }
    let catalogue = s
        .http
        .get(format!("{root}/.claude-plugin/marketplace.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    out.push(catalogue);
    out
}

both_backends!(every_route_answers_every_credential_as_its_class_allows, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| c.auth_failures_per_min = 0).await;
    let t = s.tenant("acme").await;
    let other = s.tenant("globex").await;
    // Something to attack: a skill and a plugin pinning it.
    let (st, v) = s
        .post_bytes(
            &format!("{}/v1/skills?slug=greet&version=1.0.0", t.root),
            &t.admin,
            "application/gzip",
            tar_gz(&[("SKILL.md", 0o644, skill_md("greet", "Greets", "hi").as_bytes())]),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .post_json(
            &format!("{}/v1/plugins", t.root),
            &t.admin,
            &json!({"slug": "p", "contents": [{"kind": "skill", "slug": "greet"}]}),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (_, created) = s
        .post_json(
            &format!("{}/v1/tokens", t.root),
            &t.admin,
            &json!({"name": "gone", "role": "admin"}),
        )
        .await;
    let revoked = created["secret"].as_str().unwrap().to_string();
    let id = created["token"]["id"].as_i64().unwrap();
    let res = s
        .http
        .delete(format!("{}/v1/tokens/{id}", t.root))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    let (_, created) = s
        .post_json(
            &format!("{}/v1/tokens", t.root),
            &t.admin,
            &json!({"name": "laptops", "role": "reader"}),
        )
        .await;
    let reader = created["secret"].as_str().unwrap().to_string();

    let before = snapshot(&s, &t.root, &t.admin).await;
    // Redirects are answers here (the portal sends a caller without a session to sign in).
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let credentials: [(&str, Option<&str>); 6] = [
        ("no token", None),
        ("a garbage token", Some("sp_garbage0000000000000000000000000000000000")),
        ("a revoked token", Some(&revoked)),
        ("a reader token", Some(&reader)),
        ("a member token", Some(&t.member)),
        ("another tenant's admin token", Some(&other.admin)),
    ];
    for c in cases() {
        for (who, token) in credentials {
            let base = if c.top_level { &s.url } else { &t.root };
            let (status, text) = call(&http, base, &c, c.path, token).await;
            let what = format!(
                "{} {} with {who}: {status} {}",
                c.method,
                c.path,
                text.chars().take(200).collect::<String>()
            );
            assert!(status < 500, "{what}");
            match c.access {
                Access::Public => assert!(status != 401 && status != 403 || c.template.contains("receive-pack"), "{what}"),
                Access::Reader | Access::Member | Access::Admin => match who {
                    "no token" | "a garbage token" | "a revoked token" => assert_eq!(status, 401, "{what}"),
                    "another tenant's admin token" => assert_eq!(status, 404, "{what}"),
                    _ if c.access == Access::Admin => assert_eq!(status, 403, "{what}"),
                    "a reader token" if c.access == Access::Member => assert_eq!(status, 403, "{what}"),
                    _ => assert!(status != 401 && status != 403, "{what}"),
                },
                // A bearer token never opens the portal: pages send the caller to sign in, and
                // forms are refused (no session, no CSRF token).
                Access::Portal => {
                    if c.method == "GET" {
                        assert!(status == 303 || status == 401 || status == 403, "{what}");
                    } else {
                        assert!(status == 303 || status == 401 || status == 403 || status == 429, "{what}");
                    }
                    assert!(!text.contains("defaced") && !text.contains("sp_"), "{what}");
                }
            }
        }
    }
    let after = snapshot(&s, &t.root, &t.admin).await;
    assert_eq!(before, after, "a caller without the right changed the tenant");

    // Private (and serving archives, so that the zip exists): the public surface needs a token
    // of the tenant (any role); the tenant's bytes (its plugin `p`, the skill `greet`, commit
    // ids, the zip) never reach anyone else.
    let (status, _) = s
        .patch_json(
            &format!("{}/v1/tenant", t.root),
            &t.admin,
            &json!({"visibility": "private", "serve_as": "archive"}),
        )
        .await;
    assert!(status.is_success());
    let (_, listed) = s.get_json(&format!("{}/v1/plugins/p", t.root), &t.admin).await;
    let commit = listed["versions"][0]["commit"].as_str().expect("a commit id").to_string();
    let zip = format!(
        "/archives/p/{}.zip",
        listed["current"]["effective_version"].as_str().expect("a version")
    );
    for c in cases().iter().filter(|c| c.access == Access::Public && !c.top_level) {
        for (who, token) in credentials {
            let path = if c.template.starts_with("/archives/") {
                zip.as_str()
            } else {
                c.path
            };
            let (status, text) = call(&http, &t.root, c, path, token).await;
            let what = format!(
                "private: {} {} with {who}: {status} {}",
                c.method,
                c.path,
                text.chars().take(200).collect::<String>()
            );
            assert!(status < 500, "{what}");
            // No byte of the tenant in these: assets, the sign-in page, the API description, and
            // the push refusal.
            let open = c.path.starts_with("/-/")
                || c.path == "/portal/login"
                || c.path == "/v1/openapi.json"
                || c.template.contains("receive-pack");
            let pages = c.path.starts_with("/marketplace");
            let allowed = matches!(who, "a reader token" | "a member token");
            if open {
                continue;
            }
            if pages {
                // Pages are for signed-in browsers: everyone else is sent to sign in.
                assert_eq!(status, 303, "{what}");
            } else if allowed {
                assert!(status != 401 && status != 403, "{what}");
                if c.template.starts_with("/archives/") {
                    assert_eq!(status, 200, "the zip is there for its readers: {what}");
                }
                continue;
            } else {
                assert_eq!(status, 401, "{what}");
            }
            assert!(!text.contains("greet") && !text.contains(&commit), "{what}");
        }
    }
    s.stop().await;
});
