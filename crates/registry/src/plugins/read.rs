//! Read models of plugins: list, show, the version views.

use super::*;

fn content_path(kind: PieceKind, mount: &str, slug: &str) -> String {
    match kind {
        PieceKind::Skill => mount.to_string(),
        _ => format!("{mount}/{slug}.md"),
    }
}

/// The version Claude Code sees: the explicit semver, else the commit's first 12 hex digits.
pub(super) fn effective_version(v: &PluginVersionRow) -> String {
    match (&v.version, v.commit_id.parse::<ObjectId>()) {
        (Some(version), _) => version.clone(),
        (None, Ok(commit)) => commit.short12(),
        (None, Err(_)) => v.commit_id.clone(),
    }
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

impl Registry {
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
        // What this process counted so far is in the answer (others flush on their own tick).
        self.flush_installs().await;
        self.plugin_view(actor.tenant, &row, true).await
    }

    /// The absolute git URL Claude Code clones for an internal or mirrored plugin.
    pub fn git_url(&self, tenant_slug: &str, plugin_slug: &str) -> String {
        format!("{}/git/plugins/{plugin_slug}.git", self.tenant_url(tenant_slug))
    }

    pub(super) async fn plugin_view(&self, tenant: TenantId, row: &PluginRow, detailed: bool) -> Result<Plugin> {
        let mode = row.mode;
        let versions = if mode == SourcingMode::External {
            Vec::new()
        } else {
            self.store().plugin_versions(tenant, row.id).await?
        };
        // The served version: the pinned one if it still exists, else the newest.
        let pinned = row.served_version_id.and_then(|id| versions.iter().find(|v| v.id == id));
        let current = pinned.or(versions.last());
        let contents = match current {
            Some(v) => self
                .store()
                .plugin_version_pieces(tenant, v.id)
                .await?
                .into_iter()
                .map(|p| PluginContent {
                    kind: p.kind,
                    path: content_path(p.kind, &p.mount_path, &p.slug),
                    slug: p.slug,
                    version: p.version,
                    archived: p.archived_at.is_some(),
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
        let mirror_status = if mode == SourcingMode::Mirror {
            self.mirror_status(tenant, row.id).await?
        } else {
            None
        };
        Ok(Plugin {
            slug: row.slug.clone(),
            mode,
            metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
            current: current.map(version_view),
            pinned: pinned.is_some(),
            install_policy: row.install_policy,
            versions: if detailed {
                versions.iter().rev().map(version_view).collect()
            } else {
                Vec::new()
            },
            contents,
            files,
            git_url: (mode != SourcingMode::External).then(|| self.git_url(&tenant_slug, &row.slug)),
            mirror: mirror_status,
            installs: if detailed && mode != SourcingMode::External {
                Some(self.install_stats(tenant, row.id, &versions).await?)
            } else {
                None
            },
            entry: crate::catalogue::json_object(row.catalogue_extra.as_deref()),
            external_source: row.external_source.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            created_at: format_ms(row.created_at),
            updated_at: format_ms(row.updated_at),
        })
    }
}
