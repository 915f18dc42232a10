//! Integrity under faults (issue 12, points 10 and 11), against the real server binary on a
//! `TestDb`'s database (SQLite and PostgreSQL):
//! - `kill -9` at spread-out points of a large publish, restarting on the same data dir and
//!   database each time: the catalogue pins only complete versions, each clones with real git
//!   and is complete, and every body a committed version needs is in the blob store, intact;
//! - a full and then a read-only data dir (a small tmpfs, as root; skipped with the reason
//!   printed where mounting is not possible), the database elsewhere or SQLite inside it:
//!   publishes are refused with `507 insufficient_storage` / `503 unavailable`, nothing
//!   half-written is left in the database, and the catalogue and clones of published versions
//!   go on being served, also after a restart.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries) as a user would

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::process::ServerProcess;
use common::server::{noise, skill_md, tar_gz, workspace_bin};
use sha2::{Digest, Sha256};
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

/// A plugin folder: path → (mode, bytes).
type Folder = BTreeMap<String, (u32, Vec<u8>)>;

/// Version `v` of the plugin `name`: `skills` skills of `per_skill` files each and `assets`
/// plain files, every file `size` incompressible bytes. Skill 0 is the same in every version
/// (a reused piece); everything else is new in each version.
fn big_plugin(name: &str, v: u32, skills: usize, per_skill: usize, assets: usize, size: usize) -> Folder {
    let mut f = Folder::new();
    let manifest = serde_json::json!({"name": name, "version": format!("1.0.{v}"), "description": "large"});
    f.insert(".claude-plugin/plugin.json".into(), (0o644, manifest.to_string().into_bytes()));
    for s in 0..skills {
        let seed_v = if s == 0 { 0 } else { v as u64 };
        let dir = format!("skills/s{s}");
        f.insert(
            format!("{dir}/SKILL.md"),
            (
                0o644,
                skill_md(&format!("s{s}"), &format!("skill {s}, {seed_v}"), "body").into_bytes(),
            ),
        );
        for i in 0..per_skill {
            let seed = (seed_v << 40) | ((s as u64) << 20) | i as u64;
            f.insert(format!("{dir}/data/f{i}.bin"), (0o644, noise(size, seed)));
        }
    }
    for i in 0..assets {
        let seed = ((v as u64) << 40) | (1 << 39) | i as u64;
        f.insert(format!("assets/a{i}.bin"), (0o644, noise(size, seed)));
    }
    f
}

fn pack(folder: &Folder) -> Vec<u8> {
    let entries: Vec<(&str, u32, &[u8])> = folder.iter().map(|(p, (m, b))| (p.as_str(), *m, b.as_slice())).collect();
    tar_gz(&entries)
}

/// The server binary on `data`, its database `db_url`, in a process group of its own (so a
/// kill can take its git children too).
fn start(data: &Path, db_url: &str) -> ServerProcess {
    start_with(data, Some(db_url))
}

/// [`start`], on the default database (SQLite in the data dir) when `db_url` is `None`.
fn start_with(data: &Path, db_url: Option<&str>) -> ServerProcess {
    let mut cmd = Command::new(workspace_bin("skill-pool-server"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SKILL_POOL_DATA_DIR", data);
    if let Some(url) = db_url {
        cmd.env("SKILL_POOL_DATABASE_URL", url);
    }
    cmd.env("SKILL_POOL_MAX_UPLOAD_BYTES", "128MiB")
        .env("SKILL_POOL_RATE_LIMIT_PER_MIN", "100000")
        .env("SKILL_POOL_LOG", "info,sqlx=warn")
        .process_group(0);
    ServerProcess::start(cmd)
}

/// `kill -9` the server; with `group`, every process of its group (its git children) too.
fn kill9(server: &mut ServerProcess, group: bool) {
    let pid = server.child.id().to_string();
    let target = if group { format!("-{pid}") } else { pid };
    let _ = Command::new("kill").args(["-KILL", "--", &target]).status();
    let _ = server.child.wait();
}

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    fn new(data: &Path) -> Client {
        let token = std::fs::read_to_string(data.join("admin-token"))
            .expect("admin-token")
            .trim()
            .to_string();
        Client {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            token,
        }
    }

    async fn get(&self, url: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(url).bearer_auth(&self.token).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn post(&self, url: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, serde_json::Value), reqwest::Error> {
        let r = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
    }
}

fn root(server: &ServerProcess) -> String {
    format!("{}/t/default", server.url())
}

/// `git clone --depth 1 [--branch <branch>]`; answers the checkout's files and its HEAD.
fn clone(url: &str, branch: Option<&str>) -> Result<(Folder, String), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("git");
    cmd.args(["-c", "protocol.version=2", "clone", "--quiet", "--depth", "1"]);
    if let Some(b) = branch {
        cmd.args(["--branch", b]);
    }
    let out = cmd
        .arg(url)
        .arg(dir.path().join("c"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let work = dir.path().join("c");
    let head = Command::new("git")
        .arg("-C")
        .arg(&work)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let mut files = Folder::new();
    for (path, (exec, bytes)) in common::server::tree(&work) {
        files.insert(path, (if exec { 0o755 } else { 0o644 }, bytes));
    }
    Ok((files, head))
}

fn assert_same(want: &Folder, got: &Folder, what: &str) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} files published, {} cloned; missing {missing:?}, extra {extra:?}",
        want.len(),
        got.len()
    );
    for (path, (_, bytes)) in want {
        assert!(got[path].1 == *bytes, "{what}: {path} differs from what was published");
    }
}

