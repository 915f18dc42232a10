//! External listings and catalogue import over real HTTP, on SQLite and on PostgreSQL: sources
//! as Claude Code defines them emitted verbatim, refusals that name the field, an upstream
//! catalogue imported idempotently (same bytes, same ETag), with the real CLI and the real
//! Claude Code client reading the result.

#![allow(clippy::disallowed_methods)] // drives real programs (the CLI, Claude Code) as a user would

mod common;

use common::claude::Claude;
use common::server::{TestServer, TestTenant, cli};
use reqwest::StatusCode;
use serde_json::{Value, json};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

async fn post_json(s: &TestServer, t: &TestTenant, path: &str, body: &Value) -> (StatusCode, Value) {
    s.post_json(&format!("{}{path}", t.root), &t.admin, body).await
}

/// The served catalogue: (ETag, parsed body, raw bytes).
async fn catalogue(s: &TestServer, t: &TestTenant) -> (String, Value, Vec<u8>) {
    let res = s
        .http
        .get(format!("{}/.claude-plugin/marketplace.json", t.root))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let bytes = res.bytes().await.unwrap().to_vec();
    (etag, serde_json::from_slice(&bytes).unwrap(), bytes)
}

fn entry<'a>(catalogue: &'a Value, name: &str) -> &'a Value {
    catalogue["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {catalogue}"))
}

both_backends!(external_listings_are_emitted_as_given, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let listings = [
        json!({"slug": "gh", "mode": "external", "source": {"source": "github", "repo": "acme/tools", "ref": "v2", "sha": sha},
               "description": "From GitHub", "category": "dev", "strict": false, "skills": ["./skills/a"], "tags": ["x"]}),
        json!({"slug": "plain-url", "mode": "external", "source": {"source": "url", "url": "https://git.example.com/p.git"}}),
        json!({"slug": "scp", "mode": "external", "source": {"source": "url", "url": "git@git.example.com:team/p.git", "ref": "main"}}),
        json!({"slug": "sub", "mode": "external", "source": {"source": "git-subdir", "url": "acme/mono", "path": "plugins/sub"},
               "lspServers": {"rust": {"command": "rust-analyzer", "extensionToLanguage": {".rs": "rust"}}}}),
        json!({"slug": "from-npm", "mode": "external", "source": {"source": "npm", "package": "@acme/plugin", "version": "^1.0.0"}}),
        json!({"slug": "zipped", "mode": "external", "version": "3.1.0", "source": {"source": "archive", "url": "https://dl.example.com/p.zip"}}),
    ];
    for body in &listings {
        let (st, b) = post_json(&s, &t, "/v1/plugins", body).await;
        assert_eq!(st, StatusCode::CREATED, "{body}: {b}");
        assert_eq!(b["plugin"]["mode"], "external");
    }
    let (_, cat, _) = catalogue(&s, &t).await;
    for body in &listings {
        let e = entry(&cat, body["slug"].as_str().unwrap());
        assert_eq!(e["source"], body["source"], "the source is emitted exactly as given");
        for (k, v) in body.as_object().unwrap() {
            if !["slug", "mode", "source"].contains(&k.as_str()) {
                assert_eq!(&e[k], v, "entry field `{k}` is kept verbatim: {e}");
            }
        }
    }
    let (_, shown) = s.get_json(&format!("{}/v1/plugins/gh", t.root), &t.member).await;
    assert_eq!(shown["entry"]["strict"], false, "{shown}");
    assert_eq!(shown["external_source"]["repo"], "acme/tools");

    // Refusals name the field; nothing is listed.
    for (body, field) in [
        (json!({"slug": "bad", "mode": "external"}), None),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "github", "repo": "nope"}}),
            Some("source.repo"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "url", "url": "ssh://-oProxyCommand=x/y"}}),
            Some("source.url"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "url", "url": "https://h/x", "ref": "--upload-pack=x"}}),
            Some("source.ref"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "url", "url": "https://h/x", "sha": "abc"}}),
            Some("source.sha"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "git-subdir", "url": "o/r", "path": "x/../../y"}}),
            Some("source.path"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "git-subdir", "url": "o/r", "path": ".git/hooks"}}),
            Some("source.path"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "npm", "package": "-x"}}),
            Some("source.package"),
        ),
        (
            json!({"slug": "bad", "mode": "external", "source": {"source": "s3", "bucket": "b"}}),
            Some("source.source"),
        ),
        (json!({"slug": "bad", "strict": false}), Some("strict")),
    ] {
        let (st, b) = post_json(&s, &t, "/v1/plugins", &body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["field"].as_str(), field, "{body}: {b}");
    }
    let (st, _) = s.get_json(&format!("{}/v1/plugins/bad", t.root), &t.member).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
});

