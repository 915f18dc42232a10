//! `skill-pool-server`: the server (`serve`, the default) and its admin subcommands, which
//! work on the same database as a running server (no restart needed).

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use skill_pool_core::Role;
use skill_pool_core::api::{ServeAs, UpdateTenant, Visibility};
use skill_pool_registry::{Actor, Principal};
use skill_pool_server::{ServeArgs, ServerConfig, StorageArgs, open_store, registry_for};
use tracing_subscriber::EnvFilter;

/// skill-pool: a self-hosted, multi-tenant registry and Claude Code plugin marketplace.
#[derive(Debug, Parser)]
#[command(name = "skill-pool-server", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Log as JSON lines instead of text (also SKILL_POOL_LOG_FORMAT=json). Log levels: SKILL_POOL_LOG, e.g. `info,skill_pool_registry=debug`.
    #[arg(long, env = "SKILL_POOL_LOG_JSON", global = true)]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(StorageArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage portal users.
    #[command(subcommand)]
    User(UserCommand),
    /// Delete every file body that no piece or plugin version of any tenant references (left by refused or killed
    /// publishes); safe beside a running server. Purges and plugin deletes collect their own bodies already.
    #[command(after_help = "Example:\n  skill-pool-server gc --data-dir /var/lib/skill-pool")]
    Gc {
        #[command(flatten)]
        server: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant: `<slug>` is its marketplace name (lowercase letters, digits, hyphens).
    Create {
        slug: String,
        /// The name shown as the marketplace owner (default: the slug).
        #[arg(long)]
        display_name: Option<String>,
        /// `private`: the catalogue, git and pages need a token of the tenant.
        #[arg(long, default_value = "public")]
        visibility: Visibility,
        #[command(flatten)]
        server: ServeArgs,
    },
    /// Change a tenant's settings (also `PATCH /v1/tenant` and `skill-pool tenant set`).
    #[command(after_help = "Example:\n  skill-pool-server tenant set acme --visibility private")]
    Set {
        slug: String,
        #[arg(long)]
        display_name: Option<String>,
        /// `public` or `private`.
        #[arg(long)]
        visibility: Option<Visibility>,
        /// `git` or `archive`: how the catalogue points at internal and mirrored plugins.
        #[arg(long)]
        serve_as: Option<ServeAs>,
        #[command(flatten)]
        server: ServeArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        server: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token and print it once, alone on the last line of standard output.
    Create {
        #[arg(long)]
        tenant: String,
        /// admin, member, or reader (catalogue, git and downloads only).
        #[arg(long, value_parser = ["admin", "member", "reader"])]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// The token stops working this many days from now (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        server: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a portal user; the password is read from standard input (at least 12 characters).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["admin", "member"])]
        role: String,
        #[command(flatten)]
        server: ServeArgs,
    },
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("SKILL_POOL_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let json = json || std::env::var("SKILL_POOL_LOG_FORMAT").is_ok_and(|v| v == "json");
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives while the server is still starting
/// (before it serves) is not lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing the SIGTERM handler")?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested, draining connections");
    })
}

async fn tenant_id(registry: &skill_pool_registry::Registry, slug: &str) -> anyhow::Result<skill_pool_store::TenantId> {
    match registry.tenant_by_slug(slug).await? {
        Some(t) => Ok(t.id),
        None => bail!("tenant `{slug}` not found: create it with `skill-pool-server tenant create {slug}`"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Migrate(storage)) => {
            open_store(&storage.data_dir, &storage.database_url()).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Some(Command::Tenant(TenantCommand::Create {
            slug,
            display_name,
            visibility,
            server,
        })) => {
            let registry = admin_registry(&server).await?;
            let tenant = registry.create_tenant(&Principal::Operator, &slug, display_name.as_deref()).await?;
            if visibility != Visibility::Public {
                let change = UpdateTenant {
                    visibility: Some(visibility),
                    ..UpdateTenant::default()
                };
                registry.update_tenant(&Actor::operator(tenant.id), change).await?;
            }
            let private = if visibility == Visibility::Private { ", private" } else { "" };
            println!("created tenant {} ({}){private}", tenant.slug, tenant.display_name);
            Ok(())
        }
        Some(Command::Tenant(TenantCommand::Set {
            slug,
            display_name,
            visibility,
            serve_as,
            server,
        })) => {
            let registry = admin_registry(&server).await?;
            let id = tenant_id(&registry, &slug).await?;
            let change = UpdateTenant {
                display_name,
                visibility,
                serve_as,
            };
            let t = registry.update_tenant(&Actor::operator(id), change).await?;
            println!(
                "tenant {}: {}, serves {}, \"{}\"",
                t.slug,
                t.visibility.as_str(),
                t.serve_as.as_str(),
                t.display_name
            );
            Ok(())
        }
        Some(Command::Tenant(TenantCommand::List { server })) => {
            let registry = admin_registry(&server).await?;
            for t in registry.list_tenants(&Principal::Operator).await? {
                println!("{}\t{}", t.slug, t.display_name);
            }
            Ok(())
        }
        Some(Command::Token(TokenCommand::Create {
            tenant,
            role,
            name,
            expires_in_days,
            server,
        })) => {
            let registry = admin_registry(&server).await?;
            let id = tenant_id(&registry, &tenant).await?;
            let role = Role::parse(&role).context("role")?;
            let created = registry
                .create_token_expiring(&Actor::operator(id), &name, role, expires_in_days)
                .await?;
            println!(
                "created {role} token `{}` for tenant {tenant}; it is shown only once:",
                created.token.name
            );
            println!("{}", created.secret);
            Ok(())
        }
        Some(Command::Gc { server }) => {
            let registry = admin_registry(&server).await?;
            let r = registry.collect_garbage(&Principal::Operator).await?;
            println!(
                "{} file bodies checked, {} unreferenced deleted, {} leftover temporary files deleted",
                r.bodies, r.deleted, r.leftovers
            );
            Ok(())
        }
        Some(Command::User(UserCommand::Create {
            tenant,
            username,
            role,
            server,
        })) => {
            let registry = admin_registry(&server).await?;
            let id = tenant_id(&registry, &tenant).await?;
            let role = Role::parse(&role).context("role")?;
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            registry.create_user(&Actor::operator(id), &username, password, role).await?;
            println!("created {role} user {username} in tenant {tenant}");
            Ok(())
        }
    }
}

/// The registry as `serve` would build it from the same flags and environment (so the public
/// URL, the limits and the database are the server's), without binding the address.
async fn admin_registry(args: &ServeArgs) -> anyhow::Result<skill_pool_registry::Registry> {
    let config = ServerConfig::from_args(args, args.bind);
    let store = open_store(&config.data_dir, &config.database_url).await?;
    Ok(registry_for(store, &config))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let bound = listener.local_addr()?;
    let config = ServerConfig::from_args(&args, bound);
    skill_pool_server::serve(config, listener, shutdown).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    // Everything the server writes (database, blobs, repos, tokens) is readable by its owner only.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