/// What the blob folder holds: sha256 addresses of bodies, and other files (a publish's
/// temporary files, left by a kill). With `verify`, a body whose content does not match its
/// name fails the test: it would be served half-written.
fn blob_folder(data: &Path, verify: bool) -> (BTreeSet<String>, usize) {
    let mut bodies = BTreeSet::new();
    let mut other = 0;
    let Ok(fanout) = std::fs::read_dir(data.join("blobs")) else {
        return (bodies, 0);
    };
    for d in fanout.flatten() {
        let prefix = d.file_name().to_string_lossy().to_string();
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            let address = format!("{prefix}{name}");
            if address.len() != 64 || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
                other += 1;
                continue;
            }
            if !verify {
                bodies.insert(address);
                continue;
            }
            let bytes = std::fs::read(f.path()).unwrap();
            assert_eq!(
                hex(&Sha256::digest(&bytes)),
                address,
                "blob {address} does not hold its body ({} bytes): a half-written body",
                bytes.len()
            );
            bodies.insert(address);
        }
    }
    (bodies, other)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every body the database says a plugin's current version and its pieces need, walked
/// through the API: the plugin's tree and each pinned piece version's files.
async fn needed_bodies(c: &Client, root: &str, plugin: &serde_json::Value) -> BTreeSet<String> {
    let mut need = BTreeSet::new();
    for f in plugin["files"].as_array().into_iter().flatten() {
        need.insert(f["sha256"].as_str().unwrap().to_string());
    }
    for p in plugin["contents"].as_array().into_iter().flatten() {
        let kind = format!("{}s", p["kind"].as_str().unwrap());
        let url = format!(
            "{root}/v1/{kind}/{}/versions/{}",
            p["slug"].as_str().unwrap(),
            p["version"].as_str().unwrap()
        );
        let (status, v) = c.get(&url).await;
        assert_eq!(status, 200, "{url}: {v}");
        for f in v["files"].as_array().into_iter().flatten() {
            need.insert(f["sha256"].as_str().unwrap().to_string());
        }
    }
    need
}

