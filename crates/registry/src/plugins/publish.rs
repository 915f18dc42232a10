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
            mode: SourcingMode::Internal,
            warnings: layout.warnings,
        };
        self.commit_draft(actor, draft, None).await
    }
}
