//! Cached answers of `git upload-pack`. A served repository changes only when the database says
//! so (a new head commit), so for a given head, the answer to the same request is the same:
//! the ref advertisement, `ls-refs`, and a first fetch (`done` sent, no `have`: what every
//! `git clone`, and so every Claude Code install, sends). Such answers are kept — the small ones
//! in memory ([`SmallAnswers`]), packs on disk ([`PackCache`], bounded in bytes, least recently
//! used out first) — and replayed without running git. Everything else runs git.
//!
//! Keys always carry the repository's head commit as the database knows it: a publish moves
//! the head, so an older answer is never replayed for a newer repository, and a purge rewrites
//! every later commit id (and [`forget_plugin`] drops the plugin's packs at once).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::upload_pack::Protocol;

/// What a request is, for the caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `command=ls-refs` (protocol v2): a small answer that depends on the refs only.
    LsRefs(String),
    /// `command=fetch` with `done` and no `have` (protocol v2): a whole pack, the same for the
    /// same wants, capabilities and shallow/filter arguments.
    FirstFetch(String),
}

/// Most `want` lines of a fetch that is cached (a clone has one; more is unusual).
const MAX_WANTS: usize = 16;

/// Classifies a checked request (`upload_pack::check_request`). The key is the SHA-256 of its
/// pkt-lines without `agent=` and `session-id=` (which name the client, not what it asks for).
/// Protocol v0 and anything but the two shapes above are `None`: answered by git every time.
pub fn shape(protocol: Protocol, body: &[u8]) -> Option<Shape> {
    if protocol != Protocol::V2 {
        return None;
    }
    let mut hash = Sha256::new();
    let mut command = None;
    let (mut wants, mut done, mut have) = (0usize, false, false);
    let mut at = 0usize;
    while at < body.len() {
        let len = usize::from_str_radix(std::str::from_utf8(body.get(at..at + 4)?).ok()?, 16).ok()?;
        if len < 4 {
            // flush, delimiter, response-end: part of the shape.
            hash.update(&body[at..at + 4]);
            at += 4;
            continue;
        }
        let line = body.get(at + 4..at + len)?;
        at += len;
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if text.starts_with(b"agent=") || text.starts_with(b"session-id=") {
            continue;
        }
        if let Some(c) = text.strip_prefix(b"command=") {
            if command.is_some() {
                return None;
            }
            command = Some(c.to_vec());
        } else if text.starts_with(b"want ") || text.starts_with(b"want-ref ") {
            wants += 1;
        } else if text.starts_with(b"have ") {
            have = true;
        } else if text == b"done" {
            done = true;
        }
        // Length-prefixed, so that no two different requests hash alike.
        hash.update((line.len() as u32).to_be_bytes());
        hash.update(line);
    }
    let key = hex::encode(hash.finalize());
    match command.as_deref() {
        Some(b"ls-refs") => Some(Shape::LsRefs(key)),
        Some(b"fetch") if done && !have && (1..=MAX_WANTS).contains(&wants) => Some(Shape::FirstFetch(key)),
        _ => None,
    }
}

