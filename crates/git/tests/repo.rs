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
