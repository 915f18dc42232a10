//! The portal over HTTP on SQLite and PostgreSQL: sign-in and sign-out, the session cookie's
//! flags, CSRF refusals, roles, the failed sign-in limit, sign-in with a token, security
//! headers, escaping of what users typed, the composer publishing through the API's use case
//! (the audit log names the user), and the public marketplace browser.

mod common;

use std::time::Duration;

use common::portal::{Browser, PASSWORD, add_user};
use common::server::{TestServer, TestTenant, tar_gz};
use common::upstream::{Fault, Upstream};
use reqwest::StatusCode;
use serde_json::json;
use skill_pool_core::Role;
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

fn assert_security_headers(page: &common::portal::Page, what: &str) {
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(page.header("x-content-type-options"), "nosniff", "{what}");
    assert!(!page.header("referrer-policy").is_empty(), "{what}");
    assert!(page.header("content-type").starts_with("text/html"), "{what}");
    assert!(!page.body.contains("<script>"), "{what}: inline script");
    assert!(!page.body.contains("<style"), "{what}: inline style");
}

async fn setup(s: &TestServer) -> TestTenant {
    let t = s.tenant("acme").await;
    add_user(&s.registry, "acme", "ana", Role::Admin).await;
    add_user(&s.registry, "acme", "max", Role::Member).await;
    t
}

/// Registers a skill and an agent through the API.
async fn register_pieces(s: &TestServer, t: &TestTenant) {
    for (v, body) in [("1.0.0", "Review the diff."), ("1.1.0", "Review the diff, carefully.")] {
        let md = format!("---\nname: review\ndescription: Reviews code\n---\n{body}\n");
        let (st, b) = s
            .post_bytes(
                &format!("{}/v1/skills?slug=review&version={v}", t.root),
                &t.admin,
                "application/gzip",
                tar_gz(&[("SKILL.md", 0o644, md.as_bytes())]),
            )
            .await;
        assert!(st.is_success(), "{b}");
    }
    let (st, b) = s
        .post_bytes(
            &format!("{}/v1/agents?slug=helper&version=1.0.0", t.root),
            &t.admin,
            "text/markdown",
            b"---\nname: helper\ndescription: Helps\n---\nHelp.\n".to_vec(),
        )
        .await;
    assert!(st.is_success(), "{b}");
}

