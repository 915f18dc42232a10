//! The version transaction: a draft becomes a new plugin version (or is recognised as already
//! served) in one transaction, then the repo is materialised.

use super::*;

/// What a new draft becomes, given the versions a plugin already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The latest version already serves this content: nothing to write.
    Reuse { version_id: i64 },
    /// A new version `seq` on top of `parent` (the latest commit, if any).
    Insert { seq: i64, parent: Option<String> },
}

/// Why a draft cannot become a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The version exists with other content (or is not the latest): Claude Code would never
    /// update to it.
    SameVersionOtherContent { version: Version, suggestion: Version },
    /// A version lower than one already served.
    LowerThanServed { version: Version, served: Version },
}

impl Refusal {
    fn into_error(self, slug: &Slug) -> RegistryError {
        match self {
            Refusal::SameVersionOtherContent { version, suggestion } => RegistryError::VersionConflict {
                message: format!(
                    "plugin `{slug}` already has version {version} with other content; Claude Code would never update to it: bump the version (e.g. {suggestion})"
                ),
                suggestion: Some(suggestion.to_string()),
            },
            Refusal::LowerThanServed { version, served } => RegistryError::VersionConflict {
                message: format!("plugin `{slug}` is already at version {served}: publish a higher version than {version}"),
                suggestion: Some(skill_pool_core::version::next_patch(Some(&served)).to_string()),
            },
        }
    }
}

/// The version decision, without I/O: `versions` oldest first, `wanted` the explicit semver of
/// the draft (if any), `digest` the draft's tree digest.
/// - an explicit version that exists: reused when it is the latest and has this content, else refused;
/// - an explicit version lower than the highest served: refused;
/// - no version, and the latest is unversioned with this content: reused;
/// - otherwise a new version after the latest.
pub(crate) fn decide(versions: &[PluginVersionRow], wanted: Option<&Version>, digest: &str) -> Result<Decision, Refusal> {
    let latest = versions.last();
    if let Some(v) = wanted {
        let text = v.to_string();
        if let Some(existing) = versions.iter().find(|row| row.version.as_deref() == Some(text.as_str())) {
            if existing.digest == digest && latest.map(|l| l.id) == Some(existing.id) {
                return Ok(Decision::Reuse { version_id: existing.id });
            }
            return Err(Refusal::SameVersionOtherContent {
                version: v.clone(),
                suggestion: skill_pool_core::version::next_patch(Some(v)),
            });
        }
        let served = versions
            .iter()
            .filter_map(|row| row.version.as_deref().and_then(|s| Version::parse(s).ok()))
            .max();
        if let Some(max) = served
            && v < &max
        {
            return Err(Refusal::LowerThanServed {
                version: v.clone(),
                served: max,
            });
        }
    } else if let Some(l) = latest
        && l.digest == digest
        && l.version.is_none()
    {
        return Ok(Decision::Reuse { version_id: l.id });
    }
    Ok(Decision::Insert {
        seq: latest.map_or(1, |l| l.seq + 1),
        parent: latest.map(|l| l.commit_id.clone()),
    })
}

