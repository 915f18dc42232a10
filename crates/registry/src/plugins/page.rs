//! Read models for the portal's pages, beyond the API view of a plugin: what a plugin
//! installs (its hooks and servers as configured), which pinned pieces have a newer version,
//! the inline blobs a composer edits, and the public listing a visitor of the marketplace
//! browser may read without signing in (what the public catalogue already shows).

use std::collections::BTreeMap;

use super::*;

/// A plugin as its pages show it.
#[derive(Debug, Clone)]
pub struct PluginPage {
    pub plugin: Plugin,
    /// Per entry of `plugin.contents`: the latest version of that piece when it is newer than the pin.
    pub newer: Vec<Option<String>>,
    /// The configuration the current version carries: inline blobs of a composition, or the
    /// files of a published folder read back (`hooks/hooks.json`, `.mcp.json`, `.lsp.json`, `monitors/monitors.json`).
    pub blobs: PluginBlobs,
    /// The `dependencies` of the current version's `plugin.json`.
    pub dependencies: Vec<serde_json::Value>,
    /// Composed from registered pieces (the composer edits it), not published from a folder.
    pub composed: bool,
    /// What each version changed against the one before, by version `seq` (the newest
    /// [`CHANGES_OF_LAST`] versions): pins added, removed or moved, the plugin's own files.
    pub changes: std::collections::BTreeMap<u64, Vec<String>>,
}

/// How many of the newest versions get a "what changed" summary.
pub const CHANGES_OF_LAST: usize = 25;

/// A version as compared: pins (`skill review` → version) and own files (path → sha256).
type VersionState = (BTreeMap<String, String>, BTreeMap<String, String>);

/// What changed from `before` to `after`: pins (`skill review` → version) and own files (path → sha256).
fn describe_changes(before: Option<&VersionState>, after: &VersionState) -> Vec<String> {
    let Some((old_pins, old_files)) = before else {
        return vec!["first version".into()];
    };
    let (new_pins, new_files) = after;
    let mut out = Vec::new();
    for (piece, v) in new_pins {
        match old_pins.get(piece) {
            None => out.push(format!("+ {piece} {v}")),
            Some(old) if old != v => out.push(format!("{piece} {old} → {v}")),
            _ => {}
        }
    }
    for (piece, v) in old_pins {
        if !new_pins.contains_key(piece) {
            out.push(format!("− {piece} {v}"));
        }
    }
    for (path, sha) in new_files {
        match old_files.get(path) {
            None => out.push(format!("+ {path}")),
            Some(old) if old != sha => out.push(format!("{path} changed")),
            _ => {}
        }
    }
    for path in old_files.keys() {
        if !new_files.contains_key(path) {
            out.push(format!("− {path}"));
        }
    }
    if out.is_empty() {
        out.push("same content (metadata or version only)".into());
    }
    out
}

const BLOB_FILES: [&str; 4] = ["hooks/hooks.json", ".mcp.json", ".lsp.json", "monitors/monitors.json"];

impl Registry {
    /// The plugin's page for a signed-in member or admin.
    pub async fn plugin_page(&self, actor: &Actor, slug: &str) -> Result<PluginPage> {
        actor.require(Role::Member)?;
        self.page_of(actor.tenant, slug, true).await
    }

