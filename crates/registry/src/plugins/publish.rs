//! Publishing a plugin folder (tar.gz in the Claude Code layout), byte for byte.

use super::*;

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
        tar_gz: bytes::Bytes,
    ) -> Result<PublishPluginResult> {
        actor.require(Role::Admin)?;
        let given_version = parse_optional_version(version)?;
        let files = self.unpack_upload(tar_gz).await?;
        // Reading every piece's frontmatter is CPU work too: off the async runtime.
        let layout = tokio::task::spawn_blocking(move || layout::classify(files)).await?;
        let layout = layout.map_err(|e| match e {
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
        })?;
        let manifest_version = match layout.manifest.as_ref().and_then(|m| m.version.as_deref()) {
            Some(v) => {
                Some(parse_optional_version(Some(v))?.ok_or_else(|| RegistryError::invalid_manifest("plugin.json: `version` is empty"))?)
            }
            None => None,
        };
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
        };
        self.commit_draft(actor, draft, None).await
    }
}
