//! Catalogue import: every entry of an upstream `marketplace.json` listed as an external plugin
//! of the tenant, in one transaction. Relative sources become `git-subdir` sources of the
//! upstream repository; every other source and field is kept exactly. Importing the same
//! catalogue again changes nothing (same catalogue bytes, same ETag).

use serde_json::{Map, Value};
use skill_pool_core::api::{ImportCatalogue, ImportOutcome, ImportReport, ImportedEntry};

use super::*;

/// Entries larger than this are refused as a whole import (a catalogue is a listing, not a store).
const MAX_ENTRIES: usize = 5000;

/// One upstream entry, as it will be stored.
#[derive(Debug, Clone, PartialEq)]
struct Listing {
    slug: Slug,
    /// Best-effort typed metadata, for the API and the portal (the catalogue emits `extra`).
    metadata: PluginMetadata,
    source: Value,
    /// Every field of the entry but `name` and `source`, verbatim.
    extra: Map<String, Value>,
}

/// What became of one entry before the transaction.
enum Planned {
    List(Box<Listing>),
    Skip(String, String),
}

/// The upstream repository relative sources are read from.
struct Upstream<'a> {
    repo_url: Option<&'a str>,
    git_ref: Option<&'a str>,
    sha: Option<&'a str>,
}

/// `./plugins/x` or a bare `x` under `metadata.pluginRoot` → the path in the repository.
fn relative_path(source: &str, plugin_root: Option<&str>) -> std::result::Result<String, String> {
    let joined = if source.starts_with("./") || source == "." {
        source.to_string()
    } else {
        match plugin_root {
            Some(root) => format!("{}/{source}", root.trim_end_matches('/')),
            None => {
                return Err(format!(
                    "source `{source}` is a bare name but the catalogue has no `metadata.pluginRoot`"
                ));
            }
        }
    };
    let path = joined
        .split('/')
        .filter(|seg| !seg.is_empty() && *seg != ".")
        .collect::<Vec<_>>()
        .join("/");
    if joined.starts_with('/') || path.split('/').any(|seg| seg == "..") {
        return Err(format!("source `{source}` leaves the marketplace root"));
    }
    Ok(path)
}

fn plan_entry(entry: &Value, plugin_root: Option<&str>, upstream: &Upstream) -> Planned {
    let Value::Object(fields) = entry else {
        return Planned::Skip(String::new(), "the entry is not a JSON object".into());
    };
    let name = match fields.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => return Planned::Skip(String::new(), "the entry has no `name` (Claude Code drops it too)".into()),
    };
    let slug = match Slug::parse(&name) {
        Ok(s) => s,
        Err(e) => return Planned::Skip(name, format!("the name cannot be a plugin of this registry: {e}")),
    };
    let source = match fields.get("source") {
        Some(Value::String(rel)) => {
            let path = match relative_path(rel, plugin_root) {
                Ok(p) => p,
                Err(reason) => return Planned::Skip(name, reason),
            };
            let Some(repo_url) = upstream.repo_url else {
                return Planned::Skip(
                    name,
                    format!("source `{rel}` is relative to the upstream repository: import with `repo_url` (`--repo-url`)"),
                );
            };
            let mut s = Map::new();
            if path.is_empty() {
                // The marketplace root is the plugin.
                s.insert("source".into(), "url".into());
                s.insert("url".into(), repo_url.into());
            } else {
                s.insert("source".into(), "git-subdir".into());
                s.insert("url".into(), repo_url.into());
                s.insert("path".into(), path.into());
            }
            if let Some(r) = upstream.git_ref {
                s.insert("ref".into(), r.into());
            }
            if let Some(sha) = upstream.sha {
                s.insert("sha".into(), sha.into());
            }
            Value::Object(s)
        }
        Some(other) => other.clone(),
        None => return Planned::Skip(name, "the entry has no `source`".into()),
    };
    if let Err(e) = catalogue::check_external_source(&source) {
        return Planned::Skip(name, e.to_string());
    }
    let extra: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !catalogue::ENTRY_OWN_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The catalogue emits these fields verbatim: a link a browser would run is not listed.
    if let Err(e) = manifest::check_links(&extra) {
        return Planned::Skip(name, e.to_string());
    }
    let metadata = metadata_of(&extra);
    Planned::List(Box::new(Listing {
        slug,
        metadata,
        source,
        extra,
    }))
}

