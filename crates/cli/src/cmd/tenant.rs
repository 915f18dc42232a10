//! `skill-pool tenant show | set`: the tenant's settings (who may read it, how it serves plugins).

use clap::Subcommand;
use skill_pool_core::api::{ServeAs, TenantSettings, UpdateTenant, Visibility};

use super::{JsonFlag, client};
use crate::Cli;
use crate::failure::{Outcome, usage};
use crate::output::print_json;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Show the tenant's settings.
    #[command(after_help = "Example:\n  skill-pool tenant show --json")]
    Show(JsonFlag),
    /// Change the tenant's settings (admin).
    #[command(
        after_help = "Examples:\n  skill-pool tenant set --visibility private\n  skill-pool tenant set --serve-as archive\n\n\
        A private tenant's catalogue, git endpoint and marketplace pages need a token of the tenant\n\
        (a `reader` token is enough): see docs/private-marketplaces.md."
    )]
    Set {
        /// `public` (anyone may read the catalogue and clone) or `private`.
        #[arg(long)]
        visibility: Option<Visibility>,
        /// `git` (Claude Code clones) or `archive` (Claude Code downloads a zip, https only).
        #[arg(long)]
        serve_as: Option<ServeAs>,
        /// The name shown as the marketplace's owner.
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

fn print(t: &TenantSettings) {
    println!("tenant       {} ({})", t.slug, t.display_name);
    println!("visibility   {}", t.visibility.as_str());
    println!("serves       {}", t.serve_as.as_str());
    println!("marketplace  {}", t.marketplace_url);
}

pub async fn run(cli: &Cli, command: &TenantCommand) -> Outcome {
    match command {
        TenantCommand::Show(f) => {
            let t = client(cli)?.tenant_settings().await?;
            if f.json {
                return print_json(&t);
            }
            print(&t);
            Ok(())
        }
        TenantCommand::Set {
            visibility,
            serve_as,
            display_name,
            json,
        } => {
            if visibility.is_none() && serve_as.is_none() && display_name.is_none() {
                return Err(usage("nothing to change: give --visibility, --serve-as or --display-name"));
            }
            let change = UpdateTenant {
                display_name: display_name.clone(),
                visibility: *visibility,
                serve_as: *serve_as,
            };
            let t = client(cli)?.update_tenant(&change).await?;
            if json.json {
                return print_json(&t);
            }
            print(&t);
            if *visibility == Some(Visibility::Private) {
                eprintln!(
                    "the catalogue, git and marketplace pages now need a token of the tenant; give developers a reader token \
                     (`skill-pool token create --role reader --name laptops`) and have them run `skill-pool setup claude`"
                );
            }
            Ok(())
        }
    }
}
