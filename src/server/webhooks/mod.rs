//! Incoming webhooks: `POST /webhooks/dodo` and `POST /webhooks/clerk` on
//! plain axum routes. No
//! cookie, no CSRF check: the Standard Webhooks signature is the
//! authentication, checked on the raw body bytes.

pub mod clerk;
pub mod event;
pub mod signature;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{error::AppError, server::http::AppState};

/// Dodo waits 15 s per attempt; our answer comes well before that (one
/// verification and one short transaction), and a body larger than this is
/// refused with 413 before it is read.
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;

/// `POST /webhooks/dodo`: 200 `{"outcome": …}` once the event is recorded
/// (applied, duplicate, stale, ignored, …); 403 for a bad signature, 400 for
/// a body that is not an event, 503 when the database is down (Dodo retries).
pub async fn dodo(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = state.billing.receive_webhook(&headers, &body).await;
    crate::server::metrics::webhook(match &result {
        Ok(outcome) => outcome.as_str(),
        Err(error) => error.code(),
    });
    match result {
        Ok(outcome) => Json(json!({ "outcome": outcome.as_str() })).into_response(),
        Err(error) => {
            if !matches!(error, AppError::Unavailable(_)) {
                tracing::warn!(%error, "webhook refused");
            }
            error.into_response()
        }
    }
}

/// `POST /webhooks/clerk` (Svix): 200 `{"outcome": …}` once recorded; 403
/// for a bad signature, 400 for a body that is not an event, 503 when
/// Clerk webhooks are not configured or the database is down (Svix retries).
pub async fn clerk(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let clerk = match &state.auth {
        crate::server::auth::identity::Authenticator::Clerk(clerk) => Some(clerk),
        crate::server::auth::identity::Authenticator::Builtin => None,
    };
    match crate::server::auth::clerk_sync::receive(&state.db, clerk, &headers, &body).await {
        Ok(outcome) => Json(json!({ "outcome": outcome.as_str() })).into_response(),
        Err(error) => {
            if !matches!(error, AppError::Unavailable(_)) {
                tracing::warn!(%error, "Clerk webhook refused");
            }
            error.into_response()
        }
    }
}