/// The catalogue entry of `name`: its pinned commit.
async fn catalogue_sha(c: &Client, root: &str, name: &str) -> Option<String> {
    let (status, cat) = c.get(&format!("{root}/.claude-plugin/marketplace.json")).await;
    assert_eq!(status, 200, "the catalogue is served: {cat}");
    cat["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["source"]["sha"].as_str().expect("a pinned sha").to_string())
}

/// After a restart: every version the API lists is one that was sent (whole); the catalogue
/// pins the current one; it clones complete; every body it needs is in the blob store.
async fn check_served(c: &Client, server: &ServerProcess, data: &Path, sent: &BTreeMap<String, Folder>, what: &str) -> String {
    let root = root(server);
    let (status, plugin) = c.get(&format!("{root}/v1/plugins/big")).await;
    assert_eq!(status, 200, "{what}: {plugin}");
    let current = plugin["current"]["version"].as_str().expect("a current version").to_string();
    for v in plugin["versions"].as_array().unwrap() {
        let v = v["version"].as_str().unwrap();
        assert!(sent.contains_key(v), "{what}: version {v} was never published");
    }
    let commit = plugin["current"]["commit"].as_str().unwrap().to_string();
    assert_eq!(catalogue_sha(c, &root, "big").await.as_deref(), Some(commit.as_str()), "{what}");
    let url = format!("{root}/git/plugins/big.git");
    let (files, head) = tokio::task::spawn_blocking(move || clone(&url, None))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: the pinned version does not clone: {e}"));
    assert_eq!(head, commit, "{what}: the clone is at the pinned commit");
    assert_same(&sent[&current], &files, &format!("{what}: version {current}"));
    let need = needed_bodies(c, &root, &plugin).await;
    let (have, _) = blob_folder(data, false);
    let lacking: Vec<_> = need.difference(&have).take(5).collect();
    assert!(
        lacking.is_empty(),
        "{what}: bodies a committed version needs are not stored: {lacking:?}"
    );
    current
}

both_backends!(kill_9_during_a_large_publish_leaves_nothing_half_served, |db: TestDb| async move {
    let data = db.data_path().join("data");
    let mut server = start(&data, &db.url);
    let c = Client::new(&data);
    let publish_url = |s: &ServerProcess| format!("{}/v1/plugins/publish", root(s));
    // About 2,000 files and 16 MiB of incompressible bytes per version.
    let folder = |v: u32| big_plugin("big", v, 4, 400, 400, 8 << 10);
    let mut sent = BTreeMap::new();

    // Version 1.0.1, whole, to measure how long a publish takes.
    let first = folder(1);
    sent.insert("1.0.1".to_string(), first.clone());
    let started = Instant::now();
    let (status, v) = c
        .post(&publish_url(&server), "application/gzip", pack(&first))
        .await
        .expect("publish");
    assert_eq!(status, 201, "{v}");
    let took = started.elapsed();
    check_served(&c, &server, &data, &sent, "before any kill").await;
    eprintln!("a publish of {} files takes {took:?}", first.len());

    const KILLS: u32 = 8;
    let mut outcomes = Vec::new();
    for k in 0..KILLS {
        let v = k + 2;
        let body = folder(v);
        let version = format!("1.0.{v}");
        sent.insert(version.clone(), body.clone());
        let tar = pack(&body);
        // Spread over the publish, from its upload to its repo write; a little past it too.
        let delay = took.mul_f64((f64::from(k) + 0.5) / f64::from(KILLS) * 1.1);
        let http = c.http.clone();
        let token = c.token.clone();
        let url = publish_url(&server);
        let request = tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .header("content-type", "application/gzip")
                .body(tar)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        });
        tokio::time::sleep(delay).await;
        // Odd kill points take the server's git children with it (a crashed container);
        // even ones leave them orphaned, as a lone `kill -9` does.
        kill9(&mut server, k % 2 == 1);
        let answer = request.await.unwrap();
        server = start(&data, &db.url);
        let what = format!("kill {k} after {delay:?} (answer {answer:?})");
        let current = check_served(&c, &server, &data, &sent, &what).await;
        outcomes.push(format!("{what}: serves {current}"));
        if answer == Ok(201) {
            assert_eq!(current, version, "{what}: an acknowledged publish survives the kill");
        }
    }
    eprintln!("{}", outcomes.join("\n"));

    // Every version the database lists clones at its tag, complete.
    let root = root(&server);
    let (_, plugin) = c.get(&format!("{root}/v1/plugins/big")).await;
    for v in plugin["versions"].as_array().unwrap() {
        let version = v["version"].as_str().unwrap().to_string();
        let url = format!("{root}/git/plugins/big.git");
        let tag = format!("v{version}");
        let (files, head) = tokio::task::spawn_blocking(move || clone(&url, Some(&tag)))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("version {version} does not clone: {e}"));
        assert_eq!(head, v["commit"].as_str().unwrap(), "version {version}");
        assert_same(&sent[&version], &files, &format!("version {version} at its tag"));
    }
    // What a kill between the commit and the repo write leaves, made on purpose (the kill
    // points above reach it only by chance): a repo behind the database, and no repo at all.
    let repos: Vec<PathBuf> = std::fs::read_dir(data.join("repos"))
        .unwrap()
        .flatten()
        .flat_map(|t| std::fs::read_dir(t.path()).unwrap().flatten().map(|r| r.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "git"))
        .collect();
    assert_eq!(repos.len(), 1, "{repos:?}");
    let oldest = plugin["versions"].as_array().unwrap().last().unwrap()["commit"]
        .as_str()
        .unwrap()
        .to_string();
    for damage in ["behind", "missing"] {
        kill9(&mut server, true);
        if damage == "behind" {
            let out = Command::new("git")
                .arg("--git-dir")
                .arg(&repos[0])
                .args(["update-ref", "refs/heads/main", &oldest])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        } else {
            std::fs::remove_dir_all(&repos[0]).unwrap();
        }
        server = start(&data, &db.url);
        check_served(&c, &server, &data, &sent, &format!("a repo {damage} after a restart")).await;
    }
    let (_, temporaries) = blob_folder(&data, true);
    eprintln!("temporary files left in the blob store by the kills: {temporaries}");
    // And the server still takes a publish.
    let last = folder(KILLS + 2);
    let (status, v) = c
        .post(&publish_url(&server), "application/gzip", pack(&last))
        .await
        .expect("publish");
    assert_eq!(status, 201, "{v}");
});

