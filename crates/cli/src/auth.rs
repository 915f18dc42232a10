//! The credential helpers a developer's machine runs for a private tenant, without a network
//! round trip and without the token ever landing in a URL:
//!
//! - Claude Code's `headersHelper` (`skill-pool auth header`): prints the catalogue's
//!   `Authorization` header as a JSON object. Claude Code runs it for every `https://` catalogue
//!   fetch, with `CLAUDE_CODE_MARKETPLACE_URL` set, and sends the same headers to same-origin
//!   archive downloads.
//! - git's credential helper (`skill-pool auth git-credential get`): answers git's
//!   `protocol=…/host=…` request with the token as the password, for the server it is logged in
//!   to only, and stays silent for every other host (so git asks its next helper).

use url::Url;

/// The user name git is given with the token (the server reads only the password).
pub const GIT_USERNAME: &str = "skill-pool";

/// `scheme://host[:port]`, as git's credential protocol and browsers compare origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl Origin {
    pub fn of(url: &str) -> Option<Origin> {
        let u = Url::parse(url).ok()?;
        let host = u.host_str()?.to_ascii_lowercase();
        Some(Origin {
            scheme: u.scheme().to_ascii_lowercase(),
            host,
            port: u.port_or_known_default(),
        })
    }

    /// `https://pool.example.com` or `http://127.0.0.1:8080` (the default port left out), the
    /// form of git's `credential.<url>.helper` keys.
    pub fn url(&self) -> String {
        let default = match self.scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        match self.port {
            Some(p) if Some(p) != default => format!("{}://{}:{p}", self.scheme, self.host),
            _ => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// Whether `url` (a catalogue or archive URL Claude Code asks headers for) lies under the
/// tenant root `tenant_url` the token belongs to: same origin, and the same tenant path.
pub fn covers(tenant_url: &str, url: &str) -> bool {
    let (Some(a), Some(b)) = (Origin::of(tenant_url), Origin::of(url)) else {
        return false;
    };
    if a != b {
        return false;
    }
    let root = Url::parse(tenant_url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let path = Url::parse(url).map(|u| u.path().to_string()).unwrap_or_default();
    root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
}

/// The JSON object `headersHelper` prints.
pub fn header_json(token: &str) -> String {
    serde_json::json!({ "Authorization": format!("Bearer {token}") }).to_string()
}

/// One request of git's credential-helper protocol: `key=value` lines up to a blank line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
}

impl CredentialRequest {
    pub fn parse(input: &str) -> CredentialRequest {
        let mut req = CredentialRequest::default();
        for line in input.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "protocol" => req.protocol = Some(value.to_string()),
                "host" => req.host = Some(value.to_string()),
                "path" => req.path = Some(value.to_string()),
                // `url=` (git 2.46+) carries all of it at once.
                "url" => {
                    if let Ok(u) = Url::parse(value) {
                        req.protocol = Some(u.scheme().to_string());
                        req.host = u.host_str().map(|h| match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h.to_string(),
                        });
                        let p = u.path().trim_start_matches('/');
                        if !p.is_empty() {
                            req.path = Some(p.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        req
    }

    fn origin(&self) -> Option<Origin> {
        let url = format!("{}://{}/", self.protocol.as_deref()?, self.host.as_deref()?);
        Origin::of(&url)
    }
}

/// The answer to `get`: the token for the server `tenant_url` is on, nothing for another host
/// (git then asks its next helper, or fails with the server's `401`). With `path` (git's
/// `credential.useHttpPath`), only paths under the tenant root.
pub fn credential_answer(req: &CredentialRequest, tenant_url: &str, token: &str) -> Option<String> {
    let want = Origin::of(tenant_url)?;
    if req.origin()? != want {
        return None;
    }
    if let Some(path) = &req.path {
        let full = format!("{}/{}", want.url(), path.trim_start_matches('/'));
        if !covers(tenant_url, &full) {
            return None;
        }
    }
    Some(format!("username={GIT_USERNAME}\npassword={token}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_like_git_and_browsers() {
        assert_eq!(
            Origin::of("https://Pool.example.com/t/acme").unwrap().url(),
            "https://pool.example.com"
        );
        assert_eq!(
            Origin::of("https://pool.example.com:443/x").unwrap().url(),
            "https://pool.example.com"
        );
        assert_eq!(Origin::of("http://127.0.0.1:8080/t/a").unwrap().url(), "http://127.0.0.1:8080");
        assert!(covers(
            "https://p.example/t/acme",
            "https://p.example/t/acme/.claude-plugin/marketplace.json"
        ));
        assert!(covers("https://p.example/t/acme", "https://p.example/t/acme"));
        assert!(!covers(
            "https://p.example/t/acme",
            "https://p.example/t/acme-evil/marketplace.json"
        ));
        assert!(!covers("https://p.example/t/acme", "http://p.example/t/acme"));
        assert!(!covers("https://p.example/t/acme", "https://p.example:8443/t/acme"));
        assert!(covers("https://acme.p.example", "https://acme.p.example/archives/x/1.0.0.zip"));
    }

    #[test]
    fn git_gets_the_token_for_its_server_only() {
        let root = "https://pool.example.com:8443/t/acme";
        let ask = |input: &str| credential_answer(&CredentialRequest::parse(input), root, "sp_x");
        assert_eq!(
            ask("protocol=https\nhost=pool.example.com:8443\n\n").as_deref(),
            Some("username=skill-pool\npassword=sp_x\n")
        );
        assert_eq!(ask("protocol=https\nhost=pool.example.com\n\n"), None, "another port");
        assert_eq!(ask("protocol=http\nhost=pool.example.com:8443\n\n"), None, "another scheme");
        assert_eq!(ask("protocol=https\nhost=github.com\n\n"), None);
        assert!(
            ask("protocol=https
host=pool.example.com:8443
path=t/acme/git/plugins/p.git

")
            .is_some()
        );
        assert_eq!(
            ask("protocol=https\nhost=pool.example.com:8443\npath=t/other/git/plugins/p.git\n\n"),
            None
        );
        assert!(ask("url=https://pool.example.com:8443/t/acme/git/plugins/p.git\n\n").is_some());
        assert_eq!(ask(""), None);
    }

    #[test]
    fn header_is_json() {
        let v: serde_json::Value = serde_json::from_str(&header_json("sp_abc")).unwrap();
        assert_eq!(v["Authorization"], "Bearer sp_abc");
    }
}
