//! Plugins: publish a folder (`publish`), compose from registered pieces, list an external
//! plugin, change and delete (`compose`), the version transaction every content change goes
//! through (`version`, around the pure [`version::decide`]) and the read models (`read`).
//! Every content change is a new immutable plugin version whose commit id is computed before
//! anything is written to disk.

pub mod archives;
mod compose;
mod deps;
mod import;
pub mod page;
mod publish;
mod purge;
mod read;
mod serve;
mod version;

use semver::Version;
use skill_pool_core::Role;
use skill_pool_core::api::{
    ContentRef, CreatePlugin, Page, PieceKind, Plugin, PluginBlobs, PluginContent, PluginMetadata, PluginVersion, PublishPluginResult,
    PublishedPiece, SourcingMode, UpdatePlugin,
};
use skill_pool_core::archive::UploadFile;
use skill_pool_core::slug::{Slug, validator_refused_plugin_name};
use skill_pool_core::{blobs, catalogue, layout, manifest};
use skill_pool_git::object::{CommitSpec, ObjectId, commit_id, plugin_version_message, tree_id};
use skill_pool_store::pieces::FileRow;
use skill_pool_store::plugins::{NewPluginVersion, PluginRow, PluginVersionRow};
use skill_pool_store::{PieceVersionId, PluginId, StoreError, TenantId, Tx, format_ms, now_ms};

use crate::pieces::{PieceInput, frontmatter_json, latest_of, parse_optional_version, register_in_tx, with_warnings};
use crate::tree::{Bodies, digest, file_info, tree_files};
use crate::{Actor, Registry, RegistryError, Result, with_retry};
use skill_pool_store::prelude::*;

/// A piece of a new plugin version: registered inside the publish transaction, or already pinned.
#[derive(Debug, Clone)]
enum PieceSource {
    New(PieceInput),
    Pinned {
        kind: PieceKind,
        slug: String,
        version_id: PieceVersionId,
        version: String,
    },
}

#[derive(Debug, Clone)]
struct PieceMount {
    source: PieceSource,
    /// Directory the piece's files sit under: `skills/<name>`, `agents`, `commands`.
    mount_path: String,
}

/// Everything a new plugin version consists of, before the transaction.
struct Draft {
    slug: Slug,
    version: Option<Version>,
    metadata: PluginMetadata,
    pieces: Vec<PieceMount>,
    /// The plugin's own files (plugin.json, hooks, scripts, README…), bodies stored.
    files: Vec<FileRow>,
    /// Inline blobs of a composed plugin (None for a published folder).
    blobs: Option<PluginBlobs>,
    /// Bodies of every new file, written right before the commit.
    bodies: Bodies,
    action: &'static str,
    /// The sourcing mode the plugin has (internal for folders and compositions, mirror for pulls).
    mode: SourcingMode,
    /// Remarks for the publisher (e.g. files kept as plain plugin files).
    warnings: Vec<String>,
    /// `plugin.json` as written (its dependencies are checked before the transaction).
    manifest: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One file of a previewed plugin tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewFile {
    pub path: String,
    pub size: u64,
    /// The pinned piece it comes from (`skill review 1.0.0`), none for the plugin's own files.
    pub from: Option<String>,
}

/// The version string Claude Code sees for a stored version.
pub(crate) fn effective_version_of(v: &PluginVersionRow) -> String {
    read::effective_version(v)
}

fn mount_for(kind: PieceKind, slug: &str) -> String {
    match kind {
        PieceKind::Skill => format!("skills/{slug}"),
        PieceKind::Agent => "agents".into(),
        PieceKind::Command => "commands".into(),
    }
}

fn parse_slug(s: &str) -> Result<Slug> {
    Slug::parse(s).map_err(|e| {
        RegistryError::invalid_plugin(format!("plugin name: {e}"))
            .with_field("slug")
            .with_source(e)
    })
}

/// An external source as Claude Code reads it; the refusal names the field (`source.repo`…).
fn check_source(source: &serde_json::Value) -> Result<serde_json::Value> {
    catalogue::check_external_source(source).map_err(|e| {
        let field = e.field.clone();
        RegistryError::invalid_plugin(e.to_string()).with_field(field).with_source(e)
    })
}

fn check_unique_paths(tree: &[FileRow]) -> Result<()> {
    let mut paths: Vec<&str> = tree.iter().map(|f| f.path.as_str()).collect();
    paths.sort_unstable();
    for pair in paths.windows(2) {
        if pair[0] == pair[1] || pair[1].starts_with(&format!("{}/", pair[0])) {
            return Err(RegistryError::invalid_plugin(format!("two contents claim the path `{}`", pair[0])));
        }
    }
    // Each piece was checked on its own; together they may still collide on macOS or Windows.
    skill_pool_core::names::check_paths(paths).map_err(|e| {
        let field = e.path().to_string();
        RegistryError::invalid_plugin(e.to_string()).with_field(field).with_source(e)
    })
}

fn check_metadata(meta: &PluginMetadata) -> Result<()> {
    manifest::check_metadata(meta).map_err(|e| match &e {
        manifest::ManifestError::Field { field, expected } => RegistryError::invalid_plugin(format!("`{field}` {expected}"))
            .with_field(field.clone())
            .with_source(e),
        _ => RegistryError::invalid_plugin(format!("metadata: {e}")).with_source(e),
    })
}

fn name_warnings(slug: &Slug) -> Vec<String> {
    if validator_refused_plugin_name(slug.as_str()) {
        vec![format!(
            "`{slug}` starts with a prefix that `claude plugin validate` refuses (claude-, anthropic-, cc-plugin-); Claude Code still installs it"
        )]
    } else {
        Vec::new()
    }
}

async fn audit(tx: &mut Tx, actor: &Actor, action: &str, slug: &str, detail: serde_json::Value) -> Result<()> {
    crate::audit::record(tx, actor, action, &format!("plugin:{slug}"), detail).await
}
