//! `skill-pool ensure`: install what `.skill-pool/manifest.toml` names, in one pass, safely
//! re-runnable.
//!
//! A run has two phases. The **local check** reads the manifest, the lock and the files on
//! disk (and, for plugins, Claude Code's own record of what it installed) and decides whether
//! anything is to be done; when nothing is, the run ends there: no request, no write, one line.
//! Otherwise, unless a cooldown marker from an earlier failure of the environment holds, the
//! **sync** asks the server, writes what changed (never a file the user edited, unless
//! `--force`), has Claude Code install the plugins, and records the result in the lock. What
//! succeeded is kept when something else fails.
//!
//! The modules: [`manifest`] (the format), [`lock`], [`files`] (the disk), [`settings`]
//! (`settings.json` edits), [`claude`] (Claude Code's CLI) and [`cooldown`].

pub mod claude;
pub mod cooldown;
pub mod files;
pub mod lock;
pub mod manifest;
pub mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use semver::Version;
use skill_pool_client::{Client, ClientError};
use skill_pool_core::api::{PieceKind, PieceVersion};
use skill_pool_core::archive::{FileMode, UploadFile, UploadLimits, unpack_tar_gz};
use skill_pool_core::catalogue::Catalogue;

use self::files::OnDisk;
use self::lock::{Lock, LockedPiece, LockedPlugin, Scope};
use self::manifest::{Manifest, PieceWant, PluginWant, Want};
use self::settings::{Change, Settings};

/// What a run is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Install what is missing; keep locked versions that still satisfy the manifest.
    Sync,
    /// Re-resolve every requirement to the newest matching version.
    Update,
    /// Install only what the lock says; fail if the lock would change (CI).
    Locked,
    /// Change nothing; fail if the project is out of sync.
    Check,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The manifest file (absolute).
    pub manifest: PathBuf,
    /// The server when the manifest names none (flags, environment, saved login).
    pub fallback_url: Option<String>,
    pub token: Option<String>,
    pub mode: Mode,
    /// Install into `~/.claude` instead of the project's `.claude`.
    pub user: bool,
    /// Under a Claude Code hook: short time limits, one line of output.
    pub hook: bool,
    /// Overwrite local edits and ignore the cooldown marker.
    pub force: bool,
    pub cooldown_secs: u64,
    /// `claude` to run for plugins (None: not on PATH, settings only).
    pub claude: Option<PathBuf>,
    /// Claude Code's own folder (for `installed_plugins.json`).
    pub claude_config: Option<PathBuf>,
    /// The user's Claude folder (`~/.claude`), for `--user`.
    pub user_claude_dir: Option<PathBuf>,
    /// Unix seconds (injected by tests).
    pub now: i64,
    /// Where the cooldown marker is kept (None: no marker).
    pub cooldown_marker: Option<PathBuf>,
}

/// The kinds of failure `ensure` tells apart (and that decide the cooldown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Unreachable,
    Timeout,
    Unauthorized,
    Forbidden,
    NotFound,
    Server,
    InvalidManifest,
    /// A program (`claude`) killed by a signal.
    Signal,
    /// A program (`claude`) that failed otherwise.
    Program,
    DiskFull,
    /// The disk refused a write for another reason.
    Io,
    /// Something in the project is in the way (settings, a folder where a file goes).
    Conflict,
    /// `--locked` or `--check` found the project out of sync.
    OutOfSync,
    /// A version the manifest asks for does not exist or is not served.
    Version,
}

impl Class {
    /// Failures of the environment rather than of the project: they start a cooldown.
    pub fn is_environment(self) -> bool {
        matches!(self, Class::Unreachable | Class::Timeout | Class::Signal)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Unreachable => "unreachable",
            Class::Timeout => "timeout",
            Class::Unauthorized => "unauthorized",
            Class::Forbidden => "forbidden",
            Class::NotFound => "not_found",
            Class::Server => "server_error",
            Class::InvalidManifest => "invalid_manifest",
            Class::Signal => "signal",
            Class::Program => "program_failed",
            Class::DiskFull => "disk_full",
            Class::Io => "io",
            Class::Conflict => "conflict",
            Class::OutOfSync => "out_of_sync",
            Class::Version => "version",
        }
    }
}

