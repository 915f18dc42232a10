//! `skill-pool token list|create|revoke`: the tenant's API tokens (admin).

use std::io::Write;

use clap::Subcommand;
use skill_pool_core::Role;
use skill_pool_core::api::CreateToken;

use super::{JsonFlag, client};
use crate::Cli;
use crate::failure::{Outcome, usage};
use crate::output::print_json;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List the tenant's tokens (never their secrets).
    #[command(after_help = "Example:\n  skill-pool token list --json")]
    List(JsonFlag),
    /// Create a token; its secret is printed once, alone on the last line.
    #[command(after_help = "Examples:\n  skill-pool token create --name ci --role member\n  \
        skill-pool token create --name laptops --role reader --expires-in-days 90\n\n\
        Roles: admin (everything), member (reads all of /v1), reader (the catalogue, git and\n\
        downloads only: the token to hand out for a private tenant).")]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "member", "reader"])]
        role: String,
        /// The token stops working this many days from now (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// Revoke a token by id.
    #[command(after_help = "Example:\n  skill-pool token revoke 12")]
    Revoke { id: i64 },
}

/// Runs one `skill-pool token` subcommand.
pub async fn run(cli: &Cli, command: &TokenCommand) -> Outcome {
    match command {
        TokenCommand::List(f) => {
            let tokens = client(cli)?.list_tokens().await?;
            if f.json {
                return print_json(&tokens);
            }
            for t in &tokens {
                let mut state = match (&t.revoked_at, &t.last_used_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(u)) => format!("last used {u}"),
                    (None, None) => "never used".into(),
                };
                if let Some(at) = &t.expires_at {
                    state.push_str(&format!(", expires {at}"));
                }
                println!("{:<6} {:<24} {:<7} {}…  {state}", t.id, t.name, t.role, t.prefix);
            }
            Ok(())
        }
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
        } => {
            let role: Role = role.parse().map_err(|_| usage("role is admin, member or reader"))?;
            let created = client(cli)?
                .create_token(&CreateToken {
                    name: name.clone(),
                    role,
                    expires_in_days: *expires_in_days,
                })
                .await?;
            let expiry = match &created.token.expires_at {
                Some(at) => format!(", expires {at}"),
                None => String::new(),
            };
            eprintln!(
                "created token {} `{}` ({}{expiry}); the secret is shown only now:",
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
