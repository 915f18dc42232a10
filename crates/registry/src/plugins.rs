//! Plugins: publish a folder, compose from registered pieces, list an external plugin,
//! change, delete, show. Every content change is a new immutable plugin version whose
//! commit id is computed here, before anything is written to disk.

use semver::Version;
use skill_pool_core::Role;
use skill_pool_core::api::{
    ContentRef, CreatePlugin, Page, PieceKind, Plugin, PluginBlobs, PluginContent, PluginMetadata, PluginVersion, PublishPluginResult,
    PublishedPiece, SourcingMode, UpdatePlugin,
};
use skill_pool_core::archive::{UploadFile, UploadLimits, unpack_tar_gz};
use skill_pool_core::slug::{Slug, validator_refused_plugin_name};
use skill_pool_core::{blobs, catalogue, layout, manifest};
use skill_pool_git::object::{CommitSpec, ObjectId, commit_id, tree_id};
use skill_pool_store::pieces::FileRow;
use skill_pool_store::plugins::{NewPluginVersion, PluginRow, PluginVersionRow};
use skill_pool_store::{StoreError, TenantId, Tx, format_ms, now_ms};

use crate::pieces::{PieceInput, frontmatter_json, latest_of, parse_optional_version, register_in_tx, with_warnings};
use crate::tree::{Bodies, digest, file_info, tree_files};
use crate::{Actor, Registry, RegistryError, Result, with_retry};

