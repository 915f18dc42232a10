//! Archive sources (issue 13, point 2): a tenant that serves `archive` lists each internal plugin
//! as a zip with its sha256, rendered once per version and served as a static file; the real
//! Claude Code client installs and updates from it over https.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use common::claude::{Claude, assert_same_tree};
use common::server::{TestServer, TestTenant, tar_gz, tls_dir};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// The mode that marks a symbolic link in these tests' file lists.
const LINK: u32 = 0o120777;

fn plugin_files(version: &str) -> Vec<(String, u32, Vec<u8>)> {
    vec![
        (
            ".claude-plugin/plugin.json".into(),
            0o644,
            json!({"name": "tool", "version": version, "description": "a tool"})
                .to_string()
                .into_bytes(),
        ),
        (
            "commands/hello.md".into(),
            0o644,
            b"---\ndescription: hello\n---\nSay hello.\n".to_vec(),
        ),
        ("bin/run.sh".into(), 0o755, format!("#!/bin/sh\necho {version}\n").into_bytes()),
        (".hidden".into(), 0o644, Vec::new()),
    ]
}

async fn publish(s: &TestServer, t: &TestTenant, files: &[(String, u32, Vec<u8>)]) -> (u16, Value) {
    let entries: Vec<(&str, u32, &[u8])> = files
        .iter()
        .filter(|(_, m, _)| *m != LINK)
        .map(|(p, m, d)| (p.as_str(), *m, d.as_slice()))
        .collect();
    let mut body = tar_gz(&entries);
    if let Some((path, _, target)) = files.iter().find(|(_, m, _)| *m == LINK) {
        // A symbolic link: the helper writes regular files only.
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (p, m, d) in &entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(d.len() as u64);
            header.set_mode(*m);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_path(p).unwrap();
            header.set_cksum();
            builder.append(&header, *d).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o777);
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_path(path).unwrap();
        header.set_link_name(std::str::from_utf8(target).unwrap()).unwrap();
        header.set_cksum();
        builder.append(&header, &[][..]).unwrap();
        body = builder.into_inner().unwrap().finish().unwrap();
    }
    let (status, v) = s
        .post_bytes(&format!("{}/v1/plugins/publish", t.root), &t.admin, "application/gzip", body)
        .await;
    (status.as_u16(), v)
}

async fn serve_as(s: &TestServer, t: &TestTenant, mode: &str) -> (u16, Value) {
    let (status, v) = s
        .patch_json(&format!("{}/v1/tenant", t.root), &t.admin, &json!({ "serve_as": mode }))
        .await;
    (status.as_u16(), v)
}

async fn entry(s: &TestServer, t: &TestTenant) -> Value {
    let (_, cat) = s.get_json(&format!("{}/.claude-plugin/marketplace.json", t.root), &t.member).await;
    cat["plugins"][0].clone()
}

