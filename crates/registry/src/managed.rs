//! The managed-settings fragment an administrator deploys with their MDM
//! (`managed-settings.json`): the tenant's marketplace declared for every developer, an
//! allow-list of marketplaces, and the plugins the organisation wants enabled. Rendered from
//! the same catalogue the client reads (a plugin that is not listed is never enabled).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use skill_pool_core::Role;
use skill_pool_core::api::{InstallPolicy, Visibility};

use crate::{Actor, Registry, RegistryError, Result};
use skill_pool_store::prelude::*;

/// What `skill-pool auth header` is called as in a `headersHelper` (a bare command found on
/// `PATH`: the client runs helpers from `~/.claude`).
pub const HEADERS_HELPER: &str = "skill-pool auth header";

/// What the fragment is made of.
#[derive(Debug, Clone)]
pub struct ManagedSettingsInput<'a> {
    /// The marketplace name: the tenant slug.
    pub marketplace: &'a str,
    /// The catalogue URL (the tenant root).
    pub url: &'a str,
    pub visibility: Visibility,
    /// Other marketplaces the organisation allows, as `strictKnownMarketplaces` entries.
    pub allow: &'a [Value],
    /// Plugin names to enable.
    pub enabled: &'a [String],
}

/// The fragment, as a JSON object with `extraKnownMarketplaces`, `strictKnownMarketplaces` and
/// `enabledPlugins`. Pure: the same input gives the same bytes.
pub fn render_managed_settings(input: &ManagedSettingsInput<'_>) -> Value {
    let mut source = Map::new();
    source.insert("source".into(), json!("url"));
    source.insert("url".into(), json!(input.url));
    if input.visibility == Visibility::Private {
        // The client runs it before every (https) catalogue fetch and sends what it prints;
        // the same headers go to same-origin archive downloads.
        source.insert("headersHelper".into(), json!(HEADERS_HELPER));
    }
    let mut extra = Map::new();
    extra.insert(
        input.marketplace.to_string(),
        json!({ "source": Value::Object(source), "autoUpdate": true }),
    );
    // The client compares allow-list entries without their headers: the plain source matches.
    let mut strict = vec![json!({ "source": "url", "url": input.url })];
    for entry in input.allow {
        if !strict.contains(entry) {
            strict.push(entry.clone());
        }
    }
    let mut enabled = Map::new();
    let names: BTreeSet<&String> = input.enabled.iter().collect();
    for name in names {
        enabled.insert(format!("{name}@{}", input.marketplace), Value::Bool(true));
    }
    json!({
        "extraKnownMarketplaces": Value::Object(extra),
        "strictKnownMarketplaces": strict,
        "enabledPlugins": Value::Object(enabled),
    })
}

/// One `--allow` value as a `strictKnownMarketplaces` entry, classified the way
/// `claude plugin marketplace add` classifies its argument: `owner/repo` (GitHub), a git URL
/// (`….git`, `git@host:path`), any other `https://`/`http://` URL (a catalogue), or a JSON
/// object taken as it is (`{"source": "hostPattern", "hostPattern": "^git\\.example\\.com$"}`).
pub fn allow_entry(value: &str) -> Result<Value> {
    let v = value.trim();
    let bad = |message: String| RegistryError::bad_request(message).with_field("allow");
    if v.starts_with('{') {
        let parsed: Value = serde_json::from_str(v).map_err(|e| bad(format!("`{v}` is not a JSON object: {e}")))?;
        return match parsed.get("source").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(parsed),
            _ => Err(bad(format!(
                "`{v}` has no `source`: e.g. {{\"source\": \"hostPattern\", \"hostPattern\": \"^github\\\\.example\\\\.com$\"}}"
            ))),
        };
    }
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "`{value}` is not a marketplace: give owner/repo, a URL or a JSON source object"
        )));
    }
    if let Some((user_host, path)) = v.split_once(':')
        && !v.contains("://")
        && user_host.contains('@')
        && !path.is_empty()
    {
        return Ok(json!({ "source": "git", "url": v }));
    }
    if v.starts_with("https://") || v.starts_with("http://") {
        let parsed = url::Url::parse(v).map_err(|e| bad(format!("`{v}` is not a URL: {e}")))?;
        let path = parsed.path().trim_end_matches('/');
        if parsed.host_str() == Some("github.com") {
            let parts: Vec<&str> = path.trim_start_matches('/').trim_end_matches(".git").split('/').collect();
            if parts.len() == 2 && parts.iter().all(|p| !p.is_empty()) {
                return Ok(json!({ "source": "github", "repo": parts.join("/") }));
            }
        }
        if path.ends_with(".git") || path.contains("/_git/") {
            return Ok(json!({ "source": "git", "url": v }));
        }
        return Ok(json!({ "source": "url", "url": v }));
    }
    let parts: Vec<&str> = v.split('/').collect();
    if parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Ok(json!({ "source": "github", "repo": v }));
    }
    Err(bad(format!(
        "`{v}` is not a marketplace: give owner/repo, a git or catalogue URL, or a JSON source object"
    )))
}

