//! `skill-pool plugin add-external` and `skill-pool plugin import-catalogue`: plugins the
//! marketplace lists while Claude Code installs them from their upstream.

use std::path::Path;
use std::time::Duration;

use clap::{Args, ValueEnum};
use skill_pool_core::api::{
    CreatePlugin, ImportCatalogue, ImportMirror, ImportOutcome, ImportReport, Job, JobAccepted, PluginBlobs, PluginMetadata, SourcingMode,
};

use super::{JsonFlag, client};
use crate::Cli;
use crate::failure::{Failure, Outcome};
use crate::output::print_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceType {
    Github,
    Url,
    GitSubdir,
}

#[derive(Debug, Args)]
pub struct AddExternal {
    /// The plugin's name in the marketplace (`/plugin install <name>@<tenant>`).
    #[arg(long)]
    pub name: String,
    /// Where Claude Code clones it from.
    #[arg(long, value_enum)]
    pub source_type: SourceType,
    /// `owner/repo` (github; also accepted by git-subdir).
    #[arg(long, required_if_eq("source_type", "github"), conflicts_with = "url")]
    pub repo: Option<String>,
    /// A git URL: https://…, http://…, ssh://… or git@host:path (url, git-subdir).
    #[arg(long)]
    pub url: Option<String>,
    /// The plugin's folder inside the repository (git-subdir).
    #[arg(long, required_if_eq("source_type", "git-subdir"))]
    pub path: Option<String>,
    /// A branch or tag.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// A full commit id (40 hex) to pin.
    #[arg(long)]
    pub sha: Option<String>,
    /// The description shown in the marketplace.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ImportCatalogueArgs {
    /// The upstream marketplace.json: an http(s) URL or a file.
    pub catalogue: String,
    /// The upstream repository: relative sources (`./plugins/x`) become git-subdir sources of it.
    #[arg(long)]
    pub repo_url: Option<String>,
    /// With --repo-url: the branch or tag to read relative sources at.
    #[arg(long = "ref", value_name = "REF", requires = "repo_url")]
    pub git_ref: Option<String>,
    /// With --repo-url: the commit (40 hex) to pin relative sources to.
    #[arg(long, requires = "repo_url")]
    pub sha: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn add_external(cli: &Cli, a: &AddExternal) -> Outcome {
    let mut source = serde_json::Map::new();
    let kind = match a.source_type {
        SourceType::Github => "github",
        SourceType::Url => "url",
        SourceType::GitSubdir => "git-subdir",
    };
    source.insert("source".into(), kind.into());
    match a.source_type {
        SourceType::Github => {
            source.insert("repo".into(), a.repo.clone().unwrap_or_default().into());
        }
        SourceType::Url => {
            let url = a
                .url
                .clone()
                .ok_or_else(|| crate::failure::usage("--source-type url needs --url <git-url>"))?;
            source.insert("url".into(), url.into());
        }
        SourceType::GitSubdir => {
            let url = a
                .url
                .clone()
                .or_else(|| a.repo.clone())
                .ok_or_else(|| crate::failure::usage("--source-type git-subdir needs --url <git-url> or --repo <owner/repo>"))?;
            source.insert("url".into(), url.into());
            source.insert("path".into(), a.path.clone().unwrap_or_default().into());
        }
    }
    if let Some(r) = &a.git_ref {
        source.insert("ref".into(), r.clone().into());
    }
    if let Some(s) = &a.sha {
        source.insert("sha".into(), s.clone().into());
    }
    let req = CreatePlugin {
        slug: a.name.clone(),
        mode: Some(SourcingMode::External),
        version: None,
        metadata: PluginMetadata {
            description: a.description.clone(),
            ..Default::default()
        },
        contents: Vec::new(),
        blobs: PluginBlobs::default(),
        dependencies: Vec::new(),
        source: Some(serde_json::Value::Object(source)),
        entry: Default::default(),
    };
    let result = client(cli)?.create_plugin(&req).await?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    if a.json.json {
        return print_json(&result);
    }
    let source = result.plugin.external_source.as_ref().map(|s| s.to_string()).unwrap_or_default();
    println!("listed external plugin {} ({source})", result.plugin.slug);
    Ok(())
}

/// Reads the upstream catalogue from a URL or a file.
async fn read_catalogue(arg: &str) -> Result<serde_json::Value, Failure> {
    let bytes = if arg.starts_with("http://") || arg.starts_with("https://") {
        eprintln!("fetching {arg}");
        skill_pool_client::fetch_document(arg).await?
    } else {
        std::fs::read(Path::new(arg)).map_err(|e| Failure::failed(format!("{arg}: {e}")))?
    };
    serde_json::from_slice(&bytes).map_err(|e| Failure::failed(format!("{arg} is not a marketplace.json: {e}")))
}

pub async fn import_catalogue(cli: &Cli, a: &ImportCatalogueArgs) -> Outcome {
    let catalogue = read_catalogue(&a.catalogue).await?;
    let count = catalogue.get("plugins").and_then(|p| p.as_array()).map_or(0, Vec::len);
    let req = ImportCatalogue {
        catalogue,
        repo_url: a.repo_url.clone(),
        git_ref: a.git_ref.clone(),
        sha: a.sha.clone(),
    };
    let client = client(cli)?;
    // One request, however large the catalogue: a spinner while the server works.
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message(format!("importing {count} entries"));
    let result = client.import_catalogue(&req).await;
    spinner.finish_and_clear();
    let report = result?;
    eprintln!("imported {count} entries of {}", a.catalogue);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if a.json.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

fn print_report(r: &ImportReport) {
    let width = r.entries.iter().map(|e| e.name.len()).max().unwrap_or(4).clamp(4, 48);
    println!("{:<width$}  {:<9}  reason", "name", "outcome");
    for e in &r.entries {
        let name = if e.name.is_empty() { "(no name)" } else { e.name.as_str() };
        println!("{:<width$}  {:<9}  {}", name, e.outcome.as_str(), e.reason.as_deref().unwrap_or(""));
    }
    let count = |o: ImportOutcome| r.entries.iter().filter(|e| e.outcome == o).count();
    eprintln!(
        "{} imported, {} updated, {} unchanged, {} skipped; {} renames{}",
        count(ImportOutcome::Imported),
        count(ImportOutcome::Updated),
        count(ImportOutcome::Unchanged),
        count(ImportOutcome::Skipped),
        r.renames,
        if r.changed { "" } else { " (nothing changed)" }
    );
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The upstream repository: https://… or http://….
    pub url: String,
    /// The plugin's folder in the repository (default: its root).
    #[arg(long)]
    pub path: Option<String>,
    /// A branch or tag (default: the upstream's default branch).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// How often to pull: 24h (default), 30m, 90s…
    #[arg(long, value_name = "INTERVAL")]
    pub refresh_interval: Option<String>,
    /// The plugin's name here (default: the folder or repository name).
    #[arg(long)]
    pub name: Option<String>,
    /// Wait for the first pull to end, showing its progress.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

pub async fn import_mirror(cli: &Cli, a: &ImportArgs) -> Outcome {
    let client = client(cli)?;
    let accepted = client
        .import_mirror(&ImportMirror {
            url: a.url.clone(),
            path: a.path.clone(),
            git_ref: a.git_ref.clone(),
            refresh_interval: a.refresh_interval.clone(),
            slug: a.name.clone(),
        })
        .await?;
    eprintln!("mirroring {} as `{}` (job {})", a.url, accepted.plugin, accepted.job.id);
    finish(&client, accepted, a.wait, a.json.json).await
}

pub async fn refresh_mirror(cli: &Cli, slug: &str, wait: bool, json: bool) -> Outcome {
    let client = client(cli)?;
    let accepted = client.refresh_mirror(slug).await?;
    eprintln!("pulling `{slug}` (job {})", accepted.job.id);
    finish(&client, accepted, wait, json).await
}

pub async fn accept_mirror(cli: &Cli, slug: &str, wait: bool, json: bool) -> Outcome {
    let client = client(cli)?;
    let accepted = client.accept_mirror(slug).await?;
    eprintln!("following the rewritten upstream of `{slug}` (job {})", accepted.job.id);
    finish(&client, accepted, wait, json).await
}

/// Prints the job, or with `wait` follows it until it ends (at most 30 minutes).
async fn finish(client: &skill_pool_client::Client, accepted: JobAccepted, wait: bool, json: bool) -> Outcome {
    if !wait {
        if json {
            return print_json(&accepted);
        }
        println!(
            "job {} {}: follow it with `skill-pool plugin show {}`",
            accepted.job.id, accepted.job.state, accepted.plugin
        );
        return Ok(());
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut job: Job = accepted.job.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(1800);
    while job.state == "queued" || job.state == "running" {
        spinner.set_message(format!("job {}: {}", job.id, job.state));
        if std::time::Instant::now() > deadline {
            spinner.finish_and_clear();
            return Err(Failure::failed(format!("job {} has not ended after 30 minutes", job.id)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        job = client.job(job.id).await?;
    }
    spinner.finish_and_clear();
    let plugin = client.show_plugin(&accepted.plugin).await?;
    if json {
        return print_json(&serde_json::json!({"job": job, "plugin": plugin}));
    }
    match job.state.as_str() {
        "done" => {
            let version = plugin
                .current
                .as_ref()
                .map(|v| v.effective_version.clone())
                .unwrap_or_else(|| "-".into());
            println!("mirrored plugin {} {version}", plugin.slug);
            Ok(())
        }
        _ => Err(Failure::failed(format!(
            "the pull failed: {}{}",
            job.error.as_deref().unwrap_or("no reason recorded"),
            if plugin.current.is_some() {
                " (the last good copy keeps serving)"
            } else {
                ""
            }
        ))),
    }
}
