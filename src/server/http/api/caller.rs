//! Who is calling `/api/v1`: a person (the session cookie, or a Clerk
//! token) or a program (an API key, `Authorization: Bearer tldw_…`), and
//! that caller as a member of the org in the path.

use axum::{
    extract::{FromRequestParts, RawPathParams},
    http::{HeaderMap, header::AUTHORIZATION, request::Parts},
};

use super::super::AppState;
use crate::{
    domain::API_KEY_PREFIX,
    error::AppError,
    server::{
        auth::identity::{self, CurrentAccount, CurrentMember},
        services::api_keys,
    },
};

/// The authenticated caller of an `/api/v1` route; 401 without one.
pub enum Caller {
    Person(CurrentAccount),
    /// An API key acts as a member of exactly one org.
    Key(CurrentMember),
}

impl Caller {
    /// The caller as a member of the org at `slug`: 404 when it is not one
    /// (another org's slug reveals nothing, key or not).
    pub async fn member_of(&self, state: &AppState, slug: &str) -> Result<CurrentMember, AppError> {
        match self {
            Caller::Person(account) => identity::member_of(&state.db, account, slug).await,
            Caller::Key(member) if member.org.slug == slug => Ok(member.clone()),
            Caller::Key(_) => Err(AppError::NotFound("organization".into())),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(secret) = api_key(&parts.headers) {
            return api_keys::authenticate(&state.db, secret)
                .await?
                .map(Caller::Key)
                .ok_or(AppError::InvalidApiKey);
        }
        state
            .auth
            .authenticate(&state.db, &parts.headers)
            .await?
            .map(Caller::Person)
            .ok_or(AppError::Unauthorized)
    }
}

/// The caller as a member of the org named by the route's `{slug}`.
pub struct OrgMember(pub CurrentMember);

impl FromRequestParts<AppState> for OrgMember {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound("organization".into()))?;
        let slug = params
            .iter()
            .find(|(name, _)| *name == "slug")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| AppError::NotFound("organization".into()))?;
        caller.member_of(state, &slug).await.map(OrgMember)
    }
}

/// `Authorization: Bearer tldw_…`: our API keys are told apart from Clerk
/// session tokens by their prefix.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| token.starts_with(API_KEY_PREFIX))
}