impl Registry {
    /// `GET /v1/managed-settings`: the fragment for the actor's tenant, with `allow` (the
    /// `--allow` values) added to the allow-list. Enables the listed plugins whose install
    /// policy is `required` or `auto_install`.
    pub async fn managed_settings(&self, actor: &Actor, allow: &[String]) -> Result<Value> {
        actor.require(Role::Admin)?;
        let allow = allow.iter().map(|a| allow_entry(a)).collect::<Result<Vec<_>>>()?;
        let tenant = self.tenant_row(actor.tenant).await?;
        let listed: BTreeSet<String> = self
            .catalogue(actor.tenant)
            .await?
            .parsed()?
            .plugins
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let mut enabled = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.store().list_plugins(actor.tenant, cursor.as_deref(), 500).await?;
            let done = page.len() < 500;
            cursor = page.last().map(|p| p.slug.clone());
            for p in page {
                if matches!(p.install_policy, InstallPolicy::Required | InstallPolicy::AutoInstall) && listed.contains(&p.slug) {
                    enabled.push(p.slug);
                }
            }
            if done {
                break;
            }
        }
        let url = self.tenant_url(&tenant.slug);
        Ok(render_managed_settings(&ManagedSettingsInput {
            marketplace: &tenant.slug,
            url: &url,
            visibility: tenant.visibility,
            allow: &allow,
            enabled: &enabled,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_key() {
        let allow = vec![json!({"source": "github", "repo": "acme/extra"})];
        let enabled = vec!["tools".to_string(), "lint".to_string()];
        let input = ManagedSettingsInput {
            marketplace: "acme",
            url: "https://pool.example.com/t/acme",
            visibility: Visibility::Public,
            allow: &allow,
            enabled: &enabled,
        };
        assert_eq!(
            render_managed_settings(&input),
            json!({
                "extraKnownMarketplaces": {"acme": {"source": {"source": "url", "url": "https://pool.example.com/t/acme"}, "autoUpdate": true}},
                "strictKnownMarketplaces": [
                    {"source": "url", "url": "https://pool.example.com/t/acme"},
                    {"source": "github", "repo": "acme/extra"}
                ],
                "enabledPlugins": {"lint@acme": true, "tools@acme": true}
            })
        );
        let private = render_managed_settings(&ManagedSettingsInput {
            visibility: Visibility::Private,
            allow: &[],
            enabled: &[],
            ..input
        });
        assert_eq!(
            private["extraKnownMarketplaces"]["acme"]["source"]["headersHelper"],
            "skill-pool auth header"
        );
        assert!(private["strictKnownMarketplaces"][0].get("headersHelper").is_none());
        assert_eq!(private["enabledPlugins"], json!({}));
    }

    #[test]
    fn allow_values() {
        for (value, want) in [
            (
                "anthropics/claude-plugins-official",
                json!({"source": "github", "repo": "anthropics/claude-plugins-official"}),
            ),
            (
                "https://github.com/acme/plugins",
                json!({"source": "github", "repo": "acme/plugins"}),
            ),
            (
                "https://git.example.com/plugins.git",
                json!({"source": "git", "url": "https://git.example.com/plugins.git"}),
            ),
            (
                "git@git.example.com:team/plugins.git",
                json!({"source": "git", "url": "git@git.example.com:team/plugins.git"}),
            ),
            (
                "https://other.example.com/t/beta",
                json!({"source": "url", "url": "https://other.example.com/t/beta"}),
            ),
            (
                r#"{"source": "hostPattern", "hostPattern": "^git\\.example\\.com$"}"#,
                json!({"source": "hostPattern", "hostPattern": "^git\\.example\\.com$"}),
            ),
        ] {
            assert_eq!(allow_entry(value).unwrap(), want, "{value}");
        }
        for bad in ["", "nope", "a b/c", "{\"repo\": \"x/y\"}", "{not json", "ftp://x/y"] {
            let err = allow_entry(bad).expect_err(bad);
            assert_eq!(err.code(), skill_pool_core::ErrorCode::BadRequest, "{bad}");
        }
    }
}
