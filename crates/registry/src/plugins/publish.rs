//! Publishing a plugin folder (tar.gz in the Claude Code layout), byte for byte.

use super::*;

pub(super) fn metadata_from_manifest(raw: &serde_json::Map<String, serde_json::Value>) -> PluginMetadata {
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

/// A folder Claude Code would not load, as the registry's refusal (naming the file).
pub(super) fn layout_error(e: layout::LayoutError) -> RegistryError {
    match e {
        layout::LayoutError::Manifest(m) => {
            let field = match &m {
                manifest::ManifestError::Field { field, .. } => format!("{}#{field}", layout::MANIFEST_PATH),
                _ => layout::MANIFEST_PATH.to_string(),
            };
            RegistryError::invalid_manifest(m.to_string()).with_field(field).with_source(m)
        }
        layout::LayoutError::Frontmatter { path, error } => RegistryError::invalid_plugin(format!("{path}: {error}"))
            .with_field(path)
            .with_source(error),
        other => RegistryError::invalid_plugin(other.to_string()).with_source(other),
    }
}

/// The `version` of the folder's plugin.json, if it has one.
pub(super) fn manifest_version(layout: &layout::PluginLayout) -> Result<Option<Version>> {
    match layout.manifest.as_ref().and_then(|m| m.version.as_deref()) {
        Some(v) => {
            Ok(Some(parse_optional_version(Some(v))?.ok_or_else(|| {
                RegistryError::invalid_manifest("plugin.json: `version` is empty")
            })?))
        }
        None => Ok(None),
    }
}

impl Registry {
    /// Publishes a plugin folder (tar.gz, Claude Code layout), byte for byte.
    pub async fn publish_plugin_folder(
        &self,
        actor: &Actor,
        slug: Option<&str>,
        version: Option<&str>,
        tar_gz: bytes::Bytes,
    ) -> Result<PublishPluginResult> {
        actor.require(Role::Admin)?;
        let given_version = parse_optional_version(version)?;
        let files = self.unpack_upload(tar_gz).await?;
        let links: Vec<String> = files
            .iter()
            .filter(|f| f.mode == skill_pool_core::archive::FileMode::Symlink)
            .map(|f| f.path.clone())
            .collect();
        if !links.is_empty() && self.tenant_row(actor.tenant).await?.serve_as == skill_pool_core::api::ServeAs::Archive {
            let name = slug.map(str::to_string).unwrap_or_else(|| "this plugin".to_string());
            return Err(super::archives::symlink_refusal(&name, &links));
        }
        // Reading every piece's frontmatter is CPU work too: off the async runtime.
        let layout = tokio::task::spawn_blocking(move || layout::classify(files)).await?;
        let layout = layout.map_err(layout_error)?;
        let manifest_version = manifest_version(&layout)?;
        let slug = match (slug, &layout.manifest) {
            (Some(s), Some(m)) if s != m.name => {
                return Err(RegistryError::invalid_plugin(format!(
                    "plugin.json names the plugin `{}` but it is published as `{s}`: make them equal",
                    m.name
                )));
            }
            (Some(s), _) => parse_slug(s)?,
            (None, Some(m)) => parse_slug(&m.name)?,
            (None, None) => {
                return Err(RegistryError::bad_request(
                    "name the plugin: pass `slug` (the folder name) or add .claude-plugin/plugin.json",
                ));
            }
        };
        let version = match (manifest_version, given_version) {
            (Some(m), Some(g)) if m != g => {
                return Err(RegistryError::invalid_plugin(format!(
                    "plugin.json says version {m} but {g} was given: drop --version or make them equal"
                )));
            }
            (m, g) => m.or(g),
        };
        let metadata = layout.manifest.as_ref().map(|m| metadata_from_manifest(&m.raw)).unwrap_or_default();
        let manifest = layout.manifest.as_ref().map(|m| m.raw.clone());

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
            mode: SourcingMode::Internal,
            warnings: layout.warnings,
            manifest,
        };
        self.commit_draft(actor, draft, None).await
    }
}

impl Registry {
    /// A mirror's fetched tree as a version of the mirrored plugin. The tree goes through the
    /// checks of an upload (paths, links, limits) and of a folder publish (plugin.json, lenient
    /// frontmatter); every file stays a file of the plugin (an upstream's skills are not
    /// registered as this tenant's pieces). Version: plugin.json's, else commit-sha versioning.
    pub(crate) async fn publish_mirror_tree(
        &self,
        actor: &Actor,
        slug: &str,
        plugin_id: skill_pool_store::PluginId,
        files: Vec<UploadFile>,
    ) -> Result<PublishPluginResult> {
        let slug = parse_slug(slug)?;
        let tar = tokio::task::spawn_blocking(move || skill_pool_core::archive::pack_tar_gz(&files))
            .await?
            .map_err(|e| RegistryError::invalid_plugin(format!("the upstream tree cannot be served: {e}")))?;
        let files = self.unpack_upload(tar.into()).await?;
        let check = files.clone();
        let layout = tokio::task::spawn_blocking(move || layout::classify(check))
            .await?
            .map_err(layout_error)?;
        let version = manifest_version(&layout)?;
        let metadata = layout.manifest.as_ref().map(|m| metadata_from_manifest(&m.raw)).unwrap_or_default();
        let mut warnings = layout.warnings;
        if let Some(m) = &layout.manifest
            && m.name != slug.as_str()
        {
            warnings.push(format!(
                "the upstream plugin.json names the plugin `{}`; it is listed here as `{slug}`",
                m.name
            ));
        }
        let (rows, bodies) = self.prepare_files(files).await?;
        let draft = Draft {
            slug,
            version,
            metadata,
            pieces: Vec::new(),
            files: rows,
            blobs: None,
            bodies,
            action: "mirror.pull",
            mode: SourcingMode::Mirror,
            warnings,
            manifest: layout.manifest.map(|m| m.raw),
        };
        // The plugin the pull started for (deleted or replaced meanwhile: nothing is written).
        self.commit_draft(actor, draft, Some(plugin_id)).await
    }
}
