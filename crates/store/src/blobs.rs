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

    /// Stores `data` (if not already there) and returns its address. Blocking I/O.
    pub fn put(&self, data: &[u8]) -> std::io::Result<String> {
        let address = Self::address(data);
        let path = self.path_of(&address)?;
        if path.exists() {
            return Ok(address);
        }
        let dir = path.parent().expect("blob path has a parent");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(data)?;
        tmp.as_file().sync_data()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(address)
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
    fn detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let a = store.put(b"hello").unwrap();
        std::fs::write(dir.path().join(&a[..2]).join(&a[2..]), b"tampered").unwrap();
        assert!(store.get(&a).is_err());
    }
}
