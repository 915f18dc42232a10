//! skill-pool's git side. Commit ids are computed in pure Rust ([`object`]) so the database can
//! record them before anything touches the disk; repositories are written in-process,
//! one pack per write ([`pack`], [`repo`]), and served with `git upload-pack --stateless-rpc` ([`upload_pack`]),
//! always through one hardened command builder.

pub mod answers;
mod command;
mod error;
pub mod fetch;
pub mod object;
pub mod pack;
pub mod repo;
pub mod upload_pack;

use std::path::{Path, PathBuf};

pub use error::GitError;

/// Where a plugin's bare repository lives under the data directory.
pub fn repo_path(data_dir: &Path, tenant_id: i64, plugin_id: i64) -> PathBuf {
    data_dir.join("repos").join(tenant_id.to_string()).join(format!("{plugin_id}.git"))
}

/// Where the pack cache ([`answers::PackCache`]) keeps its files under the data directory.
pub fn pack_cache_root(data_dir: &Path) -> PathBuf {
    data_dir.join("pack-cache")
}