/// A tmpfs of `size` mounted on a temporary folder, unmounted when dropped (also when the test
/// fails). `None`, with the reason printed, where mounting is not possible (not root).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs (root needed): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, option: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "remount {option}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Fills the file system up to `leave` bytes free, with one file; answers its path.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let st = rustix::fs::statvfs(self.path()).unwrap();
        let free = st.f_bavail * st.f_frsize;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&filler).unwrap();
        let chunk = vec![0xa5u8; 1 << 20];
        let mut left = free.saturating_sub(leave);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut file, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = file.sync_all();
        filler
    }

    fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(self.path()).unwrap();
        st.f_bavail * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            // A process still inside (a server being stopped): detach it lazily.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// A plugin of `files` files of 64 KiB each.
fn plugin(name: &str, version: &str, files: usize, seed: u64) -> Vec<u8> {
    let manifest = serde_json::json!({"name": name, "version": version}).to_string().into_bytes();
    let mut f = Folder::new();
    f.insert(".claude-plugin/plugin.json".into(), (0o644, manifest));
    f.insert(
        "skills/tool/SKILL.md".into(),
        (0o644, skill_md("tool", &format!("tool {seed}"), "body").into_bytes()),
    );
    for i in 0..files {
        f.insert(format!("assets/a{i}.bin"), (0o644, noise(64 << 10, (seed << 20) | i as u64)));
    }
    pack(&f)
}

fn skill(seed: u64) -> Vec<u8> {
    let md = skill_md("helper", &format!("helper {seed}"), "body");
    let data = noise(256 << 10, seed);
    tar_gz(&[("SKILL.md", 0o644, md.as_bytes()), ("data.bin", 0o644, &data)])
}

/// Publishes that the full or read-only disk must refuse, with the status and code expected;
/// afterwards nothing changed: same versions, no body missing, the catalogue and clone served.
async fn refused(c: &Client, server: &ServerProcess, data: &Path, status: u16, code: &str, what: &str, with_piece: bool) {
    let root = root(server);
    let (_, before) = c.get(&format!("{root}/v1/plugins/app")).await;
    let (_, skill_before) = c.get(&format!("{root}/v1/skills/helper/versions")).await;
    let mut attempts = vec![
        ("plugin", format!("{root}/v1/plugins/publish"), plugin("app", "2.0.0", 16, 9)),
        ("new plugin", format!("{root}/v1/plugins/publish"), plugin("fresh", "1.0.0", 16, 10)),
    ];
    if with_piece {
        attempts.push(("skill", format!("{root}/v1/skills?slug=helper&version=2.0.0"), skill(11)));
    }
    for (kind, url, body) in attempts {
        let (got, v) = c.post(&url, "application/gzip", body).await.expect("an answer");
        assert_eq!(
            (got, v["error"].as_str()),
            (status, Some(code)),
            "{what}: a {kind} publish: {v}\nserver log (end):\n{}",
            log_tail(server)
        );
        let message = v["message"].as_str().unwrap_or("");
        assert!(message.contains("data directory"), "{what}: a clear message: {message}");
    }
    let (_, after) = c.get(&format!("{root}/v1/plugins/app")).await;
    assert_eq!(before["versions"], after["versions"], "{what}: no version added");
    let (s, fresh) = c.get(&format!("{root}/v1/plugins/fresh")).await;
    assert_eq!(s, 404, "{what}: the refused new plugin left no row: {fresh}");
    let (_, skill_after) = c.get(&format!("{root}/v1/skills/helper/versions")).await;
    assert_eq!(skill_before["items"], skill_after["items"], "{what}: no piece version added");
    serving(c, server, data, &after, what).await;
}