/// A piece of a new plugin version: registered inside the publish transaction, or already pinned.
#[derive(Debug, Clone)]
enum PieceSource {
    New(PieceInput),
    Pinned {
        kind: PieceKind,
        slug: String,
        version_id: i64,
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
    /// Remarks for the publisher (e.g. files kept as plain plugin files).
    warnings: Vec<String>,
}

fn mount_for(kind: PieceKind, slug: &str) -> String {
    match kind {
        PieceKind::Skill => format!("skills/{slug}"),
        PieceKind::Agent => "agents".into(),
        PieceKind::Command => "commands".into(),
    }
}

fn content_path(kind: PieceKind, mount: &str, slug: &str) -> String {
    match kind {
        PieceKind::Skill => mount.to_string(),
        _ => format!("{mount}/{slug}.md"),
    }
}

fn effective_version(v: &PluginVersionRow) -> String {
    v.version.clone().unwrap_or_else(|| v.commit_id.chars().take(12).collect())
}

fn version_view(v: &PluginVersionRow) -> PluginVersion {
    PluginVersion {
        seq: v.seq.max(0) as u64,
        version: v.version.clone(),
        effective_version: effective_version(v),
        commit: v.commit_id.clone(),
        digest: v.digest.clone(),
        created_at: format_ms(v.created_at),
        created_by: v.created_by.clone(),
    }
}

fn parse_slug(s: &str) -> Result<Slug> {
    Slug::parse(s).map_err(|e| RegistryError::InvalidPlugin(format!("plugin name: {e}")))
}

fn metadata_from_manifest(raw: &serde_json::Map<String, serde_json::Value>) -> PluginMetadata {
    let s = |k: &str| raw.get(k).and_then(|v| v.as_str()).map(str::to_string);
    PluginMetadata {
        display_name: s("displayName"),
        description: s("description"),
        author: raw.get("author").and_then(|a| serde_json::from_value(a.clone()).ok()),
        homepage: s("homepage"),
        repository: raw.get("repository").and_then(|r| r.as_str().map(str::to_string)),
        license: s("license"),
        keywords: raw
            .get("keywords")
            .and_then(|k| k.as_array())
            .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        category: None,
    }
}

impl Registry {
    /// Publishes a plugin folder (tar.gz, Claude Code layout), byte for byte.
    pub async fn publish_plugin_folder(
        &self,
        actor: &Actor,
        slug: Option<&str>,
        version: Option<&str>,
        tar_gz: &[u8],
    ) -> Result<PublishPluginResult> {
        actor.require(Role::Admin)?;
        let given_version = parse_optional_version(version)?;
        let files = unpack_tar_gz(tar_gz, &UploadLimits::from_upload_limit(self.config().max_upload_bytes))?;
        let layout = layout::classify(files).map_err(|e| match e {
            layout::LayoutError::Manifest(m) => RegistryError::InvalidManifest(m.to_string()),
            other => RegistryError::InvalidPlugin(other.to_string()),
        })?;
        let manifest_version = match layout.manifest.as_ref().and_then(|m| m.version.as_deref()) {
            Some(v) => Some(
                parse_optional_version(Some(v))?.ok_or_else(|| RegistryError::InvalidManifest("plugin.json: `version` is empty".into()))?,
            ),
            None => None,
        };
        let slug = match (slug, &layout.manifest) {
            (Some(s), Some(m)) if s != m.name => {
                return Err(RegistryError::InvalidPlugin(format!(
                    "plugin.json names the plugin `{}` but it is published as `{s}`: make them equal",
                    m.name
                )));
            }
            (Some(s), _) => parse_slug(s)?,
            (None, Some(m)) => parse_slug(&m.name)?,
            (None, None) => {
                return Err(RegistryError::BadRequest(
                    "name the plugin: pass `slug` (the folder name) or add .claude-plugin/plugin.json".into(),
                ));
            }
        };
        let version = match (manifest_version, given_version) {
            (Some(m), Some(g)) if m != g => {
                return Err(RegistryError::InvalidPlugin(format!(
                    "plugin.json says version {m} but {g} was given: drop --version or make them equal"
                )));
            }
            (m, g) => m.or(g),
        };
        let metadata = layout.manifest.as_ref().map(|m| metadata_from_manifest(&m.raw)).unwrap_or_default();

        let mut pieces = Vec::new();
        let mut bodies = Vec::new();
        for (kind, list) in [
            (PieceKind::Skill, layout.skills),
            (PieceKind::Agent, layout.agents),
            (PieceKind::Command, layout.commands),
        ] {
            for piece in list {
                let fm = piece.frontmatter.as_ref();
                let (files, piece_bodies) = self.prepare_files(piece.files).await?;
                bodies.push(piece_bodies);
                let mount_path = match kind {
                    PieceKind::Skill => piece.mount_path.clone(),
                    _ => mount_for(kind, piece.name.as_str()),
                };
                pieces.push(PieceMount {
                    source: PieceSource::New(PieceInput {
                        kind,
                        slug: piece.name.clone(),
                        version: None,
                        description: fm.and_then(|f| f.description.clone()),
                        metadata: frontmatter_json(fm),
                        files,
                        warnings: fm.map(|f| f.warnings.clone()).unwrap_or_default(),
                    }),
                    mount_path,
                });
            }
        }
        let (files, own_bodies) = self.prepare_files(layout.other_files).await?;
        bodies.push(own_bodies);
        let draft = Draft {
            slug,
            version,
            metadata,
            pieces,
            files,
            blobs: None,
            bodies: Bodies::merge(bodies),
            action: "plugin.publish",
            warnings: layout.warnings,
        };
        self.commit_draft(actor, draft, None).await
    }

