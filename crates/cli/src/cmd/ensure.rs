//! `skill-pool ensure`, `skill-pool init`: a project's manifest installed in one pass. The work
//! is in `skill_pool_cli::ensure`; this module reads the flags, prints, and picks the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use skill_pool_cli::ensure::{self, Mode, Options, Outcome};
use skill_pool_cli::{config, ensure::manifest};

use crate::Cli;
use crate::failure::{Failure, Outcome as CmdOutcome, usage};

pub const DEFAULT_MANIFEST: &str = ".skill-pool/manifest.toml";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").args(["update", "locked", "check"])))]
pub struct EnsureArgs {
    /// The manifest (default: .skill-pool/manifest.toml in this folder or the nearest one above).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Re-resolve every version requirement to the newest matching version.
    #[arg(long)]
    update: bool,
    /// Install exactly what manifest.lock says; fail if the lock would have to change (for CI).
    #[arg(long)]
    locked: bool,
    /// Change nothing; exit 1 when the project is out of sync with the manifest or the lock.
    #[arg(long)]
    check: bool,
    /// Install into ~/.claude instead of the project's .claude.
    #[arg(long)]
    user: bool,
    /// Run as a Claude Code hook: short time limits, one line of output, exit 0 when the
    /// server cannot be reached.
    #[arg(long)]
    hook: bool,
    /// Overwrite files edited locally, and try even within the cooldown after a failure.
    #[arg(long)]
    force: bool,
    /// After the server could not be reached, skip the network for this long (90s, 30m, 1h, 2d).
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_cooldown)]
    cooldown: u64,
    /// Add a SessionStart hook that runs `skill-pool ensure --hook` to .claude/settings.json, then exit.
    #[arg(long, conflicts_with_all = ["update", "locked", "check", "hook"])]
    install_hook: bool,
}

fn parse_cooldown(s: &str) -> Result<u64, String> {
    ensure::cooldown::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the manifest.
    #[arg(long, default_value = DEFAULT_MANIFEST, value_name = "FILE")]
    manifest: PathBuf,
    /// Replace an existing manifest.
    #[arg(long)]
    force: bool,
}

/// The manifest named by `--manifest`, else `.skill-pool/manifest.toml` here or in the nearest
/// folder above that has one.
fn find_manifest(given: Option<&Path>) -> Result<PathBuf, Failure> {
    let cwd = std::env::current_dir().map_err(|e| Failure::failed(format!("the current folder: {e}")))?;
    if let Some(p) = given {
        return Ok(cwd.join(p));
    }
    let mut dir = Some(cwd.as_path());
    while let Some(d) = dir {
        let candidate = d.join(DEFAULT_MANIFEST);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Ok(cwd.join(DEFAULT_MANIFEST))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from)
}

pub async fn run(cli: &Cli, args: &EnsureArgs) -> CmdOutcome {
    let manifest_path = find_manifest(args.manifest.as_deref())?;
    if args.install_hook {
        return install_hook(&manifest_path, args.user);
    }
    let saved = config::load_effective().unwrap_or_default();
    let fallback_url = cli.url.clone().filter(|u| !u.is_empty()).or(saved.url);
    let token = cli.token.clone().filter(|t| !t.is_empty()).or(saved.token);
    let mode = if args.update {
        Mode::Update
    } else if args.locked {
        Mode::Locked
    } else if args.check {
        Mode::Check
    } else {
        Mode::Sync
    };
    let claude = ensure::claude::find_on_path();
    let opts = Options {
        cooldown_marker: ensure::cooldown::marker_path(&manifest_path),
        manifest: manifest_path,
        fallback_url,
        token,
        mode,
        user: args.user,
        hook: args.hook,
        force: args.force,
        cooldown_secs: args.cooldown,
        claude_config: claude.as_ref().and_then(|_| ensure::claude::config_dir()),
        claude,
        user_claude_dir: home().map(|h| h.join(".claude")),
        now: ensure::cooldown::now(),
    };
    let report = ensure::run(&opts).await;

    let mut err = std::io::stderr().lock();
    if args.hook {
        // One line, on stderr (a SessionStart hook's stdout would go into the session).
        let mut line = report.summary.clone();
        if let Some(p) = report.problems.first() {
            line = format!("skill-pool ensure: {line}: {} [{}]", p.message, p.class.as_str());
        } else {
            line = format!("skill-pool ensure: {line}");
        }
        if report.outcome != Outcome::UpToDate || report.failed() {
            let _ = writeln!(err, "{line}");
        }
        let code = if !report.failed() || report.outcome == Outcome::CooledDown || report.only_environment_problems() {
            0
        } else {
            1
        };
        return if code == 0 { Ok(()) } else { exit_quietly() };
    }
    for note in &report.notes {
        let _ = writeln!(err, "{note}");
    }
    for kept in &report.kept_edits {
        let _ = writeln!(
            err,
            "kept local edit: {kept} (differs from what ensure installed; --force overwrites it)"
        );
    }
    for p in &report.problems {
        let _ = writeln!(err, "error: {p}");
    }
    drop(err);
    println!("{}", report.summary);
    if report.failed() || report.outcome == Outcome::CooledDown {
        exit_quietly()
    } else {
        Ok(())
    }
}

/// Exit code 1 with nothing more printed (the report said it all).
fn exit_quietly() -> CmdOutcome {
    Err(Failure {
        code: 1,
        message: String::new(),
    })
}

fn install_hook(manifest_path: &Path, user: bool) -> CmdOutcome {
    let paths = ensure::Paths::for_manifest(manifest_path, None);
    let settings = if user {
        home()
            .ok_or_else(|| usage("--user: HOME is not set"))?
            .join(".claude/settings.json")
    } else {
        paths.project.join(".claude/settings.json")
    };
    let command = if user {
        "skill-pool ensure --hook --user"
    } else {
        "skill-pool ensure --hook"
    };
    let changed = ensure::install_hook(&settings, command).map_err(|p| Failure::failed(p.to_string()))?;
    if changed {
        println!("added a SessionStart hook running `{command}` to {}", settings.display());
    } else {
        println!("{} already has a SessionStart hook running skill-pool ensure", settings.display());
    }
    Ok(())
}

pub fn init(cli: &Cli, args: &InitArgs) -> CmdOutcome {
    let path = &args.manifest;
    if path.exists() && !args.force {
        return Err(Failure::failed(format!("{} exists already (--force replaces it)", path.display())));
    }
    let saved = config::load_effective().unwrap_or_default();
    let url = cli.url.clone().filter(|u| !u.is_empty()).or(saved.url);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::failed(format!("creating {}: {e}", dir.display())))?;
    }
    std::fs::write(path, manifest::starter(url.as_deref())).map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))?;
    println!(
        "wrote {}: add [[skills]], [[agents]], [[commands]] or [[plugins]] blocks, then run `skill-pool ensure`",
        path.display()
    );
    Ok(())
}