/// Small answers (ref advertisements, `ls-refs`) in memory, oldest out first past a bound in
/// entries and bytes.
pub struct SmallAnswers {
    inner: Mutex<SmallInner>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct SmallInner {
    map: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl SmallAnswers {
    /// An answer bigger than this is not kept.
    pub const MAX_ANSWER: usize = 256 << 10;

    pub fn new(max_entries: usize, max_bytes: usize) -> SmallAnswers {
        SmallAnswers {
            inner: Mutex::new(SmallInner::default()),
            max_entries,
            max_bytes,
        }
    }

    /// The key of an answer: the repository, its head as the database knows it, and what was asked.
    pub fn key(repo: &Path, head: &str, what: &str) -> String {
        format!("{}\0{head}\0{what}", repo.display())
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.get(key).cloned()
    }

    pub fn put(&self, key: String, answer: Bytes) {
        if answer.len() > Self::MAX_ANSWER || self.max_entries == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.map.contains_key(&key) {
            return;
        }
        inner.bytes += answer.len() + key.len();
        inner.order.push_back(key.clone());
        inner.map.insert(key, answer);
        while inner.map.len() > self.max_entries || inner.bytes > self.max_bytes {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(v) = inner.map.remove(&old) {
                inner.bytes -= v.len() + old.len();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a plugin's cached packs live: `<root>/<tenant>/<plugin>/<head>/<shape>.pack`.
pub fn plugin_dir(root: &Path, tenant_id: i64, plugin_id: i64) -> PathBuf {
    root.join(tenant_id.to_string()).join(plugin_id.to_string())
}

/// Drops every cached pack of a plugin (its history was rewritten by a purge, or it was
/// deleted). Best effort: the answers are keyed by head anyway.
pub fn forget_plugin(root: &Path, tenant_id: i64, plugin_id: i64) {
    let dir = plugin_dir(root, tenant_id, plugin_id);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), error = %e, "could not drop a plugin's cached packs");
    }
}

/// Packs of first fetches on disk, bounded in bytes; the least recently used go first.
/// Several server processes may share the folder: files are written under a temporary name
/// and renamed into place whole, and a file that vanished is a miss.
pub struct PackCache {
    root: PathBuf,
    budget: u64,
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    entries: HashMap<PathBuf, Entry>,
    total: u64,
    clock: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    size: u64,
    used: u64,
}

/// A cached pack to stream.
pub struct CachedPack {
    pub file: tokio::fs::File,
    pub size: u64,
}

impl PackCache {
    /// A cache under `root` of at most `budget` bytes. Packs already there (from an earlier
    /// run) are counted by [`PackCache::scan`].
    pub fn new(root: PathBuf, budget: u64) -> Arc<PackCache> {
        Arc::new(PackCache {
            root,
            budget,
            index: Mutex::new(Index::default()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// One pack may take at most this share of the budget.
    pub fn max_entry(&self) -> u64 {
        self.budget / 4
    }

    /// Where the answer to `shape` for this head is kept.
    pub fn entry_path(&self, tenant_id: i64, plugin_id: i64, head: &str, shape: &str) -> PathBuf {
        plugin_dir(&self.root, tenant_id, plugin_id)
            .join(head)
            .join(format!("{shape}.pack"))
    }

    /// Counts what earlier runs left in the folder (and removes their unfinished files), then
    /// evicts past the budget. Blocking: call it off the async runtime.
    pub fn scan(&self) {
        let mut found = Vec::new();
        walk(&self.root, 0, &mut found);
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        for (path, size) in found {
            if !index.entries.contains_key(&path) {
                index.total += size;
                index.entries.insert(path, Entry { size, used: 0 });
            }
        }
        let budget = self.budget;
        evict(&mut index, budget);
    }

    /// The cached answer at `path`, if there is one.
    pub async fn open(&self, path: &Path) -> Option<CachedPack> {
        let opened = async {
            let file = tokio::fs::File::open(path).await.ok()?;
            let size = file.metadata().await.ok()?.len();
            Some(CachedPack { file, size })
        }
        .await;
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        index.clock += 1;
        let clock = index.clock;
        match (&opened, index.entries.get_mut(path)) {
            (Some(_), Some(e)) => e.used = clock,
            (Some(found), None) => {
                // Written by another process on the same folder.
                index.total += found.size;
                index.entries.insert(
                    path.to_path_buf(),
                    Entry {
                        size: found.size,
                        used: clock,
                    },
                );
            }
            (None, Some(_)) => {
                if let Some(e) = index.entries.remove(path) {
                    index.total -= e.size;
                }
            }
            (None, None) => {}
        }
        drop(index);
        opened
    }

    /// Takes a finished answer (written to `tmp`) into the cache at `path`, drops the plugin's
    /// packs for other heads (no request will ask for them again), and evicts past the budget.
    /// Blocking: call it off the async runtime.
    pub fn admit(&self, tmp: &Path, path: &Path, size: u64) {
        if size > self.max_entry() {
            let _ = std::fs::remove_file(tmp);
            return;
        }
        if let Err(e) = std::fs::rename(tmp, path) {
            tracing::warn!(path = %path.display(), error = %e, "could not keep a pack in the cache");
            let _ = std::fs::remove_file(tmp);
            return;
        }
        // <plugin dir>/<head>/<shape>.pack: the heads beside this one are dead.
        let stale: Vec<PathBuf> = match path.parent().and_then(|head| Some((head, head.parent()?))) {
            Some((head, plugin)) => std::fs::read_dir(plugin)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p != head)
                .collect(),
            None => Vec::new(),
        };
        for dir in &stale {
            let _ = std::fs::remove_dir_all(dir);
        }
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if !stale.is_empty() {
            let gone: Vec<PathBuf> = index
                .entries
                .keys()
                .filter(|k| stale.iter().any(|s| k.starts_with(s)))
                .cloned()
                .collect();
            for k in gone {
                if let Some(e) = index.entries.remove(&k) {
                    index.total -= e.size;
                }
            }
        }
        index.clock += 1;
        let used = index.clock;
        if let Some(old) = index.entries.insert(path.to_path_buf(), Entry { size, used }) {
            index.total -= old.size;
        }
        index.total += size;
        let budget = self.budget;
        evict(&mut index, budget);
    }

    /// Bytes the cache holds as far as this process knows.
    pub fn total_bytes(&self) -> u64 {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// A fresh temporary name beside `path` (same folder: the rename is atomic), the folder made
    /// (the tests' way to fill the cache; the recorder makes the folder off the runtime).
    #[cfg(test)]
    fn temp_for(&self, path: &Path) -> std::io::Result<PathBuf> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self::temp_name(path))
    }

    /// A fresh temporary name beside `path`; its folder may not exist yet.
    pub fn temp_name(path: &Path) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        path.with_extension(format!("tmp.{}.{n}", std::process::id()))
    }
}

/// Evicts the least recently used entries until the total is at most 90% of `budget` (a batch,
/// so that the scan is not made for every admission).
fn evict(index: &mut Index, budget: u64) {
    if index.total <= budget {
        return;
    }
    let target = budget / 10 * 9;
    let mut by_use: Vec<(u64, PathBuf, u64)> = index.entries.iter().map(|(p, e)| (e.used, p.clone(), e.size)).collect();
    by_use.sort_unstable_by_key(|(used, _, _)| *used);
    for (_, path, size) in by_use {
        if index.total <= target {
            break;
        }
        let _ = std::fs::remove_file(&path);
        if let Some(dir) = path.parent() {
            // Empty head folders go too (fails harmlessly when not empty).
            let _ = std::fs::remove_dir(dir);
        }
        index.entries.remove(&path);
        index.total -= size;
    }
}

/// Finds `<root>/<tenant>/<plugin>/<head>/<shape>.pack` files; removes unfinished ones.
fn walk(dir: &Path, depth: usize, found: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && depth < 3 {
            walk(&path, depth + 1, found);
        } else if meta.is_file() && depth == 3 {
            if path.extension().is_some_and(|x| x == "pack") {
                found.push((path, meta.len()));
            } else {
                // A temporary file of a run that stopped mid-answer.
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::upload_pack::pkt;

    const WANT: &str = "want 0123456789abcdef0123456789abcdef01234567\n";

    #[test]
    fn shapes() {
        let clone = |agent: &str| {
            pkt(&[
                "command=fetch\n",
                agent,
                "object-format=sha1\n",
                "0001",
                "thin-pack\n",
                "ofs-delta\n",
                "deepen 1\n",
                WANT,
                "done\n",
                "0000",
            ])
        };
        let a = shape(Protocol::V2, &clone("agent=git/2.47.3\n"));
        let b = shape(Protocol::V2, &clone("agent=git/2.39.0\n"));
        assert!(matches!(a, Some(Shape::FirstFetch(_))));
        assert_eq!(a, b, "the agent does not change the answer");
        assert_eq!(shape(Protocol::V0, &clone("agent=git/2\n")), None, "v0 is not cached");
        let filtered = pkt(&[
            "command=fetch\n",
            "0001",
            "thin-pack\n",
            "filter blob:none\n",
            WANT,
            "done\n",
            "0000",
        ]);
        assert_ne!(shape(Protocol::V2, &filtered), a);
        let negotiation = pkt(&[
            "command=fetch\n",
            "0001",
            WANT,
            "have 1111111111111111111111111111111111111111\n",
            "done\n",
            "0000",
        ]);
        assert_eq!(shape(Protocol::V2, &negotiation), None, "a fetch with haves is not cached");
        let no_done = pkt(&["command=fetch\n", "0001", WANT, "0000"]);
        assert_eq!(shape(Protocol::V2, &no_done), None);
        let ls = pkt(&[
            "command=ls-refs\n",
            "agent=x\n",
            "0001",
            "peel\n",
            "symrefs\n",
            "ref-prefix HEAD\n",
            "0000",
        ]);
        let ls2 = pkt(&[
            "command=ls-refs\n",
            "0001",
            "peel\n",
            "symrefs\n",
            "ref-prefix refs/heads/\n",
            "0000",
        ]);
        assert!(matches!(shape(Protocol::V2, &ls), Some(Shape::LsRefs(_))));
        assert_ne!(shape(Protocol::V2, &ls), shape(Protocol::V2, &ls2));
        let other = pkt(&["command=object-info\n", "0001", "size\n", "0000"]);
        assert_eq!(shape(Protocol::V2, &other), None);
        let twice = pkt(&["command=ls-refs\n", "command=fetch\n", "0001", WANT, "done\n", "0000"]);
        assert_eq!(shape(Protocol::V2, &twice), None);
    }

    #[test]
    fn small_answers_are_bounded() {
        let cache = SmallAnswers::new(2, 1 << 20);
        cache.put("a".into(), Bytes::from_static(b"1"));
        cache.put("b".into(), Bytes::from_static(b"2"));
        cache.put("c".into(), Bytes::from_static(b"3"));
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("c").as_deref(), Some(&b"3"[..]));
        let cache = SmallAnswers::new(100, 10);
        cache.put("a".into(), Bytes::from_static(b"12345678"));
        cache.put("b".into(), Bytes::from_static(b"12345678"));
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn packs_are_bounded_and_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PackCache::new(dir.path().join("packs"), 400);
        let write = |plugin: i64, head: &str, shape: &str| {
            let path = cache.entry_path(1, plugin, head, shape);
            let tmp = cache.temp_for(&path).unwrap();
            std::fs::write(&tmp, [0u8; 100]).unwrap();
            cache.admit(&tmp, &path, 100);
            path
        };
        let a = write(1, "h1", "a");
        let b = write(2, "h1", "b");
        let c = write(3, "h1", "c");
        assert!(cache.open(&a).await.is_some(), "a is used: b is now the oldest");
        let d = write(4, "h1", "d");
        let e = write(5, "h1", "e");
        assert!(cache.total_bytes() <= 400);
        assert!(!b.exists(), "the least recently used went first");
        assert!(a.exists() && e.exists());
        let _ = (c, d);
        // A new head of a plugin drops its packs for the old head.
        let a2 = write(1, "h2", "a");
        assert!(!a.exists() && a2.exists());
        assert!(!a.parent().unwrap().exists());
        // Too big for the budget's share: not kept.
        let path = cache.entry_path(1, 9, "h", "big");
        let tmp = cache.temp_for(&path).unwrap();
        std::fs::write(&tmp, [0u8; 101]).unwrap();
        cache.admit(&tmp, &path, 101);
        assert!(!path.exists() && !tmp.exists());
        // A fresh process counts what is on disk.
        let again = PackCache::new(dir.path().join("packs"), 400);
        again.scan();
        assert_eq!(again.total_bytes(), cache.total_bytes());
        assert!(cache.open(&b).await.is_none());
        forget_plugin(cache.root(), 1, 1);
        assert!(cache.open(&a2).await.is_none());
    }
}
