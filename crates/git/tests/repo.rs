//! The pure object ids agree with real git, and written histories are what the database says.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use sha1::Digest;
use skill_pool_git::object::{CommitSpec, EntryMode, ObjectId, TreeFile, blob_id, commit_id, tree_id};
use skill_pool_git::repo::{BareRepo, BodySource, HistoryVersion};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[derive(Default)]
struct Bodies(HashMap<String, Vec<u8>>);

impl Bodies {
    fn file(&mut self, path: &str, mode: EntryMode, data: &[u8]) -> TreeFile {
        let sha256 = hex::encode(sha2_like(data));
        self.0.insert(sha256.clone(), data.to_vec());
        TreeFile {
            path: path.into(),
            mode,
            blob: blob_id(data),
            sha256,
        }
    }
}

/// Any stable key works for the test store; sha1 of the data keeps the dev-deps small.
fn sha2_like(data: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(data).into()
}

impl BodySource for Bodies {
    fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        self.0
            .get(sha256)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, sha256.to_string()))
    }
}

fn sample(bodies: &mut Bodies, extra: &str) -> Vec<TreeFile> {
    vec![
        bodies.file(".claude-plugin/plugin.json", EntryMode::File, b"{\"name\":\"p\"}\n"),
        bodies.file("a.b", EntryMode::File, b"dot\n"),
        bodies.file("a-b", EntryMode::File, b"dash\n"),
        bodies.file("a/inner.txt", EntryMode::File, extra.as_bytes()),
        bodies.file("bin/tool", EntryMode::Executable, b"#!/bin/sh\necho hi\n"),
        bodies.file("link", EntryMode::Symlink, b"bin/tool"),
        bodies.file("empty", EntryMode::File, b""),
        bodies.file("binary.dat", EntryMode::File, &[0, 1, 2, 255, 254, 10, 13]),
        bodies.file("with space/and \"quote\".md", EntryMode::File, b"odd name\n"),
    ]
}

fn history(bodies: &mut Bodies, n: usize) -> Vec<HistoryVersion> {
    let mut out: Vec<HistoryVersion> = Vec::new();
    for i in 0..n {
        let files = sample(bodies, &format!("version {i}\n"));
        let tree = tree_id(&files).unwrap();
        let parent = out.last().map(|v| v.expected);
        let message = format!("p 1.{i}.0\n");
        let time_secs = 1_700_000_000 + i as i64 * 60;
        let expected = commit_id(&CommitSpec {
            tree,
            parent,
            time_secs,
            message: message.clone(),
        });
        out.push(HistoryVersion {
            files,
            time_secs,
            message,
            tags: vec![format!("v1.{i}.0"), format!("p--v1.{i}.0")],
            expected,
        });
    }
    out
}

#[tokio::test]
async fn history_matches_pure_ids_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repos/1/2.git");
    let mut bodies = Bodies::default();
    let versions = history(&mut bodies, 3);

    let repo = BareRepo::open_or_init(&path).await.unwrap();
    assert_eq!(repo.head_commit().await.unwrap(), None);
    let head = repo.write_history(&versions[..2], &bodies).await.unwrap();
    assert_eq!(head, versions[1].expected);
    // One more version resumes from the head.
    let head = repo.write_history(&versions, &bodies).await.unwrap();
    assert_eq!(head, versions[2].expected);
    assert_eq!(repo.write_history(&versions, &bodies).await.unwrap(), head, "idempotent");

    let log = git(&path, &["log", "--format=%H %an <%ae> %at %s", "main"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with(&format!(
        "{} skill-pool <skill-pool@localhost> 1700000120 p 1.2.0",
        versions[2].expected
    )));
    assert_eq!(
        git(&path, &["tag"]).lines().collect::<Vec<_>>(),
        ["p--v1.0.0", "p--v1.1.0", "p--v1.2.0", "v1.0.0", "v1.1.0", "v1.2.0"]
    );
    // Lightweight tags on the version commits (`ls-remote --tags` lists them without `^{}`).
    assert_eq!(git(&path, &["rev-parse", "p--v1.2.0"]).trim(), versions[2].expected.to_hex());
    assert_eq!(git(&path, &["symbolic-ref", "HEAD"]).trim(), "refs/heads/main");
    let tree = git(&path, &["ls-tree", "-r", "main"]);
    assert!(tree.contains("100755 blob"), "{tree}");
    assert!(tree.contains("120000 blob"), "{tree}");
    assert!(tree.contains("\"with space/and \\\"quote\\\".md\""), "{tree}");
    assert_eq!(git(&path, &["cat-file", "-p", "main:a/inner.txt"]), "version 2\n");
    git(&path, &["fsck", "--strict"]);
    // Packed, never loose (upload-pack reuses packed objects; loose ones it deflates per fetch).
    let counted = git(&path, &["count-objects", "-v"]);
    assert!(counted.lines().any(|l| l == "count: 0"), "{counted}");
    assert!(counted.lines().any(|l| l == "packs: 2"), "one pack per write: {counted}");

    // Real git computes the same tree for the same files (checked via write-tree on an index).
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q"]);
    for f in &versions[0].files {
        let data = bodies.read(&f.sha256).unwrap();
        let id = git_hash_object(&work, &data);
        assert_eq!(id, f.blob.to_hex());
        git(
            &work,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("{},{},{}", f.mode.octal(), id, f.path),
            ],
        );
    }
    assert_eq!(git(&work, &["write-tree"]).trim(), tree_id(&versions[0].files).unwrap().to_hex());
}

