//! `skill-pool setup claude`: points the developer's Claude Code and git at the tenant of the
//! saved login, merging into their files without clobbering anything:
//!
//! - `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`): the tenant's marketplace
//!   in `extraKnownMarketplaces`; for a private tenant over https with
//!   `"headersHelper": "<this binary> auth header"` (Claude Code runs helpers for https catalogues
//!   only), over plain http with static `headers` (the token is then stored in the file: warned,
//!   and the file made readable by its owner only);
//! - git's global config, for a private tenant: `credential.<origin>.helper = <this binary> auth
//!   git-credential` (Claude Code installs plugins with git, which never sees the catalogue's
//!   headers).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use skill_pool_cli::auth::Origin;
use skill_pool_cli::ensure::claude::run as run_program;
use skill_pool_cli::ensure::settings::{Change, Settings};
use skill_pool_client::Client;
use skill_pool_core::{ErrorCode, Role};

use super::{client, connection};
use crate::Cli;
use crate::failure::{Failure, Outcome};

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Add the tenant's marketplace to Claude Code (and git's credential helper for a private tenant).
    #[command(
        after_help = "Examples:\n  skill-pool login --url https://pool.example.com/t/acme --token sp_...   # a reader token\n  \
        skill-pool setup claude\n  skill-pool setup claude --dry-run\n\n\
        Claude Code adds a marketplace declared in settings when a session starts; then\n  /plugin install <plugin>@<tenant>\n\n\
        Guide: docs/private-marketplaces.md"
    )]
    Claude(SetupClaudeArgs),
}

#[derive(Debug, Args)]
pub struct SetupClaudeArgs {
    /// Print what would be written, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not touch git's global configuration.
    #[arg(long)]
    no_git: bool,
}

pub async fn run(cli: &Cli, command: &SetupCommand) -> Outcome {
    match command {
        SetupCommand::Claude(args) => claude(cli, args).await,
    }
}

/// `~/.claude/settings.json`, or under `CLAUDE_CONFIG_DIR` when Claude Code is told to use another folder.
fn user_settings_path() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("settings.json"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Failure::failed("HOME is not set: cannot find ~/.claude/settings.json"))?;
    Ok(PathBuf::from(home).join(".claude").join("settings.json"))
}

/// How a helper command line names this binary: its absolute path, quoted for a shell if needed.
fn this_binary() -> Result<String, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::failed(format!("finding the skill-pool binary: {e}")))?;
    let exe = exe.to_string_lossy().to_string();
    if exe.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        Ok(exe)
    } else if exe.contains('\'') || !exe.is_ascii() {
        Err(Failure::failed(format!(
            "the skill-pool binary's path {exe} cannot be put in a helper command line: install it under a plainer path"
        )))
    } else {
        Ok(format!("'{exe}'"))
    }
}

async fn claude(cli: &Cli, args: &SetupClaudeArgs) -> Outcome {
    let (url, token) = connection(cli)?;
    let token = token.ok_or_else(|| Failure::failed("no API token: run `skill-pool login --url <tenant URL> --token <token>` first"))?;
    let who = client(cli)?.whoami().await?;
    if who.role != Role::Reader {
        eprintln!(
            "note: this is a token with the {} role; a developer's machine needs only a reader token \
             (an admin makes one with `skill-pool token create --role reader --name <who>`)",
            who.role
        );
    }
    // Private or not: the catalogue without the token answers 401 for a private tenant.
    let private = match Client::new(&url, None)
        .map_err(|e| Failure::failed(e.to_string()))?
        .catalogue()
        .await
    {
        Ok(_) => false,
        Err(e) if e.code() == Some(ErrorCode::Unauthorized) => true,
        Err(e) => return Err(e.into()),
    };
    let market_url = who.marketplace_url.clone();
    let https = market_url.starts_with("https://");
    let exe = this_binary()?;
    let source = match (private, https) {
        (false, _) => json!({ "source": "url", "url": market_url }),
        (true, true) => json!({ "source": "url", "url": market_url, "headersHelper": format!("{exe} auth header") }),
        (true, false) => json!({ "source": "url", "url": market_url, "headers": { "Authorization": format!("Bearer {token}") } }),
    };
    let path = user_settings_path()?;
    let settings = Settings::load(&path).map_err(|e| Failure::failed(e.to_string()))?;
    let change = settings
        .declare_marketplace_source(&who.tenant, &source)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let git_key = Origin::of(&market_url).map(|o| format!("credential.{}.helper", o.url()));
    let git_value = format!("{exe} auth git-credential");
    if args.dry_run {
        println!("{}: extraKnownMarketplaces.{} = {}", path.display(), who.tenant, source);
        if private && !args.no_git {
            println!("git config --global {} \"{git_value}\"", git_key.as_deref().unwrap_or("?"));
        }
        return Ok(());
    }
    if private && !https {
        eprintln!(
            "warning: {market_url} is plain http, and Claude Code runs a headersHelper only for https:// marketplaces: \
             the token is stored in {} itself (made readable by you only). Serve the tenant over https to keep it out of the file.",
            path.display()
        );
    }
    let wrote = if private && !https {
        settings.save_private()
    } else {
        settings.save()
    }
    .map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))?;
    match (change, wrote) {
        (Change::AlreadyThere, _) | (_, false) => {
            println!("{}: the marketplace `{}` was already set up", path.display(), who.tenant)
        }
        _ => println!("{}: added the marketplace `{}` ({market_url})", path.display(), who.tenant),
    }
    if private && !args.no_git {
        let key = git_key.ok_or_else(|| Failure::failed(format!("{market_url} has no host")))?;
        configure_git(&key, &git_value).await?;
    }
    println!(
        "next: start Claude Code (it adds the marketplace at session start), then `/plugin install <plugin>@{}`",
        who.tenant
    );
    Ok(())
}

/// Adds `value` to the multi-valued git key, unless it is there already.
async fn configure_git(key: &str, value: &str) -> Outcome {
    let limit = Duration::from_secs(30);
    let cwd = std::env::temp_dir();
    let git = std::path::Path::new("git");
    let existing = run_program(git, &["config", "--global", "--get-all", key], &cwd, limit)
        .await
        .unwrap_or_default();
    if existing.lines().any(|l| l.trim() == value) {
        println!("git: {key} was already set");
        return Ok(());
    }
    run_program(git, &["config", "--global", "--add", key, value], &cwd, limit)
        .await
        .map_err(|e| Failure::failed(format!("`git config --global --add {key} …` {e}")))?;
    println!("git: set {key} = {value}");
    Ok(())
}