/// The metadata fields of an entry that parse as such (each on its own: one odd field does not
/// lose the others).
fn metadata_of(extra: &Map<String, Value>) -> PluginMetadata {
    let mut known = Map::new();
    for key in [
        "displayName",
        "description",
        "author",
        "homepage",
        "repository",
        "license",
        "keywords",
        "category",
    ] {
        if let Some(v) = extra.get(key) {
            let mut one = Map::new();
            one.insert(key.into(), v.clone());
            if serde_json::from_value::<PluginMetadata>(Value::Object(one)).is_ok() {
                known.insert(key.into(), v.clone());
            }
        }
    }
    serde_json::from_value(Value::Object(known)).unwrap_or_default()
}

impl Registry {
    /// `POST /v1/plugins/import-catalogue`.
    pub async fn import_catalogue(&self, actor: &Actor, req: ImportCatalogue) -> Result<ImportReport> {
        actor.require(Role::Admin)?;
        let Value::Object(top) = &req.catalogue else {
            return Err(RegistryError::bad_request("`catalogue` must be a marketplace.json object").with_field("catalogue"));
        };
        let Some(Value::Array(entries)) = top.get("plugins") else {
            return Err(RegistryError::bad_request("the catalogue has no `plugins` array").with_field("catalogue.plugins"));
        };
        if entries.len() > MAX_ENTRIES {
            return Err(RegistryError::TooLarge(format!(
                "the catalogue lists {} plugins; at most {MAX_ENTRIES} are imported at once",
                entries.len()
            )));
        }
        // The upstream repository, ref and commit go into every relative entry's source: checked
        // once, as the request fields they are.
        let field_err = |field: &str, e: catalogue::SourceError| {
            RegistryError::bad_request(format!("{field}: {}", e.message))
                .with_field(field)
                .with_source(e)
        };
        if let Some(u) = req.repo_url.as_deref() {
            catalogue::check_external_source(&serde_json::json!({"source": "url", "url": u})).map_err(|e| field_err("repo_url", e))?;
        }
        if let Some(r) = req.git_ref.as_deref() {
            catalogue::check_external_source(&serde_json::json!({"source": "url", "url": "https://x/y", "ref": r}))
                .map_err(|e| field_err("ref", e))?;
        }
        if let Some(sha) = req.sha.as_deref() {
            catalogue::check_external_source(&serde_json::json!({"source": "url", "url": "https://x/y", "sha": sha}))
                .map_err(|e| field_err("sha", e))?;
        }
        let plugin_root = top
            .get("metadata")
            .and_then(|m| m.get("pluginRoot"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let upstream = Upstream {
            repo_url: req.repo_url.as_deref(),
            git_ref: req.git_ref.as_deref(),
            sha: req.sha.as_deref(),
        };
        let mut planned: Vec<Planned> = entries.iter().map(|e| plan_entry(e, plugin_root.as_deref(), &upstream)).collect();
        // A name listed twice upstream: the first wins, as in Claude Code's duplicate check.
        let mut seen = std::collections::HashSet::new();
        for p in &mut planned {
            if let Planned::List(l) = p
                && !seen.insert(l.slug.clone())
            {
                *p = Planned::Skip(l.slug.to_string(), "listed twice in the catalogue: the first entry is kept".into());
            }
        }
        let renames_in: Map<String, Value> = match top.get("renames") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let planned = &planned;
        let renames_in = &renames_in;
        let (report, changed) = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let mut out = Vec::with_capacity(planned.len());
            let mut changed = false;
            for p in planned {
                let listing = match p {
                    Planned::Skip(name, reason) => {
                        out.push(ImportedEntry {
                            name: name.clone(),
                            outcome: ImportOutcome::Skipped,
                            reason: Some(reason.clone()),
                        });
                        continue;
                    }
                    Planned::List(l) => l,
                };
                let outcome = self.apply_listing(&mut tx, actor, listing).await?;
                let (outcome, reason) = match outcome {
                    Ok(o) => (o, None),
                    Err(reason) => (ImportOutcome::Skipped, Some(reason)),
                };
                changed |= matches!(outcome, ImportOutcome::Imported | ImportOutcome::Updated);
                out.push(ImportedEntry {
                    name: listing.slug.to_string(),
                    outcome,
                    reason,
                });
            }
            // Renames: merged into the tenant's, kept only when the target is listed (or null).
            let tenant = tx
                .tenant_by_id(actor.tenant)
                .await?
                .ok_or_else(|| RegistryError::NotFound("tenant not found".into()))?;
            let mut renames = crate::catalogue::json_object(tenant.catalogue_renames.as_deref());
            let before = renames.clone();
            let mut warnings = Vec::new();
            for (old, new) in renames_in {
                let resolves = match new {
                    Value::Null => true,
                    Value::String(target) => tx.plugin(actor.tenant, target).await?.is_some(),
                    _ => false,
                };
                if resolves {
                    renames.insert(old.clone(), new.clone());
                } else {
                    warnings.push(format!("rename `{old}` → {new} dropped: its target is not listed in this tenant"));
                }
            }
            if renames != before {
                let text = (!renames.is_empty()).then(|| Value::Object(renames.clone()).to_string());
                tx.set_catalogue_renames(actor.tenant, text.as_deref()).await?;
                changed = true;
            }
            let counts = |o: ImportOutcome| out.iter().filter(|e| e.outcome == o).count();
            if changed {
                tx.bump_catalogue_rev(actor.tenant).await?;
                crate::audit::record(
                    &mut tx,
                    actor,
                    "catalogue.import",
                    &format!("catalogue:{}", top.get("name").and_then(Value::as_str).unwrap_or("upstream")),
                    serde_json::json!({
                        "imported": counts(ImportOutcome::Imported),
                        "updated": counts(ImportOutcome::Updated),
                        "unchanged": counts(ImportOutcome::Unchanged),
                        "skipped": counts(ImportOutcome::Skipped),
                        "repo_url": upstream.repo_url,
                    }),
                )
                .await?;
                tx.commit().await?;
            }
            Ok((
                ImportReport {
                    entries: out,
                    renames: renames.len(),
                    warnings,
                    changed,
                },
                changed,
            ))
        })
        .await?;
        if changed {
            self.invalidate_catalogue(actor.tenant);
        }
        Ok(report)
    }