fn git_hash_object(dir: &Path, data: &[u8]) -> String {
    let file = dir.join(".blob");
    std::fs::write(&file, data).unwrap();
    let id = git(dir, &["hash-object", "-w", ".blob"]).trim().to_string();
    std::fs::remove_file(file).unwrap();
    id
}

#[tokio::test]
async fn rewrites_a_stale_or_foreign_history() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.git");
    let mut bodies = Bodies::default();
    let versions = history(&mut bodies, 2);
    let repo = BareRepo::open_or_init(&path).await.unwrap();
    // Something else on main and a stray tag: replaced, removed.
    let other = history(&mut bodies, 1);
    let other = [HistoryVersion {
        message: "other\n".into(),
        tags: vec!["stray".into()],
        ..other[0].clone()
    }];
    let other = vec![HistoryVersion {
        expected: commit_id(&CommitSpec {
            tree: tree_id(&other[0].files).unwrap(),
            parent: None,
            time_secs: other[0].time_secs,
            message: "other\n".into(),
        }),
        ..other[0].clone()
    }];
    repo.write_history(&other, &bodies).await.unwrap();
    assert_eq!(repo.write_history(&versions, &bodies).await.unwrap(), versions[1].expected);
    assert_eq!(
        git(&path, &["tag"]).lines().collect::<Vec<_>>(),
        ["p--v1.0.0", "p--v1.1.0", "v1.0.0", "v1.1.0"]
    );
    assert_eq!(git(&path, &["rev-list", "--count", "main"]).trim(), "2");

    // A wrong expectation is reported, not served silently.
    let mut wrong = versions.clone();
    wrong[1].expected = ObjectId::from_bytes([7; 20]);
    let fresh = BareRepo::open_or_init(&tmp.path().join("fresh.git")).await.unwrap();
    let err = fresh.write_history(&wrong, &bodies).await.unwrap_err();
    assert!(err.to_string().contains("expected"), "{err}");

    // A `main` whose commit is gone (a damaged repo) is reported, so the caller rebuilds.
    let damaged = tmp.path().join("damaged.git");
    let repo = BareRepo::open_or_init(&damaged).await.unwrap();
    repo.write_history(&versions[..1], &bodies).await.unwrap();
    std::fs::write(damaged.join("refs/heads/main"), format!("{}\n", ObjectId::from_bytes([9; 20]))).unwrap();
    let reopened = BareRepo::open_or_init(&damaged).await.unwrap();
    assert_eq!(reopened.head_commit().await.unwrap(), Some(ObjectId::from_bytes([9; 20])));
    let err = reopened.write_history(&versions, &bodies).await.unwrap_err();
    assert!(err.to_string().contains("does not hold"), "{err}");

    // A directory that is not a repository is refused.
    let junk = tmp.path().join("junk.git");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("HEAD"), "garbage").unwrap();
    assert!(BareRepo::open_or_init(&junk).await.is_err());
}

#[tokio::test]
async fn a_missing_body_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bodies = Bodies::default();
    let versions = history(&mut bodies, 1);
    let repo = BareRepo::open_or_init(&tmp.path().join("r.git")).await.unwrap();
    let empty = Bodies::default();
    let err = repo.write_history(&versions, &empty).await.unwrap_err();
    assert!(err.to_string().contains("reading the body"), "{err}");
}