fn log_tail(server: &ServerProcess) -> String {
    let log = server.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// The catalogue pins `app`'s current commit, a clone gets it, its bodies are all stored.
async fn serving(c: &Client, server: &ServerProcess, data: &Path, app: &serde_json::Value, what: &str) {
    let root = root(server);
    let commit = app["current"]["commit"].as_str().unwrap().to_string();
    assert_eq!(catalogue_sha(c, &root, "app").await.as_deref(), Some(commit.as_str()), "{what}");
    let url = format!("{root}/git/plugins/app.git");
    let (_, head) = tokio::task::spawn_blocking(move || clone(&url, None))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: a published version must still clone: {e}"));
    assert_eq!(head, commit, "{what}");
    let need = needed_bodies(c, &root, app).await;
    let (have, _) = blob_folder(data, true);
    assert!(need.is_subset(&have), "{what}: every body of a served version is stored");
}

both_backends!(
    a_full_or_read_only_data_dir_refuses_publishes_and_keeps_serving,
    |db: TestDb| async move {
        let Some(fs) = Tmpfs::mount("48m") else { return };
        let data = fs.path().join("data");
        let mut server = start(&data, &db.url);
        let c = Client::new(&data);
        let r = root(&server);
        let (s, v) = c
            .post(
                &format!("{r}/v1/plugins/publish"),
                "application/gzip",
                plugin("app", "1.0.0", 16, 1),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{v}");
        let (s, v) = c
            .post(&format!("{r}/v1/skills?slug=helper&version=1.0.0"), "application/gzip", skill(2))
            .await
            .unwrap();
        assert_eq!(s, 201, "{v}");

        // Full: not a byte left.
        let filler = fs.fill(0);
        refused(&c, &server, &data, 507, "insufficient_storage", "a full disk", true).await;
        // Room for the new bodies (1 MiB) but not for them and the repo's new pack as well: the
        // publish must be refused before it commits, not leave a version its repo cannot serve.
        std::fs::remove_file(&filler).unwrap();
        fs.fill((1 << 20) + (600 << 10));
        refused(&c, &server, &data, 507, "insufficient_storage", "room for the bodies only", false).await;
        // After a restart on the full disk (nothing verified in memory): still served.
        kill9(&mut server, true);
        server = start(&data, &db.url);
        let (_, app) = c.get(&format!("{}/v1/plugins/app", root(&server))).await;
        serving(&c, &server, &data, &app, "restarted on a full disk").await;

        // Space again: publishing works.
        std::fs::remove_file(fs.path().join("filler")).unwrap();
        assert!(fs.free() > 8 << 20);
        let r = root(&server);
        let (s, v) = c
            .post(
                &format!("{r}/v1/plugins/publish"),
                "application/gzip",
                plugin("app", "1.1.0", 16, 3),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{v}");
        let (_, app) = c.get(&format!("{r}/v1/plugins/app")).await;
        assert_eq!(app["current"]["version"], "1.1.0");
        serving(&c, &server, &data, &app, "space again").await;

        // Read-only: 503, nothing changed, served; also after a restart on the read-only disk.
        fs.remount("ro");
        refused(&c, &server, &data, 503, "unavailable", "a read-only disk", true).await;
        kill9(&mut server, true);
        server = start(&data, &db.url);
        refused(&c, &server, &data, 503, "unavailable", "restarted on a read-only disk", true).await;
        fs.remount("rw");
        let (s, v) = c
            .post(
                &format!("{}/v1/plugins/publish", root(&server)),
                "application/gzip",
                plugin("app", "1.2.0", 4, 4),
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "writable again: {v}");
        kill9(&mut server, true);
    }
);

/// The default layout: SQLite inside the data dir, so the database shares the full or
/// read-only disk. Publishes are refused the same way; reads and clones go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_a_full_or_read_only_data_dir() {
    let Some(fs) = Tmpfs::mount("48m") else { return };
    let data = fs.path().join("data");
    let mut server = start_with(&data, None);
    let c = Client::new(&data);
    let r = root(&server);
    let (s, v) = c
        .post(
            &format!("{r}/v1/plugins/publish"),
            "application/gzip",
            plugin("app", "1.0.0", 16, 1),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    let (s, v) = c
        .post(&format!("{r}/v1/skills?slug=helper&version=1.0.0"), "application/gzip", skill(2))
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    fs.fill(0);
    refused(&c, &server, &data, 507, "insufficient_storage", "a full disk, SQLite on it", true).await;
    kill9(&mut server, true);
    server = start_with(&data, None);
    refused(
        &c,
        &server,
        &data,
        507,
        "insufficient_storage",
        "restarted on a full disk, SQLite on it",
        true,
    )
    .await;
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    // The database is open for writing: the kernel remounts read-only only once it is closed.
    kill9(&mut server, true);
    fs.remount("ro");
    server = start_with(&data, None);
    refused(
        &c,
        &server,
        &data,
        503,
        "unavailable",
        "restarted on a read-only disk, SQLite on it",
        true,
    )
    .await;
    kill9(&mut server, true);
}