    /// `POST /v1/plugins`: composes an internal plugin from registered pieces and inline blobs,
    /// or lists an external one.
    pub async fn create_plugin(&self, actor: &Actor, req: CreatePlugin) -> Result<PublishPluginResult> {
        actor.require(Role::Admin)?;
        let slug = parse_slug(&req.slug)?;
        check_metadata(&req.metadata)?;
        match req.mode.unwrap_or(SourcingMode::Internal) {
            SourcingMode::External => {
                let source = req.source.as_ref().ok_or_else(|| {
                    RegistryError::InvalidPlugin(
                        "an external plugin needs `source`, e.g. {\"source\":\"github\",\"repo\":\"owner/repo\"}".into(),
                    )
                })?;
                let source = catalogue::check_external_source(source).map_err(|e| RegistryError::InvalidPlugin(format!("source: {e}")))?;
                if !req.contents.is_empty() || req.version.is_some() {
                    return Err(RegistryError::InvalidPlugin(
                        "an external plugin has no contents or version here: its upstream has them".into(),
                    ));
                }
                self.create_external(actor, slug, req.metadata, source).await
            }
            SourcingMode::Mirror => Err(RegistryError::BadRequest(
                "mirrored plugins are created with POST /v1/plugins/import".into(),
            )),
            SourcingMode::Internal => {
                if req.source.is_some() {
                    return Err(RegistryError::InvalidPlugin(
                        "`source` is only for external plugins (mode: external)".into(),
                    ));
                }
                let version = parse_optional_version(req.version.as_deref())?;
                let draft = self
                    .compose_draft(actor.tenant, slug, version, req.metadata, &req.contents, req.blobs)
                    .await?;
                self.commit_draft(actor, draft, None).await
            }
        }
    }

