//! Garbage collection of file bodies. The blob store is shared by every tenant and addressed by
//! content, so a body goes only when no row of any tenant (a piece file or a plugin version file)
//! references it any more. A purge and a plugin delete collect the bodies their removed rows
//! referenced, right after their transaction commits.
//!
//! Safe against a concurrent publish: a publish writes its bodies first and its rows after, so
//! between the two a body is on disk and referenced by nothing yet. Every write of bodies holds
//! the blob store's writer lock (shared) until its transaction has committed or rolled back
//! (`Registry::write_bodies`), and a collection holds it exclusively from the moment it asks the
//! database which candidates are still referenced to its last unlink. So the answer it acts on
//! includes every publish that wrote bodies before it, and a publish that comes after finds a
//! deleted body missing and writes it again. A lock rather than a grace period (keep bodies
//! younger than N minutes): the lock is exact whatever the clock or the length of a transaction,
//! and it is a file lock, so several server processes on one data folder agree too. It is held
//! for one indexed query and a few unlinks; publishes wait that long at most.
//!
//! The operator's full sweep (`skill-pool-server gc`, [`Registry::collect_garbage`]) takes every
//! body on disk as a candidate: bodies left by publishes that were refused or killed after
//! writing them, or by a collection that failed. It lists the store without the lock (a body
//! written after the listing is no candidate; one listed and then committed is seen as
//! referenced) and checks and deletes under it, like the collection of a purge.

use skill_pool_store::prelude::*;

use crate::{Principal, Registry, RegistryError, Result};

/// What a full sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Bodies on disk when the sweep listed them.
    pub bodies: u64,
    /// Of those, deleted: no row referenced them.
    pub deleted: u64,
    /// Leftover temporary files (a write killed before its rename) deleted.
    pub leftovers: u64,
}

impl Registry {
    /// Deletes those of `candidates` (sha256 addresses) that no row references any more;
    /// answers how many bodies went.
    pub(crate) async fn collect_blobs(&self, mut candidates: Vec<String>) -> Result<u64> {
        candidates.sort_unstable();
        candidates.dedup();
        if candidates.is_empty() {
            return Ok(0);
        }
        let blobs = self.store().blobs().clone();
        let lock = {
            let blobs = blobs.clone();
            tokio::task::spawn_blocking(move || blobs.lock_gc())
                .await?
                .map_err(RegistryError::io("locking the blob store for a collection"))?
        };
        // Asked under the lock: no publish is between writing a body and committing its rows.
        let referenced = self.store().referenced_blobs(&candidates).await?;
        let unreferenced: Vec<String> = candidates.into_iter().filter(|a| !referenced.contains(a)).collect();
        let removed = tokio::task::spawn_blocking(move || {
            let mut removed = 0u64;
            for address in &unreferenced {
                if blobs.remove(address)? {
                    removed += 1;
                }
            }
            drop(lock);
            Ok::<_, std::io::Error>(removed)
        })
        .await?
        .map_err(RegistryError::io("deleting unreferenced file bodies"))?;
        tracing::info!(removed, "unreferenced file bodies deleted");
        Ok(removed)
    }

    /// The operator's full sweep: deletes every body on disk that no row of any tenant references,
    /// and the temporary files of killed writes.
    pub async fn collect_garbage(&self, by: &Principal) -> Result<SweepReport> {
        crate::tenants::require_operator(by, "collect the blob store's garbage")?;
        let blobs = self.store().blobs().clone();
        let (bodies, leftovers) = {
            let blobs = blobs.clone();
            tokio::task::spawn_blocking(move || blobs.list())
                .await?
                .map_err(RegistryError::io("listing the blob store"))?
        };
        let listed = bodies.len() as u64;
        let lock = {
            let blobs = blobs.clone();
            tokio::task::spawn_blocking(move || blobs.lock_gc())
                .await?
                .map_err(RegistryError::io("locking the blob store for a collection"))?
        };
        let referenced = self.store().referenced_blobs(&bodies).await?;
        let unreferenced: Vec<String> = bodies.into_iter().filter(|a| !referenced.contains(a)).collect();
        let report = tokio::task::spawn_blocking(move || {
            let mut report = SweepReport {
                bodies: listed,
                ..SweepReport::default()
            };
            for address in &unreferenced {
                if blobs.remove(address)? {
                    report.deleted += 1;
                }
            }
            // Under the lock no write is between its temporary file and its rename: what is
            // left is a killed write's.
            for path in &leftovers {
                match std::fs::remove_file(path) {
                    Ok(()) => report.leftovers += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            drop(lock);
            Ok::<_, std::io::Error>(report)
        })
        .await?
        .map_err(RegistryError::io("deleting unreferenced file bodies"))?;
        tracing::info!(
            bodies = report.bodies,
            deleted = report.deleted,
            leftovers = report.leftovers,
            "blob store swept"
        );
        Ok(report)
    }
}
