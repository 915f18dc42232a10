//! The git answer caches (issue 14): the ref advertisement and `ls-refs` from memory, the pack
//! of a first fetch from disk. Cached answers are compared byte for byte with what
//! `git upload-pack` answers on the same repository, real `git` clones from them (depth 1,
//! protocol v2, partial), a new version or a purge is never answered from an older cache, and an
//! answer the client did not take whole is not kept.

#![allow(clippy::disallowed_methods)] // drives real programs (git) as a user would

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::server::{TestServer, TestTenant, noise, tar_gz};
use serde_json::json;
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

async fn publish(s: &TestServer, t: &TestTenant, version: &str, big: Option<usize>) {
    let manifest = json!({"name": "tool", "version": version, "description": "a tool"}).to_string();
    let readme = format!("tool {version}\n");
    let command = format!("---\ndescription: hello\n---\nSay hello ({version}).\n");
    let blob = big.map(|n| noise(n, 7));
    let mut entries: Vec<(&str, u32, &[u8])> = vec![
        (".claude-plugin/plugin.json", 0o644, manifest.as_bytes()),
        ("commands/hello.md", 0o644, command.as_bytes()),
        ("scripts/run.sh", 0o755, b"#!/bin/sh\necho run\n"),
        ("README.md", 0o644, readme.as_bytes()),
    ];
    if let Some(blob) = &blob {
        entries.push(("data/blob.bin", 0o644, blob));
    }
    let (status, v) = s
        .post_bytes(
            &format!("{}/v1/plugins/publish", t.root),
            &t.admin,
            "application/gzip",
            tar_gz(&entries),
        )
        .await;
    assert!(status.is_success(), "{status} {v}");
}

