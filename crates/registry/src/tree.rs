//! File lists: storing uploaded bodies, digests of file lists, and the git view of a tree.

use sha2::{Digest, Sha256};
use skill_pool_core::api::FileInfo;
use skill_pool_core::archive::{FileMode, UploadFile, UploadLimits, unpack_tar_gz};
use skill_pool_git::object::{EntryMode, ObjectId, TreeFile, blob_id};
use skill_pool_store::BlobStore;
use skill_pool_store::pieces::FileRow;

use crate::{Registry, RegistryError, Result};

/// File bodies hashed but not yet written: they reach the blob store only right before the
/// transaction that references them commits, so refused input leaves nothing on disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bodies(std::sync::Arc<Vec<(String, Vec<u8>)>>);

impl Bodies {
    /// Every (sha256, body).
    pub(crate) fn list(&self) -> &[(String, Vec<u8>)] {
        &self.0
    }

    /// One list of all parts' bodies, moved rather than copied when a part is not shared (a
    /// large upload must not be held in memory twice).
    pub(crate) fn merge(parts: impl IntoIterator<Item = Bodies>) -> Bodies {
        let mut all = Vec::new();
        for p in parts {
            match std::sync::Arc::try_unwrap(p.0) {
                Ok(owned) => all.extend(owned),
                Err(shared) => all.extend(shared.iter().cloned()),
            }
        }
        Bodies(std::sync::Arc::new(all))
    }

    /// `(sha256, size)` of each body, for quotas.
    pub(crate) fn sizes(&self) -> Vec<(&str, u64)> {
        self.0.iter().map(|(sha, data)| (sha.as_str(), data.len() as u64)).collect()
    }
}

/// Held by a writer of bodies until its transaction ends; see [`Registry::write_bodies`].
#[must_use = "hold it until the transaction that references the bodies has committed"]
pub(crate) struct BlobWriteGuard {
    _lock: std::fs::File,
}

/// Text compresses 5 to 10 times; more than this is a compression bomb, not a plugin.
pub(crate) const MAX_EXPANSION: u64 = 100;
/// Small uploads may always unpack to this much.
pub(crate) const EXPANSION_FLOOR: u64 = 16 << 20;

impl Registry {
    /// Unpacks an uploaded tar.gz within the upload limits, off the async runtime (a large
    /// upload must not stall other requests).
    ///
    /// Besides the size limits, the expansion is bounded: an upload may unpack to at most
    /// [`MAX_EXPANSION`] times its compressed size (or [`EXPANSION_FLOOR`], whichever is more),
    /// so a small archive cannot make the server hold hundreds of megabytes.
    pub(crate) async fn unpack_upload(&self, tar_gz: bytes::Bytes) -> Result<Vec<UploadFile>> {
        let mut limits = UploadLimits::from_upload_limit(self.config().max_upload_bytes);
        let by_ratio = (tar_gz.len() as u64).saturating_mul(MAX_EXPANSION).max(EXPANSION_FLOOR);
        limits.max_unpacked_bytes = limits.max_unpacked_bytes.min(by_ratio);
        Ok(tokio::task::spawn_blocking(move || unpack_tar_gz(&tar_gz, &limits)).await??)
    }

    /// Hashes the files (sha256 for storage, git blob id for commits) and describes them.
    pub(crate) async fn prepare_files(&self, files: Vec<UploadFile>) -> Result<(Vec<FileRow>, Bodies)> {
        tokio::task::spawn_blocking(move || {
            let mut rows = Vec::with_capacity(files.len());
            let mut bodies = Vec::with_capacity(files.len());
            for f in files {
                let sha256 = BlobStore::address(&f.data);
                rows.push(FileRow {
                    path: f.path,
                    mode: f.mode,
                    size: f.data.len() as i64,
                    sha256: sha256.clone(),
                    git_oid: blob_id(&f.data).to_hex(),
                });
                bodies.push((sha256, f.data));
            }
            (rows, Bodies(std::sync::Arc::new(bodies)))
        })
        .await
        .map_err(RegistryError::from)
    }

    /// Writes bodies to the blob store (content-addressed: repeats cost nothing). The answer is
    /// the blob store's writer lock: hold it until the transaction that references the bodies
    /// has committed (or is dropped), so a garbage collection cannot delete a body of a publish
    /// in flight (`BlobStore::lock_writes`, `crate::gc`).
    pub(crate) async fn write_bodies(&self, bodies: &Bodies) -> Result<BlobWriteGuard> {
        let blobs = self.store().blobs().clone();
        let bodies = bodies.clone();
        tokio::task::spawn_blocking(move || {
            let lock = blobs.lock_writes().map_err(RegistryError::io("locking the blob store"))?;
            let new = bodies.0.iter().filter(|(address, _)| !blobs.contains(address));
            blobs
                .put_all(new.map(|(_, data)| data.as_slice()))
                .map_err(RegistryError::io("writing a file body"))?;
            Ok(BlobWriteGuard { _lock: lock })
        })
        .await?
    }
}

impl Bodies {
    /// Bytes of the bodies the blob store does not hold yet (what a publish adds to it).
    pub(crate) fn new_bytes(&self, blobs: &BlobStore) -> u64 {
        self.0.iter().filter(|(a, _)| !blobs.contains(a)).map(|(_, d)| d.len() as u64).sum()
    }
}

/// sha256 over the sorted `(path, mode, body sha256)` list: equal digests mean equal trees.
pub(crate) fn digest(files: &[FileRow]) -> String {
    let mut sorted: Vec<&FileRow> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut hasher = Sha256::new();
    for f in sorted {
        hasher.update(f.path.as_bytes());
        hasher.update([0]);
        hasher.update(f.mode.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(f.sha256.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

pub(crate) fn tree_files(files: &[FileRow]) -> Result<Vec<TreeFile>> {
    files
        .iter()
        .map(|f| {
            let mode = match f.mode {
                FileMode::Regular => EntryMode::File,
                FileMode::Executable => EntryMode::Executable,
                FileMode::Symlink => EntryMode::Symlink,
            };
            let blob: ObjectId = f
                .git_oid
                .parse()
                .map_err(|_| RegistryError::Internal(format!("stored file {} has a bad git id", f.path)))?;
            Ok(TreeFile {
                path: f.path.clone(),
                mode,
                blob,
                sha256: f.sha256.clone(),
            })
        })
        .collect()
}

pub(crate) fn file_info(f: &FileRow) -> FileInfo {
    FileInfo {
        path: f.path.clone(),
        mode: f.mode.as_str().to_string(),
        size: f.size.max(0) as u64,
        sha256: f.sha256.clone(),
    }
}

/// Reads the bodies of `files` back as upload files (for downloads).
pub(crate) async fn load_files(registry: &Registry, files: Vec<FileRow>) -> Result<Vec<UploadFile>> {
    let blobs = registry.store().blobs().clone();
    tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|f| {
                let data = blobs
                    .get(&f.sha256)
                    .map_err(RegistryError::io(format!("reading the body of {}", f.path)))?;
                Ok(UploadFile {
                    path: f.path,
                    mode: f.mode,
                    data,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
    .await?
}
