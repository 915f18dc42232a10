//! Plugins made through the API: composed from registered pieces and inline blobs, external
//! listings, changes (`PATCH`) and deletion.

use super::*;

impl Registry {
    /// `POST /v1/plugins`: composes an internal plugin from registered pieces and inline blobs,
    /// or lists an external one.
    pub async fn create_plugin(&self, actor: &Actor, req: CreatePlugin) -> Result<PublishPluginResult> {
        actor.require(Role::Admin)?;
        let slug = parse_slug(&req.slug)?;
        check_metadata(&req.metadata)?;
        match req.mode.unwrap_or(SourcingMode::Internal) {
            SourcingMode::External => {
                let source = req.source.as_ref().ok_or_else(|| {
                    RegistryError::invalid_plugin("an external plugin needs `source`, e.g. {\"source\":\"github\",\"repo\":\"owner/repo\"}")
                })?;
                let source = check_source(source)?;
                if !req.contents.is_empty() {
                    return Err(
                        RegistryError::invalid_plugin("an external plugin has no contents here: its upstream has them")
                            .with_field("contents"),
                    );
                }
                let mut entry = req.entry;
                if !req.dependencies.is_empty() {
                    // Kept verbatim in the entry, like any other field of an external listing.
                    entry.insert("dependencies".into(), serde_json::Value::Array(req.dependencies));
                }
                if let Some(v) = req.version {
                    // Listed as given: Claude Code shows it (the upstream's plugin.json wins at install).
                    entry.insert("version".into(), serde_json::Value::String(v));
                }
                self.create_external(actor, slug, req.metadata, source, entry).await
            }
            SourcingMode::Mirror => Err(RegistryError::bad_request(
                "mirrored plugins are created with POST /v1/plugins/import",
            )),
            SourcingMode::Internal => {
                if let Some(key) = req.entry.keys().next() {
                    return Err(RegistryError::invalid_plugin(format!(
                        "`{key}` is not a field of a composed plugin (other catalogue entry fields are for external listings)"
                    ))
                    .with_field(key.clone()));
                }
                if req.source.is_some() {
                    return Err(RegistryError::invalid_plugin(
                        "`source` is only for external plugins (mode: external)",
                    ));
                }
                let version = parse_optional_version(req.version.as_deref())?;
                let draft = self
                    .compose_draft(
                        actor.tenant,
                        slug,
                        version,
                        req.metadata,
                        &req.contents,
                        req.blobs,
                        &req.dependencies,
                    )
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
        entry: serde_json::Map<String, serde_json::Value>,
    ) -> Result<PublishPluginResult> {
        let meta_json = serde_json::to_string(&metadata).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let source_json = source.to_string();
        let extra_json = (!entry.is_empty()).then(|| serde_json::Value::Object(entry).to_string());
        // The retried closure borrows; it must not move these.
        let (slug, meta_json, source_json, source, extra_json) = (&slug, &meta_json, &source_json, &source, &extra_json);
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let plugin = match tx
                .insert_plugin(actor.tenant, slug.as_str(), SourcingMode::External, meta_json, Some(source_json))
                .await
            {
                Ok(p) => p,
                Err(StoreError::Conflict(_)) => return Err(RegistryError::Conflict(format!("plugin `{slug}` already exists"))),
                Err(e) => return Err(e.into()),
            };
            if extra_json.is_some() {
                tx.set_catalogue_extra(actor.tenant, plugin.id, extra_json.as_deref()).await?;
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

    /// The tree a composition would install (every path, sorted, with its size), checked by
    /// the same rules as [`Registry::create_plugin`] but written nowhere: the portal's preview.
    pub async fn preview_plugin(&self, actor: &Actor, req: &CreatePlugin) -> Result<Vec<PreviewFile>> {
        actor.require(Role::Member)?;
        let slug = parse_slug(&req.slug)?;
        check_metadata(&req.metadata)?;
        let version = parse_optional_version(req.version.as_deref())?;
        let draft = self
            .compose_draft(
                actor.tenant,
                slug.clone(),
                version,
                req.metadata.clone(),
                &req.contents,
                req.blobs.clone(),
                &req.dependencies,
            )
            .await?;
        // The checks of a publish, dependencies included (a refusal is shown beside its field).
        self.check_dependencies(actor.tenant, &slug, SourcingMode::Internal, draft.manifest.as_ref())
            .await?;
        let mut files: Vec<PreviewFile> = draft
            .files
            .iter()
            .map(|f| PreviewFile {
                path: f.path.clone(),
                size: f.size.max(0) as u64,
                from: None,
            })
            .collect();
        for piece in &draft.pieces {
            if let PieceSource::Pinned {
                kind,
                slug,
                version_id,
                version,
            } = &piece.source
            {
                for f in self.store().piece_files(actor.tenant, *version_id).await? {
                    files.push(PreviewFile {
                        path: format!("{}/{}", piece.mount_path, f.path),
                        size: f.size.max(0) as u64,
                        from: Some(format!("{kind} {slug} {version}")),
                    });
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Resolves content references and blobs into a draft (checks only; bodies of rendered files stored).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn compose_draft(
        &self,
        tenant: TenantId,
        slug: Slug,
        version: Option<Version>,
        metadata: PluginMetadata,
        contents: &[ContentRef],
        blobs_in: PluginBlobs,
        dependencies: &[serde_json::Value],
    ) -> Result<Draft> {
        let mut pieces = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in contents {
            if !seen.insert((c.kind, c.slug.clone())) {
                return Err(RegistryError::invalid_plugin(format!(
                    "{} `{}` is listed twice in contents",
                    c.kind, c.slug
                )));
            }
            let piece = self.store().piece(tenant, c.kind, &c.slug).await?.ok_or_else(|| {
                RegistryError::invalid_plugin(format!("contents: {} `{}` is not registered in this tenant", c.kind, c.slug))
                    .with_field("contents")
            })?;
            let versions = self.store().piece_versions(tenant, piece.id).await?;
            let chosen = match &c.version {
                Some(v) => versions.iter().find(|row| &row.version == v).ok_or_else(|| {
                    RegistryError::invalid_plugin(format!("contents: {} `{}` has no version {v}", c.kind, c.slug)).with_field("contents")
                })?,
                None => latest_of(&versions).ok_or_else(|| {
                    RegistryError::invalid_plugin(format!("contents: {} `{}` has no version that is not archived", c.kind, c.slug))
                        .with_field("contents")
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
        let mut blob_files = blobs::render_blob_files(&blobs_in).map_err(|e| {
            let field = format!("blobs.{}", e.field);
            RegistryError::invalid_plugin(e.to_string()).with_field(field).with_source(e)
        })?;
        let version_text = version.as_ref().map(Version::to_string);
        let plugin_json = manifest::render_plugin_json(slug.as_str(), version_text.as_deref(), &metadata, dependencies);
        let manifest = serde_json::from_slice(&plugin_json).map_err(|e| RegistryError::Internal(e.to_string()))?;
        blob_files.push(UploadFile {
            path: ".claude-plugin/plugin.json".into(),
            mode: skill_pool_core::archive::FileMode::Regular,
            data: plugin_json,
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
            mode: SourcingMode::Internal,
            warnings: Vec::new(),
            manifest: Some(manifest),
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
        match plugin.mode {
            SourcingMode::External => {
                if req.contents.is_some() || req.blobs.is_some() || req.version.is_some() || req.dependencies.is_some() {
                    return Err(RegistryError::invalid_plugin(
                        "an external plugin has no contents, blobs, dependencies or version here",
                    ));
                }
                let source = match &req.source {
                    Some(s) => Some(check_source(s)?),
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
            SourcingMode::Internal => {
                if req.source.is_some() {
                    return Err(RegistryError::invalid_plugin("`source` is only for external plugins"));
                }
                let latest = self.store().latest_plugin_version(actor.tenant, plugin.id).await?;
                let composed_blobs: Option<PluginBlobs> = latest
                    .as_ref()
                    .and_then(|v| v.blobs.as_deref())
                    .and_then(|b| serde_json::from_str(b).ok());
                let Some(old_blobs) = composed_blobs else {
                    if req.contents.is_some() || req.blobs.is_some() || req.version.is_some() || req.dependencies.is_some() {
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
                            .map(|p| ContentRef {
                                kind: p.kind,
                                slug: p.slug,
                                version: Some(p.version),
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
                let dependencies = match req.dependencies {
                    Some(d) => d,
                    None => match &latest {
                        Some(v) => self.declared_dependencies(actor.tenant, v.id).await?,
                        None => Vec::new(),
                    },
                };
                let draft = self
                    .compose_draft(
                        actor.tenant,
                        slug,
                        version,
                        metadata,
                        &contents,
                        req.blobs.unwrap_or(old_blobs),
                        &dependencies,
                    )
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

    pub async fn delete_plugin(&self, actor: &Actor, slug: &str) -> Result<()> {
        actor.require(Role::Admin)?;
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        let plugin = &plugin;
        let candidates = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            // The bodies its own files referenced (its pieces stay registered, their files with them).
            let candidates = tx.plugin_file_blobs(actor.tenant, plugin.id).await?;
            tx.delete_plugin(actor.tenant, plugin.id).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(&mut tx, actor, "plugin.delete", slug, serde_json::json!({ "mode": plugin.mode })).await?;
            tx.commit().await?;
            Ok(candidates)
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        self.remove_repo(actor.tenant, plugin.id).await;
        self.remove_archives(actor.tenant, plugin.id).await;
        self.collect_blobs(candidates).await.map_err(|e| {
            RegistryError::Internal(format!(
                "plugin `{slug}` was deleted, but deleting its file bodies failed ({e}): run `skill-pool-server gc` to delete them"
            ))
        })?;
        Ok(())
    }
}
