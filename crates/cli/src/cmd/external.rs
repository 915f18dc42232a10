//! `skill-pool plugin add-external` and `skill-pool plugin import-catalogue`: plugins the
//! marketplace lists while Claude Code installs them from their upstream.

use std::path::Path;
use std::time::Duration;

use clap::{Args, ValueEnum};
use skill_pool_core::api::{CreatePlugin, ImportCatalogue, ImportOutcome, ImportReport, PluginBlobs, PluginMetadata, SourcingMode};

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