fn pkt(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        match *l {
            "0000" | "0001" => out.extend_from_slice(l.as_bytes()),
            text => {
                out.extend_from_slice(format!("{:04x}", text.len() + 4).as_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}

/// The fetch `git clone --depth 1` sends (protocol v2), for `head`.
fn clone_fetch(head: &str, agent: &str) -> Vec<u8> {
    pkt(&[
        "command=fetch\n",
        &format!("agent={agent}\n"),
        "object-format=sha1\n",
        "0001",
        "thin-pack\n",
        "no-progress\n",
        "ofs-delta\n",
        "deepen 1\n",
        &format!("want {head}\n"),
        "done\n",
        "0000",
    ])
}

fn ls_refs(agent: &str) -> Vec<u8> {
    pkt(&[
        "command=ls-refs\n",
        &format!("agent={agent}\n"),
        "object-format=sha1\n",
        "0001",
        "peel\n",
        "symrefs\n",
        "unborn\n",
        "ref-prefix HEAD\n",
        "ref-prefix refs/heads/\n",
        "ref-prefix refs/tags/\n",
        "0000",
    ])
}

/// What `git upload-pack` itself answers on `repo` (the flags the server gives it).
fn upload_pack_direct(repo: &Path, request: &[u8], advertise: bool) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.args(skill_pool_git::upload_pack::SERVE_CONFIG)
        .args(["upload-pack", "--strict", "--stateless-rpc"]);
    if advertise {
        cmd.arg("--advertise-refs");
    }
    let mut child = cmd
        .arg(repo)
        .env("GIT_PROTOCOL", "version=2")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(request).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The status, the body, and whether the answer was replayed from the pack cache (only a
/// cached pack is sent with a `Content-Length`; git's answers stream chunked).
async fn post_git(s: &TestServer, t: &TestTenant, body: Vec<u8>) -> (reqwest::StatusCode, Vec<u8>, bool) {
    let res = s
        .http
        .post(format!("{}/git/plugins/tool.git/git-upload-pack", t.root))
        .header("Git-Protocol", "version=2")
        .header("Content-Type", "application/x-git-upload-pack-request")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let cached = res.headers().contains_key("content-length");
    (status, res.bytes().await.unwrap().to_vec(), cached)
}

/// A v2 fetch answer as its sections: the lines before the `packfile` section, the pack (side
/// band 1, packets joined) and the progress text (side band 2).
fn demux(answer: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>, Vec<u8>) {
    let (mut lines, mut pack, mut progress) = (Vec::new(), Vec::new(), Vec::new());
    let (mut at, mut in_pack) = (0usize, false);
    while at < answer.len() {
        let len = usize::from_str_radix(std::str::from_utf8(&answer[at..at + 4]).unwrap(), 16).unwrap();
        if len < 4 {
            lines.push(answer[at..at + 4].to_vec());
            at += 4;
            continue;
        }
        let data = &answer[at + 4..at + len];
        at += len;
        if in_pack {
            match data[0] {
                1 => pack.extend_from_slice(&data[1..]),
                2 => progress.extend_from_slice(&data[1..]),
                other => panic!("side band {other}: {}", String::from_utf8_lossy(&data[1..])),
            }
        } else {
            in_pack = data == b"packfile\n";
            lines.push(data.to_vec());
        }
    }
    assert!(pack.starts_with(b"PACK"), "no pack in the answer");
    (lines, pack, progress)
}

/// Every file under the pack cache (cached packs and anything unfinished).
fn cache_files(data: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&data.join("pack-cache"), &mut out);
    out.sort();
    out
}

/// Waits (bounded) until the cache's writer has finished: the files under the cache are all packs.
async fn settled(data: &Path) -> Vec<PathBuf> {
    for _ in 0..100 {
        let files = cache_files(data);
        if files.iter().all(|f| f.extension().is_some_and(|x| x == "pack")) {
            return files;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the pack cache did not settle: {:?}", cache_files(data));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Clones with real git (`extra` flags) and returns the README and the head commit.
async fn clone(url: String, extra: &'static [&'static str]) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["-c", "protocol.version=2", "clone", "-q"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[url.as_str(), "c"]);
        git(dir.path(), &args);
        let c = dir.path().join("c");
        assert_eq!(std::fs::read_to_string(c.join("scripts/run.sh")).unwrap(), "#!/bin/sh\necho run\n");
        (
            std::fs::read_to_string(c.join("README.md")).unwrap(),
            git(&c, &["rev-parse", "HEAD"]).trim().to_string(),
        )
    })
    .await
    .unwrap()
}

async fn packs_fetched(s: &TestServer) -> u64 {
    s.counter("skill_pool_git_packs_fetched_total").await.unwrap_or(0)
}

/// `skill_pool_git_answers_total` by `kind/from` (e.g. `ls-refs/memory`), the series present.
async fn git_answers(s: &TestServer) -> std::collections::BTreeMap<String, u64> {
    let text = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("skill_pool_git_answers_total{kind=\""))
        .filter_map(|rest| {
            let (kind, rest) = rest.split_once("\",from=\"")?;
            let (from, value) = rest.split_once("\"} ")?;
            Some((format!("{kind}/{from}"), value.trim().parse().ok()?))
        })
        .collect()
}

both_backends!(cached_answers_equal_git_upload_pack_byte_for_byte, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let t = s.tenant("acme").await;
    publish(&s, &t, "1.0.0", None).await;
    let tenant = s.registry.tenant_by_slug("acme").await.unwrap().unwrap();
    let served = s.registry.served_repo(tenant.id, "tool").await.unwrap();
    let data = s.data_dir().to_path_buf();

    // The first fetch runs git and is recorded; the second (another client's agent) is replayed.
    let (st, first, cached) = post_git(&s, &t, clone_fetch(&served.head, "git/2.47.3")).await;
    assert_eq!(st, 200);
    assert!(!cached, "the first fetch runs git");
    let packs = settled(&data).await;
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert!(packs[0].starts_with(data.join("pack-cache")) && packs[0].to_string_lossy().contains(&served.head));
    let (st, second, cached) = post_git(&s, &t, clone_fetch(&served.head, "git/2.39.5")).await;
    assert_eq!(st, 200);
    assert!(cached, "the second is replayed from the pack cache");
    assert_eq!(first, second, "the replayed answer is the recorded one");
    let request = clone_fetch(&served.head, "git/2.47.3");
    let path = served.path.clone();
    let direct = tokio::task::spawn_blocking(move || upload_pack_direct(&path, &request, false))
        .await
        .unwrap();
    // How git cuts the pack into side-band packets depends on how its pipe was read, so the
    // answers are compared with the packets joined: every section, and the pack, byte for byte.
    assert_eq!(demux(&second), demux(&direct), "the cached answer is git upload-pack's");
    assert_eq!(std::fs::read(&packs[0]).unwrap(), second);

    // ls-refs and the v2 advertisement: from memory after the first, equal to git's.
    let path = served.path.clone();
    let (ls_direct, adv_direct) = tokio::task::spawn_blocking(move || {
        (
            upload_pack_direct(&path, &ls_refs("git/2.47.3"), false),
            upload_pack_direct(&path, b"", true),
        )
    })
    .await
    .unwrap();
    for agent in ["git/2.47.3", "git/2.39.5"] {
        let (st, ls, _) = post_git(&s, &t, ls_refs(agent)).await;
        assert_eq!(st, 200);
        assert_eq!(ls, ls_direct);
        let res = s
            .http
            .get(format!("{}/git/plugins/tool.git/info/refs?service=git-upload-pack", t.root))
            .header("Git-Protocol", "version=2")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/x-git-upload-pack-advertisement");
        assert_eq!(res.bytes().await.unwrap().to_vec(), adv_direct);
    }
    assert!(String::from_utf8_lossy(&ls_direct).contains("refs/tags/v1.0.0"));
    // What operators see: each kind answered once by git, then from memory or the pack cache.
    let answered = git_answers(&s).await;
    let expected: std::collections::BTreeMap<String, u64> = [
        ("advertisement/git", 1),
        ("advertisement/memory", 1),
        ("fetch/git", 1),
        ("fetch/pack_cache", 1),
        ("ls-refs/git", 1),
        ("ls-refs/memory", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(answered, expected);

    // Real git clones from the caches: depth 1, whole, partial; each a counted install.
    let before = packs_fetched(&s).await;
    let url = format!("{}/git/plugins/tool.git", t.root);
    for extra in [&["--depth", "1"][..], &[], &["--filter=blob:none"], &["--depth", "1"]] {
        let (readme, head) = clone(url.clone(), extra).await;
        assert_eq!(readme, "tool 1.0.0\n");
        assert_eq!(head, served.head);
    }
    // Four clones, the partial one fetching its blobs in a second pack at checkout.
    assert_eq!(packs_fetched(&s).await, before + 5, "cached answers count as installs too");
    // The whole and the partial clone asked other shapes: cached apart.
    let packs = settled(&data).await;
    assert!(packs.len() >= 3, "{packs:?}");
    s.stop().await;
});

both_backends!(
    a_new_version_or_a_purge_is_never_answered_from_an_older_cache,
    |db: TestDb| async move {
        let s = TestServer::start(db).await;
        let t = s.tenant("acme").await;
        let data = s.data_dir().to_path_buf();
        let url = format!("{}/git/plugins/tool.git", t.root);
        publish(&s, &t, "1.0.0", None).await;
        for _ in 0..2 {
            assert_eq!(clone(url.clone(), &["--depth", "1"]).await.0, "tool 1.0.0\n");
        }
        let old = settled(&data).await;
        assert_eq!(old.len(), 1);

        publish(&s, &t, "1.1.0", None).await;
        for _ in 0..2 {
            assert_eq!(clone(url.clone(), &["--depth", "1"]).await.0, "tool 1.1.0\n");
        }
        let new = settled(&data).await;
        assert_eq!(new.len(), 1, "the older head's packs are dropped: {new:?}");
        assert_ne!(old, new);

        // A purge of the served version: the plugin's packs go, the clone gets 1.0.0 again.
        let res = s
            .http
            .post(format!("{}/v1/plugins/tool/versions/1.1.0/purge", t.root))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(status.is_success(), "{status} {}", res.text().await.unwrap());
        assert!(cache_files(&data).is_empty(), "{:?}", cache_files(&data));
        assert_eq!(clone(url.clone(), &["--depth", "1"]).await.0, "tool 1.0.0\n");
        s.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_client_did_not_take_whole_is_not_kept() {
    let s = TestServer::start(TestDb::sqlite()).await;
    let t = s.tenant("acme").await;
    let data = s.data_dir().to_path_buf();
    // Random bytes do not compress: a pack of several MiB, more than the socket buffers hold.
    publish(&s, &t, "1.0.0", Some(8 << 20)).await;
    let tenant = s.registry.tenant_by_slug("acme").await.unwrap().unwrap();
    let served = s.registry.served_repo(tenant.id, "tool").await.unwrap();
    let mut res = s
        .http
        .post(format!("{}/git/plugins/tool.git/git-upload-pack", t.root))
        .header("Git-Protocol", "version=2")
        .body(clone_fetch(&served.head, "git/2.47.3"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let chunk = res.chunk().await.unwrap().unwrap();
    assert!(!chunk.is_empty());
    drop(res);
    // The writer notices and removes its file.
    for _ in 0..100 {
        if cache_files(&data).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(cache_files(&data).is_empty(), "{:?}", cache_files(&data));
    // Taken whole, it is kept, and the next clone is replayed from it.
    let (_, whole, cached) = post_git(&s, &t, clone_fetch(&served.head, "git/2.47.3")).await;
    assert!(!cached, "nothing was kept of the dropped answer");
    assert!(whole.len() > 8 << 20);
    assert_eq!(settled(&data).await.len(), 1);
    let (_, again, cached) = post_git(&s, &t, clone_fetch(&served.head, "git/2.47.3")).await;
    assert!(cached);
    assert_eq!(whole, again);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_git_answers_every_fetch() {
    let s = TestServer::start_with(TestDb::sqlite(), |c| c.git.pack_cache_bytes = 0).await;
    let t = s.tenant("acme").await;
    publish(&s, &t, "1.0.0", None).await;
    let url = format!("{}/git/plugins/tool.git", t.root);
    for _ in 0..2 {
        assert_eq!(clone(url.clone(), &["--depth", "1"]).await.0, "tool 1.0.0\n");
    }
    assert!(cache_files(s.data_dir()).is_empty());
    s.stop().await;
}