/// An upstream marketplace.json of the shapes the issue names.
fn upstream() -> Value {
    json!({
        "name": "upstream-market",
        "owner": {"name": "Upstream"},
        "metadata": {"pluginRoot": "./plugins"},
        "plugins": [
            {"name": "formatter", "source": "./plugins/formatter", "description": "Formats code", "version": "1.2.0", "strict": false,
             "skills": ["./skills/fmt"], "category": "style", "author": {"name": "Up", "email": "up@example.com"}},
            {"name": "linter", "source": "linter", "description": "Lints", "keywords": ["lint"]},
            {"name": "gh-tool", "source": {"source": "github", "repo": "upstream/gh-tool"}, "homepage": "https://example.com/gh"},
            {"name": "npm-tool", "source": {"source": "npm", "package": "npm-tool"}},
            {"source": {"source": "github", "repo": "o/nameless"}},
            {"name": "odd-source", "source": {"source": "s3", "bucket": "b"}},
            {"name": "evil", "source": {"source": "url", "url": "https://h/x.git --upload-pack=touch"}},
            {"name": "Not A Slug", "source": {"source": "github", "repo": "o/r"}},
            {"name": "linter", "source": "./plugins/linter-again"},
        ],
        "renames": {"old-formatter": "formatter", "gone": null, "dangling": "not-listed"}
    })
}

