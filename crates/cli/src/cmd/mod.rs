//! The subcommand families, one module each: its clap types and its handler. Also what they
//! share: the `--json` flag, the connection to the server (flags, environment, saved login) and
//! a folder's name as the default slug.

pub mod audit;
pub mod auth;
pub mod ensure;
pub mod external;
pub mod installs;
pub mod login;
pub mod managed;
pub mod piece;
pub mod plugin;
pub mod setup;
pub mod tenant;
pub mod token;

use std::path::Path;

use clap::Args;
use skill_pool_cli::config;
use skill_pool_client::Client;

use crate::Cli;
use crate::failure::{Failure, usage};

#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print the server's JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Flags and environment first, then the saved login.
fn connection(cli: &Cli) -> Result<(String, Option<String>), Failure> {
    let saved = config::load_effective()?;
    let url = cli
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .or(saved.url)
        .ok_or_else(|| usage("no server URL: run `skill-pool login --url <tenant URL> --token <token>` or set SKILL_POOL_URL"))?;
    let token = cli.token.clone().filter(|t| !t.is_empty()).or(saved.token);
    Ok((url, token))
}

/// A client for the server and token in effect; a usage error without either.
fn client(cli: &Cli) -> Result<Client, Failure> {
    let (url, token) = connection(cli)?;
    if token.is_none() {
        return Err(usage("no API token: run `skill-pool login` or set SKILL_POOL_TOKEN"));
    }
    Client::new(&url, token).map_err(|e| usage(e.to_string()))
}

/// The last component of `dir`'s full path: the default slug of a skill or plugin folder.
fn folder_name(dir: &Path) -> Result<String, Failure> {
    let full = std::fs::canonicalize(dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    full.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| usage(format!("{} has no folder name: pass --slug", dir.display())))
}