    /// Every plugin of the tenant's public catalogue, for the marketplace browser.
    pub async fn public_plugins(&self, tenant: TenantId) -> Result<Vec<Plugin>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let rows = self.store().list_plugins(tenant, cursor.as_deref(), 500).await?;
            for row in &rows {
                // Hidden plugins are not public, on the page as in the catalogue.
                if row.install_policy == skill_pool_core::api::InstallPolicy::Hidden {
                    continue;
                }
                let mut p = self.plugin_view(tenant, row, false).await?;
                // What the catalogue lists: externals, and plugins with a version to serve.
                if p.mode != SourcingMode::External && p.current.is_none() {
                    continue;
                }
                p.mirror = None;
                out.push(p);
            }
            if rows.len() < 500 {
                break;
            }
            cursor = rows.last().map(|r| r.slug.clone());
        }
        Ok(out)
    }

    /// A plugin's public page: what it installs; no mirror internals (upstream errors).
    pub async fn public_plugin_page(&self, tenant: TenantId, slug: &str) -> Result<PluginPage> {
        if self.plugin_row(tenant, slug).await?.install_policy == skill_pool_core::api::InstallPolicy::Hidden {
            return Err(RegistryError::NotFound(format!("plugin `{slug}` not found")));
        }
        let mut page = self.page_of(tenant, slug, true).await?;
        page.plugin.mirror = None;
        Ok(page)
    }

    async fn page_of(&self, tenant: TenantId, slug: &str, detailed: bool) -> Result<PluginPage> {
        let row = self.plugin_row(tenant, slug).await?;
        let plugin = self.plugin_view(tenant, &row, detailed).await?;
        let mut newer = Vec::with_capacity(plugin.contents.len());
        for c in &plugin.contents {
            let latest = match self.store().piece(tenant, c.kind, &c.slug).await? {
                Some(piece) => {
                    let versions = self.store().piece_versions(tenant, piece.id).await?;
                    latest_of(&versions).map(|v| v.version.clone())
                }
                None => None,
            };
            let is_newer = match (&latest, Version::parse(&c.version)) {
                (Some(l), Ok(pinned)) => Version::parse(l).is_ok_and(|l| l > pinned),
                _ => false,
            };
            newer.push(latest.filter(|_| is_newer));
        }
        let latest = self.store().latest_plugin_version(tenant, row.id).await?;
        let composed = row.mode == SourcingMode::Internal && latest.as_ref().is_some_and(|v| v.blobs.is_some());
        let dependencies = match &latest {
            Some(v) => self.declared_dependencies(tenant, v.id).await?,
            None => Vec::new(),
        };
        let blobs = match latest {
            Some(v) => match v.blobs.as_deref().and_then(|b| serde_json::from_str::<PluginBlobs>(b).ok()) {
                Some(b) => b,
                None => self.blobs_from_files(tenant, v.id).await?,
            },
            None => PluginBlobs::default(),
        };
        let changes = if detailed {
            self.version_changes(tenant, row.id).await?
        } else {
            Default::default()
        };
        Ok(PluginPage {
            plugin,
            newer,
            dependencies,
            blobs,
            composed,
            changes,
        })
    }

    async fn version_changes(&self, tenant: TenantId, plugin: PluginId) -> Result<BTreeMap<u64, Vec<String>>> {
        let versions = self.store().plugin_versions(tenant, plugin).await?;
        let from = versions.len().saturating_sub(CHANGES_OF_LAST + 1);
        let mut previous = None;
        let mut out = BTreeMap::new();
        for (i, v) in versions.iter().enumerate().skip(from) {
            let pins = self
                .store()
                .plugin_version_pieces(tenant, v.id)
                .await?
                .into_iter()
                .map(|p| (format!("{} {}", p.kind, p.slug), p.version))
                .collect();
            let files = self
                .store()
                .plugin_version_files(tenant, v.id)
                .await?
                .into_iter()
                .map(|f| (f.path, f.sha256))
                .collect();
            let state = (pins, files);
            // The oldest one read only serves as the base of the next.
            if i > from || from == 0 {
                out.insert(v.seq.max(0) as u64, describe_changes(previous.as_ref(), &state));
            }
            previous = Some(state);
        }
        Ok(out)
    }

    async fn blobs_from_files(&self, tenant: TenantId, version_id: i64) -> Result<PluginBlobs> {
        let files = self.store().plugin_version_files(tenant, version_id).await?;
        let mut found: [Option<serde_json::Value>; 4] = Default::default();
        for (i, path) in BLOB_FILES.iter().enumerate() {
            if let Some(f) = files.iter().find(|f| f.path == *path && f.size < (1 << 20)) {
                let blobs = self.store().blobs().clone();
                let sha = f.sha256.clone();
                let body = tokio::task::spawn_blocking(move || blobs.get(&sha)).await?;
                found[i] = body.ok().and_then(|b| serde_json::from_slice(&b).ok());
            }
        }
        let [hooks, mcp, lsp, monitors] = found;
        Ok(PluginBlobs {
            hooks,
            mcp_servers: mcp.map(|m| m.get("mcpServers").cloned().unwrap_or(m)),
            lsp_servers: lsp,
            monitors,
        })
    }
}

