//! `skill-pool managed-settings`: the fragment of Claude Code's `managed-settings.json` that an
//! administrator deploys with their MDM (the tenant's marketplace, the allow-list, the required
//! plugins), printed or merged into an existing file without touching its other keys.

use std::path::PathBuf;

use clap::Args;
use skill_pool_cli::ensure::settings::Settings;

use super::client;
use crate::Cli;
use crate::failure::{Failure, Outcome};

#[derive(Debug, Args)]
pub struct ManagedSettingsArgs {
    /// Another marketplace the organisation allows (repeat): owner/repo, a git or catalogue URL,
    /// or a JSON source object such as '{"source": "hostPattern", "hostPattern": "^git\\.example\\.com$"}'.
    #[arg(long, value_name = "MARKETPLACE")]
    allow: Vec<String>,
    /// Merge into this managed-settings.json (created if missing) instead of printing; its other
    /// keys, comments and layout are kept.
    #[arg(long, value_name = "FILE")]
    merge_into: Option<PathBuf>,
    /// With --merge-into: print the merged file, write nothing.
    #[arg(long, requires = "merge_into")]
    dry_run: bool,
}

pub async fn run(cli: &Cli, args: &ManagedSettingsArgs) -> Outcome {
    let fragment = client(cli)?.managed_settings(&args.allow).await?;
    let Some(path) = &args.merge_into else {
        println!("{}", serde_json::to_string_pretty(&fragment).unwrap_or_default());
        return Ok(());
    };
    let settings = Settings::load(path).map_err(|e| Failure::failed(e.to_string()))?;
    let changes = settings.merge_managed(&fragment).map_err(|e| Failure::failed(e.to_string()))?;
    if args.dry_run {
        print!("{}", settings.text());
        return Ok(());
    }
    if changes.is_empty() {
        println!("{}: already up to date", path.display());
        return Ok(());
    }
    settings
        .save()
        .map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))?;
    for c in &changes {
        println!("{c}");
    }
    println!("wrote {}", path.display());
    Ok(())
}
