//! `skill-pool`: the command-line client of a skill-pool server, for curators, CI and developers.
//! It talks to the server over HTTP only. Exit codes: 0 done, 1 failed, 2 usage error.
//!
//! This file holds only the top-level command line and the dispatch. Each subcommand family lives
//! in its own module under `cmd/` (its clap types and its handler); `output` holds the printing
//! helpers several commands share and `failure` the exit codes. `ensure` and `init` live in
//! `cmd/ensure.rs`, with their engine in the library (`skill_pool_cli::ensure`).

mod cmd;
mod failure;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use skill_pool_core::api::PieceKind;

use crate::cmd::{JsonFlag, audit, auth, ensure, installs, login, managed, piece, plugin, setup, tenant, token};
use crate::failure::Outcome;

#[derive(Debug, Parser)]
#[command(
    name = "skill-pool",
    version,
    about = "Publish Claude Code skills, agents, commands and plugins to a skill-pool server",
    long_about = "Publish Claude Code skills, agents, commands and plugins to a skill-pool server.\n\n\
        The server and token come from --url/--token (given before the subcommand, or to `login`), else \
        SKILL_POOL_URL/SKILL_POOL_TOKEN, else what `skill-pool login` saved, else the machine-wide login an administrator \
        deployed (/etc/skill-pool/config.toml, or the file SKILL_POOL_SYSTEM_CONFIG names). The URL is a tenant root, e.g. https://pool.example.com/t/acme.\n\n\
        Exit codes: 0 done, 1 failed (the reason on stderr), 2 usage error."
)]
struct Cli {
    /// Tenant root URL, e.g. http://127.0.0.1:8080/t/acme (before the subcommand: some subcommands
    /// have a `--url` of their own, e.g. `plugin add-external --url <git-url>`).
    #[arg(long, env = "SKILL_POOL_URL", value_name = "URL")]
    url: Option<String>,
    /// API token (`sp_…`).
    #[arg(long, env = "SKILL_POOL_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::enum_variant_names)] // `skill-pool command …` is the interface's name
enum Command {
    /// Check a URL and token against the server and save them for later commands.
    #[command(after_help = "Example:\n  skill-pool login --url https://pool.example.com/t/acme --token sp_...")]
    Login(login::LoginArgs),
    /// Forget the saved URL and token.
    #[command(after_help = "Example:\n  skill-pool logout")]
    Logout,
    /// Show the tenant and role the token acts as.
    #[command(after_help = "Example:\n  skill-pool whoami --json")]
    Whoami(JsonFlag),
    /// What the tenant uses against its limits (plugins, versions, bytes stored, catalogue size).
    #[command(after_help = "Example:\n  skill-pool usage --json")]
    Usage(JsonFlag),
    /// Installs per plugin and distinct catalogue clients per day (counted by the server, no
    /// address stored).
    #[command(after_help = "Examples:\n  skill-pool installs\n  skill-pool installs --days 7 --json")]
    Installs(installs::InstallsArgs),
    /// Skills: folders with a SKILL.md.
    #[command(subcommand)]
    Skill(piece::PieceCommand),
    /// Agents: one markdown file each.
    #[command(subcommand)]
    Agent(piece::PieceCommand),
    /// Commands: one markdown file each.
    #[command(subcommand)]
    Command(piece::PieceCommand),
    /// Plugins: the bundles Claude Code installs.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// API tokens of the tenant (admin).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The tenant's settings: visibility (public or private) and how plugins are served.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Credential helpers for a private tenant, run by Claude Code and git.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Set up a developer's tools for the tenant of the login.
    #[command(subcommand)]
    Setup(setup::SetupCommand),
    /// Claude Code managed settings for the tenant (admin): its marketplace, the allow-list and the required plugins.
    #[command(after_help = MANAGED_HELP)]
    ManagedSettings(managed::ManagedSettingsArgs),
    /// The tenant's audit log, newest first (admin).
    #[command(after_help = "Example:\n  skill-pool audit --action plugin. --since 2026-12-01 --limit 20 --json")]
    Audit(audit::AuditArgs),
    /// Install what .skill-pool/manifest.toml names (skills, agents, commands, plugins) in one pass.
    #[command(after_help = ENSURE_HELP)]
    Ensure(ensure::EnsureArgs),
    /// Write a commented starter .skill-pool/manifest.toml.
    #[command(after_help = "Example:\n  skill-pool init && skill-pool ensure")]
    Init(ensure::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  skill-pool completions bash > ~/.local/share/bash-completion/completions/skill-pool\n  skill-pool completions zsh > \"${fpath[1]}/_skill-pool\"\n  skill-pool completions fish > ~/.config/fish/completions/skill-pool.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const MANAGED_HELP: &str = "\
Prints the fragment of managed-settings.json an administrator deploys to every machine (MDM):
extraKnownMarketplaces declares the tenant's marketplace (autoUpdate on; for a private tenant
with `headersHelper: skill-pool auth header`), strictKnownMarketplaces allows it and the
--allow marketplaces only, and enabledPlugins enables the plugins whose install policy is
required or auto-install (`skill-pool plugin policy`).

Examples:
  skill-pool managed-settings
  skill-pool managed-settings --allow anthropics/claude-plugins-official
  sudo skill-pool managed-settings --merge-into /etc/claude-code/managed-settings.json

Where the file goes (macOS, Linux, Windows) and what Claude Code does with each key:
docs/managed-settings.md";

const ENSURE_HELP: &str = "\
Skills go to .claude/skills/<slug>/, agents to .claude/agents/<slug>.md, commands to
.claude/commands/<slug>.md (with --user, under ~/.claude). Plugins are installed by Claude Code
itself: the tenant's marketplace and the plugins are written into .claude/settings.json, and
`claude plugin install` runs when `claude` is on PATH.

What was resolved is recorded in .skill-pool/manifest.lock (commit it). A second run with
nothing changed makes no request and writes nothing. Files you edited are reported and kept.
After the server could not be reached, runs within --cooldown skip the network (one line).

Examples:
  skill-pool init && $EDITOR .skill-pool/manifest.toml
  skill-pool ensure                  install, or do nothing when in sync
  skill-pool ensure --update         take the newest versions the manifest allows
  skill-pool ensure --locked         in CI: exactly the lock, or fail
  skill-pool ensure --check          exit 1 when out of sync, change nothing
  skill-pool ensure --install-hook   run it at every Claude Code session start

Manifest reference: docs/manifest.md";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    match &cli.command {
        Command::Login(a) => login::login(&cli, a).await,
        Command::Logout => login::logout(),
        Command::Whoami(f) => login::whoami(&cli, *f).await,
        Command::Usage(f) => login::show_usage(&cli, *f).await,
        Command::Installs(a) => installs::run(&cli, a).await,
        Command::Skill(c) => piece::run(&cli, PieceKind::Skill, c).await,
        Command::Agent(c) => piece::run(&cli, PieceKind::Agent, c).await,
        Command::Command(c) => piece::run(&cli, PieceKind::Command, c).await,
        Command::Plugin(c) => plugin::run(&cli, c).await,
        Command::Token(c) => token::run(&cli, c).await,
        Command::Tenant(c) => tenant::run(&cli, c).await,
        Command::Auth(c) => auth::run(&cli, c),
        Command::Setup(c) => setup::run(&cli, c).await,
        Command::Audit(a) => audit::run(&cli, a).await,
        Command::ManagedSettings(a) => managed::run(&cli, a).await,
        Command::Ensure(a) => ensure::run(&cli, a).await,
        Command::Init(a) => ensure::init(&cli, a),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "skill-pool", &mut std::io::stdout());
            Ok(())
        }
    }
}