/// A registered piece the composer offers, with its versions (newest first).
#[derive(Debug, Clone)]
pub struct ComposerPiece {
    pub kind: PieceKind,
    pub slug: String,
    pub description: Option<String>,
    /// The version "latest" resolves to now.
    pub latest: Option<String>,
    /// (version, archived), newest first.
    pub versions: Vec<(String, bool)>,
}

impl Registry {
    /// Every registered skill, agent and command of the tenant with its versions, for the
    /// composer's multi-select and version pickers.
    pub async fn composer_pieces(&self, actor: &Actor) -> Result<Vec<ComposerPiece>> {
        actor.require(Role::Member)?;
        let mut out = Vec::new();
        for kind in [PieceKind::Skill, PieceKind::Agent, PieceKind::Command] {
            let mut after: Option<String> = None;
            loop {
                let pieces = self.store().list_pieces(actor.tenant, kind, after.as_deref(), 500).await?;
                let ids: Vec<i64> = pieces.iter().map(|p| p.id).collect();
                let versions = self.store().versions_of_pieces(actor.tenant, &ids).await?;
                for p in &pieces {
                    let mut mine: Vec<_> = versions.iter().filter(|v| v.piece_id == p.id).cloned().collect();
                    let latest = latest_of(&mine).map(|v| v.version.clone());
                    mine.sort_by(|a, b| match (Version::parse(&a.version), Version::parse(&b.version)) {
                        (Ok(x), Ok(y)) => y.cmp(&x),
                        _ => b.created_at.cmp(&a.created_at),
                    });
                    let description = mine
                        .iter()
                        .find(|v| Some(&v.version) == latest.as_ref())
                        .or(mine.first())
                        .and_then(|v| v.description.clone());
                    out.push(ComposerPiece {
                        kind,
                        slug: p.slug.clone(),
                        description,
                        latest,
                        versions: mine.iter().map(|v| (v.version.clone(), v.archived_at.is_some())).collect(),
                    });
                }
                if pieces.len() < 500 {
                    break;
                }
                after = pieces.last().map(|p| p.slug.clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pins: &[(&str, &str)], files: &[(&str, &str)]) -> VersionState {
        let m = |xs: &[(&str, &str)]| xs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        (m(pins), m(files))
    }

    #[test]
    fn what_a_version_changed() {
        let a = state(
            &[("skill review", "1.0.0"), ("agent old", "1.0.0")],
            &[("plugin.json", "a"), ("README.md", "r")],
        );
        let b = state(
            &[("skill review", "1.1.0"), ("command new", "0.1.0")],
            &[("plugin.json", "b"), ("hooks/hooks.json", "h")],
        );
        assert_eq!(describe_changes(None, &a), ["first version"]);
        assert_eq!(
            describe_changes(Some(&a), &b),
            [
                "+ command new 0.1.0",
                "skill review 1.0.0 → 1.1.0",
                "− agent old 1.0.0",
                "+ hooks/hooks.json",
                "plugin.json changed",
                "− README.md"
            ]
        );
        assert_eq!(describe_changes(Some(&a), &a), ["same content (metadata or version only)"]);
    }
}