    /// Inserts or updates one external listing inside the import transaction. `Err(reason)` when
    /// the name belongs to a plugin that is not an external listing.
    async fn apply_listing(&self, tx: &mut Tx, actor: &Actor, l: &Listing) -> Result<std::result::Result<ImportOutcome, String>> {
        let meta_json = serde_json::to_string(&l.metadata).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let source_json = l.source.to_string();
        let extra_json = (!l.extra.is_empty()).then(|| Value::Object(l.extra.clone()).to_string());
        let Some(existing) = tx.plugin(actor.tenant, l.slug.as_str()).await? else {
            let plugin = tx
                .insert_plugin(
                    actor.tenant,
                    l.slug.as_str(),
                    SourcingMode::External,
                    &meta_json,
                    Some(&source_json),
                )
                .await?;
            tx.set_catalogue_extra(actor.tenant, plugin.id, extra_json.as_deref()).await?;
            return Ok(Ok(ImportOutcome::Imported));
        };
        if existing.mode != SourcingMode::External {
            return Ok(Err(format!(
                "the tenant has a {} plugin of this name: it is left as it is",
                existing.mode.as_str()
            )));
        }
        let same_source = existing
            .external_source
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            == Some(l.source.clone());
        let same_extra = crate::catalogue::json_object(existing.catalogue_extra.as_deref()) == l.extra;
        let same_meta = serde_json::from_str::<PluginMetadata>(&existing.metadata).ok().as_ref() == Some(&l.metadata);
        if same_source && same_extra && same_meta {
            return Ok(Ok(ImportOutcome::Unchanged));
        }
        tx.update_plugin(actor.tenant, existing.id, &meta_json, Some(&source_json)).await?;
        tx.set_catalogue_extra(actor.tenant, existing.id, extra_json.as_deref()).await?;
        Ok(Ok(ImportOutcome::Updated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sources() {
        assert_eq!(relative_path("./plugins/x", None).unwrap(), "plugins/x");
        assert_eq!(relative_path("./plugins/x/", None).unwrap(), "plugins/x");
        assert_eq!(relative_path("./", None).unwrap(), "");
        assert_eq!(relative_path(".", None).unwrap(), "");
        assert_eq!(relative_path("x", Some("./plugins")).unwrap(), "plugins/x");
        assert_eq!(relative_path("x", Some("plugins/")).unwrap(), "plugins/x");
        assert!(relative_path("x", None).is_err());
        assert!(relative_path("./../x", None).is_err());
        assert!(relative_path("../x", Some("./p")).is_err());
    }

    #[test]
    fn entries_become_listings_or_reasons() {
        let upstream = Upstream {
            repo_url: Some("https://git.example.com/up.git"),
            git_ref: Some("main"),
            sha: None,
        };
        let entry = serde_json::json!({"name": "fmt", "source": "./plugins/fmt", "strict": false, "skills": ["./skills/a"], "description": "Formats", "author": "not an object"});
        let Planned::List(l) = plan_entry(&entry, None, &upstream) else {
            panic!("listed")
        };
        assert_eq!(
            l.source,
            serde_json::json!({"source": "git-subdir", "url": "https://git.example.com/up.git", "path": "plugins/fmt", "ref": "main"})
        );
        assert_eq!(l.extra["strict"], false);
        assert_eq!(
            l.extra["author"], "not an object",
            "kept exactly, even when the validator would warn"
        );
        assert_eq!(l.metadata.description.as_deref(), Some("Formats"));
        assert_eq!(l.metadata.author, None);
        let no_repo = Upstream {
            repo_url: None,
            git_ref: None,
            sha: None,
        };
        assert!(matches!(plan_entry(&entry, None, &no_repo), Planned::Skip(_, r) if r.contains("--repo-url")));
        assert!(matches!(plan_entry(&serde_json::json!({"source": "./x"}), None, &upstream), Planned::Skip(n, _) if n.is_empty()));
        assert!(matches!(
            plan_entry(&serde_json::json!({"name": "s3", "source": {"source": "s3"}}), None, &upstream),
            Planned::Skip(_, r) if r.contains("source.source")
        ));
        assert!(matches!(
            plan_entry(&serde_json::json!({"name": "x", "source": {"source": "url", "url": "https://h/x --upload-pack=y"}}), None, &upstream),
            Planned::Skip(_, r) if r.contains("source.url")
        ));
        assert!(matches!(
            plan_entry(
                &serde_json::json!({"name": "Bad Name", "source": {"source": "github", "repo": "o/r"}}),
                None,
                &upstream
            ),
            Planned::Skip(..)
        ));
        // A link a browser would run is not listed; the reason names the field.
        for (entry, field) in [
            (
                serde_json::json!({"name": "x", "source": "./x", "homepage": "javascript:alert(1)"}),
                "homepage",
            ),
            (
                serde_json::json!({"name": "x", "source": "./x", "repository": "data:text/html,x"}),
                "repository",
            ),
            (
                serde_json::json!({"name": "x", "source": "./x", "author": {"name": "a", "url": "vbscript:x"}}),
                "author.url",
            ),
        ] {
            assert!(
                matches!(plan_entry(&entry, None, &upstream), Planned::Skip(_, ref r) if r.contains(&format!("`{field}`"))),
                "{entry}"
            );
        }
    }
}

/// The import parser on entries of any shape (a stand-in for fuzzing; see `crates/core/tests/props.rs`).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::sample::select(vec![
                "./x",
                ".",
                "./",
                "../x",
                "x",
                "/abs",
                "./a/../../b",
                "-x",
                "o/r",
                "https://h/r.git",
                "javascript:x",
                "p",
                "ssh://-oProxyCommand=x/r",
                "http://169.254.169.254/",
                "github",
                "url",
                "git-subdir",
                "npm",
                "archive",
            ])
            .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn entry() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "name",
            "source",
            "homepage",
            "repository",
            "author",
            "version",
            "description",
            "strict",
            "url",
            "repo",
            "path",
            "package",
        ]);
        let value = text().prop_recursive(2, 12, 4, |inner| {
            prop::collection::vec(
                (
                    prop::sample::select(vec!["source", "url", "repo", "path", "ref", "sha", "package", "name"]),
                    inner,
                ),
                0..4,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        });
        prop::collection::vec((key, value), 0..6).prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any entry is listed or skipped with a reason, never a panic; a listing's source and
        /// links pass the same checks as a curator's.
        #[test]
        fn import_entries(e in entry(), root in prop::option::of("[a-z./]{0,8}"), repo in prop::option::of(text())) {
            let repo = repo.and_then(|r| r.as_str().map(str::to_string));
            let upstream = Upstream { repo_url: repo.as_deref(), git_ref: Some("main"), sha: None };
            if let Planned::List(l) = plan_entry(&e, root.as_deref(), &upstream) {
                prop_assert!(catalogue::check_external_source(&l.source).is_ok(), "{}", l.source);
                prop_assert!(manifest::check_links(&l.extra).is_ok());
                if let Some(path) = l.source.get("path").and_then(Value::as_str) {
                    prop_assert!(!path.split('/').any(|s| s == ".."), "{}", path);
                }
            }
        }
    }
}
