//! Skills, agents and commands: publish (an immutable version each time content changes),
//! list, show, archive, download.

use semver::Version;
use skill_pool_core::Role;
use skill_pool_core::api::{Page, Piece, PieceKind, PieceVersion, PublishPieceResult};
use skill_pool_core::archive::{FileMode, UploadFile, pack_tar_gz};
use skill_pool_core::frontmatter::{self, Frontmatter};
use skill_pool_core::slug::Slug;
use skill_pool_core::version::{next_patch, parse_version};
use skill_pool_store::Tx;
use skill_pool_store::pieces::{FileRow, NewPieceVersion, PieceVersionRow};
use skill_pool_store::{PieceVersionId, TenantId, format_ms};

use crate::tree::{Bodies, digest, file_info, load_files};
use crate::{Actor, Registry, RegistryError, Result, audit, with_retry};
use skill_pool_store::prelude::*;

/// A piece ready to be registered: checked, bodies stored.
#[derive(Debug, Clone)]
pub(crate) struct PieceInput {
    pub kind: PieceKind,
    pub slug: Slug,
    pub version: Option<Version>,
    pub description: Option<String>,
    pub metadata: serde_json::Value,
    pub files: Vec<FileRow>,
    /// What the frontmatter reader worked around; kept in the audit row.
    pub warnings: Vec<String>,
}

/// The outcome of registering one piece.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub piece_id: i64,
    pub version_id: PieceVersionId,
    pub version: String,
    pub created: bool,
}

pub(crate) fn frontmatter_json(fm: Option<&Frontmatter>) -> serde_json::Value {
    fm.map(|f| serde_json::Value::Object(f.fields.clone()))
        .unwrap_or_else(|| serde_json::json!({}))
}

/// Adds `"warnings"` to an audit detail when there are any.
pub(crate) fn with_warnings(mut detail: serde_json::Value, warnings: &[String]) -> serde_json::Value {
    if !warnings.is_empty()
        && let Some(map) = detail.as_object_mut()
    {
        map.insert("warnings".into(), serde_json::json!(warnings));
    }
    detail
}

pub(crate) fn parse_optional_version(v: Option<&str>) -> Result<Option<Version>> {
    v.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| parse_version(v).map_err(|e| RegistryError::invalid_version(e.to_string()).with_field("version").with_source(e)))
        .transpose()
}

fn parse_slug(what: &str, s: &str) -> Result<Slug> {
    Slug::parse(s).map_err(|e| {
        RegistryError::invalid_piece(format!("{what}: {e}"))
            .with_field("slug")
            .with_source(e)
    })
}

/// Registers a piece version inside `tx`: reuses the newest non-archived version with the same
/// content, refuses other content under an existing explicit version, else inserts the next one.
pub(crate) async fn register_in_tx(tx: &mut Tx, actor: &Actor, input: &PieceInput) -> Result<Registered> {
    let kind = input.kind.as_str();
    let piece = tx.ensure_piece(actor.tenant, input.kind, input.slug.as_str()).await?;
    let versions = tx.piece_versions(actor.tenant, piece.id).await?;
    let digest = digest(&input.files);
    let parsed: Vec<(Version, &PieceVersionRow)> = versions
        .iter()
        .filter_map(|v| Version::parse(&v.version).ok().map(|p| (p, v)))
        .collect();
    let max = parsed.iter().map(|(p, _)| p).max();

    let version = match &input.version {
        Some(v) => {
            if let Some((_, existing)) = parsed.iter().find(|(p, _)| p == v) {
                if existing.digest == digest {
                    return Ok(Registered {
                        piece_id: piece.id,
                        version_id: existing.id,
                        version: existing.version.clone(),
                        created: false,
                    });
                }
                let suggestion = next_patch(max);
                return Err(RegistryError::VersionConflict {
                    message: format!(
                        "{kind} `{}` already has version {v} with other content: publish under a new version, e.g. {suggestion}",
                        input.slug
                    ),
                    suggestion: Some(suggestion.to_string()),
                });
            }
            v.clone()
        }
        None => {
            let same = parsed
                .iter()
                .filter(|(_, row)| row.archived_at.is_none() && row.digest == digest)
                .max_by(|a, b| a.0.cmp(&b.0));
            if let Some((_, existing)) = same {
                return Ok(Registered {
                    piece_id: piece.id,
                    version_id: existing.id,
                    version: existing.version.clone(),
                    created: false,
                });
            }
            next_patch(max)
        }
    };
    let version_text = version.to_string();
    let metadata = input.metadata.to_string();
    let created_by = actor.audit_name();
    let version_id = tx
        .insert_piece_version(
            actor.tenant,
            piece.id,
            &NewPieceVersion {
                version: &version_text,
                description: input.description.as_deref(),
                metadata: &metadata,
                digest: &digest,
                created_by: &created_by,
            },
            &input.files,
        )
        .await?;
    audit::record(
        tx,
        actor,
        &format!("{kind}.publish"),
        &format!("{kind}:{}@{version_text}", input.slug),
        with_warnings(serde_json::json!({ "digest": digest, "files": input.files.len() }), &input.warnings),
    )
    .await?;
    Ok(Registered {
        piece_id: piece.id,
        version_id,
        version: version_text,
        created: true,
    })
}

