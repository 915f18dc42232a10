//! `skill-pool installs`: how often the tenant's plugins were installed, and how many distinct
//! clients fetched its catalogue, per UTC day (read: any member token).

use clap::Args;

use super::client;
use crate::Cli;
use crate::failure::Outcome;
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct InstallsArgs {
    /// The window in UTC days, today included (1–366).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Print the server's JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, a: &InstallsArgs) -> Outcome {
    let s = client(cli)?.installs(a.days).await?;
    if a.json {
        return print_json(&s);
    }
    println!(
        "installs since {} ({} days), git fetches that downloaded a plugin:",
        s.since, s.days
    );
    if s.plugins.is_empty() {
        println!("  none yet");
    }
    for p in &s.plugins {
        println!("  {:<32} {:>8} in the window {:>10} in all", p.slug, p.recent, p.total);
    }
    println!("distinct clients that fetched the catalogue, per day:");
    if s.catalogue_clients.is_empty() {
        println!("  none yet");
    }
    for d in &s.catalogue_clients {
        println!("  {}  {}", d.day, d.count);
    }
    Ok(())
}
