//! `skill-pool`: the command-line client of a skill-pool server, for curators, CI and developers.
//! It talks to the server over HTTP only. Exit codes: 0 done, 1 failed, 2 usage error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use skill_pool_cli::{config, pack};
use skill_pool_client::{Client, ClientError, PublishOptions};
use skill_pool_core::api::{CreateToken, PieceKind, PieceVersion, Plugin, PublishPluginResult};
use skill_pool_core::archive::{FileMode, UploadLimits, unpack_tar_gz};
use skill_pool_core::{ErrorCode, Role, layout};

#[derive(Debug, Parser)]
#[command(
    name = "skill-pool",
    version,
    about = "Publish Claude Code skills, agents, commands and plugins to a skill-pool server",
    long_about = "Publish Claude Code skills, agents, commands and plugins to a skill-pool server.\n\n\
        The server and token come from --url/--token, else SKILL_POOL_URL/SKILL_POOL_TOKEN, else what \
        `skill-pool login` saved. The URL is a tenant root, e.g. https://pool.example.com/t/acme.\n\n\
        Exit codes: 0 done, 1 failed (the reason on stderr), 2 usage error."
)]
struct Cli {
    /// Tenant root URL, e.g. http://127.0.0.1:8080/t/acme.
    #[arg(long, global = true, env = "SKILL_POOL_URL", value_name = "URL")]
    url: Option<String>,
    /// API token (`sp_…`).
    #[arg(long, global = true, env = "SKILL_POOL_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::enum_variant_names)] // `skill-pool command …` is the interface's name
enum Command {
    /// Check a URL and token against the server and save them for later commands.
    Login,
    /// Forget the saved URL and token.
    Logout,
    /// Show the tenant and role the token acts as.
    Whoami(JsonFlag),
    /// Skills: folders with a SKILL.md.
    #[command(subcommand)]
    Skill(PieceCommand),
    /// Agents: one markdown file each.
    #[command(subcommand)]
    Agent(PieceCommand),
    /// Commands: one markdown file each.
    #[command(subcommand)]
    Command(PieceCommand),
    /// Plugins: the bundles Claude Code installs.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// API tokens of the tenant (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The tenant's audit log, newest first (admin).
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Clone, Copy, Args)]
struct JsonFlag {
    /// Print the server's JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PublishArgs {
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
enum PieceCommand {
    /// Publish a new version (a skill folder, or an agent/command markdown file).
    Publish {
        /// The skill folder (holding SKILL.md) or the markdown file.
        path: PathBuf,
        #[command(flatten)]
        args: PublishArgs,
    },
    /// List them with their latest version.
    List(JsonFlag),
    /// Show one, with its latest version's files.
    Show {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List every version, newest first, archived ones included.
    Versions {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Archive a version: no longer "latest", still fetchable and still shipped by plugins that pin it.
    Archive { slug: String, version: String },
    /// Download a version's files into a folder.
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

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Publish a plugin folder in Claude Code layout (.claude-plugin/plugin.json, skills/, agents/, commands/, hooks…).
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
    List(JsonFlag),
    /// Show one plugin: versions, contents, files, git URL.
    Show {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a plugin from the marketplace.
    Delete { slug: String },
    /// Print the URL to add in Claude Code and the commands to run there.
    MarketplaceUrl(JsonFlag),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// List the tenant's tokens (never their secrets).
    List(JsonFlag),
    /// Create a token; its secret is printed once, alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "member"])]
        role: String,
    },
    /// Revoke a token by id.
    Revoke { id: i64 },
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            code: 1,
            message: format!("{e:#}"),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let hint = match e.code() {
            Some(ErrorCode::Unauthorized) => Some("check the token, or run `skill-pool login`"),
            Some(ErrorCode::Forbidden) => Some("this needs a token with the admin role"),
            Some(ErrorCode::RateLimited | ErrorCode::Unavailable) => Some("wait a moment and run the command again"),
            Some(ErrorCode::VersionConflict) => Some("publish under a higher version (`--version`, or `version` in plugin.json)"),
            _ => None,
        };
        let message = match hint {
            Some(hint) => format!("{e}\nhint: {hint}"),
            None => e.to_string(),
        };
        Failure { code: 1, message }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

type Outcome = Result<(), Failure>;

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
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Flags and environment first, then the saved login.
fn connection(cli: &Cli) -> Result<(String, Option<String>), Failure> {
    let saved = match config::config_path() {
        Some(path) => config::load(&path)?,
        None => config::SavedLogin::default(),
    };
    let url = cli
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .or(saved.url)
        .ok_or_else(|| usage("no server URL: run `skill-pool login --url <tenant URL> --token <token>` or set SKILL_POOL_URL"))?;
    let token = cli.token.clone().filter(|t| !t.is_empty()).or(saved.token);
    Ok((url, token))
}

fn client(cli: &Cli) -> Result<Client, Failure> {
    let (url, token) = connection(cli)?;
    if token.is_none() {
        return Err(usage("no API token: run `skill-pool login` or set SKILL_POOL_TOKEN"));
    }
    Client::new(&url, token).map_err(|e| usage(e.to_string()))
}

fn print_json<T: serde::Serialize>(value: &T) -> Outcome {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

async fn run(cli: Cli) -> Outcome {
    match &cli.command {
        Command::Login => login(&cli).await,
        Command::Logout => {
            let path = config::config_path().ok_or_else(|| usage("no HOME or XDG_CONFIG_HOME: nothing saved"))?;
            if config::remove(&path)? {
                eprintln!("removed {}", path.display());
            } else {
                eprintln!("nothing saved at {}", path.display());
            }
            Ok(())
        }
        Command::Whoami(f) => {
            let me = client(&cli)?.whoami().await?;
            if f.json {
                return print_json(&me);
            }
            println!("tenant   {} ({})", me.tenant, me.tenant_display_name);
            println!("token    {} ({})", me.token_name, me.role);
            println!("url      {}", me.tenant_url);
            Ok(())
        }
        Command::Skill(c) => piece(&cli, PieceKind::Skill, c).await,
        Command::Agent(c) => piece(&cli, PieceKind::Agent, c).await,
        Command::Command(c) => piece(&cli, PieceKind::Command, c).await,
        Command::Plugin(c) => plugin(&cli, c).await,
        Command::Token(c) => token(&cli, c).await,
        Command::Audit { limit, json } => {
            let page = client(&cli)?.audit(*limit).await?;
            if json.json {
                return print_json(&page);
            }
            for e in &page.items {
                println!("{}  {:<14} {:<22} {}", e.created_at, e.actor, e.action, e.target);
            }
            Ok(())
        }
    }
}

async fn login(cli: &Cli) -> Outcome {
    let url = cli
        .url
        .clone()
        .ok_or_else(|| usage("login needs --url <tenant URL> (or SKILL_POOL_URL)"))?;
    let token = cli
        .token
        .clone()
        .ok_or_else(|| usage("login needs --token <token> (or SKILL_POOL_TOKEN)"))?;
    let client = Client::new(&url, Some(token.clone())).map_err(|e| usage(e.to_string()))?;
    let me = client.whoami().await?;
    let path = config::config_path().ok_or_else(|| usage("no HOME or XDG_CONFIG_HOME to save the login in"))?;
    config::save(
        &path,
        &config::SavedLogin {
            url: Some(client.base_url().to_string()),
            token: Some(token),
        },
    )?;
    println!(
        "logged in to {} ({}) as {} ({})",
        me.tenant, me.tenant_display_name, me.token_name, me.role
    );
    eprintln!("saved to {} (readable by you only)", path.display());
    Ok(())
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

fn folder_name(dir: &Path) -> Result<String, Failure> {
    let full = std::fs::canonicalize(dir).map_err(|e| Failure {
        code: 1,
        message: format!("{}: {e}", dir.display()),
    })?;
    full.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| usage(format!("{} has no folder name: pass --slug", dir.display())))
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

async fn piece(cli: &Cli, kind: PieceKind, command: &PieceCommand) -> Outcome {
    match command {
        PieceCommand::Publish { path, args } => {
            let (body, default_slug) = match kind {
                PieceKind::Skill => {
                    if !path.join("SKILL.md").is_file() {
                        return Err(Failure {
                            code: 1,
                            message: format!("{} has no SKILL.md: a skill is a folder with SKILL.md at its top", path.display()),
                        });
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
                    let body = std::fs::read(path).map_err(|e| Failure {
                        code: 1,
                        message: format!("{}: {e}", path.display()),
                    })?;
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                    (body, stem)
                }
            };
            let opts = PublishOptions {
                slug: Some(args.slug.clone().unwrap_or(default_slug)),
                version: args.version.clone(),
            };
            let result = client(cli)?.publish_piece(kind, body, &opts).await?;
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
                    .ok_or_else(|| Failure {
                        code: 1,
                        message: format!("{kind} `{slug}` has only archived versions: pass --version"),
                    })?,
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

/// Writes downloaded files under `dest`, refusing to overwrite anything.
fn write_files(dest: &Path, files: &[skill_pool_core::archive::UploadFile]) -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let target = dest.join(&f.path);
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(Failure {
                code: 1,
                message: format!("{} already exists: choose another --output", target.display()),
            });
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

async fn plugin(cli: &Cli, command: &PluginCommand) -> Outcome {
    match command {
        PluginCommand::Publish {
            dir,
            slug,
            version,
            dry_run,
            json,
        } => publish_plugin(cli, dir, slug.as_deref(), version.as_deref(), *dry_run, json.json).await,
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
    let layout = layout::classify(folder.files.clone()).map_err(|e| Failure {
        code: 1,
        message: format!("{}: {e}", dir.display()),
    })?;
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
    let result = client(cli)?.publish_plugin(body, &opts).await?;
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
    if p.versions.len() > 1 {
        println!("history:");
        for v in &p.versions {
            println!("  {:<4} {:<14} {}  {}", v.seq, v.effective_version, v.created_at, v.created_by);
        }
    }
}

async fn token(cli: &Cli, command: &TokenCommand) -> Outcome {
    match command {
        TokenCommand::List(f) => {
            let tokens = client(cli)?.list_tokens().await?;
            if f.json {
                return print_json(&tokens);
            }
            for t in &tokens {
                let state = match (&t.revoked_at, &t.last_used_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(u)) => format!("last used {u}"),
                    (None, None) => "never used".into(),
                };
                println!("{:<6} {:<24} {:<7} {}…  {state}", t.id, t.name, t.role, t.prefix);
            }
            Ok(())
        }
        TokenCommand::Create { name, role } => {
            let role: Role = role.parse().map_err(|_| usage("role is admin or member"))?;
            let created = client(cli)?.create_token(&CreateToken { name: name.clone(), role }).await?;
            eprintln!(
                "created token {} `{}` ({}); the secret is shown only now:",
                created.token.id, created.token.name, created.token.role
            );
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", created.secret);
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            client(cli)?.revoke_token(*id).await?;
            println!("revoked token {id}");
            Ok(())
        }
    }
}
