//! Content-addressed file bodies on the local disk: `<root>/ab/cdef…` by sha256.
//! Writes go to a temporary file and are renamed into place, so a reader never sees
//! a partial body and concurrent writers of the same body do not interfere.
//!
//! Garbage collection and writers exclude each other with a file lock beside the bodies
//! (`<root>/.gc.lock`, so several server processes on one data folder agree): every write of
//! bodies holds it shared ([`BlobStore::lock_writes`]) until the transaction that references
//! them has committed or rolled back; a collection holds it exclusively ([`BlobStore::lock_gc`])
//! from its reference check to its last unlink. So a body written for a publish still in flight
//! is never judged unreferenced, and a body a collection deleted is written again by the next
//! publish that needs it (writers skip only bodies present on disk while they hold the lock).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Db, Result};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn new(root: impl Into<PathBuf>) -> BlobStore {
        BlobStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hex sha256 of `data`.
    pub fn address(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn path_of(&self, sha256: &str) -> std::io::Result<PathBuf> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{sha256}` is not a sha256 address"),
            ));
        }
        Ok(self.root.join(&sha256[..2]).join(&sha256[2..]))
    }

    /// Stores `data` (if not already there) and returns its address, durably: the body and its
    /// directory entry are on disk when this returns. Blocking I/O.
    pub fn put(&self, data: &[u8]) -> std::io::Result<String> {
        let (mut addresses, _) = self.put_all([data])?;
        Ok(addresses.pop().expect("one body, one address"))
    }

    /// Stores every body (those not already there) durably, so that a database commit that
    /// follows never points at a body a crash could still lose: each is written to a temporary
    /// file beside its place, the file system is synced once (`syncfs`: the data of every new
    /// file at once, instead of an `fsync` per file and per directory), the files are renamed
    /// into place, and the file system is synced once more (the names). A body therefore never
    /// sits at its address before its bytes are on disk. Answers the addresses and how many
    /// syncs were made (0 when every body was there). Blocking I/O.
    pub fn put_all<'a>(&self, bodies: impl IntoIterator<Item = &'a [u8]>) -> std::io::Result<(Vec<String>, usize)> {
        let mut addresses = Vec::new();
        // Closed at once (a publish may hold thousands): the paths only, removed if dropped.
        let mut pending: Vec<(tempfile::TempPath, PathBuf)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for data in bodies {
            let address = Self::address(data);
            let path = self.path_of(&address)?;
            addresses.push(address);
            if !seen.insert(path.clone()) || path.exists() {
                continue;
            }
            let dir = path.parent().expect("blob path has a parent");
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
            }
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(data)?;
            pending.push((tmp.into_temp_path(), path));
        }
        if pending.is_empty() {
            return Ok((addresses, 0));
        }
        let root = std::fs::File::open(&self.root)?;
        rustix::fs::syncfs(&root)?;
        for (tmp, path) in pending {
            tmp.persist(&path).map_err(|e| e.error)?;
        }
        rustix::fs::syncfs(&root)?;
        Ok((addresses, 2))
    }

    /// Reads a body and checks it against its address. Blocking I/O.
    pub fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let data = std::fs::read(self.path_of(sha256)?)?;
        if Self::address(&data) != sha256 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("blob {sha256} is corrupt on disk"),
            ));
        }
        Ok(data)
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.path_of(sha256).map(|p| p.exists()).unwrap_or(false)
    }

    /// Deletes a body; true when it was there. Only a garbage collection holding
    /// [`BlobStore::lock_gc`] calls this. Blocking I/O.
    pub fn remove(&self, sha256: &str) -> std::io::Result<bool> {
        match std::fs::remove_file(self.path_of(sha256)?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every body's address, and every leftover file that is not one (a write killed between its
    /// temporary file and its rename); the lock file is neither. Blocking I/O.
    pub fn list(&self) -> std::io::Result<(Vec<String>, Vec<PathBuf>)> {
        let (mut bodies, mut leftovers) = (Vec::new(), Vec::new());
        let top = match std::fs::read_dir(&self.root) {
            Ok(top) => top,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((bodies, leftovers)),
            Err(e) => return Err(e),
        };
        for dir in top {
            let dir = dir?;
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if !dir.file_type()?.is_dir() || prefix.len() != 2 {
                continue;
            }
            for file in std::fs::read_dir(dir.path())? {
                let file = file?;
                let address = format!("{prefix}{}", file.file_name().to_string_lossy());
                if self.path_of(&address).is_ok() {
                    bodies.push(address);
                } else if file.file_type()?.is_file() {
                    leftovers.push(file.path());
                }
            }
        }
        bodies.sort_unstable();
        Ok((bodies, leftovers))
    }

    fn lock_file(&self) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(&self.root)?;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".gc.lock"))
    }

    /// The lock a writer of bodies holds (shared with other writers) until the transaction
    /// referencing them ends; released when the file is dropped. Blocking: waits while a
    /// collection runs.
    pub fn lock_writes(&self) -> std::io::Result<std::fs::File> {
        let file = self.lock_file()?;
        file.lock_shared()?;
        Ok(file)
    }

    /// The lock a garbage collection holds (exclusive: no write of bodies is between its
    /// write and its commit meanwhile); released when the file is dropped. Blocking.
    pub fn lock_gc(&self) -> std::io::Result<std::fs::File> {
        let file = self.lock_file()?;
        file.lock()?;
        Ok(file)
    }
}

/// Which bodies rows still reference, over every tenant: the blob store is shared by all
/// tenants (content-addressed), so this one query is deliberately not scoped to a tenant.
pub trait BlobReads: Db {
    /// The subset of `addresses` that some piece file or plugin version file references.
    async fn referenced_blobs(&mut self, addresses: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut found = std::collections::HashSet::new();
        for chunk in addresses.chunks(400) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let marks = marks.join(", ");
            let sql = format!(
                "SELECT sha256 FROM piece_files WHERE sha256 IN ({marks}) \
                 UNION SELECT sha256 FROM plugin_version_files WHERE sha256 IN ({marks})"
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for a in chunk {
                query = query.bind(a.clone());
            }
            found.extend(query.fetch_all(self.executor()).await?);
        }
        Ok(found)
    }
}

impl<T: Db> BlobReads for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dedup() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let a = store.put(b"hello").unwrap();
        assert_eq!(a, store.put(b"hello").unwrap());
        assert_eq!(store.get(&a).unwrap(), b"hello");
        assert!(store.contains(&a));
        assert!(store.get("../etc/passwd").is_err());
        let empty = store.put(b"").unwrap();
        assert_eq!(store.get(&empty).unwrap(), b"");
    }

    #[test]
    fn put_all_stores_each_body_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path().join("blobs"));
        let (addresses, synced) = store.put_all([&b"a"[..], b"b", b"a"]).unwrap();
        assert_eq!(addresses.len(), 3);
        assert_eq!(addresses[0], addresses[2]);
        assert_eq!(synced, 2, "the data, then the names");
        assert!(addresses.iter().all(|a| store.contains(a)));
        // Nothing new: nothing to sync.
        assert_eq!(store.put_all([&b"b"[..]]).unwrap().1, 0);
    }

    #[test]
    fn detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let a = store.put(b"hello").unwrap();
        std::fs::write(dir.path().join(&a[..2]).join(&a[2..]), b"tampered").unwrap();
        assert!(store.get(&a).is_err());
    }

    #[test]
    fn remove_deletes_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let a = store.put(b"secret").unwrap();
        assert!(store.remove(&a).unwrap());
        assert!(!store.contains(&a));
        assert!(!store.remove(&a).unwrap());
        assert!(store.remove("../x").is_err());
    }

    #[test]
    fn list_finds_bodies_and_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        assert_eq!(store.list().unwrap(), (vec![], vec![]));
        let a = store.put(b"one").unwrap();
        let b = store.put(b"two").unwrap();
        let _lock = store.lock_writes().unwrap();
        let leftover = dir.path().join(&a[..2]).join(".tmpAbC123");
        std::fs::write(&leftover, b"half").unwrap();
        let (bodies, leftovers) = store.list().unwrap();
        let mut want = vec![a, b];
        want.sort_unstable();
        assert_eq!(bodies, want);
        assert_eq!(leftovers, vec![leftover]);
    }

    #[test]
    fn writers_share_the_lock_and_a_collection_excludes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let w1 = store.lock_writes().unwrap();
        let w2 = store.lock_writes().unwrap();
        let probe = store.lock_file().unwrap();
        assert!(matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop((w1, w2));
        let gc = store.lock_gc().unwrap();
        assert!(matches!(probe.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)));
        drop(gc);
        probe.try_lock_shared().unwrap();
    }
}