both_backends!(
    an_archive_tenant_lists_zips_rendered_once_and_served_as_files,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        assert_eq!(publish(&s, &t, &plugin_files("1.0.0")).await.0, 201);
        assert_eq!(entry(&s, &t).await["source"]["source"], "url");
        let (status, v) = serve_as(&s, &t, "archive").await;
        assert_eq!(status, 200, "{v}");
        let e = entry(&s, &t).await;
        let url = format!("{}/archives/tool/1.0.0.zip", t.root);
        assert_eq!(e["source"]["source"], "archive", "{e}");
        assert_eq!(e["source"]["url"], url.as_str());
        let sha = e["source"]["sha256"].as_str().unwrap().to_string();
        let res = s.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/zip");
        let etag = res.headers()["etag"].to_str().unwrap().to_string();
        let len: usize = res.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = res.bytes().await.unwrap();
        assert_eq!(body.len(), len);
        assert_eq!(hex::encode(Sha256::digest(&body)), sha, "the catalogue's sha256 is the zip's");
        assert_eq!(&body[..4], b"PK\x03\x04");
        // Rendered once: the file on disk is served again as it is.
        let on_disk: Vec<_> = walk(&s.data_dir().join("archives"));
        assert_eq!(on_disk.iter().filter(|p| p.ends_with(".zip")).count(), 1, "{on_disk:?}");
        let again = s.http.get(&url).send().await.unwrap();
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(again.bytes().await.unwrap(), body);
        let cached = s.http.get(&url).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(cached.status(), 304);
        // Each download (not the 304) is an install of 1.0.0.
        let (_, shown) = s.get_json(&format!("{}/v1/plugins/tool", t.root), &t.member).await;
        assert_eq!(shown["installs"]["total"], 2, "{shown}");
        // Unknown versions and plugins: 404.
        assert_eq!(
            s.http
                .get(format!("{}/archives/tool/9.9.9.zip", t.root))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            s.http
                .get(format!("{}/archives/nope/1.0.0.zip", t.root))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );

        // A plugin with a symbolic link cannot be served as an archive: its publish is refused
        // while the tenant serves archives, and switching to archives while one is served is
        // refused, naming it.
        let mut linked = plugin_files("2.0.0");
        linked.push(("link".into(), LINK, b"bin/run.sh".to_vec()));
        let (status, v) = publish(&s, &t, &linked).await;
        assert_eq!(status, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains("symbolic links (link)"), "{v}");
        assert_eq!(entry(&s, &t).await["version"], "1.0.0", "nothing was published");
        assert_eq!(serve_as(&s, &t, "git").await.0, 200);
        let (status, v) = publish(&s, &t, &linked).await;
        assert_eq!(status, 201, "{v}");
        let (status, v) = serve_as(&s, &t, "archive").await;
        assert_eq!(status, 422, "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("plugin `tool`") && message.contains("link"), "{v}");
        let (_, settings) = s.get_json(&format!("{}/v1/tenant", t.root), &t.admin).await;
        assert_eq!(settings["serve_as"], "git", "nothing changed: {settings}");
        s.stop().await;
    }
);

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Writes `files` as a folder (for comparing with what the client installed).
fn folder(files: &[(String, u32, Vec<u8>)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (path, mode, data) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    dir
}

both_backends!(claude_code_installs_and_updates_from_archives_over_https, |db: TestDb| async move {
    let Some(mut claude) = Claude::new() else { return };
    let Some(ca) = tls_dir() else { return };
    let Some(s) = TestServer::start_tls(db, |_| {}).await else { return };
    let t = s.tenant("acme").await;
    let v1 = plugin_files("1.0.0");
    assert_eq!(publish(&s, &t, &v1).await.0, 201);
    assert_eq!(serve_as(&s, &t, "archive").await.0, 200);
    let e = entry(&s, &t).await;
    assert_eq!(e["source"]["source"], "archive", "{e}");
    assert!(e["source"]["url"].as_str().unwrap().starts_with("https://skill-pool.test:"), "{e}");
    claude.set_env("NODE_EXTRA_CA_CERTS", ca.join("ca.crt").display().to_string());
    let root = t.root.clone();
    let claude = tokio::task::spawn_blocking(move || {
        claude.marketplace_add(&root);
        claude.install("tool@acme");
        let (path, version) = claude.installed("tool@acme");
        assert_eq!(version, "1.0.0");
        assert_same_tree(folder(&v1).path(), &path);
        claude
    })
    .await
    .unwrap();
    let v2 = plugin_files("1.1.0");
    assert_eq!(publish(&s, &t, &v2).await.0, 201);
    tokio::task::spawn_blocking(move || {
        claude.marketplace_update("acme");
        claude.update("tool@acme");
        let (path, version) = claude.installed("tool@acme");
        assert_eq!(version, "1.1.0");
        assert_same_tree(folder(&v2).path(), &path);
    })
    .await
    .unwrap();
    s.stop().await;
});