impl Registry {
    /// Writes a draft as a new version (or recognises it as already served) in one transaction,
    /// then materialises the repo.
    pub(super) async fn commit_draft(&self, actor: &Actor, draft: Draft, expect_plugin: Option<PluginId>) -> Result<PublishPluginResult> {
        let mut draft = draft;
        let remarks = self
            .check_dependencies(actor.tenant, &draft.slug, draft.mode, draft.manifest.as_ref())
            .await?;
        draft.warnings.extend(remarks);
        // Every metadata field is bounded (it goes into the public catalogue). A mirror's is
        // fitted with a warning (skill-pool does not own it); anything else is refused.
        if draft.mode == SourcingMode::Mirror {
            let cut = skill_pool_core::limits::fit_metadata(&mut draft.metadata);
            if !cut.is_empty() {
                draft
                    .warnings
                    .push(format!("metadata cut to the catalogue's limits: {}", cut.join(", ")));
            }
        } else {
            skill_pool_core::limits::check_metadata(&draft.metadata).map_err(|e| {
                let field = e.field.clone();
                RegistryError::invalid_plugin(format!("plugin metadata: {e}")).with_field(field)
            })?;
        }
        let meta_json = serde_json::to_string(&draft.metadata).map_err(|e| RegistryError::Internal(e.to_string()))?;
        let blobs_json = draft
            .blobs
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        // Room in the catalogue for the entry (its metadata plus the source, roughly).
        self.check_catalogue_room(actor.tenant, meta_json.len() + 512).await?;
        let slug = draft.slug.clone();
        // The retried closure borrows; it must not move these.
        let (slug, meta_json, blobs_json, draft) = (&slug, &meta_json, &blobs_json, &draft);
        let (created, published) = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let plugin = match tx.plugin(actor.tenant, slug.as_str()).await? {
                Some(p) if p.mode != draft.mode => {
                    return Err(RegistryError::Conflict(format!(
                        "plugin `{slug}` is {}: it cannot take {} content",
                        p.mode.as_str(),
                        draft.mode.as_str()
                    )));
                }
                Some(p) if expect_plugin.is_some_and(|id| id != p.id) => {
                    return Err(RegistryError::Conflict(format!(
                        "plugin `{slug}` changed while it was being updated: try again"
                    )));
                }
                Some(p) => {
                    // Before reading the versions: a concurrent purge rewrites their commit ids.
                    tx.lock_plugin(actor.tenant, p.id).await?;
                    if draft.mode == SourcingMode::Mirror
                        && let Some(reason) = tx.mirror(actor.tenant, p.id).await?.and_then(|m| m.held)
                    {
                        // A pull that ran while a purge held the mirror: it must not serve the purged tree again.
                        return Err(RegistryError::Conflict(format!("plugin `{slug}` is held ({reason})")));
                    }
                    p
                }
                None if expect_plugin.is_some() => return Err(RegistryError::NotFound(format!("plugin `{slug}` not found"))),
                None => {
                    self.check_quotas(&mut tx, actor.tenant, true, false, &[]).await?;
                    tx.insert_plugin(actor.tenant, slug.as_str(), draft.mode, meta_json, None).await?
                }
            };

            // Register new pieces (or reuse identical versions), collect the tree.
            let mut published = Vec::new();
            let mut mounts = Vec::new();
            let mut tree: Vec<FileRow> = draft.files.clone();
            for piece in &draft.pieces {
                let (kind, slug, version_id, version, created, piece_id) = match &piece.source {
                    PieceSource::New(input) => {
                        let r = register_in_tx(&mut tx, actor, input).await?;
                        (
                            input.kind,
                            input.slug.to_string(),
                            r.version_id,
                            r.version,
                            r.created,
                            Some(r.piece_id),
                        )
                    }
                    PieceSource::Pinned {
                        kind,
                        slug,
                        version_id,
                        version,
                    } => (*kind, slug.clone(), *version_id, version.clone(), false, None),
                };
                let piece_files = tx.piece_files(actor.tenant, version_id).await?;
                for f in piece_files {
                    tree.push(FileRow {
                        path: format!("{}/{}", piece.mount_path, f.path),
                        ..f
                    });
                }
                mounts.push((version_id, piece.mount_path.clone()));
                published.push(Mounted {
                    kind,
                    slug,
                    version,
                    created,
                    piece_id,
                    version_id,
                });
            }
            check_unique_paths(&tree)?;
            let digest = digest(&tree);
            let version_text = draft.version.as_ref().map(Version::to_string);
            let versions = tx.plugin_versions(actor.tenant, plugin.id).await?;
            let (seq, parent) = match decide(&versions, draft.version.as_ref(), &digest).map_err(|r| r.into_error(slug))? {
                Decision::Reuse { .. } => return Ok((false, published_view(&mut tx, actor, &published).await?)),
                Decision::Insert { seq, parent } => (seq, parent),
            };
            self.check_quotas(&mut tx, actor.tenant, false, true, &draft.bodies.sizes()).await?;
            let created_at = now_ms();
            let tree_bytes: u64 = tree.iter().map(|f| f.size.max(0) as u64).sum();
            let tree_files = tree_files(&tree)?;
            let tree = tree_id(&tree_files).map_err(|e| RegistryError::invalid_plugin(e.to_string()))?;
            let parent: Option<ObjectId> = match parent {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| RegistryError::Internal("stored commit id is not valid".into()))?,
                ),
                None => None,
            };
            let commit = commit_id(&CommitSpec {
                tree,
                parent,
                time_secs: created_at / 1000,
                message: plugin_version_message(slug.as_str(), seq, version_text.as_deref()),
            });
            let commit_hex = commit.to_hex();
            let own_files = draft.files.clone();
            let created_by = actor.audit_name();
            tx.insert_plugin_version(
                actor.tenant,
                plugin.id,
                &NewPluginVersion {
                    seq,
                    version: version_text.as_deref(),
                    commit_id: &commit_hex,
                    digest: &digest,
                    blobs: blobs_json.as_deref(),
                    created_at,
                    created_by: &created_by,
                },
                &mounts,
                &own_files,
            )
            .await?;
            tx.update_plugin(actor.tenant, plugin.id, meta_json, None).await?;
            tx.bump_catalogue_rev(actor.tenant).await?;
            audit(
                &mut tx,
                actor,
                draft.action,
                slug.as_str(),
                with_warnings(
                    serde_json::json!({ "seq": seq, "version": version_text, "commit": commit_hex, "digest": digest }),
                    &draft.warnings,
                ),
            )
            .await?;
            let view = published_view(&mut tx, actor, &published).await?;
            // A disk that cannot take the bodies and the repo's new pack refuses the publish
            // now, while the transaction can still roll back (507 full, 503 read-only).
            self.check_room(self.repo_path(actor.tenant, plugin.id), &draft.bodies, tree_bytes)
                .await?;
            let _blobs_written = self.write_bodies(&draft.bodies).await?;
            tx.commit().await?;
            Ok((true, view))
        })
        .await?;
        if created {
            self.invalidate_catalogue(actor.tenant);
        }
        let row = self.plugin_row(actor.tenant, slug.as_str()).await?;
        // The repo is written while the answer is read from the database (they do not meet).
        let (repo, plugin) = tokio::join!(
            self.ensure_repo_with(actor.tenant, &row, &draft.bodies),
            self.show_plugin(actor, slug.as_str())
        );
        repo?;
        let plugin = plugin?;
        let mut warnings = name_warnings(slug);
        warnings.extend(draft.warnings.iter().cloned());
        if !created {
            warnings.push(format!("plugin `{slug}` already serves this content: nothing changed"));
        }
        Ok(PublishPluginResult {
            created,
            plugin,
            pieces: published,
            warnings,
        })
    }
}