    async fn create_external(
        &self,
        actor: &Actor,
        slug: Slug,
        metadata: PluginMetadata,
        source: serde_json::Value,
    ) -> Result<PublishPluginResult> {
        let meta_json = serde_json::to_string(&metadata).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let source_json = source.to_string();
        // The retried closure borrows; it must not move these.
        let (slug, meta_json, source_json, source) = (&slug, &meta_json, &source_json, &source);
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            match tx
                .insert_plugin(actor.tenant, slug.as_str(), "external", meta_json, Some(source_json))
                .await
            {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return Err(RegistryError::Conflict(format!("plugin `{slug}` already exists"))),
                Err(e) => return Err(e.into()),
            }
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(
                &mut tx,
                actor,
                "plugin.create",
                slug.as_str(),
                serde_json::json!({ "mode": "external", "source": source }),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        let plugin = self.show_plugin(actor, slug.as_str()).await?;
        Ok(PublishPluginResult {
            created: true,
            plugin,
            pieces: Vec::new(),
            warnings: name_warnings(slug),
        })
    }

    /// Resolves content references and blobs into a draft (checks only; bodies of rendered files stored).
    async fn compose_draft(
        &self,
        tenant: TenantId,
        slug: Slug,
        version: Option<Version>,
        metadata: PluginMetadata,
        contents: &[ContentRef],
        blobs_in: PluginBlobs,
    ) -> Result<Draft> {
        let mut pieces = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in contents {
            if !seen.insert((c.kind, c.slug.clone())) {
                return Err(RegistryError::InvalidPlugin(format!(
                    "{} `{}` is listed twice in contents",
                    c.kind, c.slug
                )));
            }
            let piece = self.store().piece(tenant, c.kind.as_str(), &c.slug).await?.ok_or_else(|| {
                RegistryError::InvalidPlugin(format!("contents: {} `{}` is not registered in this tenant", c.kind, c.slug))
            })?;
            let versions = self.store().piece_versions(tenant, piece.id).await?;
            let chosen = match &c.version {
                Some(v) => versions
                    .iter()
                    .find(|row| &row.version == v)
                    .ok_or_else(|| RegistryError::InvalidPlugin(format!("contents: {} `{}` has no version {v}", c.kind, c.slug)))?,
                None => latest_of(&versions).ok_or_else(|| {
                    RegistryError::InvalidPlugin(format!("contents: {} `{}` has no version that is not archived", c.kind, c.slug))
                })?,
            };
            pieces.push(PieceMount {
                source: PieceSource::Pinned {
                    kind: c.kind,
                    slug: c.slug.clone(),
                    version_id: chosen.id,
                    version: chosen.version.clone(),
                },
                mount_path: mount_for(c.kind, &c.slug),
            });
        }
        let mut blob_files = blobs::render_blob_files(&blobs_in).map_err(|e| RegistryError::InvalidPlugin(e.to_string()))?;
        let version_text = version.as_ref().map(Version::to_string);
        blob_files.push(UploadFile {
            path: ".claude-plugin/plugin.json".into(),
            mode: skill_pool_core::archive::FileMode::Regular,
            data: manifest::render_plugin_json(slug.as_str(), version_text.as_deref(), &metadata),
        });
        let (files, bodies) = self.prepare_files(blob_files).await?;
        Ok(Draft {
            slug,
            version,
            metadata,
            pieces,
            files,
            blobs: Some(blobs_in),
            bodies,
            action: "plugin.compose",
            warnings: Vec::new(),
        })
    }

    /// `PATCH /v1/plugins/{slug}`.
    pub async fn update_plugin(&self, actor: &Actor, slug: &str, req: UpdatePlugin) -> Result<PublishPluginResult> {
        actor.require(Role::Admin)?;
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        let slug = parse_slug(&plugin.slug)?;
        let old_meta: PluginMetadata = serde_json::from_str(&plugin.metadata).unwrap_or_default();
        let metadata = req.metadata.clone().unwrap_or(old_meta);
        check_metadata(&metadata)?;
        match SourcingMode::parse(&plugin.mode) {
            Some(SourcingMode::External) => {
                if req.contents.is_some() || req.blobs.is_some() || req.version.is_some() {
                    return Err(RegistryError::InvalidPlugin(
                        "an external plugin has no contents, blobs or version here".into(),
                    ));
                }
                let source = match &req.source {
                    Some(s) => Some(catalogue::check_external_source(s).map_err(|e| RegistryError::InvalidPlugin(format!("source: {e}")))?),
                    None => plugin.external_source.as_deref().and_then(|s| serde_json::from_str(s).ok()),
                };
                self.update_metadata_only(actor, &plugin, &metadata, source.as_ref()).await?;
                let plugin = self.show_plugin(actor, slug.as_str()).await?;
                Ok(PublishPluginResult {
                    created: false,
                    plugin,
                    pieces: Vec::new(),
                    warnings: Vec::new(),
                })
            }
            Some(SourcingMode::Internal) => {
                if req.source.is_some() {
                    return Err(RegistryError::InvalidPlugin("`source` is only for external plugins".into()));
                }
                let latest = self.store().latest_plugin_version(actor.tenant, plugin.id).await?;
                let composed_blobs: Option<PluginBlobs> = latest
                    .as_ref()
                    .and_then(|v| v.blobs.as_deref())
                    .and_then(|b| serde_json::from_str(b).ok());
                let Some(old_blobs) = composed_blobs else {
                    if req.contents.is_some() || req.blobs.is_some() || req.version.is_some() {
                        return Err(RegistryError::Conflict(format!(
                            "plugin `{slug}` was published from a folder: change the folder and publish it again"
                        )));
                    }
                    self.update_metadata_only(actor, &plugin, &metadata, None).await?;
                    let plugin = self.show_plugin(actor, slug.as_str()).await?;
                    return Ok(PublishPluginResult {
                        created: false,
                        plugin,
                        pieces: Vec::new(),
                        warnings: Vec::new(),
                    });
                };
                let contents = match req.contents {
                    Some(c) => c,
                    None => match &latest {
                        Some(v) => self
                            .store()
                            .plugin_version_pieces(actor.tenant, v.id)
                            .await?
                            .into_iter()
                            .filter_map(|p| {
                                Some(ContentRef {
                                    kind: PieceKind::parse(&p.kind)?,
                                    slug: p.slug,
                                    version: Some(p.version),
                                })
                            })
                            .collect(),
                        None => Vec::new(),
                    },
                };
                let version = match req.version.as_deref() {
                    Some(v) => parse_optional_version(Some(v))?,
                    None => latest
                        .as_ref()
                        .and_then(|v| v.version.as_deref())
                        .map(|v| parse_optional_version(Some(v)))
                        .transpose()?
                        .flatten(),
                };
                let draft = self
                    .compose_draft(actor.tenant, slug, version, metadata, &contents, req.blobs.unwrap_or(old_blobs))
                    .await?;
                self.commit_draft(
                    actor,
                    Draft {
                        action: "plugin.update",
                        ..draft
                    },
                    Some(plugin.id),
                )
                .await
            }
            _ => Err(RegistryError::Conflict(format!("plugin `{slug}` is mirrored: change it upstream"))),
        }
    }

    async fn update_metadata_only(
        &self,
        actor: &Actor,
        plugin: &PluginRow,
        metadata: &PluginMetadata,
        source: Option<&serde_json::Value>,
    ) -> Result<()> {
        let meta_json = serde_json::to_string(metadata).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let source_json = source.map(|s| s.to_string());
        // The retried closure borrows; it must not move these.
        let (meta_json, source_json) = (&meta_json, &source_json);
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            tx.update_plugin(actor.tenant, plugin.id, meta_json, source_json.as_deref()).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(
                &mut tx,
                actor,
                "plugin.update",
                &plugin.slug,
                serde_json::json!({ "metadata": metadata }),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        Ok(())
    }

    /// Writes a draft as a new version (or recognises it as already served) in one transaction,
    /// then materialises the repo.
    async fn commit_draft(&self, actor: &Actor, draft: Draft, expect_plugin: Option<i64>) -> Result<PublishPluginResult> {
        let meta_json = serde_json::to_string(&draft.metadata).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let blobs_json = draft
            .blobs
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        let slug = draft.slug.clone();
        // The retried closure borrows; it must not move these.
        let (slug, meta_json, blobs_json, draft) = (&slug, &meta_json, &blobs_json, &draft);
        let (created, published) = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let plugin = match tx.plugin(actor.tenant, slug.as_str()).await? {
                Some(p) if p.mode != "internal" => {
                    return Err(RegistryError::Conflict(format!("plugin `{slug}` is {}: it cannot take published content", p.mode)));
                }
                Some(p) if expect_plugin.is_some_and(|id| id != p.id) => {
                    return Err(RegistryError::Conflict(format!("plugin `{slug}` changed while it was being updated: try again")));
                }
                Some(p) => p,
                None if expect_plugin.is_some() => return Err(RegistryError::NotFound(format!("plugin `{slug}` not found"))),
                None => tx.insert_plugin(actor.tenant, slug.as_str(), "internal", meta_json, None).await?,
            };

            // Register new pieces (or reuse identical versions), collect the tree.
            let mut published = Vec::new();
            let mut mounts = Vec::new();
            let mut tree: Vec<FileRow> = draft.files.clone();
            for piece in &draft.pieces {
                let (kind, slug, version_id, version, created, piece_id) = match &piece.source {
                    PieceSource::New(input) => {
                        let r = register_in_tx(&mut tx, actor, input).await?;
                        (input.kind, input.slug.to_string(), r.version_id, r.version, r.created, Some(r.piece_id))
                    }
                    PieceSource::Pinned { kind, slug, version_id, version } => {
                        (*kind, slug.clone(), *version_id, version.clone(), false, None)
                    }
                };
                let piece_files = tx.piece_files(actor.tenant, version_id).await?;
                for f in piece_files {
                    tree.push(FileRow { path: format!("{}/{}", piece.mount_path, f.path), ..f });
                }
                mounts.push((version_id, piece.mount_path.clone()));
                published.push(Mounted { kind, slug, version, created, piece_id, version_id });
            }
            check_unique_paths(&tree)?;
            let digest = digest(&tree);
            let version_text = draft.version.as_ref().map(Version::to_string);
            let versions = tx.plugin_versions(actor.tenant, plugin.id).await?;
            let latest = versions.last();

            if let Some(v) = &draft.version {
                if let Some(existing) = versions.iter().find(|row| row.version.as_deref() == Some(v.to_string().as_str())) {
                    if existing.digest == digest && latest.map(|l| l.id) == Some(existing.id) {
                        return Ok((false, published_view(&mut tx, actor, &published).await?));
                    }
                    return Err(RegistryError::VersionConflict(format!(
                        "plugin `{slug}` already has version {v} with other content; Claude Code would never update to it: bump the version (e.g. {})",
                        skill_pool_core::version::next_patch(Some(v))
                    )));
                }
                if let Some(max) = versions.iter().filter_map(|row| row.version.as_deref().and_then(|s| Version::parse(s).ok())).max()
                    && v < &max {
                        return Err(RegistryError::VersionConflict(format!(
                            "plugin `{slug}` is already at version {max}: publish a higher version than {v}"
                        )));
                    }
            } else if let Some(l) = latest
                && l.digest == digest && l.version.is_none() {
                    return Ok((false, published_view(&mut tx, actor, &published).await?));
                }

            let created_at = now_ms();
            let tree_files = tree_files(&tree)?;
            let tree = tree_id(&tree_files).map_err(|e| RegistryError::InvalidPlugin(e.to_string()))?;
            let parent: Option<ObjectId> = match latest {
                Some(l) => Some(l.commit_id.parse().map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))?),
                None => None,
            };
            let seq = latest.map(|l| l.seq + 1).unwrap_or(1);
            let commit = commit_id(&CommitSpec {
                tree,
                parent,
                time_secs: created_at / 1000,
                message: commit_message(slug.as_str(), seq, version_text.as_deref()),
            });
            let commit_hex = commit.to_hex();
            let own_files = draft.files.clone();
            let created_by = actor.audit_name();
            tx.insert_plugin_version(
                actor.tenant,
                plugin.id,
                &NewPluginVersion {
                    seq,
                    version: version_text.as_deref(),
                    commit_id: &commit_hex,
                    digest: &digest,
                    blobs: blobs_json.as_deref(),
                    created_at,
                    created_by: &created_by,
                },
                &mounts,
                &own_files,
            )
            .await?;
            tx.update_plugin(actor.tenant, plugin.id, meta_json, None).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(
                &mut tx,
                actor,
                draft.action,
                slug.as_str(),
                with_warnings(
                    serde_json::json!({ "seq": seq, "version": version_text, "commit": commit_hex, "digest": digest }),
                    &draft.warnings,
                ),
            )
            .await?;
            let view = published_view(&mut tx, actor, &published).await?;
            self.write_bodies(&draft.bodies).await?;
            tx.commit().await?;
            Ok((true, view))
        })
        .await?;
        if created {
            self.invalidate_catalogue(actor.tenant);
        }
        let row = self.plugin_row(actor.tenant, slug.as_str()).await?;
        self.ensure_repo(actor.tenant, &row).await?;
        let plugin = self.show_plugin(actor, slug.as_str()).await?;
        let mut warnings = name_warnings(slug);
        warnings.extend(draft.warnings.iter().cloned());
        if !created {
            warnings.push(format!("plugin `{slug}` already serves this content: nothing changed"));
        }
        Ok(PublishPluginResult {
            created,
            plugin,
            pieces: published,
            warnings,
        })
    }

    pub async fn delete_plugin(&self, actor: &Actor, slug: &str) -> Result<()> {
        actor.require(Role::Admin)?;
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        let plugin = &plugin;
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            tx.delete_plugin(actor.tenant, plugin.id).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(&mut tx, actor, "plugin.delete", slug, serde_json::json!({ "mode": plugin.mode })).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        self.remove_repo(actor.tenant, plugin.id).await;
        Ok(())
    }

    pub(crate) async fn plugin_row(&self, tenant: TenantId, slug: &str) -> Result<PluginRow> {
        self.store()
            .plugin(tenant, slug)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("plugin `{slug}` not found")))
    }

    pub async fn list_plugins(&self, actor: &Actor, cursor: Option<&str>, limit: i64) -> Result<Page<Plugin>> {
        actor.require(Role::Member)?;
        let rows = self.store().list_plugins(actor.tenant, cursor, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.plugin_view(actor.tenant, row, false).await?);
        }
        let next_cursor = if more { rows.last().map(|r| r.slug.clone()) } else { None };
        Ok(Page { items, next_cursor })
    }

    pub async fn show_plugin(&self, actor: &Actor, slug: &str) -> Result<Plugin> {
        actor.require(Role::Member)?;
        let row = self.plugin_row(actor.tenant, slug).await?;
        self.plugin_view(actor.tenant, &row, true).await
    }

    /// The absolute git URL Claude Code clones for an internal or mirrored plugin.
    pub fn git_url(&self, tenant_slug: &str, plugin_slug: &str) -> String {
        format!("{}/git/plugins/{plugin_slug}.git", self.tenant_url(tenant_slug))
    }

    async fn plugin_view(&self, tenant: TenantId, row: &PluginRow, detailed: bool) -> Result<Plugin> {
        let mode = SourcingMode::parse(&row.mode).unwrap_or(SourcingMode::Internal);
        let versions = if mode == SourcingMode::External {
            Vec::new()
        } else {
            self.store().plugin_versions(tenant, row.id).await?
        };
        let current = versions.last();
        let contents = match current {
            Some(v) => self
                .store()
                .plugin_version_pieces(tenant, v.id)
                .await?
                .into_iter()
                .filter_map(|p| {
                    let kind = PieceKind::parse(&p.kind)?;
                    Some(PluginContent {
                        kind,
                        path: content_path(kind, &p.mount_path, &p.slug),
                        slug: p.slug,
                        version: p.version,
                        archived: p.archived_at.is_some(),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let files = match (detailed, current) {
            (true, Some(v)) => self
                .store()
                .plugin_version_tree(tenant, v.id)
                .await?
                .iter()
                .map(file_info)
                .collect(),
            _ => Vec::new(),
        };
        let tenant_slug = self.tenant_slug(tenant).await?;
        Ok(Plugin {
            slug: row.slug.clone(),
            mode,
            metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
            current: current.map(version_view),
            versions: if detailed {
                versions.iter().rev().map(version_view).collect()
            } else {
                Vec::new()
            },
            contents,
            files,
            git_url: (mode != SourcingMode::External).then(|| self.git_url(&tenant_slug, &row.slug)),
            external_source: row.external_source.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            created_at: format_ms(row.created_at),
            updated_at: format_ms(row.updated_at),
        })
    }
}

fn commit_message(slug: &str, seq: i64, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{slug} {v}\n"),
        None => format!("{slug} revision {seq}\n"),
    }
}

fn check_unique_paths(tree: &[FileRow]) -> Result<()> {
    let mut paths: Vec<&str> = tree.iter().map(|f| f.path.as_str()).collect();
    paths.sort_unstable();
    for pair in paths.windows(2) {
        if pair[0] == pair[1] || pair[1].starts_with(&format!("{}/", pair[0])) {
            return Err(RegistryError::InvalidPlugin(format!("two contents claim the path `{}`", pair[0])));
        }
    }
    Ok(())
}

fn check_metadata(meta: &PluginMetadata) -> Result<()> {
    manifest::check_metadata(meta).map_err(|e| RegistryError::InvalidPlugin(e.to_string().replace("plugin.json: ", "")))
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

/// A piece as it went into a new plugin version.
struct Mounted {
    kind: PieceKind,
    slug: String,
    version: String,
    /// True when this publish registered the version.
    created: bool,
    /// Set for pieces registered by a folder publish (the only ones that can leave others behind).
    piece_id: Option<i64>,
    version_id: i64,
}

async fn published_view(tx: &mut Tx, actor: &Actor, published: &[Mounted]) -> Result<Vec<PublishedPiece>> {
    let mut out = Vec::with_capacity(published.len());
    for m in published {
        let others = match m.piece_id {
            Some(piece_id) => tx.plugins_pinning_other_versions(actor.tenant, piece_id, m.version_id).await?,
            None => Vec::new(),
        };
        out.push(PublishedPiece {
            kind: m.kind,
            slug: m.slug.clone(),
            version: m.version.clone(),
            created: m.created,
            plugins_on_older_versions: others,
        });
    }
    Ok(out)
}
