//! Bare repositories written from the database: the whole linear history of a plugin, one
//! commit per version, the new objects of a write as one pack made in-process
//! ([`crate::pack`]), the refs as loose files. Commit ids are known in advance
//! ([`crate::object::commit_id`]) and checked before anything is written.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::GitError;
use crate::command::{describe, git, run};
use crate::object::{CommitSpec, ObjectId, TreeFile, blob_id, commit_body, hash_object, tree_objects};
use crate::pack::{Kind, PackObject};

/// Where file bodies come from (the content-addressed blob store).
pub trait BodySource: Send + Sync {
    fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>>;
}

/// One version of the history, oldest first.
#[derive(Debug, Clone)]
pub struct HistoryVersion {
    pub files: Vec<TreeFile>,
    pub time_secs: i64,
    pub message: String,
    /// Lightweight tags to point at this commit, e.g. `v1.2.0` and `hello--v1.2.0`.
    pub tags: Vec<String>,
    /// The commit id computed with [`crate::object::commit_id`].
    pub expected: ObjectId,
}

pub struct BareRepo {
    path: PathBuf,
    /// Made by this `open_or_init` and not written yet: no objects, no refs.
    fresh: std::sync::atomic::AtomicBool,
}

const MAIN: &str = "refs/heads/main";
/// More packs than this and the repo is repacked into one after a write.
const MAX_PACKS: usize = 16;

