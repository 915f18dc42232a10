//! Purge: a plugin version removed for good (it leaked a secret). Unlike every other change,
//! this one rewrites history: the version's rows go, the later versions get new commit ids
//! (their parent chain changed; trees, times and messages stay), the repo is rebuilt from
//! nothing without it, and the bodies nothing references any more leave the blob store.

use skill_pool_core::api::{PurgeResult, PurgedVersion, RewrittenVersion};

use super::*;

/// The version `wanted` names: its semver, else a commit id or a prefix of one (7 hex at least,
/// as Claude Code shows an unversioned revision by its first 12).
fn find_version<'a>(slug: &str, versions: &'a [PluginVersionRow], wanted: &str) -> Result<&'a PluginVersionRow> {
    if let Some(v) = versions.iter().find(|v| v.version.as_deref() == Some(wanted)) {
        return Ok(v);
    }
    let hex = wanted.len() >= 7 && wanted.len() <= 40 && wanted.bytes().all(|b| b.is_ascii_hexdigit());
    let matching: Vec<&PluginVersionRow> = if hex {
        let wanted = wanted.to_ascii_lowercase();
        versions.iter().filter(|v| v.commit_id.starts_with(&wanted)).collect()
    } else {
        Vec::new()
    };
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(RegistryError::NotFound(format!(
            "plugin `{slug}` has no version `{wanted}` (give its semver or its commit id)"
        ))),
        _ => Err(RegistryError::bad_request(format!(
            "`{wanted}` matches several commits of plugin `{slug}`: give more of the commit id"
        ))
        .with_field("version")),
    }
}

fn parse_commit(hex: &str) -> Result<ObjectId> {
    hex.parse()
        .map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))
}