both_backends!(sign_in_cookie_and_sign_out, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    let mut b = Browser::new();

    // Not signed in: the portal sends the browser to the sign-in page and back.
    let page = b.get(&format!("{}/portal/plugins", t.root)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.header("location").starts_with("/t/acme/portal/login?next="),
        "{}",
        page.header("location")
    );

    let login = b.get(&format!("{}/portal/login", t.root)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_security_headers(&login, "login");

    let wrong = b.sign_in(&t.root, "ana", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("wrong username or password"), "{}", wrong.body);
    assert!(wrong.set_cookie("sp_session").is_none());

    let ok = b.sign_in(&t.root, "ana", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let cookie = ok.set_cookie("sp_session").expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/t/acme", "Max-Age="] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    let secret = b.cookies["sp_session"].clone();

    let plugins = b.get(&format!("{}/portal/plugins", t.root)).await;
    assert_eq!(plugins.status, StatusCode::OK);
    assert!(plugins.body.contains("ana"), "{}", plugins.body);
    assert_security_headers(&plugins, "plugins");

    // Only the hash of the secret is stored: the database has no row with the secret.
    let (st, audit) = s.get_json(&format!("{}/v1/audit", t.root), &t.admin).await;
    assert_eq!(st, StatusCode::OK);
    let sign_in = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session.sign_in")
        .expect("audited");
    assert!(sign_in["actor"].as_str().unwrap().starts_with("user:ana#"), "{sign_in}");
    assert!(!audit.to_string().contains(&secret));

    // Sign-out needs the form's CSRF token; without it: 403 as an HTML page.
    let refused = b.post(&format!("{}/portal/logout", t.root), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.header("content-type").starts_with("text/html"));
    assert!(refused.body.contains("CSRF"), "{}", refused.body);
    assert_security_headers(&refused, "403 page");
    let csrf = plugins.csrf();
    let out = b.post(&format!("{}/portal/logout", t.root), &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie("sp_session").unwrap().contains("Max-Age=0"));
    // The session is gone from the database: the old cookie no longer works.
    let mut replay = Browser::new();
    replay.cookies.insert("sp_session".into(), secret);
    let page = replay.get(&format!("{}/portal/plugins", t.root)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    // A session of one tenant is nothing on another.
    s.tenant("globex").await;
    let mut b2 = Browser::new();
    b2.sign_in(&t.root, "ana", PASSWORD).await;
    let secret = b2.cookies["sp_session"].clone();
    let mut other = Browser::new();
    other.cookies.insert("sp_session".into(), secret);
    let page = other.get(&format!("{}/t/globex/portal/plugins", s.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    s.stop().await;
});

both_backends!(https_public_url_makes_cookies_secure, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| c.public_url = "https://pool.example.com".into()).await;
    let t = setup(&s).await;
    let mut b = Browser::new();
    let login = b.get(&format!("{}/portal/login", t.root)).await;
    assert!(login.set_cookie("sp_login_csrf").unwrap().contains("; Secure"));
    let ok = b.sign_in(&t.root, "ana", PASSWORD).await;
    assert!(ok.set_cookie("sp_session").unwrap().contains("; Secure"));
    s.stop().await;
});

both_backends!(forms_without_the_csrf_token_are_refused, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    let mut b = Browser::new();
    // The sign-in form needs the token of its cookie.
    let login = b.get(&format!("{}/portal/login", t.root)).await;
    let _ = login;
    let page = b
        .post(
            &format!("{}/portal/login", t.root),
            &[("method", "password"), ("username", "ana"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.set_cookie("sp_session").is_none());
    b.sign_in(&t.root, "ana", PASSWORD).await;
    let before = s
        .registry
        .list_tokens(&skill_pool_registry::Actor::operator(tenant_id(&s, "acme").await))
        .await
        .unwrap()
        .len();
    for (path, form) in [
        ("/portal/tokens", vec![("name", "ci"), ("role", "admin")]),
        ("/portal/tokens", vec![("name", "ci"), ("role", "admin"), ("csrf", "wrong")]),
        ("/portal/settings", vec![("display_name", "Evil")]),
        ("/portal/plugins/new", vec![("slug", "p"), ("action", "publish")]),
    ] {
        let page = b.post(&format!("{}{path}", t.root), &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.header("content-type").starts_with("text/html"), "{path}");
    }
    let after = s
        .registry
        .list_tokens(&skill_pool_registry::Actor::operator(tenant_id(&s, "acme").await))
        .await
        .unwrap()
        .len();
    assert_eq!(before, after, "nothing was created");
    s.stop().await;
});

async fn tenant_id(s: &TestServer, slug: &str) -> skill_pool_store::TenantId {
    s.registry.tenant_by_slug(slug).await.unwrap().unwrap().id
}

both_backends!(members_read_and_admins_write, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    register_pieces(&s, &t).await;
    let mut b = Browser::new();
    assert_eq!(b.sign_in(&t.root, "max", PASSWORD).await.status, StatusCode::SEE_OTHER);
    for path in ["/portal/plugins", "/portal/registry/skills", "/portal/registry/skills/review"] {
        let page = b.get(&format!("{}{path}", t.root)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("+ New plugin"), "{path}");
    }
    for path in ["/portal/plugins/new", "/portal/tokens", "/portal/audit", "/portal/settings"] {
        let page = b.get(&format!("{}{path}", t.root)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("for admins"), "{path}: {}", page.body);
        assert_security_headers(&page, path);
    }
    // A member's own valid form post is refused by the use case's role check too.
    let csrf = b.csrf(&format!("{}/portal/plugins", t.root)).await;
    let page = b
        .post(
            &format!("{}/portal/tokens", t.root),
            &[("csrf", &csrf), ("name", "x"), ("role", "admin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b
        .post(
            &format!("{}/portal/registry/skills/review/1.0.0/archive", t.root),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    s.stop().await;
});

both_backends!(failed_sign_ins_are_limited_per_user_and_address, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    let mut b = Browser::new();
    for _ in 0..5 {
        assert_eq!(b.sign_in(&t.root, "ana", "wrong password!").await.status, StatusCode::UNAUTHORIZED);
    }
    // Past five failures the user is refused for the window, even with the right password.
    let page = b.sign_in(&t.root, "ana", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("too many failed sign-ins for this user"), "{}", page.body);
    assert!(page.set_cookie("sp_session").is_none());
    // Another user is not locked by ana's failures…
    assert_eq!(b.sign_in(&t.root, "max", PASSWORD).await.status, StatusCode::SEE_OTHER);
    // …until the address has failed twenty times (here with unknown names).
    let mut b = Browser::new();
    for i in 0..15 {
        let page = b.sign_in(&t.root, &format!("nobody{i}"), "x").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{i}");
    }
    let page = b.sign_in(&t.root, "max", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("from your address"), "{}", page.body);
    s.stop().await;
});

both_backends!(a_pasted_token_becomes_a_session_until_it_is_revoked, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    let mut b = Browser::new();
    let login = b.get(&format!("{}/portal/login", t.root)).await;
    let csrf = login.csrf();
    let page = b
        .post(
            &format!("{}/portal/login", t.root),
            &[("csrf", &csrf), ("method", "token"), ("token", "sp_nope")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let login = b.get(&format!("{}/portal/login", t.root)).await;
    let page = b
        .post(
            &format!("{}/portal/login", t.root),
            &[("csrf", &login.csrf()), ("method", "token"), ("token", &t.admin)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let tokens = b.get(&format!("{}/portal/tokens", t.root)).await;
    assert_eq!(tokens.status, StatusCode::OK, "an admin token gives an admin session");
    assert!(tokens.body.contains("test-admin"));
    // Create a token in the portal: shown once, with a copy button; the audit names the token.
    let page = b
        .post(
            &format!("{}/portal/tokens", t.root),
            &[("csrf", &tokens.csrf()), ("name", "ci <b>bot</b>"), ("role", "member")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ci &#60;b&#62;bot&#60;/b&#62;"), "escaped: {}", page.body);
    let at = page.body.find("data-copy=\"sp_").expect("copy button with the secret");
    let secret: String = page.body[at + 11..].chars().take_while(|c| *c != '"').collect();
    let (st, me) = s.get_json(&format!("{}/v1/whoami", t.root), &secret).await;
    assert_eq!((st, me["role"].as_str()), (StatusCode::OK, Some("member")));
    // A reader token with an expiry, for the laptops of a private tenant.
    let page = b
        .post(
            &format!("{}/portal/tokens", t.root),
            &[
                ("csrf", &tokens.csrf()),
                ("name", "laptops"),
                ("role", "reader"),
                ("expires_in_days", "90"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("until"), "the expiry is shown: {}", page.body);
    let (_, list) = s.get_json(&format!("{}/v1/tokens", t.root), &t.admin).await;
    let laptops = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "laptops")
        .unwrap()
        .clone();
    assert_eq!(laptops["role"], "reader");
    assert!(laptops["expires_at"].is_string(), "{laptops}");
    let page = b
        .post(
            &format!("{}/portal/tokens", t.root),
            &[
                ("csrf", &tokens.csrf()),
                ("name", "never"),
                ("role", "reader"),
                ("expires_in_days", "99999"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert!(page.body.contains("1 to 3650 days"), "{}", page.body);
    let (_, audit) = s.get_json(&format!("{}/v1/audit", t.root), &t.admin).await;
    let created = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "token.create")
        .unwrap();
    assert!(created["actor"].as_str().unwrap().starts_with("token:test-admin#"), "{created}");
    // Revoking the token signed in with ends the session.
    let (_, list) = s.get_json(&format!("{}/v1/tokens", t.root), &t.admin).await;
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "test-admin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (st, _) = s.post_json(&format!("{}/v1/tokens", t.root), &t.member, &json!({})).await;
    assert_ne!(st, StatusCode::OK);
    let res = s
        .http
        .delete(format!("{}/v1/tokens/{id}", t.root))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let page = b.get(&format!("{}/portal/tokens", t.root)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the session ended with its token");
    s.stop().await;
});

both_backends!(the_composer_publishes_through_the_api_use_case, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    register_pieces(&s, &t).await;
    let mut b = Browser::new();
    b.sign_in(&t.root, "ana", PASSWORD).await;
    let new = b.get(&format!("{}/portal/plugins/new", t.root)).await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.body.contains("value=\"skill:review\"") && new.body.contains("value=\"agent:helper\""));
    assert!(new.body.contains("latest (1.1.0)"), "the version picker");
    let csrf = new.csrf();
    let url = format!("{}/portal/plugins/new", t.root);
    let hooks = r#"{"hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "echo edited"}]}]}}"#;
    let base = vec![
        ("csrf", csrf.as_str()),
        ("slug", "toolbox"),
        ("display_name", "Toolbox"),
        ("version", "1.0.0"),
        ("description", "Tools <i>for</i> review"),
        ("keywords", "review, quality"),
        ("category", "quality"),
        ("piece", "skill:review"),
        ("v:skill:review", "1.0.0"),
        ("piece", "agent:helper"),
        ("v:agent:helper", ""),
    ];

    // Invalid JSON and a hook Claude Code would refuse: the error sits next to the field.
    let mut form = base.clone();
    form.extend([("hooks", "{not json"), ("action", "preview")]);
    let page = b.post(&url, &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let at = page.body.find("name=\"hooks\"").unwrap();
    assert!(page.body[at..].contains("not valid JSON"), "{}", page.body);
    let mut form = base.clone();
    form.extend([("hooks", r#"{"hooks": {"OnSave": []}}"#), ("action", "preview")]);
    let page = b.post(&url, &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let at = page.body.find("name=\"hooks\"").unwrap();
    assert!(page.body[at..].contains("field-error"), "{}", page.body);
    let mut form = base.clone();
    form[1] = ("slug", "Not_Kebab");
    form.push(("action", "preview"));
    let page = b.post(&url, &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let at = page.body.find("name=\"slug\"").unwrap();
    assert!(page.body[at..].contains("field-error"), "{}", page.body);

    // The composer's live check: the same rules, answered as JSON, CSRF-checked too.
    let validate = format!("{}/portal/plugins/validate", t.root);
    let mut form = base.clone();
    form.push(("hooks", r#"{"hooks": {"OnSave": []}}"#));
    let page = b.post(&validate, &form).await;
    assert_eq!(page.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!((v["ok"].as_bool(), v["field"].as_str()), (Some(false), Some("hooks")), "{v}");
    let mut form = base.clone();
    form.push(("hooks", hooks));
    let v: serde_json::Value = serde_json::from_str(&b.post(&validate, &form).await.body).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["files"].as_array().unwrap().iter().any(|f| f["path"] == "hooks/hooks.json"),
        "{v}"
    );
    let page = b.post(&validate, &form[1..]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no CSRF token");

    // Preview: the tree, nothing written.
    let mut form = base.clone();
    form.extend([("hooks", hooks), ("action", "preview")]);
    let page = b.post(&url, &form).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for path in [
        ".claude-plugin/plugin.json",
        "hooks/hooks.json",
        "skills/review/SKILL.md",
        "agents/helper.md",
    ] {
        assert!(page.body.contains(&format!("<code>{path}</code>")), "{path}: {}", page.body);
    }
    let (st, _) = s.get_json(&format!("{}/v1/plugins/toolbox", t.root), &t.admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a preview publishes nothing");

    // Publish.
    let mut form = base.clone();
    form.extend([("hooks", hooks), ("action", "publish")]);
    let page = b.post(&url, &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.header("location"), "/t/acme/portal/plugins/toolbox?published=1.0.0");
    let (st, p) = s.get_json(&format!("{}/v1/plugins/toolbox", t.root), &t.admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(p["current"]["version"], "1.0.0");
    let pins: Vec<(String, String)> = p["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["slug"].as_str().unwrap().to_string(), c["version"].as_str().unwrap().to_string()))
        .collect();
    assert!(
        pins.contains(&("review".into(), "1.0.0".into())) && pins.contains(&("helper".into(), "1.0.0".into())),
        "{pins:?}"
    );
    let (_, audit) = s.get_json(&format!("{}/v1/audit", t.root), &t.admin).await;
    let composed = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"].as_str().unwrap_or("").contains("toolbox"))
        .unwrap();
    assert!(composed["actor"].as_str().unwrap().starts_with("user:ana#"), "{composed}");

    // The detail page: the pin's newer version, escaped description.
    let page = b.get(&format!("{}/portal/plugins/toolbox", t.root)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("newer version 1.1.0 exists"), "{}", page.body);
    assert!(page.body.contains("Tools &#60;i&#62;for&#60;/i&#62; review"), "{}", page.body);

    // Edit: other content under the same explicit version is the 409 hint, inline.
    let edit = b.get(&format!("{}/portal/plugins/toolbox/edit", t.root)).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("echo edited"), "hooks prefilled");
    let edit_url = format!("{}/portal/plugins/toolbox/edit", t.root);
    let mut form = base.clone();
    form.retain(|(k, _)| *k != "v:skill:review");
    form.extend([("v:skill:review", "1.1.0"), ("hooks", hooks), ("action", "publish")]);
    let page = b.post(&edit_url, &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    let at = page.body.find("name=\"version\"").unwrap();
    assert!(page.body[at..].contains("bump the version"), "{}", page.body);
    let mut form: Vec<(&str, &str)> = form.into_iter().filter(|(k, _)| *k != "version").collect();
    form.push(("version", "1.1.0"));
    let page = b.post(&edit_url, &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (_, p) = s.get_json(&format!("{}/v1/plugins/toolbox", t.root), &t.admin).await;
    assert_eq!(p["current"]["version"], "1.1.0");
    // The versions table says what each version changed.
    let page = b.get(&format!("{}/portal/plugins/toolbox", t.root)).await;
    assert!(page.body.contains("skill review 1.0.0 → 1.1.0"), "{}", page.body);
    assert!(page.body.contains("first version"));
    assert!(!page.body.contains("newer version 1.1.0 exists"));

    // Delete needs the slug typed.
    let confirm = b.get(&format!("{}/portal/plugins/toolbox/delete", t.root)).await;
    let page = b
        .post(
            &format!("{}/portal/plugins/toolbox/delete", t.root),
            &[("csrf", &confirm.csrf()), ("confirm", "nope")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = b
        .post(
            &format!("{}/portal/plugins/toolbox/delete", t.root),
            &[("csrf", &confirm.csrf()), ("confirm", "toolbox")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let (st, _) = s.get_json(&format!("{}/v1/plugins/toolbox", t.root), &t.admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
});

both_backends!(public_pages_escape_what_users_typed, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    register_pieces(&s, &t).await;
    // A `javascript:` homepage is refused by the API already…
    let (st, b) = s
        .post_json(
            &format!("{}/v1/plugins", t.root),
            &t.admin,
            &json!({"slug": "xss", "homepage": "javascript:alert(1)", "contents": [{"kind": "skill", "slug": "review"}]}),
        )
        .await;
    assert_eq!(
        (st, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("homepage")),
        "{b}"
    );
    // …and so is a `javascript:` repository (issue 12, point 9); another string is stored as
    // given (as in plugin.json), and never becomes a link.
    let (st, b) = s
        .post_json(
            &format!("{}/v1/plugins", t.root),
            &t.admin,
            &json!({"slug": "xss", "repository": "javascript:alert(2)", "contents": [{"kind": "skill", "slug": "review"}]}),
        )
        .await;
    assert_eq!(
        (st, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("repository")),
        "{b}"
    );
    let (st, b) = s
        .post_json(
            &format!("{}/v1/plugins", t.root),
            &t.admin,
            &json!({
                "slug": "xss",
                "display_name": "<img src=x onerror=alert(1)>",
                "description": "<script>alert('d')</script>",
                "keywords": ["\"><script>k</script>"],
                "category": "<b>cat</b>",
                "repository": "git@github.com:o/r.git",
                "contents": [{"kind": "skill", "slug": "review"}],
                "blobs": {"hooks": {"hooks": {"PostToolUse": [{"hooks": [{"type": "command", "command": "echo '<script>x</script>'"}]}]}}}
            }),
        )
        .await;
    assert!(st.is_success(), "{b}");
    let (_, p) = s.get_json(&format!("{}/v1/plugins/xss", t.root), &t.admin).await;
    assert_eq!(p["repository"], "git@github.com:o/r.git", "{p}");
    let mut browser = Browser::new();
    for path in ["/marketplace", "/marketplace/xss", "/", "/marketplace?q=cat"] {
        let page = browser.get(&format!("{}{path}", t.root)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_security_headers(&page, path);
        for raw in ["<script>alert", "<img src=x", "<b>cat", "\"><script>k", "javascript:", "<script>x"] {
            assert!(!page.body.contains(raw), "{path}: {raw} in {}", page.body);
        }
        assert!(page.body.contains("&#60;script&#62;alert"), "{path}: escaped description");
    }
    // Branding: a `javascript:` logo is refused; an accent colour goes to a stylesheet.
    browser.sign_in(&t.root, "ana", PASSWORD).await;
    let csrf = browser.csrf(&format!("{}/portal/settings", t.root)).await;
    let page = browser
        .post(
            &format!("{}/portal/settings", t.root),
            &[("csrf", &csrf), ("display_name", "Acme"), ("logo_url", "javascript:alert(1)")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = browser
        .post(
            &format!("{}/portal/settings", t.root),
            &[
                ("csrf", &csrf),
                ("display_name", "Acme <Tools>"),
                ("logo_url", "https://cdn.example.com/logo.svg"),
                ("accent_color", "#AA3300"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = Browser::new().get(&format!("{}/marketplace", t.root)).await;
    assert!(page.body.contains("Acme &#60;Tools&#62;"), "{}", page.body);
    assert!(page.body.contains("src=\"https://cdn.example.com/logo.svg\""));
    let css = Browser::new().get(&format!("{}/-/brand.css", t.root)).await;
    assert!(css.body.contains("--accent: #aa3300"), "{}", css.body);
    // The catalogue's owner name follows the display name.
    let cat: serde_json::Value = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cat["owner"]["name"], "Acme <Tools>");
    s.stop().await;
});

both_backends!(
    the_public_browser_searches_and_the_root_still_serves_claude_code,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = setup(&s).await;
        register_pieces(&s, &t).await;
        for (slug, kw, cat) in [("lint-kit", "quality", "dev"), ("deploy-kit", "release", "ops")] {
            let (st, b) = s
                .post_json(
                    &format!("{}/v1/plugins", t.root),
                    &t.admin,
                    &json!({"slug": slug, "description": format!("{slug} description"), "keywords": [kw], "category": cat,
                        "contents": [{"kind": "agent", "slug": "helper"}]}),
                )
                .await;
            assert!(st.is_success(), "{b}");
        }
        let mut b = Browser::new();
        let page = b.get(&format!("{}/marketplace?q=release", t.root)).await;
        assert!(page.body.contains("id=\"plugin-deploy-kit\"") && !page.body.contains("id=\"plugin-lint-kit\""));
        assert!(page.body.contains("/plugin install deploy-kit@acme"));
        assert!(page.body.contains(&format!("/plugin marketplace add {}", t.root)));
        let page = b.get(&format!("{}/marketplace?category=dev", t.root)).await;
        assert!(page.body.contains("id=\"plugin-lint-kit\"") && !page.body.contains("id=\"plugin-deploy-kit\""));
        let page = b.get(&format!("{}/marketplace/lint-kit", t.root)).await;
        assert!(page.body.contains("helper 1.0.0"), "what it installs: {}", page.body);
        let page = b.get(&format!("{}/marketplace/nope", t.root)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.header("content-type").starts_with("text/html"));
        assert_security_headers(&page, "404");
        // The root: HTML for a browser, the catalogue for Claude Code's Accept header.
        let page = b.get(&format!("{}/", t.root)).await;
        assert!(page.body.contains("id=\"plugin-lint-kit\""));
        let res = s
            .http
            .get(&t.root)
            .header("accept", "application/json, text/plain, */*")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "application/json");
        let cat: serde_json::Value = res.json().await.unwrap();
        assert_eq!(cat["name"], "acme");
        assert_eq!(cat["plugins"].as_array().unwrap().len(), 2);
        // The portal's assets come from this server.
        let js = b.get(&format!("{}/-/static/portal.js", t.root)).await;
        assert!(js.header("content-type").starts_with("text/javascript") && js.body.contains("clipboard"));
        s.stop().await;
    }
);

both_backends!(the_registry_pages_render_markdown_safely_and_archive, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = setup(&s).await;
    let md = "---\nname: notes\ndescription: Notes\n---\n# Notes\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1)) [good](https://ok.example)\n";
    let (st, b) = s
        .post_bytes(
            &format!("{}/v1/skills?slug=notes&version=1.0.0", t.root),
            &t.admin,
            "application/gzip",
            tar_gz(&[("SKILL.md", 0o644, md.as_bytes())]),
        )
        .await;
    assert!(st.is_success(), "{b}");
    let mut br = Browser::new();
    br.sign_in(&t.root, "ana", PASSWORD).await;
    let page = br.get(&format!("{}/portal/registry/skills/notes", t.root)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Notes</h1>"), "{}", page.body);
    assert!(
        !page.body.contains("<script>alert") && !page.body.contains("javascript:"),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"https://ok.example\""));
    let csrf = page.csrf();
    let res = br
        .post(
            &format!("{}/portal/registry/skills/notes/1.0.0/archive", t.root),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let (_, v) = s.get_json(&format!("{}/v1/skills/notes/versions/1.0.0", t.root), &t.admin).await;
    assert_eq!(v["archived"], true);
    let res = br
        .post(
            &format!("{}/portal/registry/skills/notes/1.0.0/unarchive", t.root),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let (_, v) = s.get_json(&format!("{}/v1/skills/notes/versions/1.0.0", t.root), &t.admin).await;
    assert_eq!(v["archived"], false);
    // The audit page filters by action and shows the user.
    let page = br.get(&format!("{}/portal/audit?action=skill.", t.root)).await;
    assert!(page.body.contains("skill.archive") && page.body.contains("skill.unarchive"));
    assert!(!page.body.contains("session.sign_in"));
    assert!(page.body.contains("user:ana#"));
    let page = br.get(&format!("{}/portal/audit?actor=nobody", t.root)).await;
    assert!(page.body.contains("Nothing matches"));
    s.stop().await;
});

both_backends!(a_failed_mirror_shows_its_chip_and_can_be_refreshed, |db: TestDb| async move {
    let up = Upstream::start().await;
    let work = up.create("kit");
    std::fs::create_dir_all(work.join(".claude-plugin")).unwrap();
    std::fs::write(work.join(".claude-plugin/plugin.json"), br#"{"name": "kit", "version": "0.1.0"}"#).unwrap();
    up.commit_and_push(&work, "0.1.0", false);
    let s = TestServer::start_with(db, |c| {
        c.mirror.allowed_hosts = vec!["127.0.0.1".into()];
        c.mirror.timeout = Duration::from_secs(10);
    })
    .await;
    let t = setup(&s).await;
    let wait = |id: i64| {
        let (s, t) = (&s, &t);
        async move {
            for _ in 0..240 {
                let (_, job) = s.get_json(&format!("{}/v1/jobs/{id}", t.root), &t.admin).await;
                if job["state"] == "done" || job["state"] == "failed" {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("job {id} did not end");
        }
    };
    let (st, accepted) = s
        .post_json(&format!("{}/v1/plugins/import", t.root), &t.admin, &json!({"url": up.url("kit")}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(wait(accepted["job"]["id"].as_i64().unwrap()).await["state"], "done");
    let mut b = Browser::new();
    b.sign_in(&t.root, "ana", PASSWORD).await;
    let page = b.get(&format!("{}/portal/plugins", t.root)).await;
    assert!(!page.body.contains("mirror-failed"), "a good pull has no chip");

    up.set_fault(Fault::Status(500));
    let detail = b.get(&format!("{}/portal/plugins/kit", t.root)).await;
    let page = b
        .post(&format!("{}/portal/plugins/kit/refresh", t.root), &[("csrf", &detail.csrf())])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let job: i64 = page.header("location").rsplit('=').next().unwrap().parse().unwrap();
    assert_eq!(wait(job).await["state"], "failed");
    let page = b.get(&format!("{}/portal/plugins", t.root)).await;
    let row = &page.body[page.body.find("id=\"row-kit\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("mirror-failed") && row.contains("last pull failed: network"), "{row}");
    let page = b.get(&format!("{}/portal/plugins/kit", t.root)).await;
    assert!(page.body.contains("The last good version is still served"));
    assert!(page.body.contains("Refresh now"));
    // The mirror job's failure is in the audit log.
    let page = b.get(&format!("{}/portal/audit?action=mirror.", t.root)).await;
    assert!(page.body.contains("mirror.pull_failed"), "{}", page.body);
    // The public page lists the mirror (its last good copy) without its internals.
    let page = Browser::new().get(&format!("{}/marketplace/kit", t.root)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("returned error"), "{}", page.body);
    s.stop().await;
});
