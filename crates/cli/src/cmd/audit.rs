//! `skill-pool audit`: the tenant's audit log, newest first.

use clap::Args;
use skill_pool_client::AuditQuery;

use super::{JsonFlag, client};
use crate::Cli;
use crate::failure::Outcome;
use crate::output::print_json;

// No doc comment here: the `Audit` variant's doc comment is the subcommand's help.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many entries.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
    /// Only entries whose actor contains this (`user:ana`, `token:ci`, `operator`, `job:`).
    #[arg(long)]
    actor: Option<String>,
    /// Only entries whose action starts with this (`plugin.`, `mirror.pull`, `access.denied`).
    #[arg(long)]
    action: Option<String>,
    /// Only entries whose target contains this (`plugin:toolbox`).
    #[arg(long)]
    target: Option<String>,
    /// From this time on: RFC 3339 (2026-12-01T09:00:00Z) or a day (2026-12-01).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Before this time (a day counts up to its end).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    #[command(flatten)]
    json: JsonFlag,
}

/// Prints the newest `--limit` audit entries.
pub async fn run(cli: &Cli, args: &AuditArgs) -> Outcome {
    let query = AuditQuery {
        limit: Some(args.limit),
        actor: args.actor.clone(),
        action: args.action.clone(),
        target: args.target.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
    };
    let page = client(cli)?.audit(&query).await?;
    if args.json.json {
        return print_json(&page);
    }
    for e in &page.items {
        println!("{}  {:<14} {:<22} {}", e.created_at, e.actor, e.action, e.target);
    }
    Ok(())
}
