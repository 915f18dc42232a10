//! A browser for the portal tests: keeps cookies, never follows redirects, reads the CSRF
//! token of a page; and users created as `skill-pool-server user create` makes them.

#![allow(dead_code)]

use std::collections::BTreeMap;

use skill_pool_core::Role;
use skill_pool_registry::{Actor, Registry};

/// One answer: status, headers, body.
pub struct Page {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The `Set-Cookie` header that sets `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of the first `name="csrf"` field of the page.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("the page has a csrf field");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A cookie-keeping client.
pub struct Browser {
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        for v in headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let pair = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                if val.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), val.to_string());
                }
            }
        }
        let body = res.text().await.unwrap_or_default();
        Page { status, headers, body }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let res = self
            .http
            .get(url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(res).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let res = self
            .http
            .post(url)
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", self.cookie_header())
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep(res).await
    }

    /// Signs in with a password at `<root>/portal/login`; answers the login POST's page.
    pub async fn sign_in(&mut self, root: &str, username: &str, password: &str) -> Page {
        let login = self.get(&format!("{root}/portal/login")).await;
        let csrf = login.csrf();
        self.post(
            &format!("{root}/portal/login"),
            &[
                ("csrf", &csrf),
                ("method", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// The CSRF token of a signed-in page.
    pub async fn csrf(&mut self, url: &str) -> String {
        self.get(url).await.csrf()
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// Creates a portal user of `tenant` with [`PASSWORD`].
pub async fn add_user(registry: &Registry, tenant: &str, username: &str, role: Role) {
    let t = registry.tenant_by_slug(tenant).await.unwrap().expect("tenant");
    registry
        .create_user(&Actor::operator(t.id), username, PASSWORD, role)
        .await
        .expect("create user");
}