/// The packs written in-process are what git itself reads: `verify-pack` checks the index
/// against the pack (checksums, CRCs, offsets) and every object, with sizes that need
/// several header bytes and a fan-out over many first bytes.
#[tokio::test]
async fn packs_written_in_process_verify_with_git() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repos/1/3.git");
    let mut bodies = Bodies::default();
    let mut files = Vec::new();
    // 1 MiB that deflate cannot shrink (a simple xorshift), and many small files.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    files.push(bodies.file("data/big.bin", EntryMode::File, &big));
    for i in 0..300 {
        files.push(bodies.file(
            &format!("skills/s{}/f{i}.md", i % 17),
            EntryMode::File,
            format!("file {i}\n").as_bytes(),
        ));
    }
    files.push(bodies.file(".claude-plugin/plugin.json", EntryMode::File, b"{\"name\":\"p\"}\n"));
    let expected = commit_id(&CommitSpec {
        tree: tree_id(&files).unwrap(),
        parent: None,
        time_secs: 1_700_000_000,
        message: "p 1.0.0\n".into(),
    });
    let versions = vec![HistoryVersion {
        files,
        time_secs: 1_700_000_000,
        message: "p 1.0.0\n".into(),
        tags: vec!["v1.0.0".into()],
        expected,
    }];
    let repo = BareRepo::open_or_init(&path).await.unwrap();
    assert_eq!(repo.write_history(&versions, &bodies).await.unwrap(), expected);
    let packs: Vec<_> = std::fs::read_dir(path.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(packs.len(), 2, "a pack and its index, no temporary file left: {packs:?}");
    let idx = packs.iter().find(|p| p.extension().is_some_and(|x| x == "idx")).unwrap();
    let verified = git(&path, &["verify-pack", "-v", idx.to_str().unwrap()]);
    // 302 blobs, 21 trees (root, .claude-plugin, data, skills and its 17 folders), one commit.
    assert!(verified.contains("non delta: 324 objects"), "{verified}");
    git(&path, &["fsck", "--strict", "--full"]);
    let out = Command::new("git")
        .args(["cat-file", "blob", "main:data/big.bin"])
        .current_dir(&path)
        .output()
        .unwrap();
    assert!(out.stdout == big, "the big body reads back whole");
    assert_eq!(git(&path, &["rev-parse", "v1.0.0"]).trim(), expected.to_hex());

    // A body that differs from its recorded id is refused before anything is written.
    let mut wrong = versions.clone();
    wrong[0].expected = commit_id(&CommitSpec {
        tree: tree_id(&wrong[0].files).unwrap(),
        parent: None,
        time_secs: 1,
        message: "other\n".into(),
    });
    wrong[0].tags.clear();
    let fresh = BareRepo::open_or_init(&tmp.path().join("repos/1/4.git")).await.unwrap();
    let err = fresh.write_history(&wrong, &bodies).await.unwrap_err();
    assert!(err.to_string().contains("expected"), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path().join("repos/1/4.git/objects/pack")).unwrap().count(), 0);
}

/// What a write killed half-way leaves in `objects/pack` is removed by a later write once it is
/// an hour old, and left alone while it may still be another process's write in progress.
#[tokio::test]
async fn stale_temporary_packs_are_removed_by_a_later_write() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repos/1/5.git");
    let mut bodies = Bodies::default();
    let version = |files: Vec<TreeFile>, parent: Option<ObjectId>, n: u64| {
        let message = format!("p 1.0.{n}\n");
        HistoryVersion {
            expected: commit_id(&CommitSpec {
                tree: tree_id(&files).unwrap(),
                parent,
                time_secs: 1_700_000_000 + n as i64,
                message: message.clone(),
            }),
            files,
            time_secs: 1_700_000_000 + n as i64,
            message,
            tags: vec![],
        }
    };
    let first = version(sample(&mut bodies, "one\n"), None, 0);
    let repo = BareRepo::open_or_init(&path).await.unwrap();
    repo.write_history(std::slice::from_ref(&first), &bodies).await.unwrap();

    let pack_dir = path.join("objects/pack");
    let old = pack_dir.join("tmp_pack_killed");
    let recent = pack_dir.join("tmp_idx_in_progress");
    std::fs::write(&old, b"PACK half").unwrap();
    std::fs::write(&recent, b"half").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let second = version(sample(&mut bodies, "two\n"), Some(first.expected), 1);
    repo.write_history(&[first, second], &bodies).await.unwrap();
    assert!(!old.exists(), "the stale temporary pack is gone");
    assert!(recent.exists(), "a recent temporary file is left alone");
    git(&path, &["fsck", "--strict", "--full"]);
}

/// Every write adds a pack; past sixteen the repo is repacked into one after the write, so a
/// plugin published hundreds of times is served from a few packs, and nothing is lost on the way.
#[tokio::test]
async fn many_writes_are_folded_into_few_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repos/1/6.git");
    let mut bodies = Bodies::default();
    let repo = BareRepo::open_or_init(&path).await.unwrap();
    let pack_dir = path.join("objects/pack");
    let packs = || {
        std::fs::read_dir(&pack_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    };
    let mut versions: Vec<HistoryVersion> = Vec::new();
    let mut most = 0;
    for n in 0..24u64 {
        let files = sample(&mut bodies, &format!("version {n}\n"));
        let message = format!("p 1.0.{n}\n");
        let time_secs = 1_700_000_000 + n as i64;
        let expected = commit_id(&CommitSpec {
            tree: tree_id(&files).unwrap(),
            parent: versions.last().map(|v| v.expected),
            time_secs,
            message: message.clone(),
        });
        versions.push(HistoryVersion {
            expected,
            files,
            time_secs,
            message,
            tags: vec![],
        });
        repo.write_history(&versions, &bodies).await.unwrap();
        most = most.max(packs());
    }
    assert!(most <= 17, "never more than one pack past the bound: {most}");
    assert!(packs() < 16, "the packs were folded: {} left", packs());
    git(&path, &["fsck", "--strict", "--full"]);
    let log = git(&path, &["log", "--format=%s", "main"]);
    assert_eq!(log.lines().count(), 24, "every version is still there:\n{log}");
    assert_eq!(log.lines().next(), Some("p 1.0.23"));
}