both_backends!(catalogue_import_is_reported_and_idempotent, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let req = json!({"catalogue": upstream(), "repo_url": "https://git.example.com/upstream.git", "ref": "main"});
    let (st, report) = post_json(&s, &t, "/v1/plugins/import-catalogue", &req).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    let outcomes: Vec<(String, String)> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    let expected = [
        ("formatter", "imported"),
        ("linter", "imported"),
        ("gh-tool", "imported"),
        ("npm-tool", "imported"),
        ("", "skipped"),
        ("odd-source", "skipped"),
        ("evil", "skipped"),
        ("Not A Slug", "skipped"),
        ("linter", "skipped"),
    ];
    assert_eq!(
        outcomes,
        expected.iter().map(|(n, o)| (n.to_string(), o.to_string())).collect::<Vec<_>>(),
        "{report}"
    );
    for e in report["entries"].as_array().unwrap() {
        assert_eq!(e["outcome"] == "skipped", e["reason"].is_string(), "a skip says why: {e}");
    }
    assert_eq!(report["renames"], 2, "{report}");
    assert!(report["warnings"][0].as_str().unwrap().contains("dangling"), "{report}");
    assert_eq!(report["changed"], true);

    let (etag, cat, bytes) = catalogue(&s, &t).await;
    let formatter = entry(&cat, "formatter");
    assert_eq!(
        formatter["source"],
        json!({"source": "git-subdir", "url": "https://git.example.com/upstream.git", "path": "plugins/formatter", "ref": "main"})
    );
    assert_eq!(formatter["strict"], false);
    assert_eq!(formatter["version"], "1.2.0");
    assert_eq!(formatter["author"], json!({"name": "Up", "email": "up@example.com"}));
    assert_eq!(
        entry(&cat, "linter")["source"]["path"],
        "plugins/linter",
        "a bare name under metadata.pluginRoot"
    );
    assert_eq!(
        entry(&cat, "gh-tool")["source"],
        json!({"source": "github", "repo": "upstream/gh-tool"})
    );
    assert_eq!(cat["renames"], json!({"old-formatter": "formatter", "gone": null}));

    // The same catalogue again: nothing changes, not even the bytes or the ETag.
    let (_, audit_before) = s.get_json(&format!("{}/v1/audit?limit=100", t.root), &t.admin).await;
    let (st, again) = post_json(&s, &t, "/v1/plugins/import-catalogue", &req).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(again["changed"], false, "{again}");
    assert!(
        again["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["outcome"] == "unchanged" || e["outcome"] == "skipped"),
        "{again}"
    );
    let (etag2, _, bytes2) = catalogue(&s, &t).await;
    assert_eq!((etag2.as_str(), bytes2.as_slice()), (etag.as_str(), bytes.as_slice()));
    let (_, audit_after) = s.get_json(&format!("{}/v1/audit?limit=100", t.root), &t.admin).await;
    assert_eq!(
        audit_after["items"].as_array().unwrap().len(),
        audit_before["items"].as_array().unwrap().len()
    );

    // A changed upstream entry is updated; an internal plugin of the same name is left alone.
    let mut changed = upstream();
    changed["plugins"][2]["description"] = json!("New words");
    let (_, r) = post_json(
        &s,
        &t,
        "/v1/plugins/import-catalogue",
        &json!({"catalogue": changed, "repo_url": "https://git.example.com/upstream.git", "ref": "main"}),
    )
    .await;
    let gh = r["entries"].as_array().unwrap().iter().find(|e| e["name"] == "gh-tool").unwrap();
    assert_eq!(gh["outcome"], "updated", "{r}");
    let (etag3, cat3, _) = catalogue(&s, &t).await;
    assert_ne!(etag3, etag);
    assert_eq!(entry(&cat3, "gh-tool")["description"], "New words");

    // Without the repository, relative sources cannot be listed, and say so.
    let (_, r) = post_json(&s, &t, "/v1/plugins/import-catalogue", &json!({"catalogue": upstream()})).await;
    let f = r["entries"].as_array().unwrap().iter().find(|e| e["name"] == "formatter").unwrap();
    assert_eq!(f["outcome"], "skipped");
    assert!(f["reason"].as_str().unwrap().contains("repo_url"), "{f}");

    // Bad requests change nothing.
    for (body, field) in [
        (json!({"catalogue": []}), "catalogue"),
        (json!({"catalogue": {"name": "x"}}), "catalogue.plugins"),
        (json!({"catalogue": upstream(), "repo_url": "-oevil"}), "repo_url"),
        (
            json!({"catalogue": upstream(), "repo_url": "https://h/x.git", "sha": "nope"}),
            "sha",
        ),
    ] {
        let (st, b) = post_json(&s, &t, "/v1/plugins/import-catalogue", &body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_eq!(b["field"], field, "{b}");
    }
    // Members read; only admins import.
    let (st, _) = s
        .post_bytes(
            &format!("{}/v1/plugins/import-catalogue", t.root),
            &t.member,
            "application/json",
            req.to_string().into_bytes(),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    s.stop().await;
});

both_backends!(a_large_catalogue_imports_in_one_request, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("big").await;
    let plugins: Vec<Value> = (0..300)
        .map(|i| json!({"name": format!("plugin-{i:03}"), "source": {"source": "github", "repo": format!("org/repo-{i}")}, "description": format!("Plugin {i}")}))
        .collect();
    let req = json!({"catalogue": {"name": "big-upstream", "owner": {"name": "Big"}, "plugins": plugins}});
    let (st, r) = post_json(&s, &t, "/v1/plugins/import-catalogue", &req).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["entries"].as_array().unwrap().len(), 300);
    assert!(r["entries"].as_array().unwrap().iter().all(|e| e["outcome"] == "imported"));
    let (_, cat, _) = catalogue(&s, &t).await;
    assert_eq!(cat["plugins"].as_array().unwrap().len(), 300);
    s.stop().await;
});

