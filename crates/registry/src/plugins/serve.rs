//! Which version the catalogue serves: the newest by default; an admin can pin an older one (a
//! rollback) or hold a new one back, and follow the newest again. Claude Code installs by the
//! version string, so a rollback reaches clients through `claude plugin update`.

use super::read::effective_version;
use super::*;
use skill_pool_core::api::ServePlugin;

impl Registry {
    /// `POST /v1/plugins/{slug}/serve`.
    pub async fn serve_plugin(&self, actor: &Actor, slug: &str, req: ServePlugin) -> Result<Plugin> {
        actor.require(Role::Admin)?;
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        if plugin.mode == SourcingMode::External {
            return Err(RegistryError::bad_request(format!(
                "plugin `{slug}` is external: Claude Code installs it from its upstream, which decides the version"
            )));
        }
        let wanted = match (&req.version, req.latest) {
            (Some(_), true) => return Err(RegistryError::bad_request("give either `version` or `latest: true`, not both")),
            (None, false) => return Err(RegistryError::bad_request("give `version` (e.g. \"1.2.0\") or `latest: true`")),
            (Some(v), false) => Some(v.trim().to_string()),
            (None, true) => None,
        };
        let versions = self.store().plugin_versions(actor.tenant, plugin.id).await?;
        let target = match &wanted {
            None => None,
            Some(v) => {
                let found = versions
                    .iter()
                    .rev()
                    .find(|row| row.version.as_deref() == Some(v.as_str()) || effective_version(row) == *v || row.commit_id == *v);
                match found {
                    Some(row) => Some(row),
                    None => {
                        let known: Vec<String> = versions.iter().rev().map(effective_version).collect();
                        return Err(RegistryError::NotFound(format!(
                            "plugin `{slug}` has no version `{v}`; its versions: {}",
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ))
                        .with_field("version"));
                    }
                }
            }
        };
        // Pinning the newest is following it: stored as "no pin" only when asked for `latest`.
        let target_id = target.map(|r| r.id);
        let (plugin, target_id, wanted) = (&plugin, target_id, &wanted);
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            tx.set_served_version(actor.tenant, plugin.id, target_id).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(
                &mut tx,
                actor,
                "plugin.serve",
                slug,
                serde_json::json!({ "version": wanted, "latest": wanted.is_none() }),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        self.show_plugin(actor, slug).await
    }
}

impl Registry {
    /// `POST /v1/plugins/{slug}/policy`: how the organisation wants the plugin installed.
    pub async fn set_install_policy(&self, actor: &Actor, slug: &str, policy: skill_pool_core::api::InstallPolicy) -> Result<Plugin> {
        actor.require(Role::Admin)?;
        let plugin = self.plugin_row(actor.tenant, slug).await?;
        let plugin = &plugin;
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            tx.set_install_policy(actor.tenant, plugin.id, policy).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(
                &mut tx,
                actor,
                "plugin.policy",
                slug,
                serde_json::json!({ "install_policy": policy.as_str(), "was": plugin.install_policy.as_str() }),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.invalidate_catalogue(actor.tenant);
        self.show_plugin(actor, slug).await
    }
}
