//! Content-addressed file bodies on the local disk: `<root>/ab/cdef…` by sha256.
//! Writes go to a temporary file and are renamed into place, so a reader never sees
//! a partial body and concurrent writers of the same body do not interfere.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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

    /// Stores every body (those not already there), each written to a temporary file, synced
    /// and renamed into place, then syncs each directory it added names to once, so that a
    /// database commit that follows never points at a body a crash could still lose. Answers
    /// the addresses and how many directories were synced. Blocking I/O.
    pub fn put_all<'a>(&self, bodies: impl IntoIterator<Item = &'a [u8]>) -> std::io::Result<(Vec<String>, usize)> {
        let mut addresses = Vec::new();
        let mut touched = std::collections::BTreeSet::new();
        for data in bodies {
            let address = Self::address(data);
            let path = self.path_of(&address)?;
            addresses.push(address);
            if path.exists() {
                continue;
            }
            let dir = path.parent().expect("blob path has a parent");
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
                // The new fan-out directory's own name lives in the root.
                touched.insert(self.root.clone());
            }
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(data)?;
            tmp.as_file().sync_data()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            touched.insert(dir.to_path_buf());
        }
        for dir in &touched {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok((addresses, touched.len()))
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
}

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
        assert!(synced >= 2, "the new directories and the root are synced");
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
}
