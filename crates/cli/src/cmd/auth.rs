//! `skill-pool auth header | git-credential`: the credential helpers of a private tenant, run by
//! Claude Code (`headersHelper`) and by git (`credential.<url>.helper`). Both answer from the
//! saved login (or SKILL_POOL_URL/SKILL_POOL_TOKEN) without a network round trip, and never for
//! another server.

use std::io::{Read, Write};

use clap::Subcommand;
use skill_pool_cli::auth::{CredentialRequest, covers, credential_answer, header_json};

use super::connection;
use crate::Cli;
use crate::failure::{Failure, Outcome, usage};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Print the catalogue's `Authorization` header as JSON, for Claude Code's `headersHelper`.
    #[command(
        after_help = "Claude Code runs it for every https:// catalogue fetch of a marketplace declared with\n\
        \"headersHelper\": \"skill-pool auth header\" (`skill-pool setup claude` writes that), with\n\
        CLAUDE_CODE_MARKETPLACE_URL set; it refuses to answer for another server than the login's.\n\n\
        Example:\n  skill-pool auth header\n  {\"Authorization\":\"Bearer sp_…\"}"
    )]
    Header,
    /// git's credential helper protocol (`get`, `store`, `erase`) for the logged-in server.
    #[command(
        after_help = "git runs it as `skill-pool auth git-credential get` with protocol=/host= on standard\n\
        input; it answers the token as the password for the server of the login and nothing for\n\
        any other host. `skill-pool setup claude` configures it; by hand:\n\n\
        Example:\n  git config --global credential.https://pool.example.com.helper \"$(command -v skill-pool) auth git-credential\""
    )]
    GitCredential {
        /// What git asks: get, store or erase.
        operation: String,
    },
}

pub fn run(cli: &Cli, command: &AuthCommand) -> Outcome {
    match command {
        AuthCommand::Header => header(cli),
        AuthCommand::GitCredential { operation } => git_credential(cli, operation),
    }
}

fn header(cli: &Cli) -> Outcome {
    let (url, token) = connection(cli)?;
    let token = token.ok_or_else(|| Failure::failed("no API token: run `skill-pool login --url <tenant URL> --token <token>`"))?;
    if let Ok(asked) = std::env::var("CLAUDE_CODE_MARKETPLACE_URL")
        && !asked.is_empty()
        && !covers(&url, &asked)
    {
        return Err(Failure::failed(format!(
            "the saved login is for {url}, but Claude Code asks headers for {asked}: log in to that server, or fix the marketplace's URL"
        )));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", header_json(&token)).map_err(|e| Failure::failed(e.to_string()))?;
    Ok(())
}

fn git_credential(cli: &Cli, operation: &str) -> Outcome {
    let mut input = String::new();
    // git writes the request and closes the pipe; a bound keeps a stuck writer from costing memory.
    std::io::stdin()
        .take(64 << 10)
        .read_to_string(&mut input)
        .map_err(|e| Failure::failed(format!("reading git's request: {e}")))?;
    match operation {
        "get" => {}
        // Nothing is stored: the token comes from the login every time.
        "store" | "erase" => return Ok(()),
        other => {
            return Err(usage(format!(
                "unknown credential operation `{other}`: git sends get, store or erase"
            )));
        }
    }
    // Not logged in: say nothing, so that git asks its next helper (or reports the server's 401).
    let Ok((url, Some(token))) = connection(cli) else {
        return Ok(());
    };
    if let Some(answer) = credential_answer(&CredentialRequest::parse(&input), &url, &token) {
        let mut out = std::io::stdout().lock();
        out.write_all(answer.as_bytes()).map_err(|e| Failure::failed(e.to_string()))?;
    }
    Ok(())
}