/// The real CLI lists and imports; the real Claude Code client validates the result and adds
/// the marketplace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_claude_code_read_an_imported_catalogue() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("marketplace.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&upstream()).unwrap()).unwrap();
    let run = |args: &[&str]| {
        let out = tokio::task::block_in_place(|| cli(&t, &t.admin, args));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&[
        "plugin",
        "import-catalogue",
        file.to_str().unwrap(),
        "--repo-url",
        "https://git.example.com/upstream.git",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.lines().next().unwrap().starts_with("name"), "a table: {out}");
    assert!(out.lines().any(|l| l.starts_with("formatter") && l.contains("imported")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("odd-source") && l.contains("skipped") && l.contains("source")),
        "{out}"
    );
    assert!(err.contains("4 imported") && err.contains("5 skipped"), "{err}");
    let (code, out, _) = run(&[
        "plugin",
        "import-catalogue",
        file.to_str().unwrap(),
        "--repo-url",
        "https://git.example.com/upstream.git",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["changed"], false);

    let (code, out, err) = run(&[
        "plugin",
        "add-external",
        "--name",
        "ext-tool",
        "--source-type",
        "github",
        "--repo",
        "acme/ext-tool",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("listed external plugin ext-tool"), "{out}");
    let (code, _, err) = run(&[
        "plugin",
        "add-external",
        "--name",
        "bad",
        "--source-type",
        "url",
        "--url",
        "ssh://-oProxyCommand=x/y",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("source.url"), "{err}");
    let (code, _, err) = run(&["plugin", "add-external", "--name", "bad", "--source-type", "github"]);
    assert_eq!(code, Some(2), "a usage error: {err}");

    let Some(claude) = Claude::new() else { return };
    let (_, _, bytes) = catalogue(&s, &t).await;
    let served = work.path().join("served.json");
    std::fs::write(&served, &bytes).unwrap();
    let errors = tokio::task::block_in_place(|| claude.validation_errors(&served));
    assert!(errors.is_empty(), "claude plugin validate: {errors:?}");
    tokio::task::block_in_place(|| claude.marketplace_add(&t.root));
    s.stop().await;
}

// A catalogue past 16 KiB of gzip is sent from its in-memory file (`sendfile`) once the
// caches hold it: on a kept-alive connection, the answers through the routers and from the
// file are the same bytes, whole, and a small answer on the same connection after them too.
both_backends!(a_large_catalogue_is_served_whole_from_its_file, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    // Descriptions that gzip cannot shrink much (hex of noise): about 40 KB of JSON.
    for i in 0..60 {
        let description = hex::encode(common::server::noise(300, i + 1));
        let body = json!({"slug": format!("big-{i}"), "mode": "external", "description": description,
                          "source": {"source": "url", "url": format!("https://git.example.com/p{i}.git")}});
        let (st, b) = post_json(&s, &t, "/v1/plugins", &body).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    let url = format!("{}/.claude-plugin/marketplace.json", t.root);
    // One connection for every request (the pool keeps it), gzip as Claude Code asks.
    let raw = reqwest::Client::builder().no_gzip().pool_max_idle_per_host(1).build().unwrap();
    let plain = raw.get(&url).header("accept-encoding", "identity").send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    let json = plain.bytes().await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let res = raw
            .get(&url)
            .header("accept-encoding", "gzip, compress, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-encoding"], "gzip");
        let length: usize = res.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = res.bytes().await.unwrap();
        assert_eq!(body.len(), length);
        bodies.push(body);
    }
    assert!(
        bodies[0].len() >= 16 * 1024,
        "the gzip body is past the file threshold: {}",
        bodies[0].len()
    );
    assert!(bodies.iter().all(|b| *b == bodies[0]), "every answer is the same bytes");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bodies[0][..]), &mut unzipped).unwrap();
    assert!(unzipped == json, "the gzip body is the JSON");
    // The answers came the fast way, from the file: the metrics count them (the first request,
    // through the routers, filled the caches).
    let metrics = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{metrics}"))
    };
    assert!(counter("skill_pool_catalogue_early_answers_total") >= 3, "{metrics}");
    let from_file = counter("skill_pool_catalogue_sendfile_bytes_total");
    assert!(
        from_file >= 3 * bodies[0].len() as u64,
        "at least three gzip answers left from the file: {from_file} bytes"
    );
    // A small answer on the same connection afterwards is written as it comes.
    let res = raw.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.bytes().await.unwrap().is_empty());
    s.stop().await;
});