/// A piece as it went into a new plugin version.
struct Mounted {
    kind: PieceKind,
    slug: String,
    version: String,
    /// True when this publish registered the version.
    created: bool,
    /// Set for pieces registered by a folder publish (the only ones that can leave others behind).
    piece_id: Option<i64>,
    version_id: PieceVersionId,
}

async fn published_view(tx: &mut Tx, actor: &Actor, published: &[Mounted]) -> Result<Vec<PublishedPiece>> {
    let mut out = Vec::with_capacity(published.len());
    for m in published {
        let others = match m.piece_id {
            Some(piece_id) => tx.plugins_pinning_other_versions(actor.tenant, piece_id, m.version_id).await?,
            None => Vec::new(),
        };
        out.push(PublishedPiece {
            kind: m.kind,
            slug: m.slug.clone(),
            version: m.version.clone(),
            created: m.created,
            plugins_on_older_versions: others,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, version: Option<&str>, digest: &str) -> PluginVersionRow {
        PluginVersionRow {
            id,
            plugin_id: PluginId::for_tests(1),
            seq: id,
            version: version.map(str::to_string),
            commit_id: format!("{id:040}"),
            digest: digest.into(),
            blobs: None,
            created_at: 0,
            created_by: "operator".into(),
        }
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn the_version_decision() {
        let none: &[PluginVersionRow] = &[];
        let versioned = [row(1, Some("1.0.0"), "a"), row(2, Some("1.1.0"), "b")];
        let unversioned = [row(1, None, "a")];
        let insert = |seq: i64, parent: Option<i64>| {
            Ok(Decision::Insert {
                seq,
                parent: parent.map(|p| format!("{p:040}")),
            })
        };
        type Case<'a> = (&'a str, &'a [PluginVersionRow], Option<Version>, &'a str, Result<Decision, Refusal>);
        let cases: Vec<Case> = vec![
            ("first version", none, Some(v("1.0.0")), "a", insert(1, None)),
            ("first, unversioned", none, None, "a", insert(1, None)),
            (
                "same version, same content, latest",
                &versioned,
                Some(v("1.1.0")),
                "b",
                Ok(Decision::Reuse { version_id: 2 }),
            ),
            (
                "same version, other content",
                &versioned,
                Some(v("1.1.0")),
                "c",
                Err(Refusal::SameVersionOtherContent {
                    version: v("1.1.0"),
                    suggestion: v("1.1.1"),
                }),
            ),
            (
                "an older version again, even with its content",
                &versioned,
                Some(v("1.0.0")),
                "a",
                Err(Refusal::SameVersionOtherContent {
                    version: v("1.0.0"),
                    suggestion: v("1.0.1"),
                }),
            ),
            (
                "lower than served",
                &versioned,
                Some(v("1.0.5")),
                "z",
                Err(Refusal::LowerThanServed {
                    version: v("1.0.5"),
                    served: v("1.1.0"),
                }),
            ),
            ("a higher version", &versioned, Some(v("2.0.0")), "b", insert(3, Some(2))),
            (
                "unversioned after versioned, same content",
                &versioned,
                None,
                "b",
                insert(3, Some(2)),
            ),
            (
                "unversioned, same content",
                &unversioned,
                None,
                "a",
                Ok(Decision::Reuse { version_id: 1 }),
            ),
            ("unversioned, new content", &unversioned, None, "b", insert(2, Some(1))),
            (
                "a first semver after revisions",
                &unversioned,
                Some(v("0.1.0")),
                "a",
                insert(2, Some(1)),
            ),
        ];
        for (what, versions, wanted, digest, want) in cases {
            assert_eq!(decide(versions, wanted.as_ref(), digest), want, "{what}");
        }
    }
}
