//! What a server function needs from its request: state, headers, the
//! response to add cookies and status to, and the signed-in account.

use axum::{
    extract::ConnectInfo,
    http::{HeaderValue, StatusCode, header, request::Parts},
};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::AppState;
use crate::{
    domain::Viewer,
    error::AppError,
    server::auth::{
        client_ip::client_ip,
        identity::{self, CurrentAccount, CurrentMember, SessionHandle},
        session,
    },
};

pub struct Ctx {
    pub state: AppState,
    pub parts: Parts,
    response: ResponseOptions,
}

pub fn ctx() -> Result<Ctx, AppError> {
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

    pub async fn viewer(&self) -> Result<Option<Viewer>, AppError> {
        let Some(account) = self.maybe_account().await? else {
            return Ok(None);
        };
        // Never the case today (server functions do not read API keys), but
        // a key session would see its one org, not its creator's others.
        let orgs = match &account.session {
            SessionHandle::ApiKey { member, .. } => vec![member.clone()],
            _ => identity::memberships(&self.state.db, account.id).await?,
        };
        let active_slug = identity::active_org(&account, &orgs).map(|o| o.slug);
        Ok(Some(Viewer {
            email: account.email.as_ref().map(|e| e.to_string()),
            orgs,
            active_slug,
            builtin: matches!(account.session, SessionHandle::Builtin { .. }),
        }))
    }

    /// Our public origin: PUBLIC_URL's when set, else what the browser asked for.
    pub fn site_origin(&self) -> String {
        if let Some(origin) = &self.state.web.public_origin {
            return origin.clone();
        }
        let host = self
            .parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
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
        leptos_axum::redirect(&safe_next(next).unwrap_or_else(|| "/app".into()));
        Ok(())
    }

    pub fn set_cookie(&self, cookie: String) {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            self.response.append_header(header::SET_COOKIE, value);
        }
    }

    pub fn secure_cookies(&self) -> bool {
        self.state.web.secure_cookies
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
    pub fn finish<T>(&self, result: Result<T, AppError>) -> Result<T, AppError> {
        if let Err(error) = &result
            && !self.is_form_post()
        {
            self.response.set_status(
                StatusCode::from_u16(error.status_code())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            if let Some(seconds) = error.retry_after() {
                self.response
                    .insert_header(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
        }
        result
    }
}

/// Only local paths are followed after sign-in, never another site.
pub fn safe_next(next: Option<String>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
}