// The fast path remembers, per thread, the catalogue it served last; a change through the API
// is served at once all the same, on every connection and thread: a new listing is in the next
// answer, and a tenant made private is no longer answered without a token.
both_backends!(the_fast_path_serves_every_change_at_once, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    let url = format!("{}/.claude-plugin/marketplace.json", t.root);
    let listing = |i: usize| {
        json!({"slug": format!("tool-{i}"), "mode": "external",
               "source": {"source": "url", "url": format!("https://git.example.com/t{i}.git")}})
    };
    for i in 0..3 {
        let (st, b) = post_json(&s, &t, "/v1/plugins", &listing(i)).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        // Enough fetches, on fresh connections and the kept one, for every worker to remember it.
        for _ in 0..20 {
            let (_, v, _) = catalogue(&s, &t).await;
            assert_eq!(v["plugins"].as_array().unwrap().len(), i + 1, "{v}");
            let fresh = reqwest::Client::new().get(&url).send().await.unwrap();
            let v: Value = fresh.json().await.unwrap();
            assert_eq!(v["plugins"].as_array().unwrap().len(), i + 1, "{v}");
        }
    }
    let (status, _) = s
        .patch_json(&format!("{}/v1/tenant", t.root), &t.admin, &json!({"visibility": "private"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..20 {
        let res = s.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a private tenant's catalogue needs a token");
    }
    s.stop().await;
});

// A change made through another server on the same database reaches this one by the catalogue's
// revalidation alone (nothing invalidates its caches): the fast path, whose per-thread memo
// holds the older catalogue, serves it within the stale bound all the same.
both_backends!(
    the_fast_path_serves_another_servers_change_within_the_bound,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        let listing = |i: usize| {
            json!({"slug": format!("tool-{i}"), "mode": "external",
               "source": {"source": "url", "url": format!("https://git.example.com/t{i}.git")}})
        };
        let (st, b) = post_json(&s, &t, "/v1/plugins", &listing(0)).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        for _ in 0..20 {
            let (_, v, _) = catalogue(&s, &t).await;
            assert_eq!(v["plugins"].as_array().unwrap().len(), 1, "{v}");
        }
        let (second, stop, task) = s.second_server().await;
        let (st, b) = s
            .post_json(
                &format!("{}/v1/plugins", t.root.replacen(&s.url, &second, 1)),
                &t.admin,
                &listing(1),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let early_before = s.counter("skill_pool_catalogue_early_answers_total").await.unwrap_or(0);
        let started = std::time::Instant::now();
        let bound = skill_pool_registry::catalogue::SERVE_STALE_FOR + std::time::Duration::from_secs(5);
        loop {
            let (_, v, _) = catalogue(&s, &t).await;
            if v["plugins"].as_array().unwrap().len() == 2 {
                break;
            }
            assert!(
                started.elapsed() < bound,
                "the other server's change was not served within {bound:?}: {v}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let early = s.counter("skill_pool_catalogue_early_answers_total").await.unwrap_or(0);
        assert!(early > early_before, "the fast path answered while the change was on its way");
        let _ = stop.send(());
        task.await.unwrap().unwrap();
        s.stop().await;
    }
);
