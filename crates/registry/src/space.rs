//! Room on the data directory, checked before a publish commits: a full or read-only disk
//! refuses the publish (507 / 503) while its transaction can still roll back, instead of
//! committing a version whose repo cannot be written.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::tree::Bodies;
use crate::{Registry, RegistryError, Result};

/// Headroom besides the estimate: git's pack index and refs, SQLite's journal, the audit row.
const MARGIN: u64 = 1 << 20;

impl Registry {
    /// The blob store can take the `bodies` it lacks and the folder of the repo at `repo` the
    /// pack they make (an estimate from above: the new bodies when the repo exists, else every
    /// file of the tree, `tree_bytes`). Both folders must be writable. A refusal is an I/O
    /// error of kind `StorageFull` or `ReadOnlyFilesystem`/`PermissionDenied` (507 / 503).
    pub(crate) async fn check_room(&self, repo: PathBuf, bodies: &Bodies, tree_bytes: u64) -> Result<()> {
        let store = self.store().blobs().clone();
        let bodies = bodies.clone();
        tokio::task::spawn_blocking(move || {
            let blob_bytes = bodies.new_bytes(&store);
            let repo_bytes = if repo.exists() { blob_bytes } else { tree_bytes };
            let blobs = store.root().to_path_buf();
            let repos = repo.parent().unwrap_or(&repo).to_path_buf();
            let b = probe(&blobs)?;
            let r = probe(&repos)?;
            if b.dev == r.dev {
                enough(&blobs, b.available, blob_bytes + repo_bytes + MARGIN)
            } else {
                enough(&blobs, b.available, blob_bytes + MARGIN)?;
                enough(&repos, r.available, repo_bytes + MARGIN)
            }
        })
        .await?
        .map_err(RegistryError::io("checking the data directory before the publish"))
    }
}

struct Room {
    dev: u64,
    available: u64,
}

/// Creates `dir` if needed, proves it writable (a file created and removed) and reads the room
/// left on its file system for an unprivileged writer.
fn probe(dir: &Path) -> std::io::Result<Room> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".room-{}", uuid::Uuid::new_v4().simple()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)?;
    let st = rustix::fs::statvfs(dir)?;
    Ok(Room {
        dev: std::fs::metadata(dir)?.dev(),
        available: st.f_bavail.saturating_mul(st.f_frsize),
    })
}

fn enough(dir: &Path, available: u64, needed: u64) -> std::io::Result<()> {
    if available >= needed {
        return Ok(());
    }
    Err(std::io::Error::new(
        ErrorKind::StorageFull,
        format!("{} has {available} bytes free, the publish needs about {needed}", dir.display()),
    ))
}
