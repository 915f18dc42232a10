//! `skill-pool skill|agent|command …`: publish, list, show, version, archive and download the
//! pieces of a plugin. The three kinds share one set of subcommands.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use skill_pool_cli::pack;
use skill_pool_client::PublishOptions;
use skill_pool_core::api::{PieceKind, PieceVersion};
use skill_pool_core::archive::{FileMode, UploadFile, UploadLimits, unpack_tar_gz};

use super::{JsonFlag, client, folder_name};
use crate::Cli;
use crate::failure::{Failure, Outcome};
use crate::output::{human_size, print_json};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Registry name (default: the folder name of a skill, the file name of an agent or command).
    #[arg(long)]
    slug: Option<String>,
    /// Semver version (default: the next patch version, or the existing one if the content is unchanged).
    #[arg(long)]
    version: Option<String>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum PieceCommand {
    /// Publish a new version (a skill folder, or an agent/command markdown file).
    #[command(
        after_help = "Example:\n  skill-pool skill publish ./code-review --version 1.2.0   (agents and commands: skill-pool agent publish reviewer.md)"
    )]
    Publish {
        /// The skill folder (holding SKILL.md) or the markdown file.
        path: PathBuf,
        #[command(flatten)]
        args: PublishArgs,
    },
    /// List them with their latest version.
    #[command(after_help = "Example:\n  skill-pool skill list --json")]
    List(JsonFlag),
    /// Show one, with its latest version's files.
    #[command(after_help = "Example:\n  skill-pool skill show code-review")]
    Show {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List every version, newest first, archived ones included.
    #[command(after_help = "Example:\n  skill-pool skill versions code-review")]
    Versions {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Archive a version: no longer "latest", still fetchable and still shipped by plugins that pin it.
    #[command(after_help = "Example:\n  skill-pool skill archive code-review 1.0.0")]
    Archive { slug: String, version: String },
    /// Download a version's files into a folder.
    #[command(after_help = "Example:\n  skill-pool skill download code-review --version 1.2.0 -o ./code-review")]
    Download {
        slug: String,
        /// Exact version (default: the latest).
        #[arg(long)]
        version: Option<String>,
        /// Folder to write into (default: ./<slug> for a skill, the current folder otherwise).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Runs one `skill-pool skill|agent|command` subcommand for pieces of `kind`.
pub async fn run(cli: &Cli, kind: PieceKind, command: &PieceCommand) -> Outcome {
    match command {
        PieceCommand::Publish { path, args } => {
            let (body, default_slug) = match kind {
                PieceKind::Skill => {
                    if !path.join("SKILL.md").is_file() {
                        return Err(Failure::failed(format!(
                            "{} has no SKILL.md: a skill is a folder with SKILL.md at its top",
                            path.display()
                        )));
                    }
                    let folder = pack::read_folder(path)?;
                    for s in &folder.skipped {
                        eprintln!("skipping {s}");
                    }
                    eprintln!(
                        "uploading {} ({} files, {})",
                        path.display(),
                        folder.files.len(),
                        human_size(folder.total_bytes())
                    );
                    (folder.tar_gz()?, folder_name(path)?)
                }
                _ => {
                    let body = std::fs::read(path).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                    (body, stem)
                }
            };
            let opts = PublishOptions {
                slug: Some(args.slug.clone().unwrap_or(default_slug)),
                version: args.version.clone(),
            };
            let (bar, progress) = crate::output::upload_bar(body.len() as u64, &format!("{kind} {}", opts.slug.as_deref().unwrap_or("")));
            let result = client(cli)?.with_upload_progress(progress).publish_piece(kind, body, &opts).await;
            bar.finish_and_clear();
            let result = result?;
            for w in &result.warnings {
                eprintln!("warning: {w}");
            }
            if args.json.json {
                return print_json(&result);
            }
            print_version_line(&result.version, result.created);
            Ok(())
        }
        PieceCommand::List(f) => {
            let items = client(cli)?.list_pieces(kind).await?;
            if f.json {
                return print_json(&items);
            }
            if items.is_empty() {
                eprintln!("no {} yet: publish one with `skill-pool {kind} publish`", kind.plural());
            }
            for p in &items {
                let (version, description) = match &p.latest {
                    Some(v) => (v.version.as_str(), v.description.as_deref().unwrap_or("")),
                    None => ("(all archived)", ""),
                };
                println!("{:<32} {:<12} {}", p.slug, version, description);
            }
            Ok(())
        }
        PieceCommand::Show { slug, json } => {
            let p = client(cli)?.show_piece(kind, slug).await?;
            if json.json {
                return print_json(&p);
            }
            println!("{} {}", kind, p.slug);
            println!("versions  {}", p.version_count);
            if let Some(v) = &p.latest {
                println!("latest    {} ({} by {})", v.version, v.created_at, v.created_by);
                if let Some(d) = &v.description {
                    println!("about     {d}");
                }
                println!("files:");
                for f in &v.files {
                    println!("  {:<40} {:>10}  {}", f.path, human_size(f.size), f.mode);
                }
            }
            Ok(())
        }
        PieceCommand::Versions { slug, json } => {
            let versions = client(cli)?.piece_versions(kind, slug).await?;
            if json.json {
                return print_json(&versions);
            }
            for v in &versions {
                println!(
                    "{:<12} {}  {:<14} {}",
                    v.version,
                    v.created_at,
                    v.created_by,
                    if v.archived { "archived" } else { "" }
                );
            }
            Ok(())
        }
        PieceCommand::Archive { slug, version } => {
            let v = client(cli)?.archive_piece(kind, slug, version).await?;
            println!(
                "archived {} {} {} (still fetchable by exact version; plugins that pin it still ship it)",
                v.kind, v.slug, v.version
            );
            Ok(())
        }
        PieceCommand::Download { slug, version, output } => {
            let client = client(cli)?;
            let version = match version {
                Some(v) => v.clone(),
                None => client
                    .show_piece(kind, slug)
                    .await?
                    .latest
                    .map(|v| v.version)
                    .ok_or_else(|| Failure::failed(format!("{kind} `{slug}` has only archived versions: pass --version")))?,
            };
            let bytes = client.download_piece(kind, slug, &version).await?;
            let dest = output.clone().unwrap_or_else(|| {
                if kind == PieceKind::Skill {
                    PathBuf::from(slug)
                } else {
                    PathBuf::from(".")
                }
            });
            let files = unpack_tar_gz(&bytes, &UploadLimits::from_upload_limit(1 << 30))
                .map_err(|e| anyhow::anyhow!("the download is not valid: {e}"))?;
            write_files(&dest, &files)?;
            println!("wrote {kind} {slug} {version} to {} ({} files)", dest.display(), files.len());
            Ok(())
        }
    }
}

fn print_version_line(v: &PieceVersion, created: bool) {
    let what = if created { "published" } else { "unchanged, already" };
    println!(
        "{what} {} {} {}{}",
        v.kind,
        v.slug,
        v.version,
        if v.archived { " (archived)" } else { "" }
    );
}

/// Writes downloaded files under `dest`, refusing to overwrite anything.
fn write_files(dest: &Path, files: &[UploadFile]) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let target = dest.join(&f.path);
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(Failure::failed(format!(
                "{} already exists: choose another --output",
                target.display()
            )));
        }
    }
    for f in files {
        let target = dest.join(&f.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
        }
        match f.mode {
            FileMode::Symlink => {
                let link = String::from_utf8_lossy(&f.data).into_owned();
                std::os::unix::fs::symlink(link, &target).map_err(|e| anyhow::anyhow!("writing {}: {e}", target.display()))?;
            }
            mode => {
                std::fs::write(&target, &f.data).map_err(|e| anyhow::anyhow!("writing {}: {e}", target.display()))?;
                let bits = if mode == FileMode::Executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(bits)).map_err(anyhow::Error::from)?;
            }
        }
    }
    Ok(())
}
