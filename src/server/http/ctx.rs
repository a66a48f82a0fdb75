//! What a server function needs from its request: state, headers, the
//! response to add cookies and status to, and the signed-in account.

use axum::{
    extract::ConnectInfo,
    http::{HeaderValue, header, request::Parts},
};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::AppState;
use crate::{
    domain::NextPath,
    error::AppError,
    server::auth::{
        client_ip::client_ip,
        identity::{self, CurrentAccount, CurrentMember},
        session,
    },
};

pub struct Ctx {
    pub state: AppState,
    pub parts: Parts,
    response: ResponseOptions,
}

/// Runs a server function's body with its request context, then gives an
/// error its HTTP status (see [`Ctx::finish`]). Every `#[server]` fn goes
/// through here, so none can forget `finish`. Call it only from inside a
/// server function: the context comes from Leptos' reactive owner.
pub async fn serve<T>(f: impl AsyncFnOnce(&Ctx) -> Result<T, AppError>) -> Result<T, AppError> {
    let ctx = ctx()?;
    let result = f(&ctx).await;
    ctx.finish(result)
}

fn ctx() -> Result<Ctx, AppError> {
    let missing = || AppError::internal(anyhow::anyhow!("server function context missing"));
    Ok(Ctx {
        state: use_context::<AppState>().ok_or_else(missing)?,
        parts: use_context::<Parts>().ok_or_else(missing)?,
        response: use_context::<ResponseOptions>().ok_or_else(missing)?,
    })
}

impl Ctx {
    pub async fn account(&self) -> Result<CurrentAccount, AppError> {
        self.maybe_account().await?.ok_or(AppError::Unauthorized)
    }

    pub async fn maybe_account(&self) -> Result<Option<CurrentAccount>, AppError> {
        self.state
            .auth
            .authenticate(&self.state.db, &self.parts.headers)
            .await
    }

    /// The signed-in account as a member of the org at `slug` (404 if not one).
    pub async fn member(&self, slug: &str) -> Result<CurrentMember, AppError> {
        let account = self.account().await?;
        identity::member_of(&self.state.db, &account, slug).await
    }

    /// Our public origin: PUBLIC_URL's when set, else what the browser asked for.
    pub fn site_origin(&self) -> String {
        self.state.web.site_origin(&self.parts.headers)
    }

    pub fn client_ip(&self) -> IpAddr {
        let peer = self
            .parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        client_ip(peer, &self.parts.headers, &self.state.web.trusted_proxies)
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
    }

    /// Signs `account` in: a new session, its cookie, and a redirect to
    /// `next` (a local path) or the app.
    pub async fn start_session(
        &self,
        account: crate::domain::AccountId,
        active_org: Option<crate::domain::OrgId>,
        next: Option<String>,
    ) -> Result<(), AppError> {
        let token = session::create(&self.state.db, account, active_org, self.user_agent())
            .await
            .map_err(AppError::from)?;
        self.set_cookie(session::cookie(token, self.secure_cookies()));
        leptos_axum::redirect(safe_next(next.as_deref()).as_str());
        Ok(())
    }

    pub fn set_cookie(&self, cookie: String) {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            self.response.append_header(header::SET_COOKIE, value);
        }
    }

    /// Served over https (PUBLIC_URL, or a trusted proxy's
    /// `X-Forwarded-Proto`): the cookie is `__Host-` and `Secure` then.
    pub fn secure_cookies(&self) -> bool {
        let peer = self
            .parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        super::security_headers::over_https(&self.state.web, peer, &self.parts.headers)
    }

    /// A plain HTML form post (no JavaScript): answered with a redirect, so
    /// errors travel in the URL rather than in the status.
    fn is_form_post(&self) -> bool {
        self.parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    }

    /// Gives an error its HTTP status (and `Retry-After`) for API callers.
    fn finish<T>(&self, result: Result<T, AppError>) -> Result<T, AppError> {
        if let Err(error) = &result
            && !self.is_form_post()
        {
            self.response.set_status(error.http_status());
            if let Some(seconds) = error.retry_after() {
                self.response
                    .insert_header(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
        }
        result
    }
}

/// Sends the browser to a URL another service gave us (Dodo's checkout
/// and portal). Re-serialized by a URL parser first, so a stray control
/// character is encoded instead of panicking `leptos_axum::redirect`.
pub fn redirect_external(url: &str) -> Result<(), AppError> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("not a web URL to redirect to")))?;
    leptos_axum::redirect(parsed.as_str());
    Ok(())
}

/// Only local paths are followed after sign-in, never another site; a
/// refused or missing `next` lands on the app (no error: the person did
/// sign in).
pub fn safe_next(next: Option<&str>) -> NextPath {
    next.and_then(|n| NextPath::parse(n).ok())
        .unwrap_or_else(NextPath::app)
}