fn version_view(row: &PieceVersionRow, files: Vec<FileRow>) -> PieceVersion {
    PieceVersion {
        kind: row.kind,
        slug: row.slug.clone(),
        version: row.version.clone(),
        description: row.description.clone(),
        metadata: serde_json::from_str(&row.metadata).unwrap_or_else(|_| serde_json::json!({})),
        digest: row.digest.clone(),
        archived: row.archived_at.is_some(),
        created_at: format_ms(row.created_at),
        created_by: row.created_by.clone(),
        files: files.iter().map(file_info).collect(),
    }
}

/// The highest non-archived version.
pub(crate) fn latest_of(versions: &[PieceVersionRow]) -> Option<&PieceVersionRow> {
    versions
        .iter()
        .filter(|v| v.archived_at.is_none())
        .filter_map(|v| Version::parse(&v.version).ok().map(|p| (p, v)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v)
}

fn sort_newest_first(versions: &mut [PieceVersionRow]) {
    versions.sort_by(|a, b| {
        let pa = Version::parse(&a.version).ok();
        let pb = Version::parse(&b.version).ok();
        pb.cmp(&pa).then(b.id.cmp(&a.id))
    });
}

/// What a piece's page shows.
#[derive(Debug, Clone)]
pub struct PiecePage {
    /// Newest first.
    pub versions: Vec<PieceVersion>,
    /// The version whose text is shown.
    pub shown: Option<String>,
    /// The main markdown file of that version.
    pub text: Option<String>,
    /// (plugin slug, pinned version), from each plugin's newest version.
    pub used_by: Vec<(String, String)>,
}

impl Registry {
    /// Publishes a skill from a tar.gz of its folder's contents (`SKILL.md` at the top).
    pub async fn publish_skill(
        &self,
        actor: &Actor,
        slug: Option<&str>,
        version: Option<&str>,
        tar_gz: bytes::Bytes,
    ) -> Result<PublishPieceResult> {
        actor.require(Role::Admin)?;
        let version = parse_optional_version(version)?;
        let files = self.unpack_upload(tar_gz).await?;
        let skill_md = files
            .iter()
            .find(|f| f.path == "SKILL.md")
            .ok_or_else(|| RegistryError::invalid_piece("the upload has no SKILL.md at its top: a skill is a folder with SKILL.md"))?;
        if skill_md.mode == FileMode::Symlink {
            return Err(RegistryError::invalid_piece("SKILL.md must be a regular file, not a symlink"));
        }
        let fm = frontmatter::check_skill(&skill_md.data).map_err(|e| {
            RegistryError::invalid_piece(format!("SKILL.md: {e}"))
                .with_field("SKILL.md")
                .with_source(e)
        })?;
        let slug = match slug {
            Some(s) => parse_slug("skill name", s)?,
            None => parse_slug(
                "the frontmatter `name` (pass a slug to name the skill by its folder)",
                fm.name.as_deref().unwrap_or(""),
            )?,
        };
        self.publish_piece(actor, PieceKind::Skill, slug, version, Some(&fm), files).await
    }

    /// Publishes an agent or a command from its markdown file.
    pub async fn publish_markdown(
        &self,
        actor: &Actor,
        kind: PieceKind,
        slug: Option<&str>,
        version: Option<&str>,
        body: bytes::Bytes,
    ) -> Result<PublishPieceResult> {
        actor.require(Role::Admin)?;
        let version = parse_optional_version(version)?;
        if body.len() as u64 > self.config().max_upload_bytes {
            return Err(RegistryError::TooLarge(format!(
                "the file is larger than the {} byte upload limit",
                self.config().max_upload_bytes
            )));
        }
        let fm = match kind {
            PieceKind::Agent => {
                Some(frontmatter::check_agent(&body).map_err(|e| RegistryError::invalid_piece(format!("agent: {e}")).with_source(e))?)
            }
            PieceKind::Command => {
                Some(frontmatter::check_command(&body).map_err(|e| RegistryError::invalid_piece(format!("command: {e}")).with_source(e))?)
            }
            PieceKind::Skill => return Err(RegistryError::bad_request("a skill is a folder: upload it as a tar.gz")),
        };
        let slug = match (slug, fm.as_ref().and_then(|f| f.name.as_deref())) {
            (Some(s), _) => parse_slug(&format!("{kind} name"), s)?,
            (None, Some(name)) => parse_slug(&format!("{kind} name from the frontmatter"), name)?,
            (None, None) => {
                return Err(RegistryError::bad_request(format!(
                    "name the {kind}: pass `slug` (e.g. the file name without .md)"
                )));
            }
        };
        let file = UploadFile {
            path: format!("{slug}.md"),
            mode: FileMode::Regular,
            data: body.to_vec(),
        };
        self.publish_piece(actor, kind, slug, version, fm.as_ref(), vec![file]).await
    }

    async fn publish_piece(
        &self,
        actor: &Actor,
        kind: PieceKind,
        slug: Slug,
        version: Option<Version>,
        fm: Option<&Frontmatter>,
        files: Vec<UploadFile>,
    ) -> Result<PublishPieceResult> {
        let (rows, bodies) = self.prepare_files(files).await?;
        let input = PieceInput {
            kind,
            slug: slug.clone(),
            version,
            description: fm.and_then(|f| f.description.clone()),
            metadata: frontmatter_json(fm),
            files: rows,
            warnings: fm.map(|f| f.warnings.clone()).unwrap_or_default(),
        };
        let bodies: Bodies = bodies;
        // The retried closure borrows; it must not move these.
        let (input, bodies) = (&input, &bodies);
        let registered = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            let registered = register_in_tx(&mut tx, actor, input).await?;
            if registered.created {
                self.check_quotas(&mut tx, actor.tenant, false, false, &bodies.sizes()).await?;
                let _blobs_written = self.write_bodies(bodies).await?;
                tx.commit().await?;
            }
            Ok(registered)
        })
        .await?;
        let version = self.piece_version(actor, kind, slug.as_str(), &registered.version).await?;
        Ok(PublishPieceResult {
            created: registered.created,
            version,
            warnings: input.warnings.clone(),
        })
    }

    pub async fn list_pieces(&self, actor: &Actor, kind: PieceKind, cursor: Option<&str>, limit: i64) -> Result<Page<Piece>> {
        actor.require(Role::Member)?;
        let pieces = self.store().list_pieces(actor.tenant, kind, cursor, limit + 1).await?;
        let more = pieces.len() as i64 > limit;
        let pieces = &pieces[..pieces.len().min(limit as usize)];
        let ids: Vec<i64> = pieces.iter().map(|p| p.id).collect();
        let versions = self.store().versions_of_pieces(actor.tenant, &ids).await?;
        let items = pieces
            .iter()
            .map(|p| {
                let own: Vec<PieceVersionRow> = versions.iter().filter(|v| v.piece_id == p.id).cloned().collect();
                Piece {
                    kind,
                    slug: p.slug.clone(),
                    latest: latest_of(&own).map(|v| version_view(v, Vec::new())),
                    version_count: own.len() as u64,
                    created_at: format_ms(p.created_at),
                }
            })
            .collect();
        let next_cursor = if more { pieces.last().map(|p| p.slug.clone()) } else { None };
        Ok(Page { items, next_cursor })
    }

    async fn load_piece(
        &self,
        tenant: TenantId,
        kind: PieceKind,
        slug: &str,
    ) -> Result<(skill_pool_store::pieces::PieceRow, Vec<PieceVersionRow>)> {
        let piece = self
            .store()
            .piece(tenant, kind, slug)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("{kind} `{slug}` not found")))?;
        let versions = self.store().piece_versions(tenant, piece.id).await?;
        Ok((piece, versions))
    }

    pub async fn show_piece(&self, actor: &Actor, kind: PieceKind, slug: &str) -> Result<Piece> {
        actor.require(Role::Member)?;
        let (piece, versions) = self.load_piece(actor.tenant, kind, slug).await?;
        let latest = match latest_of(&versions) {
            Some(v) => Some(version_view(v, self.store().piece_files(actor.tenant, v.id).await?)),
            None => None,
        };
        Ok(Piece {
            kind,
            slug: piece.slug,
            latest,
            version_count: versions.len() as u64,
            created_at: format_ms(piece.created_at),
        })
    }

    /// All versions, newest first, archived included.
    pub async fn piece_versions(&self, actor: &Actor, kind: PieceKind, slug: &str) -> Result<Vec<PieceVersion>> {
        actor.require(Role::Member)?;
        let (_, mut versions) = self.load_piece(actor.tenant, kind, slug).await?;
        sort_newest_first(&mut versions);
        Ok(versions.iter().map(|v| version_view(v, Vec::new())).collect())
    }

    async fn find_version(&self, tenant: TenantId, kind: PieceKind, slug: &str, version: &str) -> Result<PieceVersionRow> {
        let (_, versions) = self.load_piece(tenant, kind, slug).await?;
        versions
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| RegistryError::NotFound(format!("{kind} `{slug}` has no version {version}")))
    }

    pub async fn piece_version(&self, actor: &Actor, kind: PieceKind, slug: &str, version: &str) -> Result<PieceVersion> {
        actor.require(Role::Member)?;
        let row = self.find_version(actor.tenant, kind, slug, version).await?;
        let files = self.store().piece_files(actor.tenant, row.id).await?;
        Ok(version_view(&row, files))
    }

    /// Archives a version: no longer "latest", still fetchable, still shipped by plugins that pin it.
    pub async fn archive_piece_version(&self, actor: &Actor, kind: PieceKind, slug: &str, version: &str) -> Result<PieceVersion> {
        self.set_archived(actor, kind, slug, version, true).await
    }

    /// Un-archives a version: it can be "latest" again.
    pub async fn unarchive_piece_version(&self, actor: &Actor, kind: PieceKind, slug: &str, version: &str) -> Result<PieceVersion> {
        self.set_archived(actor, kind, slug, version, false).await
    }

    async fn set_archived(&self, actor: &Actor, kind: PieceKind, slug: &str, version: &str, archived: bool) -> Result<PieceVersion> {
        actor.require(Role::Admin)?;
        let row = self.find_version(actor.tenant, kind, slug, version).await?;
        let action = format!("{kind}.{}", if archived { "archive" } else { "unarchive" });
        let action = &action;
        with_retry(|| async move {
            let mut tx = self.store().write().await?;
            if archived {
                tx.archive_piece_version(actor.tenant, row.id).await?;
            } else {
                tx.unarchive_piece_version(actor.tenant, row.id).await?;
            }
            audit::record(&mut tx, actor, action, &format!("{kind}:{slug}@{version}"), serde_json::json!({})).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.piece_version(actor, kind, slug, version).await
    }

    /// A piece's page: its versions (newest first), the text of one version's main file
    /// (`SKILL.md` or the markdown file; the latest unless `version` names one), and which
    /// plugins serve which version of it.
    pub async fn piece_page(&self, actor: &Actor, kind: PieceKind, slug: &str, version: Option<&str>) -> Result<PiecePage> {
        actor.require(Role::Member)?;
        let piece = self
            .store()
            .piece(actor.tenant, kind, slug)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("{kind} `{slug}` not found")))?;
        let mut versions = self.piece_versions(actor, kind, slug).await?;
        versions.reverse();
        let rows = self.store().piece_versions(actor.tenant, piece.id).await?;
        let shown = match version {
            Some(v) => rows.iter().find(|r| r.version == v),
            None => latest_of(&rows).or(rows.last()),
        };
        let mut text = None;
        if let Some(row) = shown {
            let files = self.store().piece_files(actor.tenant, row.id).await?;
            let main = files
                .iter()
                .find(|f| f.path == "SKILL.md")
                .or_else(|| files.iter().find(|f| f.path.ends_with(".md")));
            if let Some(f) = main {
                let blobs = self.store().blobs().clone();
                let sha = f.sha256.clone();
                let body = tokio::task::spawn_blocking(move || blobs.get(&sha)).await?;
                text = body.ok().map(|b| String::from_utf8_lossy(&b).into_owned());
            }
        }
        let used_by = self.store().piece_used_by(actor.tenant, piece.id).await?;
        Ok(PiecePage {
            versions,
            shown: shown.map(|r| r.version.clone()),
            text,
            used_by,
        })
    }

    /// A tar.gz of a version's files (the latest when `version` is `None`) and a file name for it.
    pub async fn download_piece(&self, actor: &Actor, kind: PieceKind, slug: &str, version: Option<&str>) -> Result<(String, Vec<u8>)> {
        actor.require(Role::Member)?;
        let row = match version {
            Some(v) => self.find_version(actor.tenant, kind, slug, v).await?,
            None => {
                let (_, versions) = self.load_piece(actor.tenant, kind, slug).await?;
                latest_of(&versions)
                    .cloned()
                    .ok_or_else(|| RegistryError::NotFound(format!("{kind} `{slug}` has no version that is not archived")))?
            }
        };
        let files = self.store().piece_files(actor.tenant, row.id).await?;
        let files = load_files(self, files).await?;
        let bytes = tokio::task::spawn_blocking(move || pack_tar_gz(&files))
            .await?
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        Ok((format!("{kind}-{slug}-{}.tar.gz", row.version), bytes))
    }
}
