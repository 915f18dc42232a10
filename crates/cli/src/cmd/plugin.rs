//! `skill-pool plugin …`: publish a plugin folder (or check it with `--dry-run`), list, show and
//! delete plugins, purge a version, and print the marketplace URL for Claude Code.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use skill_pool_cli::pack;
use skill_pool_client::PublishOptions;
use skill_pool_core::api::{Plugin, PublishPluginResult};
use skill_pool_core::archive::FileMode;
use skill_pool_core::layout;

use super::{JsonFlag, client, folder_name};
use crate::Cli;
use crate::failure::{Failure, Outcome};
use crate::output::{human_size, print_json};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Publish a plugin folder in Claude Code layout (.claude-plugin/plugin.json, skills/, agents/, commands/, hooks…).
    #[command(
        after_help = "Example:\n  skill-pool plugin publish ./platform-tools --dry-run && skill-pool plugin publish ./platform-tools"
    )]
    Publish {
        /// The plugin folder.
        dir: PathBuf,
        /// Plugin name (default: plugin.json's `name`, else the folder name).
        #[arg(long)]
        slug: Option<String>,
        /// Semver version when plugin.json has none (it goes into the catalogue entry).
        #[arg(long)]
        version: Option<String>,
        /// Show what would be uploaded and check the layout, without uploading.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the tenant's plugins.
    #[command(after_help = "Example:\n  skill-pool plugin list --json")]
    List(JsonFlag),
    /// Show one plugin: versions, contents, files, git URL, install counts.
    #[command(after_help = "Example:\n  skill-pool plugin show platform-tools")]
    Show {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a plugin from the marketplace.
    #[command(after_help = "Example:\n  skill-pool plugin delete old-tools")]
    Delete { slug: String },
    /// Purge one version for good (it leaked a secret): no ref serves it any more, the later versions get new commit ids,
    /// and the files nothing else references are deleted. The plugin's only version cannot be purged: delete the plugin.
    #[command(
        after_help = "Examples:\n  skill-pool plugin purge platform-tools 1.2.0 --yes\n  skill-pool plugin purge platform-tools 3f2a9c1d0b7e --yes   # by commit id\n\nClients that installed the purged version keep their copy: rotate the secret, then publish the fix as a new version.\nSee docs/purge.md."
    )]
    Purge {
        slug: String,
        /// The version's semver, or its commit id (7 hex at least).
        version: String,
        /// Confirm: a purge cannot be undone.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List a plugin that Claude Code installs from its upstream (github, url or git-subdir source).
    #[command(after_help = "Example:\n  skill-pool plugin add-external --name gh-tool --source-type github --repo acme/gh-tool")]
    AddExternal(super::external::AddExternal),
    /// List every entry of an upstream marketplace.json as external plugins (idempotent; prints a report).
    #[command(
        after_help = "Example:\n  skill-pool plugin import-catalogue https://example.com/.claude-plugin/marketplace.json --repo-url https://github.com/example/plugins.git"
    )]
    ImportCatalogue(super::external::ImportCatalogueArgs),
    /// Mirror a plugin from an upstream git repository: skill-pool pulls it on a schedule and serves it.
    #[command(after_help = "Example:\n  skill-pool plugin import https://github.com/example/tool.git --refresh-interval 6h --wait")]
    Import(super::external::ImportArgs),
    /// Follow a held mirror whose upstream history was rewritten (a force-push), and pull it now.
    #[command(after_help = "Example:\n  skill-pool plugin accept tool --wait")]
    Accept {
        slug: String,
        /// Wait for the pull to end, showing its progress.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Pull a mirrored plugin now.
    #[command(after_help = "Example:\n  skill-pool plugin refresh tool --wait")]
    Refresh {
        slug: String,
        /// Wait for the pull to end, showing its progress.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print the URL to add in Claude Code and the commands to run there.
    #[command(after_help = "Example:\n  skill-pool plugin marketplace-url")]
    MarketplaceUrl(JsonFlag),
    /// Set how the organisation wants a plugin installed: required, auto-install, available (the default) or hidden (not in the catalogue).
    #[command(
        after_help = "Examples:\n  skill-pool plugin policy platform-tools required\n  skill-pool plugin policy experimental hidden     kept, but not listed while under review"
    )]
    Policy {
        slug: String,
        #[arg(value_parser = ["required", "auto-install", "available", "hidden"])]
        policy: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Pin the version the catalogue serves (roll back, or hold a new one back), or follow the newest again.
    #[command(
        after_help = "Examples:\n  skill-pool plugin serve platform-tools 1.4.2     roll back: clients get 1.4.2 at their next `claude plugin update`\n  skill-pool plugin serve platform-tools --latest  serve the newest again"
    )]
    Serve {
        slug: String,
        /// The version to serve (as Claude Code sees it: `1.4.2`, or the 12-hex commit of a version published without one).
        #[arg(required_unless_present = "latest", conflicts_with = "latest")]
        version: Option<String>,
        /// Serve the newest version again, and every later one.
        #[arg(long)]
        latest: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Runs one `skill-pool plugin` subcommand.
pub async fn run(cli: &Cli, command: &PluginCommand) -> Outcome {
    match command {
        PluginCommand::Publish {
            dir,
            slug,
            version,
            dry_run,
            json,
        } => publish_plugin(cli, dir, slug.as_deref(), version.as_deref(), *dry_run, json.json).await,
        PluginCommand::AddExternal(a) => super::external::add_external(cli, a).await,
        PluginCommand::ImportCatalogue(a) => super::external::import_catalogue(cli, a).await,
        PluginCommand::Import(a) => super::external::import_mirror(cli, a).await,
        PluginCommand::Refresh { slug, wait, json } => super::external::refresh_mirror(cli, slug, *wait, json.json).await,
        PluginCommand::Accept { slug, wait, json } => super::external::accept_mirror(cli, slug, *wait, json.json).await,
        PluginCommand::List(f) => {
            let plugins = client(cli)?.list_plugins().await?;
            if f.json {
                return print_json(&plugins);
            }
            if plugins.is_empty() {
                eprintln!("no plugins yet: publish one with `skill-pool plugin publish <dir>`");
            }
            for p in &plugins {
                let version = p.current.as_ref().map(|v| v.effective_version.as_str()).unwrap_or("-");
                println!(
                    "{:<32} {:<9} {:<14} {}",
                    p.slug,
                    p.mode.as_str(),
                    version,
                    p.metadata.description.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        PluginCommand::Show { slug, json } => {
            let p = client(cli)?.show_plugin(slug).await?;
            if json.json {
                return print_json(&p);
            }
            print_plugin(&p);
            Ok(())
        }
        PluginCommand::Delete { slug } => {
            client(cli)?.delete_plugin(slug).await?;
            println!("deleted plugin {slug}");
            Ok(())
        }
        PluginCommand::Purge { slug, version, yes, json } => {
            if !yes {
                return Err(crate::failure::usage(format!(
                    "purging {slug} {version} cannot be undone: add --yes to confirm"
                )));
            }
            let r = client(cli)?.purge_plugin_version(slug, version).await?;
            if json.json {
                return print_json(&r);
            }
            println!(
                "purged {slug} {} (commit {}); {} file bodies deleted",
                r.purged.version.as_deref().unwrap_or("(unversioned)"),
                r.purged.commit,
                r.blobs_deleted
            );
            for v in &r.rewritten {
                println!(
                    "  rewritten: #{} {} {} -> {}",
                    v.seq,
                    v.version.as_deref().unwrap_or("-"),
                    v.old_commit,
                    v.new_commit
                );
            }
            if let Some(current) = &r.plugin.current {
                println!("now serving {} at {}", current.effective_version, current.commit);
            }
            Ok(())
        }
        PluginCommand::Policy { slug, policy, json } => {
            let policy = skill_pool_core::api::InstallPolicy::parse(policy).ok_or_else(|| crate::failure::usage("unknown policy"))?;
            let plugin = client(cli)?.set_install_policy(slug, policy).await?;
            if json.json {
                return print_json(&plugin);
            }
            println!("{slug}: {}", plugin.install_policy.as_str());
            Ok(())
        }
        PluginCommand::Serve {
            slug,
            version,
            latest,
            json,
        } => {
            let req = skill_pool_core::api::ServePlugin {
                version: version.clone(),
                latest: *latest,
            };
            let plugin = client(cli)?.serve_plugin(slug, &req).await?;
            if json.json {
                return print_json(&plugin);
            }
            let served = plugin
                .current
                .as_ref()
                .map_or("nothing".to_string(), |v| v.effective_version.clone());
            if plugin.pinned {
                println!("{slug}: serving {served} (pinned; newer versions are held back until `--latest`)");
            } else {
                println!("{slug}: serving the newest version, {served}");
            }
            eprintln!("clients get it at their next `claude plugin marketplace update` + `claude plugin update {slug}@<tenant>`");
            Ok(())
        }
        PluginCommand::MarketplaceUrl(f) => {
            let client = client(cli)?;
            let me = client.whoami().await?;
            let plugins = client.list_plugins().await?;
            if f.json {
                return print_json(&serde_json::json!({
                    "marketplace_url": me.marketplace_url,
                    "marketplace": me.tenant,
                    "plugins": plugins.iter().map(|p| format!("{}@{}", p.slug, me.tenant)).collect::<Vec<_>>(),
                }));
            }
            println!("{}", me.marketplace_url);
            let example = plugins.first().map(|p| p.slug.clone()).unwrap_or_else(|| "<plugin>".into());
            eprintln!();
            eprintln!("In Claude Code, run:");
            eprintln!("  /plugin marketplace add {}", me.marketplace_url);
            eprintln!("  /plugin install {example}@{}", me.tenant);
            eprintln!("or from a shell:");
            eprintln!("  claude plugin marketplace add {}", me.marketplace_url);
            eprintln!("  claude plugin install {example}@{}", me.tenant);
            if plugins.len() > 1 {
                eprintln!(
                    "plugins in this marketplace: {}",
                    plugins.iter().map(|p| p.slug.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        }
    }
}

async fn publish_plugin(cli: &Cli, dir: &Path, slug: Option<&str>, version: Option<&str>, dry_run: bool, json: bool) -> Outcome {
    let folder = pack::read_folder(dir)?;
    for s in &folder.skipped {
        eprintln!("skipping {s}");
    }
    // The server's own layout rules, checked here first for a quick, local answer.
    let layout = layout::classify(folder.files.clone()).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let name = match (slug, &layout.manifest) {
        (Some(s), _) => s.to_string(),
        (None, Some(m)) => m.name.clone(),
        (None, None) => folder_name(dir)?,
    };
    eprintln!(
        "{} {} ({} files, {}):",
        if dry_run { "would upload" } else { "uploading" },
        name,
        folder.files.len(),
        human_size(folder.total_bytes())
    );
    for f in &folder.files {
        let note = match f.mode {
            FileMode::Executable => "  executable".to_string(),
            FileMode::Symlink => format!("  -> {}", String::from_utf8_lossy(&f.data)),
            FileMode::Regular => String::new(),
        };
        eprintln!("  {:<48} {:>10}{note}", f.path, human_size(f.data.len() as u64));
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    eprintln!(
        "  registers {}, {}, {}",
        count(layout.skills.len(), "skill"),
        count(layout.agents.len(), "agent"),
        count(layout.commands.len(), "command")
    );
    for w in &layout.warnings {
        eprintln!("warning: {w}");
    }
    if dry_run {
        eprintln!("dry run: nothing was uploaded");
        return Ok(());
    }
    let body = folder.tar_gz()?;
    // Without plugin.json the server needs the name; with it, plugin.json names the plugin.
    let opts = PublishOptions {
        slug: if slug.is_some() || layout.manifest.is_none() {
            Some(name.clone())
        } else {
            None
        },
        version: version.map(str::to_string),
    };
    let (bar, progress) = crate::output::upload_bar(body.len() as u64, &name);
    let result = client(cli)?.with_upload_progress(progress).publish_plugin(body, &opts).await;
    bar.finish_and_clear();
    let result = result?;
    if json {
        return print_json(&result);
    }
    print_publish_result(&result);
    Ok(())
}

fn print_publish_result(r: &PublishPluginResult) {
    let p = &r.plugin;
    match &p.current {
        Some(v) => println!(
            "{} plugin {} {} (commit {})",
            if r.created { "published" } else { "unchanged:" },
            p.slug,
            v.effective_version,
            &v.commit[..12.min(v.commit.len())]
        ),
        None => println!("{} plugin {}", if r.created { "created" } else { "unchanged:" }, p.slug),
    }
    for piece in &r.pieces {
        let state = if piece.created { "new version" } else { "unchanged" };
        println!("  {} {} {} ({state})", piece.kind, piece.slug, piece.version);
        if !piece.plugins_on_older_versions.is_empty() {
            println!("    still on an older version in: {}", piece.plugins_on_older_versions.join(", "));
        }
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(url) = &p.git_url {
        eprintln!("git: {url}");
    }
}

fn print_plugin(p: &Plugin) {
    println!("plugin    {} ({})", p.slug, p.mode.as_str());
    if let Some(d) = &p.metadata.description {
        println!("about     {d}");
    }
    if let Some(v) = &p.current {
        println!("version   {} (commit {}, {})", v.effective_version, v.commit, v.created_at);
    }
    if let Some(url) = &p.git_url {
        println!("git       {url}");
    }
    if let Some(source) = &p.external_source {
        println!("source    {source}");
    }
    if let Some(m) = &p.mirror {
        let at = |s: &Option<String>| s.clone().unwrap_or_else(|| "never".into());
        println!(
            "upstream  {}{}{}",
            m.url,
            m.path.as_ref().map(|p| format!(" (folder {p})")).unwrap_or_default(),
            m.git_ref.as_ref().map(|r| format!(" at {r}")).unwrap_or_default()
        );
        println!(
            "pulled    {} (last success {}; every {} s; next {})",
            at(&m.last_pulled_at),
            at(&m.last_success_at),
            m.refresh_interval_secs,
            m.next_pull_at
        );
        match &m.last_error {
            Some(e) => println!(
                "warning   the last pull failed ({}): {} — the last good copy keeps serving",
                e.class, e.message
            ),
            None => println!("status    the last pull succeeded"),
        }
        if let Some(h) = &m.held {
            println!("held      {h}");
        }
    }
    if !p.contents.is_empty() {
        println!("contents:");
        for c in &p.contents {
            println!(
                "  {:<8} {:<28} {:<10} {}{}",
                c.kind,
                c.slug,
                c.version,
                c.path,
                if c.archived { " (archived)" } else { "" }
            );
        }
    }
    if !p.files.is_empty() {
        println!("files:");
        for f in &p.files {
            println!("  {:<48} {:>10}  {}", f.path, human_size(f.size), f.mode);
        }
    }
    if let Some(i) = &p.installs {
        println!("installs  {} in all, {} in the last 30 days", i.total, i.last_30_days);
        for v in &i.versions {
            println!("  {:<14} {}", v.version, v.total);
        }
    }
    if p.versions.len() > 1 {
        println!("history:");
        for v in &p.versions {
            println!("  {:<4} {:<14} {}  {}", v.seq, v.effective_version, v.created_at, v.created_by);
        }
    }
}
