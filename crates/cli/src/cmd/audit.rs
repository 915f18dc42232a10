//! `skill-pool audit`: the tenant's audit log, newest first.

use clap::Args;

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
    #[command(flatten)]
    json: JsonFlag,
}

/// Prints the newest `--limit` audit entries.
pub async fn run(cli: &Cli, args: &AuditArgs) -> Outcome {
    let page = client(cli)?.audit(args.limit).await?;
    if args.json.json {
        return print_json(&page);
    }
    for e in &page.items {
        println!("{}  {:<14} {:<22} {}", e.created_at, e.actor, e.action, e.target);
    }
    Ok(())
}