/// One thing that went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub class: Class,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.class.as_str())?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl Problem {
    fn new(class: Class, message: impl Into<String>) -> Problem {
        Problem {
            class,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    /// A failed request, classified; `what` says what was being asked for.
    fn from_client(e: &ClientError, what: &str) -> Problem {
        match e {
            ClientError::Transport { timed_out: true, .. } => {
                Problem::new(Class::Timeout, format!("{what}: {e}")).hint("the server did not answer in time; `ensure` tries again later")
            }
            ClientError::Transport { .. } => Problem::new(Class::Unreachable, format!("{what}: {e}"))
                .hint("check the network and the server URL; `ensure` tries again later"),
            ClientError::BadUrl(_) => Problem::new(Class::InvalidManifest, e.to_string()),
            ClientError::Decode { .. } => Problem::new(Class::Server, format!("{what}: {e}")),
            ClientError::Api { status, .. } => match status {
                401 => Problem::new(Class::Unauthorized, format!("{what}: {e}"))
                    .hint("run `skill-pool login --url <tenant URL> --token <token>` or set SKILL_POOL_TOKEN"),
                403 => Problem::new(Class::Forbidden, format!("{what}: {e}")).hint("the token's role may not read this"),
                404 => Problem::new(Class::NotFound, format!("{what}: not found on the server ({e})"))
                    .hint("check the name in the manifest, or the tenant URL"),
                // 5xx, and anything else unexpected from the server.
                _ => Problem::new(Class::Server, format!("{what}: {e}")),
            },
        }
    }

    fn from_io(e: &std::io::Error, what: &str) -> Problem {
        if files::is_disk_full(e) {
            Problem::new(Class::DiskFull, format!("{what}: the disk is full ({e})"))
                .hint("free some space and run `skill-pool ensure` again")
        } else {
            Problem::new(Class::Io, format!("{what}: {e}"))
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do: the local check found everything in place (no request was made).
    UpToDate,
    /// The sync ran (and may have problems).
    Synced,
    /// A cooldown marker held: nothing was tried.
    CooledDown,
    /// `--check` found differences.
    OutOfSync,
}

/// What a run did, for printing.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    /// What changed or was noticed, one line each ("installed skill a 1.2.0 (3 files)").
    pub notes: Vec<String>,
    /// Local edits that were kept (paths as shown to the user).
    pub kept_edits: Vec<String>,
    pub problems: Vec<Problem>,
    /// The summary line.
    pub summary: String,
    pub lock_written: bool,
}

impl Report {
    fn new(outcome: Outcome) -> Report {
        Report {
            outcome,
            notes: Vec::new(),
            kept_edits: Vec::new(),
            problems: Vec::new(),
            summary: String::new(),
            lock_written: false,
        }
    }

    /// True when the run failed (exit code 1).
    pub fn failed(&self) -> bool {
        !self.problems.is_empty() || self.outcome == Outcome::OutOfSync
    }

    /// True when every problem is a failure of the environment (a hook exits 0 then).
    pub fn only_environment_problems(&self) -> bool {
        !self.problems.is_empty() && self.problems.iter().all(|p| p.class.is_environment())
    }
}

/// Where a manifest's files go.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The project folder (the one holding `.skill-pool/`).
    pub project: PathBuf,
    pub lock: PathBuf,
    /// `.claude/` of the project, or `~/.claude` with `--user`.
    pub claude_dir: PathBuf,
    pub scope: Scope,
}

impl Paths {
    pub fn for_manifest(manifest: &Path, user_dir: Option<&Path>) -> Paths {
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let project = if dir.file_name().is_some_and(|n| n == ".skill-pool") {
            dir.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            dir.to_path_buf()
        };
        let (claude_dir, scope) = match user_dir {
            Some(u) => (u.to_path_buf(), Scope::User),
            None => (project.join(".claude"), Scope::Project),
        };
        Paths {
            lock: dir.join("manifest.lock"),
            project,
            claude_dir,
            scope,
        }
    }

    fn settings(&self) -> PathBuf {
        self.claude_dir.join("settings.json")
    }

    /// A path under the Claude folder as the user would look for it.
    fn show(&self, rel: &str) -> String {
        match self.scope {
            Scope::Project => format!(".claude/{rel}"),
            Scope::User => format!("~/.claude/{rel}"),
        }
    }
}

/// Where a piece's files land, relative to the Claude folder.
fn target_paths(kind: PieceKind, slug: &str, files: &[UploadFile]) -> Vec<(String, FileMode, Vec<u8>)> {
    match kind {
        PieceKind::Skill => files
            .iter()
            .map(|f| (format!("skills/{slug}/{}", f.path), f.mode, f.data.clone()))
            .collect(),
        PieceKind::Agent | PieceKind::Command => {
            let folder = if kind == PieceKind::Agent { "agents" } else { "commands" };
            // One markdown file: the piece itself.
            files
                .iter()
                .find(|f| f.path.ends_with(".md"))
                .or_else(|| files.first())
                .map(|f| vec![(format!("{folder}/{slug}.md"), FileMode::Regular, f.data.clone())])
                .unwrap_or_default()
        }
    }
}

/// The local state of one locked piece.
#[derive(Debug, Default)]
struct FileCheck {
    modified: Vec<String>,
    missing: Vec<String>,
}

fn check_files(paths: &Paths, locked: &LockedPiece) -> Result<FileCheck, Problem> {
    let mut check = FileCheck::default();
    for (rel, sha) in &locked.files {
        match files::state(&paths.claude_dir, rel).map_err(|e| Problem::from_io(&e, &paths.show(rel)))? {
            OnDisk::Missing => check.missing.push(rel.clone()),
            OnDisk::Present(got) if &got != sha => check.modified.push(rel.clone()),
            OnDisk::Present(_) => {}
        }
    }
    Ok(check)
}

/// What the local check decided for one piece.
#[derive(Debug)]
enum PiecePlan {
    /// In place (local edits, if any, are kept).
    Settled { modified: Vec<String> },
    /// The locked version stays; some files are to be written again.
    Restore { version: String, check: FileCheck },
    /// Ask the server which version.
    Resolve,
}

#[derive(Debug)]
enum PluginPlan {
    Settled,
    /// The locked version stays; settings or Claude Code's install are to be completed.
    Complete(LockedPlugin),
    Resolve,
}

struct LocalCheck {
    pieces: Vec<(PieceWant, PiecePlan)>,
    plugins: Vec<(PluginWant, PluginPlan)>,
    /// Locked pieces the manifest no longer names.
    gone_pieces: Vec<(PieceKind, LockedPiece)>,
    gone_plugins: Vec<LockedPlugin>,
    /// The lock on disk must be (re)written even if every entry is settled (absent, other URL).
    lock_stale: bool,
}

impl LocalCheck {
    fn in_sync(&self) -> bool {
        !self.lock_stale
            && self.gone_pieces.is_empty()
            && self.gone_plugins.is_empty()
            && self.pieces.iter().all(|(_, p)| matches!(p, PiecePlan::Settled { .. }))
            && self.plugins.iter().all(|(_, p)| matches!(p, PluginPlan::Settled))
    }

    fn modified(&self, paths: &Paths) -> Vec<String> {
        self.pieces
            .iter()
            .flat_map(|(_, p)| match p {
                PiecePlan::Settled { modified } => modified.clone(),
                PiecePlan::Restore { check, .. } => check.modified.clone(),
                PiecePlan::Resolve => Vec::new(),
            })
            .map(|rel| paths.show(&rel))
            .collect()
    }

    /// One line per difference, for `--check`.
    fn differences(&self, paths: &Paths) -> Vec<String> {
        let mut out = Vec::new();
        for (want, plan) in &self.pieces {
            match plan {
                PiecePlan::Settled { .. } => {}
                PiecePlan::Restore { version, check } => out.push(format!(
                    "{} {} {version}: {} file(s) missing",
                    want.kind,
                    want.slug,
                    check.missing.len()
                )),
                PiecePlan::Resolve => out.push(format!("{} {} ({}): not installed or not locked", want.kind, want.slug, want.want)),
            }
        }
        for (want, plan) in &self.plugins {
            match plan {
                PluginPlan::Settled => {}
                PluginPlan::Complete(l) => out.push(format!("plugin {} {}: not installed or not enabled", want.name, l.version)),
                PluginPlan::Resolve => out.push(format!("plugin {} ({}): not installed or not locked", want.name, want.want)),
            }
        }
        for (kind, l) in &self.gone_pieces {
            out.push(format!("{kind} {}: in the lock but no longer in the manifest", l.slug));
        }
        for l in &self.gone_plugins {
            out.push(format!("plugin {}: in the lock but no longer in the manifest", l.name));
        }
        if self.lock_stale && out.is_empty() {
            out.push(format!("{} is missing or out of date", paths.lock.display()));
        }
        out
    }
}

/// The local check: no network.
fn local_check(manifest: &Manifest, url: &str, lock: Option<&Lock>, paths: &Paths, opts: &Options) -> Result<LocalCheck, Problem> {
    // A lock for another server or scope says nothing about this one.
    let usable = lock.filter(|l| l.url == url && l.scope == paths.scope);
    // settings.json matters only for plugins: a broken one does not stop skills from installing.
    let settings = if manifest.plugins.is_empty() {
        None
    } else {
        Some(Settings::load(&paths.settings()).map_err(|e| Problem::new(Class::Conflict, e.to_string()))?)
    };
    let mut pieces = Vec::new();
    for want in &manifest.pieces {
        let locked = usable.and_then(|l| l.piece(want.kind, &want.slug));
        let keep = match locked {
            Some(l) => want.want.accepts(&l.version) && (opts.mode != Mode::Update || want.want.exact().is_some()),
            None => false,
        };
        let plan = match locked {
            Some(l) if keep => {
                let check = check_files(paths, l)?;
                if check.missing.is_empty() && (check.modified.is_empty() || !opts.force) {
                    PiecePlan::Settled { modified: check.modified }
                } else {
                    PiecePlan::Restore {
                        version: l.version.clone(),
                        check,
                    }
                }
            }
            _ => PiecePlan::Resolve,
        };
        pieces.push((want.clone(), plan));
    }
    let mut plugins = Vec::new();
    // (`settings` is there exactly when the manifest has plugins.)
    if let Some(settings) = &settings {
        for want in &manifest.plugins {
            let locked = usable.and_then(|l| l.plugin(&want.name));
            let keep = match locked {
                Some(l) => want.want.accepts(&l.version) && (opts.mode != Mode::Update || want.want.exact().is_some()),
                None => false,
            };
            let plan = match locked {
                Some(l) if keep => {
                    let id = l.id();
                    let declared = settings.has_marketplace(&l.marketplace, url);
                    let enabled = settings.plugin_enabled(&id).is_some();
                    let installed = match (&opts.claude, &opts.claude_config) {
                        (Some(_), Some(config)) => {
                            let project = (paths.scope == Scope::Project).then_some(paths.project.as_path());
                            claude::installed_version(config, &id, project).as_deref() == Some(l.version.as_str())
                        }
                        _ => true,
                    };
                    if declared && enabled && installed {
                        PluginPlan::Settled
                    } else {
                        PluginPlan::Complete(l.clone())
                    }
                }
                _ => PluginPlan::Resolve,
            };
            plugins.push((want.clone(), plan));
        }
    }
    let mut gone_pieces = Vec::new();
    let mut gone_plugins = Vec::new();
    if let Some(l) = lock.filter(|l| l.scope == paths.scope) {
        for kind in [PieceKind::Skill, PieceKind::Agent, PieceKind::Command] {
            for p in l.pieces(kind) {
                if !manifest.pieces.iter().any(|w| w.kind == kind && w.slug == p.slug) {
                    gone_pieces.push((kind, p.clone()));
                }
            }
        }
        for p in &l.plugins {
            if !manifest.plugins.iter().any(|w| w.name == p.name) {
                gone_plugins.push(p.clone());
            }
        }
    }
    Ok(LocalCheck {
        pieces,
        plugins,
        gone_pieces,
        gone_plugins,
        lock_stale: usable.is_none() && !manifest.is_empty(),
    })
}

/// The lock and its text as read (to tell later whether it changes), if there is one.
fn read_lock(path: &Path) -> Result<Option<(Lock, String)>, Problem> {
    match std::fs::read_to_string(path) {
        Ok(text) => Lock::parse(&text).map(|lock| Some((lock, text))).map_err(|e| {
            Problem::new(Class::InvalidManifest, format!("{}: {e}", path.display()))
                .hint("delete it and run `skill-pool ensure` to write it again")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Problem::from_io(&e, &path.display().to_string())),
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

fn counts(manifest: &Manifest) -> String {
    let n = |k| manifest.pieces.iter().filter(|p| p.kind == k).count();
    format!(
        "{}, {}, {}, {}",
        plural(n(PieceKind::Skill), "skill"),
        plural(n(PieceKind::Agent), "agent"),
        plural(n(PieceKind::Command), "command"),
        plural(manifest.plugins.len(), "plugin")
    )
}

/// Runs `ensure`. Every failure is in the report; `Err` only for a manifest that cannot be read.
pub async fn run(opts: &Options) -> Report {
    match run_inner(opts).await {
        Ok(r) => r,
        Err(p) => {
            let mut r = Report::new(Outcome::Synced);
            r.summary = format!("ensure failed: {}", p.message);
            r.problems.push(p);
            r
        }
    }
}

async fn run_inner(opts: &Options) -> Result<Report, Problem> {
    let shown = opts.manifest.display().to_string();
    let text = std::fs::read_to_string(&opts.manifest).map_err(|e| {
        Problem::new(Class::InvalidManifest, format!("reading {shown}: {e}")).hint("run `skill-pool init` to write a starter manifest")
    })?;
    let manifest = Manifest::parse(&text, &shown).map_err(|e| Problem::new(Class::InvalidManifest, e.to_string()))?;
    let url = manifest
        .url
        .clone()
        .or_else(|| opts.fallback_url.clone().map(|u| u.trim().trim_end_matches('/').to_string()))
        .ok_or_else(|| {
            Problem::new(Class::InvalidManifest, format!("{shown} names no server"))
                .hint("add `url = \"<tenant URL>\"` to the manifest, set SKILL_POOL_URL, or run `skill-pool login`")
        })?;
    let user_dir = if opts.user {
        Some(
            opts.user_claude_dir
                .clone()
                .ok_or_else(|| Problem::new(Class::Io, "--user: no home folder is known (HOME is not set)"))?,
        )
    } else {
        None
    };
    let paths = Paths::for_manifest(&opts.manifest, user_dir.as_deref());
    let (old_lock, old_text) = read_lock(&paths.lock)?.unzip();
    let check = local_check(&manifest, &url, old_lock.as_ref(), &paths, opts)?;
    let kept_edits = check.modified(&paths);

    if check.in_sync() && opts.mode != Mode::Update {
        let mut r = Report::new(Outcome::UpToDate);
        r.kept_edits = kept_edits;
        r.summary = if manifest.is_empty() {
            format!("up to date: {shown} names nothing to install")
        } else {
            format!("up to date: {} as locked (no request made)", counts(&manifest))
        };
        if opts.mode == Mode::Check && !r.kept_edits.is_empty() {
            r.outcome = Outcome::OutOfSync;
            r.summary = format!("out of sync: {} file(s) differ from the lock", r.kept_edits.len());
        }
        return Ok(r);
    }
    if opts.mode == Mode::Check {
        let mut r = Report::new(Outcome::OutOfSync);
        r.notes = check.differences(&paths);
        r.kept_edits = kept_edits;
        r.summary = format!("out of sync: {} difference(s); run `skill-pool ensure`", r.notes.len().max(1));
        return Ok(r);
    }
    if !opts.force
        && let Some(marker) = opts
            .cooldown_marker
            .as_deref()
            .and_then(|m| cooldown::active(m, opts.now, opts.cooldown_secs))
    {
        let mut r = Report::new(Outcome::CooledDown);
        r.kept_edits = kept_edits;
        r.summary = format!(
            "skipped: the last attempt failed ({}: {}) at {}; next attempt after {} (--force to try now)",
            marker.class,
            marker.message.lines().next().unwrap_or(""),
            cooldown::show(marker.failed_at),
            cooldown::show(marker.failed_at.saturating_add(opts.cooldown_secs as i64))
        );
        return Ok(r);
    }

    let mut sync = Sync::new(opts, &paths, &url, old_lock.clone())?;
    sync.run(check).await;
    let mut r = sync.report;
    r.kept_edits.sort();
    r.kept_edits.dedup();

    // The lock: only what succeeded changed it.
    let new_text = sync.lock.render();
    if old_text.as_deref() != Some(new_text.as_str()) && opts.mode != Mode::Locked {
        match std::fs::write(&paths.lock, &new_text) {
            Ok(()) => r.lock_written = true,
            Err(e) => r.problems.push(Problem::from_io(&e, &paths.lock.display().to_string())),
        }
    }

    // The cooldown: set by a failure of the environment, cleared by a run without one.
    if let Some(marker_path) = &opts.cooldown_marker {
        match r.problems.iter().find(|p| p.class.is_environment()) {
            Some(p) => {
                let marker = cooldown::Marker {
                    failed_at: opts.now,
                    class: p.class.as_str().to_string(),
                    message: p.message.clone(),
                };
                let _ = cooldown::write(marker_path, &marker);
            }
            None => cooldown::clear(marker_path),
        }
    }

    let changed = r.notes.len();
    r.summary = if r.problems.is_empty() {
        if changed == 0 {
            format!("up to date: {}", counts(&manifest))
        } else {
            format!("done: {} ({} change(s))", counts(&manifest), changed)
        }
    } else {
        format!(
            "ensure failed: {} problem(s), {} change(s) kept{}",
            r.problems.len(),
            changed,
            if r.problems.iter().any(|p| p.class.is_environment()) && opts.cooldown_marker.is_some() {
                format!(
                    "; the next {} of runs will not retry (cooldown; --force retries)",
                    human_secs(opts.cooldown_secs)
                )
            } else {
                String::new()
            }
        )
    };
    Ok(r)
}

fn human_secs(s: u64) -> String {
    match s {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// A piece version chosen from the server's list: exact wants may take an archived version,
/// others take the newest non-archived match.
fn choose(want: &Want, versions: &[PieceVersion]) -> Option<String> {
    let parsed = versions.iter().filter_map(|v| Version::parse(&v.version).ok().map(|sv| (sv, v)));
    match want {
        Want::Exact(v) => parsed.into_iter().find(|(sv, _)| sv == v).map(|(_, p)| p.version.clone()),
        _ => parsed
            .filter(|(sv, p)| !p.archived && want.accepts(&sv.to_string()))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, p)| p.version.clone()),
    }
}

/// The version Claude Code installs from a catalogue entry: its `version`, else the first 12
/// hex of the pinned commit.
fn served_version(entry: &skill_pool_core::catalogue::CatalogueEntry) -> Option<String> {
    entry.version.clone().or_else(|| {
        entry
            .source
            .get("sha")
            .and_then(|s| s.as_str())
            .map(|s| s.chars().take(12).collect())
    })
}

/// The network phase.
struct Sync<'a> {
    opts: &'a Options,
    paths: &'a Paths,
    url: &'a str,
    client: Client,
    lock: Lock,
    report: Report,
    catalogue: Option<Result<Catalogue, Problem>>,
    /// Set after a failure of the environment: further requests would fail the same way.
    offline: bool,
}

impl<'a> Sync<'a> {
    fn new(opts: &'a Options, paths: &'a Paths, url: &'a str, old_lock: Option<Lock>) -> Result<Sync<'a>, Problem> {
        let (connect, total) = if opts.hook {
            (Duration::from_secs(3), Duration::from_secs(20))
        } else {
            (Duration::from_secs(10), Duration::from_secs(300))
        };
        let client = Client::with_timeouts(url, opts.token.clone(), connect, total)
            .map_err(|e| Problem::new(Class::InvalidManifest, e.to_string()))?;
        // Start from the old lock (same server and scope), so that entries that fail now keep
        // what they had.
        let lock = old_lock
            .filter(|l| l.url == url && l.scope == paths.scope)
            .unwrap_or_else(|| Lock::new(url, paths.scope.clone()));
        Ok(Sync {
            opts,
            paths,
            url,
            client,
            lock,
            report: Report::new(Outcome::Synced),
            catalogue: None,
            offline: false,
        })
    }

    fn problem(&mut self, p: Problem) {
        if p.class.is_environment() {
            self.offline = true;
        }
        self.report.problems.push(p);
    }

    async fn run(&mut self, check: LocalCheck) {
        // Under --locked, resolve first and refuse before changing anything.
        if self.opts.mode == Mode::Locked {
            let mut stale = Vec::new();
            for (want, plan) in &check.pieces {
                if matches!(plan, PiecePlan::Resolve) {
                    stale.push(format!("{} {} ({})", want.kind, want.slug, want.want));
                }
            }
            for (want, plan) in &check.plugins {
                if matches!(plan, PluginPlan::Resolve) {
                    stale.push(format!("plugin {} ({})", want.name, want.want));
                }
            }
            stale.extend(
                check
                    .gone_pieces
                    .iter()
                    .map(|(k, p)| format!("{k} {} (no longer in the manifest)", p.slug)),
            );
            stale.extend(
                check
                    .gone_plugins
                    .iter()
                    .map(|p| format!("plugin {} (no longer in the manifest)", p.name)),
            );
            if !stale.is_empty() || check.lock_stale {
                if stale.is_empty() {
                    stale.push("the lock is for another server or scope, or missing".into());
                }
                self.problem(
                    Problem::new(
                        Class::OutOfSync,
                        format!(
                            "--locked: {} does not match the manifest: {}",
                            self.paths.lock.display(),
                            stale.join(", ")
                        ),
                    )
                    .hint("run `skill-pool ensure` and commit the updated manifest.lock"),
                );
                return;
            }
        }

        for (want, plan) in check.pieces {
            if self.offline {
                break;
            }
            match plan {
                PiecePlan::Settled { modified } => {
                    self.report.kept_edits.extend(modified.iter().map(|r| self.paths.show(r)));
                }
                PiecePlan::Restore { version, .. } => self.install_piece(&want, &version).await,
                PiecePlan::Resolve => {
                    let versions = match self.client.piece_versions(want.kind, &want.slug).await {
                        Ok(v) => v,
                        Err(e) => {
                            let p = Problem::from_client(&e, &format!("{} `{}` (manifest line {})", want.kind, want.slug, want.line));
                            self.problem(p);
                            continue;
                        }
                    };
                    match choose(&want.want, &versions) {
                        Some(version) => self.install_piece(&want, &version).await,
                        None => {
                            let mut list: Vec<String> = versions
                                .iter()
                                .map(|v| format!("{}{}", v.version, if v.archived { " (archived)" } else { "" }))
                                .collect();
                            if list.is_empty() {
                                list.push("none".into());
                            }
                            self.problem(Problem::new(
                                Class::Version,
                                format!(
                                    "{} `{}` (manifest line {}): no version matches {}; published: {}",
                                    want.kind,
                                    want.slug,
                                    want.line,
                                    want.want,
                                    list.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }

        let mut settle_plugins = Vec::new();
        for (want, plan) in check.plugins {
            if self.offline {
                break;
            }
            match plan {
                PluginPlan::Settled => {}
                PluginPlan::Complete(locked) => settle_plugins.push(locked),
                PluginPlan::Resolve => {
                    if let Some(locked) = self.resolve_plugin(&want).await {
                        settle_plugins.push(locked);
                    }
                }
            }
        }
        if !self.offline {
            for locked in &settle_plugins {
                if self.install_plugin(locked).await {
                    self.lock.put_plugin(locked.clone());
                }
            }
        }

        if !self.offline {
            for (kind, gone) in &check.gone_pieces {
                self.remove_piece(*kind, gone);
            }
            for gone in &check.gone_plugins {
                self.remove_plugin(gone).await;
            }
        }

        // settings.json last: after `claude` has written to it.
        if !settle_plugins.is_empty() || !check.gone_plugins.is_empty() {
            self.merge_settings(&settle_plugins, &check.gone_plugins);
        }
    }

    /// Downloads `version` of a piece and writes its files, keeping local edits.
    async fn install_piece(&mut self, want: &PieceWant, version: &str) {
        let what = format!("{} `{}` {version}", want.kind, want.slug);
        let bytes = match self.client.download_piece(want.kind, &want.slug, version).await {
            Ok(b) => b,
            Err(e) => {
                let p = Problem::from_client(&e, &what);
                self.problem(p);
                return;
            }
        };
        let unpacked = match unpack_tar_gz(&bytes, &UploadLimits::from_upload_limit(1 << 30)) {
            Ok(f) => f,
            Err(e) => {
                self.problem(Problem::new(Class::Server, format!("{what}: the download is not valid: {e}")));
                return;
            }
        };
        let targets = target_paths(want.kind, &want.slug, &unpacked);
        let previous = self.lock.piece(want.kind, &want.slug).cloned();
        let mut written: BTreeMap<String, String> = BTreeMap::new();
        let mut changed_files = 0usize;
        for (rel, mode, data) in &targets {
            let new_sha = files::sha256_hex(data);
            let on_disk = match files::state(&self.paths.claude_dir, rel) {
                Ok(s) => s,
                Err(e) => {
                    self.problem(Problem::from_io(&e, &self.paths.show(rel)));
                    return;
                }
            };
            let locked_sha = previous.as_ref().and_then(|p| p.files.get(rel));
            match &on_disk {
                OnDisk::Present(got) if *got == new_sha => {
                    written.insert(rel.clone(), new_sha);
                    continue;
                }
                // A file that is not what ensure wrote last time: the user's, unless --force.
                OnDisk::Present(got) if !self.opts.force && locked_sha != Some(got) => {
                    self.report.kept_edits.push(self.paths.show(rel));
                    // The lock keeps recording what was installed, so the edit stays visible.
                    written.insert(rel.clone(), new_sha);
                    continue;
                }
                _ => {}
            }
            match files::write(&self.paths.claude_dir, rel, *mode, data) {
                Ok(sha) => {
                    written.insert(rel.clone(), sha);
                    changed_files += 1;
                }
                Err(e) => {
                    let class_problem = if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Problem::new(Class::Conflict, format!("{what}: {e}"))
                    } else {
                        Problem::from_io(&e, &format!("{what}: writing {}", self.paths.show(rel)))
                    };
                    self.problem(class_problem);
                    return;
                }
            }
        }
        // Files of the previous version that this one does not have: removed if unchanged.
        if let Some(prev) = &previous {
            for (rel, sha) in &prev.files {
                if written.contains_key(rel) {
                    continue;
                }
                match files::state(&self.paths.claude_dir, rel) {
                    Ok(OnDisk::Present(got)) if &got == sha => {
                        if let Err(e) = files::remove(&self.paths.claude_dir, rel) {
                            self.problem(Problem::from_io(&e, &self.paths.show(rel)));
                        } else {
                            changed_files += 1;
                        }
                    }
                    Ok(OnDisk::Present(_)) => self.report.kept_edits.push(self.paths.show(rel)),
                    _ => {}
                }
            }
        }
        let was = previous.as_ref().map(|p| p.version.clone());
        self.lock.put_piece(
            want.kind,
            LockedPiece {
                slug: want.slug.clone(),
                version: version.to_string(),
                files: written,
            },
        );
        if changed_files > 0 || was.as_deref() != Some(version) {
            let verb = match was.as_deref() {
                None => "installed".to_string(),
                Some(v) if v == version => "restored".to_string(),
                Some(v) => format!("updated from {v} to"),
            };
            self.report.notes.push(format!(
                "{verb} {} {} {version} ({})",
                want.kind,
                want.slug,
                plural(changed_files, "file")
            ));
        }
    }

    fn remove_piece(&mut self, kind: PieceKind, gone: &LockedPiece) {
        let mut removed = 0;
        for (rel, sha) in &gone.files {
            match files::state(&self.paths.claude_dir, rel) {
                Ok(OnDisk::Present(got)) if &got == sha => match files::remove(&self.paths.claude_dir, rel) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        self.problem(Problem::from_io(&e, &self.paths.show(rel)));
                        return;
                    }
                },
                Ok(OnDisk::Present(_)) => self.report.kept_edits.push(self.paths.show(rel)),
                Ok(OnDisk::Missing) => {}
                Err(e) => {
                    self.problem(Problem::from_io(&e, &self.paths.show(rel)));
                    return;
                }
            }
        }
        self.lock.remove_piece(kind, &gone.slug);
        self.report.notes.push(format!(
            "removed {kind} {} (no longer in the manifest; {})",
            gone.slug,
            plural(removed, "file")
        ));
    }

    async fn catalogue(&mut self) -> Result<Catalogue, Problem> {
        if let Some(fetched) = &self.catalogue {
            return fetched.clone();
        }
        let got = self
            .client
            .catalogue()
            .await
            .map_err(|e| Problem::from_client(&e, &format!("the marketplace of {}", self.url)));
        self.catalogue = Some(got.clone());
        got
    }

    async fn resolve_plugin(&mut self, want: &PluginWant) -> Option<LockedPlugin> {
        let catalogue = match self.catalogue().await {
            Ok(c) => c,
            Err(p) => {
                // One problem for the catalogue, not one per plugin.
                if !self.report.problems.contains(&p) {
                    self.problem(p);
                }
                return None;
            }
        };
        let Some(entry) = catalogue.plugins.iter().find(|e| e.name == want.name) else {
            let names: Vec<&str> = catalogue.plugins.iter().map(|e| e.name.as_str()).collect();
            self.problem(
                Problem::new(
                    Class::NotFound,
                    format!(
                        "plugin `{}` (manifest line {}) is not in the marketplace of {}",
                        want.name, want.line, self.url
                    ),
                )
                .hint(if names.is_empty() {
                    "the marketplace lists no plugins".to_string()
                } else {
                    format!("it lists: {}", names.join(", "))
                }),
            );
            return None;
        };
        let served = served_version(entry);
        let ok = match &served {
            Some(v) => want.want.accepts(v),
            None => want.want == Want::Any,
        };
        if !ok {
            let mut published = Vec::new();
            if self.opts.token.is_some()
                && let Ok(p) = self.client.show_plugin(&want.name).await
            {
                published = p.versions.iter().map(|v| v.effective_version.clone()).collect();
            }
            let served_text = served.clone().unwrap_or_else(|| "the upstream's current version".into());
            let mut message = format!(
                "plugin `{}` (manifest line {}): the marketplace serves {served_text}, the manifest asks for {}",
                want.name, want.line, want.want
            );
            if !published.is_empty() {
                message.push_str(&format!("; versions published: {}", published.join(", ")));
            }
            self.problem(Problem::new(Class::Version, message).hint(format!(
                "the marketplace serves one version per plugin: pin `version = \"{served_text}\"`, or have an admin serve the one you need (`skill-pool plugin serve {} <version>`)",
                want.name
            )));
            return None;
        }
        Some(LockedPlugin {
            name: want.name.clone(),
            version: served.unwrap_or_else(|| "latest".into()),
            marketplace: catalogue.name.clone(),
        })
    }

    /// Has Claude Code install (or update) the plugin, when `claude` is on PATH. True when the
    /// plugin may be recorded in the lock.
    async fn install_plugin(&mut self, locked: &LockedPlugin) -> bool {
        let (Some(bin), Some(config)) = (self.opts.claude.clone(), self.opts.claude_config.clone()) else {
            self.report.notes.push(format!(
                "enabled plugin {} {} in {} (Claude Code installs it at its next start)",
                locked.id(),
                locked.version,
                self.paths.show("settings.json")
            ));
            return true;
        };
        let scope = match self.paths.scope {
            Scope::Project => "project",
            Scope::User => "user",
        };
        let limit = if self.opts.hook {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(180)
        };
        let project = (self.paths.scope == Scope::Project).then_some(self.paths.project.clone());
        let cwd = self.paths.project.clone();
        let id = locked.id();
        if !claude::knows_marketplace(&config, &locked.marketplace) {
            let args = ["plugin", "marketplace", "add", self.url, "--scope", scope];
            if let Err(e) = claude::run(&bin, &args, &cwd, limit).await {
                self.program_problem(&format!("`claude plugin marketplace add {} --scope {scope}`", self.url), e);
                return false;
            }
        }
        let installed = claude::installed_version(&config, &id, project.as_deref());
        match installed {
            Some(v) if v == locked.version => {}
            Some(v) => {
                let update_market = ["plugin", "marketplace", "update", locked.marketplace.as_str()];
                if let Err(e) = claude::run(&bin, &update_market, &cwd, limit).await {
                    self.program_problem(&format!("`claude plugin marketplace update {}`", locked.marketplace), e);
                    return false;
                }
                let args = ["plugin", "update", id.as_str(), "--scope", scope];
                if let Err(e) = claude::run(&bin, &args, &cwd, limit).await {
                    self.program_problem(&format!("`claude plugin update {id} --scope {scope}`"), e);
                    return false;
                }
                self.report.notes.push(format!(
                    "updated plugin {id} from {v} to {} (restart Claude Code to use it)",
                    locked.version
                ));
            }
            None => {
                let args = ["plugin", "install", id.as_str(), "--scope", scope];
                if let Err(e) = claude::run(&bin, &args, &cwd, limit).await {
                    self.program_problem(&format!("`claude plugin install {id} --scope {scope}`"), e);
                    return false;
                }
                self.report.notes.push(format!("installed plugin {id} {}", locked.version));
            }
        }
        match claude::installed_version(&config, &id, project.as_deref()) {
            Some(v) if v == locked.version => true,
            got => {
                self.problem(Problem::new(
                    Class::Version,
                    format!(
                        "plugin {id}: Claude Code reports {} installed, the marketplace serves {}",
                        got.unwrap_or_else(|| "nothing".into()),
                        locked.version
                    ),
                ));
                false
            }
        }
    }

    fn program_problem(&mut self, what: &str, e: claude::RunError) {
        let class = match &e {
            claude::RunError::Signal { .. } => Class::Signal,
            claude::RunError::Timeout(_) => Class::Timeout,
            _ => Class::Program,
        };
        self.problem(Problem::new(class, format!("{what} {e}")));
    }

    async fn remove_plugin(&mut self, gone: &LockedPlugin) {
        if let Some(bin) = self.opts.claude.clone() {
            let scope = match self.paths.scope {
                Scope::Project => "project",
                Scope::User => "user",
            };
            let id = gone.id();
            let args = ["plugin", "uninstall", id.as_str(), "--scope", scope];
            let cwd = self.paths.project.clone();
            if let Err(e) = claude::run(&bin, &args, &cwd, Duration::from_secs(60)).await {
                // Already gone is fine; anything else is reported but does not stop the rest.
                if !matches!(&e, claude::RunError::Failed { output, .. } if output.contains("not installed") || output.contains("not found"))
                {
                    self.program_problem(&format!("`claude plugin uninstall {id} --scope {scope}`"), e);
                    return;
                }
            }
        }
        self.lock.remove_plugin(&gone.name);
        self.report
            .notes
            .push(format!("removed plugin {} (no longer in the manifest)", gone.id()));
    }

    fn merge_settings(&mut self, installed: &[LockedPlugin], gone: &[LockedPlugin]) {
        let path = self.paths.settings();
        let settings = match Settings::load(&path) {
            Ok(s) => s,
            Err(e) => {
                self.problem(Problem::new(Class::Conflict, e.to_string()));
                return;
            }
        };
        for p in installed {
            if self.lock.plugin(&p.name).is_none() && self.opts.claude.is_some() {
                continue; // its install failed: do not enable it
            }
            if let Err(e) = settings.declare_marketplace(&p.marketplace, self.url) {
                self.problem(Problem::new(Class::Conflict, e.to_string()));
                self.lock.remove_plugin(&p.name);
                continue;
            }
            match settings.enable_plugin(&p.id()) {
                Ok(Change::KeptUsers) => self.report.notes.push(format!(
                    "plugin {} is disabled in {}: left as you set it",
                    p.id(),
                    self.paths.show("settings.json")
                )),
                Ok(_) => {}
                Err(e) => {
                    self.problem(Problem::new(Class::Conflict, e.to_string()));
                    self.lock.remove_plugin(&p.name);
                }
            }
            if self.opts.claude.is_none() {
                self.lock.put_plugin(p.clone());
            }
        }
        for p in gone {
            settings.forget_plugin(&p.id());
        }
        if let Err(e) = settings.save() {
            self.problem(Problem::from_io(&e, &path.display().to_string()));
        }
    }
}

/// Adds the `SessionStart` hook that runs `skill-pool ensure --hook` to the project's (or the
/// user's) `settings.json`. Returns the settings file and whether it changed.
pub fn install_hook(settings_path: &Path, command: &str) -> Result<bool, Problem> {
    let settings = Settings::load(settings_path).map_err(|e| Problem::new(Class::Conflict, e.to_string()))?;
    let change = settings
        .add_session_start_hook(command, "skill-pool ensure", 30)
        .map_err(|e| Problem::new(Class::Conflict, e.to_string()))?;
    if change == Change::Added {
        settings
            .save()
            .map_err(|e| Problem::from_io(&e, &settings_path.display().to_string()))?;
        Ok(true)
    } else {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(v: &str, archived: bool) -> PieceVersion {
        PieceVersion {
            kind: PieceKind::Skill,
            slug: "a".into(),
            version: v.into(),
            description: None,
            metadata: serde_json::Value::Null,
            digest: String::new(),
            archived,
            created_at: String::new(),
            created_by: String::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn choosing_versions() {
        let list = [
            version("1.0.0", false),
            version("1.2.0", false),
            version("1.3.0", true),
            version("2.0.0", false),
        ];
        let w = |s| manifest::parse_want(s).unwrap();
        assert_eq!(choose(&w(""), &list).as_deref(), Some("2.0.0"));
        assert_eq!(
            choose(&w("^1"), &list).as_deref(),
            Some("1.2.0"),
            "archived versions are not picked by a requirement"
        );
        assert_eq!(
            choose(&w("1.3.0"), &list).as_deref(),
            Some("1.3.0"),
            "but an exact pin may name one"
        );
        assert_eq!(choose(&w("^3"), &list), None);
    }

    #[test]
    fn where_pieces_land() {
        let files = vec![
            UploadFile {
                path: "SKILL.md".into(),
                mode: FileMode::Regular,
                data: b"x".to_vec(),
            },
            UploadFile {
                path: "scripts/run.sh".into(),
                mode: FileMode::Executable,
                data: b"y".to_vec(),
            },
        ];
        let t = target_paths(PieceKind::Skill, "a", &files);
        assert_eq!(t[0].0, "skills/a/SKILL.md");
        assert_eq!(t[1].0, "skills/a/scripts/run.sh");
        assert_eq!(t[1].1, FileMode::Executable);
        let t = target_paths(PieceKind::Agent, "rev", &files[..1]);
        assert_eq!(t[0].0, "agents/rev.md");
        let t = target_paths(PieceKind::Command, "go", &files[..1]);
        assert_eq!(t[0].0, "commands/go.md");
    }

    #[test]
    fn paths_of_a_project() {
        let p = Paths::for_manifest(Path::new("/w/proj/.skill-pool/manifest.toml"), None);
        assert_eq!(p.project, Path::new("/w/proj"));
        assert_eq!(p.lock, Path::new("/w/proj/.skill-pool/manifest.lock"));
        assert_eq!(p.claude_dir, Path::new("/w/proj/.claude"));
        let p = Paths::for_manifest(Path::new("/w/proj/.skill-pool/manifest.toml"), Some(Path::new("/home/u/.claude")));
        assert_eq!(p.claude_dir, Path::new("/home/u/.claude"));
        assert_eq!(p.scope, Scope::User);
    }
}