impl Registry {
    /// Purges one version of an internal or mirrored plugin (admin). `version` is its semver or
    /// its commit id. The only version of a plugin is refused (`409`): delete the plugin instead.
    pub async fn purge_plugin_version(&self, actor: &Actor, slug: &str, version: &str) -> Result<PurgeResult> {
        actor.require(Role::Admin)?;
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        if plugin.mode == SourcingMode::External {
            return Err(RegistryError::NotFound(format!(
                "plugin `{slug}` is external: it has no versions here to purge"
            )));
        }
        let plugin = &plugin;
        let (purged, rewritten, candidates) = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            // Before reading the versions: a concurrent publish chains on the latest commit id.
            tx.lock_plugin(actor.tenant, plugin.id).await?;
            let versions = tx.plugin_versions(actor.tenant, plugin.id).await?;
            let target = find_version(slug, &versions, version)?.clone();
            if versions.len() == 1 {
                return Err(RegistryError::Conflict(format!(
                    "version {} is the only version of plugin `{slug}`: a plugin cannot be left with nothing to serve; \
                     delete the plugin instead (`skill-pool plugin delete {slug}`), which deletes its files too",
                    target.version.as_deref().unwrap_or(&target.commit_id)
                )));
            }
            // The bodies only this version's own files may have referenced (its pieces stay
            // registered, so their files stay referenced).
            let candidates: Vec<String> = tx
                .plugin_version_files(actor.tenant, target.id)
                .await?
                .into_iter()
                .map(|f| f.sha256)
                .collect();
            tx.delete_plugin_version(actor.tenant, target.id).await?;
            // Later versions: same trees, times and messages; a new parent chain.
            let mut parent = versions
                .iter()
                .rfind(|v| v.seq < target.seq)
                .map(|v| parse_commit(&v.commit_id))
                .transpose()?;
            let mut rewritten = Vec::new();
            for v in versions.iter().filter(|v| v.seq > target.seq) {
                let files = tx.plugin_version_tree(actor.tenant, v.id).await?;
                let tree = tree_id(&tree_files(&files)?).map_err(|e| RegistryError::Internal(e.to_string()))?;
                let commit = commit_id(&CommitSpec {
                    tree,
                    parent,
                    time_secs: v.created_at / 1000,
                    message: plugin_version_message(&plugin.slug, v.seq, v.version.as_deref()),
                });
                let new_commit = commit.to_hex();
                tx.set_plugin_version_commit(actor.tenant, v.id, &new_commit).await?;
                rewritten.push(RewrittenVersion {
                    seq: v.seq as u64,
                    version: v.version.clone(),
                    old_commit: v.commit_id.clone(),
                    new_commit,
                });
                parent = Some(commit);
            }
            if plugin.mode == SourcingMode::Mirror {
                // The upstream most likely still has the purged tree: the next pull would serve
                // it again. Held until an admin has fixed the upstream and accepts it.
                let shown = target.version.clone().unwrap_or_else(|| target.commit_id[..12].to_string());
                tx.hold_mirror(
                    actor.tenant,
                    plugin.id,
                    &format!(
                        "version {shown} was purged: fix the upstream, then accept it (`skill-pool plugin accept {slug}`); until then no pull runs"
                    ),
                )
                .await?;
            }
            tx.bump_catalogue_rev(actor.tenant).await?;
            let purged = PurgedVersion {
                seq: target.seq as u64,
                version: target.version.clone(),
                commit: target.commit_id.clone(),
            };
            audit(
                &mut tx,
                actor,
                "plugin.purge",
                slug,
                serde_json::json!({
                    "seq": purged.seq,
                    "version": purged.version,
                    "commit": purged.commit,
                    "rewritten": rewritten
                        .iter()
                        .map(|r| serde_json::json!({ "seq": r.seq, "old_commit": r.old_commit, "new_commit": r.new_commit }))
                        .collect::<Vec<_>>(),
                }),
            )
            .await?;
            tx.commit().await?;
            Ok((purged, rewritten, candidates))
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        // A mirror's cache of its upstream holds the purged tree too; the next pull starts over.
        if plugin.mode == SourcingMode::Mirror {
            let _ = tokio::fs::remove_dir_all(self.mirror_cache_path(actor.tenant, plugin.id)).await;
        }
        self.remove_archives(actor.tenant, plugin.id).await;
        self.rebuild_repo(actor.tenant, plugin).await?;
        let blobs_deleted = self.collect_blobs(candidates).await.map_err(|e| {
            RegistryError::Internal(format!(
                "plugin `{slug}`: the version was purged and is no longer served, but deleting its file bodies failed ({e}): \
                 run `skill-pool-server gc` to delete them"
            ))
        })?;
        Ok(PurgeResult {
            plugin: self.show_plugin(actor, slug).await?,
            purged,
            rewritten,
            blobs_deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, version: Option<&str>, commit: &str) -> PluginVersionRow {
        PluginVersionRow {
            id: seq,
            plugin_id: PluginId::for_tests(1),
            seq,
            version: version.map(str::to_string),
            commit_id: commit.into(),
            digest: "d".into(),
            blobs: None,
            created_at: 0,
            created_by: "operator".into(),
        }
    }

    #[test]
    fn a_version_is_named_by_semver_or_commit() {
        let versions = [
            row(1, Some("1.0.0"), &format!("abcdef1{}", "0".repeat(33))),
            row(2, None, &format!("abcdef2{}", "0".repeat(33))),
            row(3, None, &format!("abcdef2{}", "1".repeat(33))),
        ];
        assert_eq!(find_version("p", &versions, "1.0.0").unwrap().seq, 1);
        assert_eq!(find_version("p", &versions, "abcdef1").unwrap().seq, 1);
        assert_eq!(find_version("p", &versions, "ABCDEF20").unwrap().seq, 2);
        assert!(matches!(find_version("p", &versions, "2.0.0"), Err(RegistryError::NotFound(_))));
        assert!(matches!(find_version("p", &versions, "abcd"), Err(RegistryError::NotFound(_))));
        let ambiguous = find_version("p", &versions, "abcdef2").unwrap_err();
        assert_eq!(ambiguous.field(), Some("version"));
    }
}
