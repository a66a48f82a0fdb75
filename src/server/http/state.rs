use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::{net::IpAddr, sync::Arc};

use crate::server::{
    auth::identity::Authenticator,
    clients::mailer::Mailer,
    db::Db,
    live::Hub,
    services::{billing::Billing, summaries::SummaryEngine},
};

/// What every handler (and every server function, through context) can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub auth: Authenticator,
    pub mailer: Mailer,
    pub summaries: SummaryEngine,
    pub billing: Billing,
    pub web: Arc<WebSettings>,
    /// The org event streams' fan-out (`GET /o/{slug}/events`).
    pub live: Hub,
}

/// Facts about how we are served that requests need.
#[derive(Clone, Debug, Default)]
pub struct WebSettings {
    /// Served over https (PUBLIC_URL says so): cookies get `Secure`.
    pub secure_cookies: bool,
    /// `scheme://host[:port]` from PUBLIC_URL, the origin browsers send us.
    pub public_origin: Option<String>,
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed to call `/api/v1` from a browser with a Bearer key.
    pub cors_origins: Vec<String>,
    /// Orgs one account may create a day (0: no limit).
    pub orgs_per_day: i32,
    /// Built-in sign-ups one client address may make an hour.
    pub sign_ups_per_hour: u32,
}

impl WebSettings {
    /// Our public origin: PUBLIC_URL's when set, else what the client asked
    /// for (`Host`).
    pub fn site_origin(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(origin) = &self.public_origin {
            return origin.clone();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
