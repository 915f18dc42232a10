//! The REST API over real HTTP on an ephemeral port, on SQLite and on PostgreSQL.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would
#![allow(clippy::type_complexity)] // tables of test cases
mod common;

use common::server::{TestServer, TestTenant, count_files, skill_md, tar_gz};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

async fn call(
    s: &TestServer,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, Value) {
    let mut req = s.http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ct, bytes)) = body {
        req = req.header("content-type", ct).body(bytes);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(s: &TestServer, url: &str, token: &str) -> (StatusCode, Value) {
    call(s, reqwest::Method::GET, url, Some(token), None).await
}

async fn publish_skill(s: &TestServer, t: &TestTenant, slug: &str, version: Option<&str>, md: &str) -> (StatusCode, Value) {
    let mut url = format!("{}/v1/skills?slug={slug}", t.root);
    if let Some(v) = version {
        url.push_str(&format!("&version={v}"));
    }
    let body = tar_gz(&[
        ("SKILL.md", 0o644, md.as_bytes()),
        ("scripts/run.sh", 0o755, b"#!/bin/sh\necho hi\n"),
    ]);
    call(s, reqwest::Method::POST, &url, Some(&t.admin), Some(("application/gzip", body))).await
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["error"], want_code, "body: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {body}");
    assert!(body["request_id"].as_str().is_some_and(|m| !m.is_empty()), "body: {body}");
}

