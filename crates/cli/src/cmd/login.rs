//! `skill-pool login`, `logout` and `whoami`: the saved URL and token, and who the token is.

use skill_pool_cli::config;
use skill_pool_client::Client;

use super::{JsonFlag, client};
use crate::Cli;
use crate::failure::{Outcome, usage};
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Tenant root URL, e.g. http://127.0.0.1:8080/t/acme (default: SKILL_POOL_URL).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// API token (`sp_…`) (default: SKILL_POOL_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Checks `--url`/`--token` against the server, then saves them.
pub async fn login(cli: &Cli, args: &LoginArgs) -> Outcome {
    let url = args
        .url
        .clone()
        .or_else(|| cli.url.clone())
        .ok_or_else(|| usage("login needs --url <tenant URL> (or SKILL_POOL_URL)"))?;
    let token = args
        .token
        .clone()
        .or_else(|| cli.token.clone())
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

/// Removes the saved login, if any.
pub fn logout() -> Outcome {
    let path = config::config_path().ok_or_else(|| usage("no HOME or XDG_CONFIG_HOME: nothing saved"))?;
    if config::remove(&path)? {
        eprintln!("removed {}", path.display());
    } else {
        eprintln!("nothing saved at {}", path.display());
    }
    Ok(())
}

/// Shows the tenant and role the token acts as.
pub async fn whoami(cli: &Cli, f: JsonFlag) -> Outcome {
    let me = client(cli)?.whoami().await?;
    if f.json {
        return print_json(&me);
    }
    println!("tenant   {} ({})", me.tenant, me.tenant_display_name);
    println!("token    {} ({})", me.token_name, me.role);
    println!("url      {}", me.tenant_url);
    Ok(())
}

/// `skill-pool usage`: what the tenant uses against its limits.
pub async fn show_usage(cli: &Cli, f: JsonFlag) -> Outcome {
    let u = client(cli)?.usage().await?;
    if f.json {
        return print_json(&u);
    }
    let limit = |v: Option<u64>| v.map_or("no quota".to_string(), |n| format!("of {n}"));
    let bytes = |v: Option<u64>| v.map_or("no quota".to_string(), |n| format!("of {}", crate::output::human_size(n)));
    println!("plugins          {} ({})", u.plugins, limit(u.limits.max_plugins));
    println!("plugin versions  {} ({})", u.plugin_versions, limit(u.limits.max_versions));
    println!(
        "stored           {} ({})",
        crate::output::human_size(u.bytes_stored),
        bytes(u.limits.max_bytes)
    );
    println!(
        "catalogue        {} (of {})",
        crate::output::human_size(u.catalogue_bytes),
        crate::output::human_size(u.limits.max_catalogue_bytes)
    );
    Ok(())
}