impl BareRepo {
    /// Opens the bare repository at `path`, creating it (HEAD → `main`) when missing.
    pub async fn open_or_init(path: &Path) -> Result<BareRepo, GitError> {
        let mut repo = BareRepo {
            path: path.to_path_buf(),
            fresh: false.into(),
        };
        if !path.exists() {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|source| GitError::Io {
                    command: format!("init (creating {})", parent.display()),
                    source,
                })?;
            }
            // What `git init --bare --initial-branch=main --template=` makes, written directly
            // (a git process costs more than the whole write): the folders, the config, and HEAD
            // last, so that a folder left half-made is not taken for a repository.
            init_bare(path).await.map_err(|source| GitError::Io {
                command: format!("init (creating {})", path.display()),
                source,
            })?;
            repo.fresh = true.into();
            return Ok(repo);
        }
        // What git itself checks for a git directory (HEAD, objects, refs), read without running
        // git: a healthy served repo (HEAD → main, bare) costs no process to open.
        if is_healthy_bare(path).await {
            return Ok(repo);
        }
        let args = ["rev-parse", "--is-bare-repository"];
        match run(git(Some(path), &args), describe(&args), None).await {
            Ok(out) if String::from_utf8_lossy(&out).trim() == "true" => {}
            Ok(_) => {
                return Err(GitError::NotARepo {
                    path: path.display().to_string(),
                    reason: "not a bare repository".into(),
                });
            }
            Err(e) => {
                return Err(GitError::NotARepo {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        }
        // A HEAD that does not name main (or is missing) is repaired, not trusted; a healthy one
        // is left alone, so that opening writes nothing (a read-only data dir still serves).
        let args = ["symbolic-ref", "HEAD"];
        if let Ok(out) = run(git(Some(path), &args), describe(&args), None).await
            && String::from_utf8_lossy(&out).trim() == MAIN
        {
            return Ok(repo);
        }
        let args = ["symbolic-ref", "HEAD", MAIN];
        run(git(Some(path), &args), describe(&args), None)
            .await
            .map_err(|e| GitError::NotARepo {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(repo)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The commit `main` points at, `None` when the branch does not exist yet.
    pub async fn head_commit(&self) -> Result<Option<ObjectId>, GitError> {
        if self.fresh.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        // The ref as this module writes it (a loose file), read without a process; anything
        // else (packed refs, a symbolic ref, garbage) is left to git. Whether the commit object
        // is there is checked by the write that follows (`write_history_at`).
        if let Ok(text) = tokio::fs::read_to_string(self.path.join(MAIN)).await
            && let Ok(id) = text.trim_end().parse::<ObjectId>()
        {
            return Ok(Some(id));
        }
        let args = ["rev-parse", "--verify", "--quiet", "refs/heads/main^{commit}"];
        match run(git(Some(&self.path), &args), describe(&args), None).await {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().parse()?)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn has_object(&self, id: ObjectId) -> Result<bool, GitError> {
        let hex = id.to_hex();
        let args = ["cat-file", "-e", hex.as_str()];
        match run(git(Some(&self.path), &args), describe(&args), None).await {
            Ok(_) => Ok(true),
            Err(GitError::Failed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Which of `ids` the repository lacks.
    async fn missing(&self, ids: &HashSet<ObjectId>) -> Result<HashSet<ObjectId>, GitError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut input = String::with_capacity(ids.len() * 41);
        for id in ids {
            let _ = writeln!(input, "{id}");
        }
        let args = ["cat-file", "--batch-check"];
        let out = run(git(Some(&self.path), &args), describe(&args), Some(input.into_bytes())).await?;
        let mut missing = HashSet::new();
        for line in String::from_utf8_lossy(&out).lines() {
            if let Some(id) = line.strip_suffix(" missing") {
                missing.insert(id.parse()?);
            }
        }
        Ok(missing)
    }

    /// Makes `main` hold exactly `versions` (oldest first) and the tags they name; returns the
    /// head commit. Versions already in the repo (a prefix of the history) are not rewritten.
    pub async fn write_history(&self, versions: &[HistoryVersion], bodies: &dyn BodySource) -> Result<ObjectId, GitError> {
        let head = self.head_commit().await?;
        self.write_history_at(head, versions, bodies).await
    }

    /// [`BareRepo::write_history`] when the caller has just read the head (`head_commit`).
    pub async fn write_history_at(
        &self,
        head: Option<ObjectId>,
        versions: &[HistoryVersion],
        bodies: &dyn BodySource,
    ) -> Result<ObjectId, GitError> {
        let Some(last) = versions.last() else {
            return Err(GitError::BadTree("a history needs one version at least".into()));
        };
        // Resume after the version `main` already points at (the usual case: one new version).
        let start = match head.and_then(|h| versions.iter().position(|v| v.expected == h)) {
            Some(i) => i + 1,
            None => 0,
        };
        let wanted: HashSet<ObjectId> = versions[start..].iter().flat_map(|v| v.files.iter().map(|f| f.blob)).collect();
        // A repo made just now holds nothing: every body is written without asking.
        let fresh = self.fresh.swap(false, std::sync::atomic::Ordering::Relaxed);
        let missing = if fresh {
            wanted
        } else {
            // The head commit is asked about too: a ref whose commit is gone is a broken repo.
            let mut asked = wanted;
            asked.extend(head);
            let mut missing = self.missing(&asked).await?;
            if let Some(h) = head
                && missing.remove(&h)
            {
                return Err(GitError::NotARepo {
                    path: self.path.display().to_string(),
                    reason: format!("main points at {h}, which the repository does not hold"),
                });
            }
            missing
        };

        // The new objects: the missing bodies, then each new version's trees and commit, its
        // id computed here and checked against the one the database recorded before anything
        // is written.
        let mut objects: Vec<PackObject> = Vec::new();
        let mut packed: HashSet<ObjectId> = HashSet::new();
        for (i, v) in versions.iter().enumerate().skip(start) {
            for f in &v.files {
                if missing.contains(&f.blob) && packed.insert(f.blob) {
                    let data = bodies.read(&f.sha256).map_err(|source| GitError::Body {
                        path: f.path.clone(),
                        sha256: f.sha256.clone(),
                        source,
                    })?;
                    if blob_id(&data) != f.blob {
                        return Err(GitError::Body {
                            path: f.path.clone(),
                            sha256: f.sha256.clone(),
                            source: std::io::Error::other("stored body does not match its recorded git id (corrupt storage?)"),
                        });
                    }
                    objects.push(PackObject {
                        id: f.blob,
                        kind: Kind::Blob,
                        body: data,
                    });
                }
            }
            let (tree, trees) = tree_objects(&v.files)?;
            for (id, body) in trees {
                if packed.insert(id) {
                    objects.push(PackObject {
                        id,
                        kind: Kind::Tree,
                        body,
                    });
                }
            }
            let spec = CommitSpec {
                tree,
                parent: (i > 0).then(|| versions[i - 1].expected),
                time_secs: v.time_secs,
                message: v.message.clone(),
            };
            let body = commit_body(&spec);
            let id = hash_object("commit", &body);
            if id != v.expected {
                return Err(GitError::Mismatch {
                    index: i,
                    expected: v.expected.to_hex(),
                    actual: id.to_hex(),
                });
            }
            if packed.insert(id) {
                objects.push(PackObject {
                    id,
                    kind: Kind::Commit,
                    body,
                });
            }
        }
        // One pack per write, never loose objects: upload-pack then reuses the compressed objects
        // instead of deflating each anew. Objects first, refs after: a ref never names an object
        // the repository lacks.
        if !objects.is_empty() {
            let dir = self.path.join("objects/pack");
            let staged = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)?;
                crate::pack::stage(&dir, &objects)?.install()
            })
            .await
            .map_err(|e| GitError::Io {
                command: "pack write".into(),
                source: std::io::Error::other(e),
            })?;
            staged.map_err(|source| GitError::Io {
                command: format!("pack write (in {})", self.path.display()),
                source,
            })?;
        }
        // Tags first and `main` last, each only when it names something else.
        for v in versions {
            for tag in &v.tags {
                check_ref_name(tag)?;
                self.set_ref(&format!("refs/tags/{tag}"), v.expected).await?;
            }
        }
        self.set_ref(MAIN, last.expected).await?;
        // Refs of another history can only be there when this one did not resume from `main`
        // (and a repo made just now has none).
        if start == 0 && !fresh {
            self.prune_refs(versions).await?;
        }
        self.repack_if_needed().await;
        Ok(last.expected)
    }

    /// Points the loose ref `name` at `id` unless it already does: the new value is written to
    /// `<ref>.lock` and renamed over the ref, as git does (a lock left by a crash is replaced:
    /// the registry's per-repo lock is what keeps writers apart).
    async fn set_ref(&self, name: &str, id: ObjectId) -> Result<(), GitError> {
        let path = self.path.join(name);
        let value = format!("{id}\n");
        if tokio::fs::read_to_string(&path).await.is_ok_and(|v| v == value) {
            return Ok(());
        }
        let io = |source| GitError::Io {
            command: format!("update-ref {name}"),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        tokio::fs::write(&lock, value).await.map_err(io)?;
        tokio::fs::rename(&lock, &path).await.map_err(io)
    }

    /// The names of the repository's tags (`v1.0.0`, `hello--v1.0.0`).
    pub async fn tags(&self) -> Result<HashSet<String>, GitError> {
        let args = ["for-each-ref", "--format=%(refname:strip=2)", "refs/tags"];
        let out = run(git(Some(&self.path), &args), describe(&args), None).await?;
        Ok(String::from_utf8_lossy(&out).lines().map(str::to_string).collect())
    }

    /// Removes refs other than `main` and the versions' tags (left by an older history).
    async fn prune_refs(&self, versions: &[HistoryVersion]) -> Result<(), GitError> {
        let keep: HashSet<String> = versions
            .iter()
            .flat_map(|v| v.tags.iter().map(|t| format!("refs/tags/{t}")))
            .chain([MAIN.to_string()])
            .collect();
        let args = ["for-each-ref", "--format=%(refname)"];
        let out = run(git(Some(&self.path), &args), describe(&args), None).await?;
        let stale: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .filter(|r| !keep.contains(*r))
            .map(str::to_string)
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let mut input = String::new();
        for r in &stale {
            let _ = writeln!(input, "delete {r}");
        }
        let args = ["update-ref", "--stdin"];
        run(git(Some(&self.path), &args), describe(&args), Some(input.into_bytes())).await?;
        Ok(())
    }

    /// Every write adds a pack; fold them when there are many (best effort).
    async fn repack_if_needed(&self) {
        // The folder is read off the async runtime's threads.
        let dir = self.path.join("objects/pack");
        let packs = tokio::task::spawn_blocking(move || count_packs_and_sweep(&dir)).await.unwrap_or(0);
        if packs > MAX_PACKS {
            let args = ["repack", "-a", "-d", "-q"];
            if let Err(e) = run(git(Some(&self.path), &args), describe(&args), None).await {
                tracing::warn!(repo = %self.path.display(), error = %e, "repack failed");
            }
        }
    }
}

/// The packs in `dir`; what a write killed half-way left there (`tmp_*`, no ref names its
/// objects) is removed once an hour old, so that another process's write in progress is never
/// touched.
fn count_packs_and_sweep(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut packs = 0;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".pack") && !name.starts_with("tmp_") {
            packs += 1;
        } else if name.starts_with("tmp_") && is_stale(&entry) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    packs
}

/// A temporary file untouched for an hour.
fn is_stale(entry: &std::fs::DirEntry) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(3600))
}

/// Makes an empty bare repository at `path` (HEAD → `main`), as `git init --bare` does.
async fn init_bare(path: &Path) -> std::io::Result<()> {
    for dir in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
        tokio::fs::create_dir_all(path.join(dir)).await?;
    }
    tokio::fs::write(
        path.join("config"),
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    )
    .await?;
    tokio::fs::write(path.join("HEAD"), format!("ref: {MAIN}\n")).await
}

/// A bare repository whose HEAD names `main`, with its object and ref folders: read from the
/// files, as git's own check does. Anything else is left to git (which repairs or refuses).
async fn is_healthy_bare(path: &Path) -> bool {
    let head = tokio::fs::read_to_string(path.join("HEAD")).await.unwrap_or_default();
    if head.trim_end() != format!("ref: {MAIN}") {
        return false;
    }
    let config = tokio::fs::read_to_string(path.join("config")).await.unwrap_or_default();
    let bare = config.lines().any(|l| l.trim().replace(' ', "") == "bare=true");
    bare && tokio::fs::metadata(path.join("objects")).await.is_ok_and(|m| m.is_dir())
        && tokio::fs::metadata(path.join("refs")).await.is_ok_and(|m| m.is_dir())
}

fn check_ref_name(tag: &str) -> Result<(), GitError> {
    let ok = !tag.is_empty()
        && !tag.starts_with(['-', '.', '/'])
        && !tag.ends_with(['/', '.'])
        && !tag.contains("..")
        && !tag.contains("@{")
        && !tag.ends_with(".lock")
        && tag.bytes().all(|b| b > 0x20 && b != 0x7f && !b" ~^:?*[\\".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(GitError::BadTree(format!("`{tag}` is not a valid tag name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names() {
        assert!(check_ref_name("v1.2.3").is_ok());
        assert!(check_ref_name("v1.2.3-rc.1").is_ok());
        assert!(check_ref_name("a..b").is_err());
        assert!(check_ref_name("x y").is_err());
    }
}