both_backends!(publish_list_show_archive_download, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let (st, body) = publish_skill(&s, &t, "greet", None, &skill_md("greet", "Greets", "Say hi.")).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"]["version"], "1.0.0");
    assert_eq!(body["created"], true);
    // Identical content again: reused, nothing new.
    let (st, body) = publish_skill(&s, &t, "greet", None, &skill_md("greet", "Greets", "Say hi.")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["created"], false);
    assert_eq!(body["version"]["version"], "1.0.0");
    // New content: next patch.
    let (st, body) = publish_skill(&s, &t, "greet", None, &skill_md("greet", "Greets", "Say hello.")).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(body["version"]["version"], "1.0.1");
    // Explicit version.
    let (st, _) = publish_skill(&s, &t, "greet", Some("2.0.0"), &skill_md("greet", "Greets", "v2")).await;
    assert_eq!(st, StatusCode::CREATED);

    let (st, list) = get(&s, &format!("{}/v1/skills", t.root), &t.member).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["items"][0]["slug"], "greet");
    assert_eq!(list["items"][0]["latest"]["version"], "2.0.0");
    let (_, versions) = get(&s, &format!("{}/v1/skills/greet/versions", t.root), &t.member).await;
    let names: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2.0.0", "1.0.1", "1.0.0"]);
    let (_, shown) = get(&s, &format!("{}/v1/skills/greet/versions/1.0.0", t.root), &t.member).await;
    let files: Vec<&str> = shown["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["SKILL.md", "scripts/run.sh"]);
    assert_eq!(shown["files"][1]["mode"], "executable");
    assert_eq!(shown["metadata"]["name"], "greet");

    // Archive 2.0.0: latest falls back to 1.0.1, 2.0.0 stays fetchable.
    let (st, archived) = call(
        &s,
        reqwest::Method::POST,
        &format!("{}/v1/skills/greet/versions/2.0.0/archive", t.root),
        Some(&t.admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{archived}");
    assert_eq!(archived["archived"], true);
    let (_, piece) = get(&s, &format!("{}/v1/skills/greet", t.root), &t.member).await;
    assert_eq!(piece["latest"]["version"], "1.0.1");
    let (st, _) = get(&s, &format!("{}/v1/skills/greet/versions/2.0.0", t.root), &t.member).await;
    assert_eq!(st, StatusCode::OK);

    // Download: the exact files back.
    let res = s
        .http
        .get(format!("{}/v1/skills/greet/versions/1.0.0/download", t.root))
        .bearer_auth(&t.member)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut seen = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = String::new();
        std::io::Read::read_to_string(&mut e, &mut data).unwrap();
        seen.push((
            e.path().unwrap().display().to_string(),
            e.header().mode().unwrap() & 0o111 != 0,
            data,
        ));
    }
    assert_eq!(seen[0], ("SKILL.md".into(), false, skill_md("greet", "Greets", "Say hi.")));
    assert_eq!(seen[1], ("scripts/run.sh".into(), true, "#!/bin/sh\necho hi\n".into()));

    // Agents and commands from markdown.
    let (st, body) = call(
        &s,
        reqwest::Method::POST,
        &format!("{}/v1/agents?slug=reviewer", t.root),
        Some(&t.admin),
        Some((
            "text/markdown",
            b"---\nname: reviewer\ndescription: Reviews code\n---\nReview.\n".to_vec(),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = call(
        &s,
        reqwest::Method::POST,
        &format!("{}/v1/commands?slug=deploy", t.root),
        Some(&t.admin),
        Some((
            "text/markdown",
            b"---\ndescription: Deploys the thing\n---\nDeploy the thing.\n".to_vec(),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"]["files"][0]["path"], "deploy.md");

    // Every write left an audit row with a request id.
    let (st, audit) = get(&s, &format!("{}/v1/audit", t.root), &t.admin).await;
    assert_eq!(st, StatusCode::OK);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"skill.publish") && actions.contains(&"skill.archive") && actions.contains(&"agent.publish"),
        "{actions:?}"
    );
    assert!(audit["items"][0]["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    s.stop().await;
});

both_backends!(bad_input_is_refused_and_changes_nothing, |db: TestDb| async move {
    let s = TestServer::start_with(db, |c| c.max_upload_bytes = 64 << 10).await;
    let t = s.tenant("acme").await;
    let (st, _) = publish_skill(&s, &t, "greet", Some("1.0.0"), &skill_md("greet", "Greets", "hi")).await;
    assert_eq!(st, StatusCode::CREATED);
    let blobs = s.data_dir().join("blobs");
    let before_files = count_files(&blobs);
    let (_, audit_before) = get(&s, &format!("{}/v1/audit?limit=500", t.root), &t.admin).await;
    let audit_before = audit_before["items"].as_array().unwrap().len();

    let url = |q: &str| format!("{}/v1/skills?{q}", t.root);
    let post = |u: String, body: Vec<u8>| {
        let s = &s;
        let token = t.admin.clone();
        async move { call(s, reqwest::Method::POST, &u, Some(&token), Some(("application/gzip", body))).await }
    };
    let cases: Vec<(&str, String, Vec<u8>, StatusCode, &str)> = vec![
        (
            "no frontmatter",
            url("slug=x"),
            tar_gz(&[("SKILL.md", 0o644, b"just text\n")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_piece",
        ),
        (
            "broken yaml",
            url("slug=x"),
            tar_gz(&[("SKILL.md", 0o644, b"---\nname: [x\n---\nbody\n")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_piece",
        ),
        (
            "no description",
            url("slug=x"),
            tar_gz(&[("SKILL.md", 0o644, b"---\nname: x\n---\nbody\n")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_piece",
        ),
        (
            "bad name",
            url("slug=Bad_Name"),
            tar_gz(&[("SKILL.md", 0o644, skill_md("x", "d", "b").as_bytes())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_piece",
        ),
        (
            "not utf-8",
            url("slug=x"),
            tar_gz(&[("SKILL.md", 0o644, b"---\nname: x\ndescription: d\n---\n\xff\xfe\n")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_piece",
        ),
        (
            "no SKILL.md",
            url("slug=x"),
            tar_gz(&[("README.md", 0o644, b"hi")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_piece",
        ),
        (
            "not gzip",
            url("slug=x"),
            b"definitely not a tarball".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_archive",
        ),
        (
            "bad version",
            url("slug=greet&version=1.0"),
            tar_gz(&[("SKILL.md", 0o644, skill_md("greet", "d", "b").as_bytes())]),
            StatusCode::BAD_REQUEST,
            "invalid_version",
        ),
        (
            "duplicate version, other content",
            url("slug=greet&version=1.0.0"),
            tar_gz(&[("SKILL.md", 0o644, skill_md("greet", "d", "changed").as_bytes())]),
            StatusCode::CONFLICT,
            "version_conflict",
        ),
        (
            "over the upload limit",
            url("slug=x"),
            vec![0u8; 80 << 10],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (what, u, body, status, code) in cases {
        let (st, b) = post(u, body).await;
        assert_eq!((st, b["error"].as_str().unwrap_or("")), (status, code), "{what}: {b}");
    }
    // Traversal, absolute, symlink out of the tree, Windows drive paths: raw tar headers.
    for (what, path, kind, link) in [
        ("dot-dot", "../evil", tar::EntryType::Regular, None),
        ("absolute", "/etc/evil", tar::EntryType::Regular, None),
        ("windows drive", "C:/evil", tar::EntryType::Regular, None),
        ("symlink out", "link", tar::EntryType::Symlink, Some("../../etc/passwd")),
        ("device", "dev", tar::EntryType::Char, None),
    ] {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let md = skill_md("x", "d", "b");
        let mut h = tar::Header::new_gnu();
        h.set_size(md.len() as u64);
        h.set_mode(0o644);
        h.set_path("SKILL.md").unwrap();
        h.set_cksum();
        builder.append(&h, md.as_bytes()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(if kind == tar::EntryType::Regular { 4 } else { 0 });
        h.set_mode(0o644);
        {
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
        }
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        let data: &[u8] = if kind == tar::EntryType::Regular { b"evil" } else { b"" };
        builder.append(&h, data).unwrap();
        let body = builder.into_inner().unwrap().finish().unwrap();
        let (st, b) = post(url("slug=x"), body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{what}: {b}");
        assert_eq!(b["error"], "invalid_archive", "{what}: {b}");
    }
    // Refusals name the field (or file) at fault, for a form to show it beside the field.
    let md = skill_md("greet", "Greets", "Say hi.");
    let body = tar_gz(&[("SKILL.md", 0o644, md.as_bytes())]);
    let (_, b) = post(url("slug=greet&version=1.0"), body.clone()).await;
    assert_eq!(
        (b["error"].as_str(), b["field"].as_str()),
        (Some("invalid_version"), Some("version")),
        "{b}"
    );
    let (_, b) = post(url("slug=Not_A_Slug"), body).await;
    assert_eq!(
        (b["error"].as_str(), b["field"].as_str()),
        (Some("invalid_piece"), Some("slug")),
        "{b}"
    );
    let (_, b) = post(url("slug=x"), tar_gz(&[("SKILL.md", 0o644, b"---\nname: x\n---\n")])).await;
    assert_eq!(b["field"], "SKILL.md", "{b}");
    for (body, field) in [
        (
            json!({"slug": "ext", "mode": "external", "source": {"source": "github", "repo": "--upload-pack=x"}}),
            "source.repo",
        ),
        (json!({"slug": "ext", "homepage": "not a url"}), "homepage"),
        (json!({"slug": "ext", "contents": [{"kind": "skill", "slug": "nope"}]}), "contents"),
    ] {
        let (st, b) = call(
            &s,
            reqwest::Method::POST,
            &format!("{}/v1/plugins", t.root),
            Some(&t.admin),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }
    // Nothing changed: no piece `x`, the same versions, no new stored files, no audit rows.
    let (st, _) = get(&s, &format!("{}/v1/skills/x", t.root), &t.member).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, versions) = get(&s, &format!("{}/v1/skills/greet/versions", t.root), &t.member).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 1);
    assert_eq!(count_files(&blobs), before_files);
    let (_, audit_after) = get(&s, &format!("{}/v1/audit?limit=500", t.root), &t.admin).await;
    assert_eq!(audit_after["items"].as_array().unwrap().len(), audit_before);
    s.stop().await;
});

both_backends!(tokens_and_roles, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let other = s.tenant("globex").await;
    let skills = format!("{}/v1/skills", t.root);
    let (st, b) = call(&s, reqwest::Method::GET, &skills, None, None).await;
    assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (st, b) = get(&s, &skills, "sp_wrongwrongwrong").await;
    assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    // Another tenant's token: 404, as if nothing were there.
    let (st, b) = get(&s, &skills, &other.admin).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    // A member may read but not write.
    let (st, _) = get(&s, &skills, &t.member).await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = call(
        &s,
        reqwest::Method::POST,
        &format!("{skills}?slug=x"),
        Some(&t.member),
        Some((
            "application/gzip",
            tar_gz(&[("SKILL.md", 0o644, skill_md("x", "d", "b").as_bytes())]),
        )),
    )
    .await;
    assert_error(st, &b, StatusCode::FORBIDDEN, "forbidden");
    // Create, use, revoke a token.
    let (st, created) = call(
        &s,
        reqwest::Method::POST,
        &format!("{}/v1/tokens", t.root),
        Some(&t.admin),
        Some((
            "application/json",
            serde_json::to_vec(&json!({"name": "ci", "role": "member"})).unwrap(),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    let (st, who) = get(&s, &format!("{}/v1/whoami", t.root), &secret).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(who["tenant"], "acme");
    assert_eq!(who["role"], "member");
    let (_, list) = get(&s, &format!("{}/v1/tokens", t.root), &t.admin).await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "ci")
        .unwrap()
        .clone();
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(!list.to_string().contains(&secret), "a listing never shows secrets");
    let id = created["token"]["id"].as_i64().unwrap();
    let (st, _) = call(
        &s,
        reqwest::Method::DELETE,
        &format!("{}/v1/tokens/{id}", t.root),
        Some(&t.admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, b) = get(&s, &format!("{}/v1/whoami", t.root), &secret).await;
    assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    // Other tenants cannot revoke this tenant's tokens.
    let (st, _) = call(
        &s,
        reqwest::Method::DELETE,
        &format!("{}/v1/tokens/{id}", other.root),
        Some(&other.admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
});

// Every route of the API, walked with a token of another tenant: 404 each, and the body
// says nothing about the tenant.
both_backends!(tenant_isolation_on_every_route, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let intruder = s.tenant("globex").await;
    let (st, _) = publish_skill(&s, &t, "greet", Some("1.0.0"), &skill_md("greet", "Greets", "hi")).await;
    assert_eq!(st, StatusCode::CREATED);
    let gz = tar_gz(&[("SKILL.md", 0o644, skill_md("x", "d", "b").as_bytes())]);
    let json_body = |v: Value| Some(("application/json", serde_json::to_vec(&v).unwrap()));
    use reqwest::Method as M;
    let routes: Vec<(M, &str, Option<(&str, Vec<u8>)>)> = vec![
        (M::GET, "/v1/whoami", None),
        (M::GET, "/v1/skills", None),
        (M::GET, "/v1/agents", None),
        (M::GET, "/v1/commands", None),
        (M::POST, "/v1/skills?slug=x", Some(("application/gzip", gz.clone()))),
        (
            M::POST,
            "/v1/agents?slug=x",
            Some(("text/markdown", b"---\ndescription: d\n---\nx\n".to_vec())),
        ),
        (M::POST, "/v1/commands?slug=x", Some(("text/markdown", b"x\n".to_vec()))),
        (M::GET, "/v1/skills/greet", None),
        (M::GET, "/v1/skills/greet/versions", None),
        (M::GET, "/v1/skills/greet/versions/1.0.0", None),
        (M::GET, "/v1/skills/greet/versions/1.0.0/download", None),
        (M::POST, "/v1/skills/greet/versions/1.0.0/archive", None),
        (M::GET, "/v1/plugins", None),
        (
            M::POST,
            "/v1/plugins",
            json_body(json!({"slug": "p", "contents": [{"kind": "skill", "slug": "greet"}]})),
        ),
        (M::POST, "/v1/plugins/publish?slug=p", Some(("application/gzip", gz.clone()))),
        (M::GET, "/v1/plugins/p", None),
        (M::PATCH, "/v1/plugins/p", json_body(json!({}))),
        (M::DELETE, "/v1/plugins/p", None),
        (M::GET, "/v1/tokens", None),
        (M::POST, "/v1/tokens", json_body(json!({"name": "x", "role": "admin"}))),
        (M::DELETE, "/v1/tokens/1", None),
        (M::GET, "/v1/audit", None),
    ];
    for (method, path, body) in routes {
        let (st, b) = call(&s, method.clone(), &format!("{}{path}", t.root), Some(&intruder.admin), body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {b}");
        assert_eq!(b["error"], "not_found", "{method} {path}: {b}");
        assert!(
            !b.to_string().contains("greet") && !b.to_string().contains("acme display"),
            "{method} {path} leaks: {b}"
        );
    }
    // The victim's data is intact.
    let (_, piece) = get(&s, &format!("{}/v1/skills/greet", t.root), &t.member).await;
    assert_eq!(piece["latest"]["version"], "1.0.0");
    s.stop().await;
});

both_backends!(concurrent_publishes_get_distinct_versions, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let n = 16;
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = s.http.clone();
        let url = format!("{}/v1/skills?slug=busy", t.root);
        let token = t.admin.clone();
        tasks.push(tokio::spawn(async move {
            let body = tar_gz(&[("SKILL.md", 0o644, skill_md("busy", "d", &format!("content {i}")).as_bytes())]);
            let res = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/gzip")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let v: Value = res.json().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v["version"]["version"].as_str().unwrap().to_string()
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap());
    }
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), n, "distinct versions: {versions:?}");
    let (_, listed) = get(&s, &format!("{}/v1/skills/busy/versions", t.root), &t.member).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), n);
    s.stop().await;
});

both_backends!(routing_errors_health_and_openapi, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let (st, b) = call(
        &s,
        reqwest::Method::GET,
        &format!("{}/t/nope/v1/skills", s.url),
        Some(&t.admin),
        None,
    )
    .await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    let (st, b) = get(&s, &format!("{}/v1/nothing-here", t.root), &t.admin).await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    let (st, b) = call(&s, reqwest::Method::PUT, &format!("{}/v1/plugins", t.root), Some(&t.admin), None).await;
    assert_error(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let (st, b) = call(
        &s,
        reqwest::Method::POST,
        &format!("{}/v1/tokens", t.root),
        Some(&t.admin),
        Some(("application/json", b"{nope".to_vec())),
    )
    .await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
    // The same classification in the shape each client reads: HTML for a browser page,
    // plain text for git (which prints it as `remote: …`), JSON for /v1 even when HTML is asked.
    let browser = "text/html,application/xhtml+xml,*/*;q=0.8";
    for (url, accept, content_type, needle) in [
        (
            format!("{}/t/nope/marketplace", s.url),
            browser,
            "text/html",
            "tenant `nope` not found",
        ),
        (format!("{}/t/nope", s.url), browser, "text/html", "tenant `nope` not found"),
        (
            format!("{}/git/plugins/missing.git/info/refs?service=git-upload-pack", t.root),
            "*/*",
            "text/plain",
            "skill-pool: ",
        ),
        (
            format!("{}/git/plugins/missing.git/info/refs", t.root),
            "*/*",
            "text/plain",
            "(smart_http_only, request ",
        ),
        (
            format!("{}/v1/plugins/missing", t.root),
            browser,
            "application/json",
            "\"error\":\"not_found\"",
        ),
    ] {
        let res = s
            .http
            .get(&url)
            .header("accept", accept)
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{url}: {}", res.status());
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        let body = res.text().await.unwrap();
        assert!(ct.starts_with(content_type), "{url}: {ct}");
        assert!(body.contains(needle), "{url}: {body}");
    }
    let out = std::process::Command::new("git")
        .args(["ls-remote", &format!("{}/git/plugins/missing.git", t.root)])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("remote: skill-pool: plugin `missing` not found"), "{stderr}");

    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = s.http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("skill_pool_http_requests_total"), "{metrics}");
    assert!(metrics.contains("skill_pool_db_pool_connections"), "{metrics}");
    let (st, doc) = call(&s, reqwest::Method::GET, &format!("{}/v1/openapi.json", t.root), None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["paths"]["/v1/plugins/publish"]["post"].is_object(), "{doc}");
    // The bootstrap tenant is the default tenant at the bare URL; its token works there.
    let boot = s.bootstrap_token();
    let (st, who) = get(&s, &format!("{}/v1/whoami", s.url), &boot).await;
    assert_eq!(st, StatusCode::OK, "{who}");
    assert_eq!(who["tenant"], "default");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data_dir().join("admin-token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    s.stop().await;
});

both_backends!(catalogue_headers_and_request_ids, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let url = format!("{}/.claude-plugin/marketplace.json", t.root);
    let header = |res: &reqwest::Response, name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    // gzip, as Claude Code asks (a client that leaves the body and its headers as they came).
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let gz = raw
        .get(&url)
        .header("accept-encoding", "gzip, compress, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), StatusCode::OK);
    assert_eq!(header(&gz, "content-type").as_deref(), Some("application/json"));
    assert_eq!(header(&gz, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&gz, "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header(&gz, "vary").as_deref(), Some("Accept, Accept-Encoding"));
    assert_eq!(header(&gz, "x-content-type-options").as_deref(), Some("nosniff"));
    let etag = header(&gz, "etag").expect("an ETag");
    assert!(etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let gz_id = header(&gz, "x-request-id").expect("a request id");
    let length: usize = header(&gz, "content-length").unwrap().parse().unwrap();
    let gz_headers = gz.headers().clone();
    let gz_body = gz.bytes().await.unwrap();
    assert_eq!(gz_body.len(), length);
    // The first fetch filled the caches through the routers; the next is answered from them
    // before the routers (`edge::hot_answer`): the same answer, header for header.
    let again = raw
        .get(&url)
        .header("accept-encoding", "gzip, compress, deflate, br")
        .send()
        .await
        .unwrap();
    let without = |h: &reqwest::header::HeaderMap| {
        let mut v: Vec<(String, String)> = h
            .iter()
            .filter(|(n, _)| *n != "x-request-id" && *n != "date")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(without(again.headers()), without(&gz_headers));
    let again_id = header(&again, "x-request-id").expect("a request id");
    assert_ne!(again_id, gz_id);
    assert_eq!(again.bytes().await.unwrap(), gz_body);
    // Plain JSON: the same ETag, no encoding.
    let plain = raw.get(&url).header("accept-encoding", "identity").send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "etag").as_deref(), Some(etag.as_str()));
    assert_eq!(header(&plain, "vary").as_deref(), Some("Accept, Accept-Encoding"));
    let plain_id = header(&plain, "x-request-id").expect("a request id");
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["name"], "acme");
    // If-None-Match: 304 with the ETag and the caching headers, no body.
    let not_modified = s.http.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&not_modified, "etag").as_deref(), Some(etag.as_str()));
    assert_eq!(header(&not_modified, "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header(&not_modified, "vary").as_deref(), Some("Accept, Accept-Encoding"));
    // No representation headers: a cache keeps those of the 200 it holds.
    assert_eq!(header(&not_modified, "content-type"), None);
    assert_eq!(header(&not_modified, "x-content-type-options"), None);
    let not_modified_id = header(&not_modified, "x-request-id").expect("a request id");
    assert!(not_modified.bytes().await.unwrap().is_empty());
    // Request ids are unique per request.
    let mut ids = std::collections::HashSet::new();
    for id in [gz_id, plain_id, not_modified_id] {
        assert!(!id.is_empty());
        assert!(ids.insert(id.clone()), "{id} repeated");
    }
    // An error carries its request id in the body and in the header, the same one.
    for _ in 0..3 {
        let res = s
            .http
            .get(format!("{}/v1/nothing-here", t.root))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let id = header(&res, "x-request-id").expect("a request id");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["request_id"].as_str(), Some(id.as_str()), "{body}");
        assert!(ids.insert(id.clone()), "{id} repeated");
    }
    // A client's own request id is kept, in the header and in the error body (JSON, HTML, text).
    let res = s
        .http
        .get(format!("{}/v1/nothing-here", t.root))
        .header("x-request-id", "client-chosen-1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-request-id").as_deref(), Some("client-chosen-1"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], "client-chosen-1");
    let res = s
        .http
        .get(format!("{}/t/nope/marketplace", s.url))
        .header("accept", "text/html")
        .header("x-request-id", "client-chosen-2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(header(&res, "content-security-policy").is_some());
    assert!(res.text().await.unwrap().contains("client-chosen-2"));
    let res = s
        .http
        .get(format!("{}/git/plugins/missing.git/info/refs", t.root))
        .send()
        .await
        .unwrap();
    let id = header(&res, "x-request-id").expect("a request id");
    assert!(res.text().await.unwrap().contains(&format!("request {id})")));
    s.stop().await;
});

#[tokio::test]
async fn host_based_tenant_routing() {
    let s = TestServer::start_with(TestDb::sqlite(), |c| c.base_domain = Some("pool.test".into())).await;
    let t = s.tenant("acme").await;
    let res = s
        .http
        .get(format!("{}/v1/whoami", s.url))
        .header("host", "acme.pool.test")
        .bearer_auth(&t.member)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let who: Value = res.json().await.unwrap();
    assert_eq!(who["tenant"], "acme");
    s.stop().await;
}
