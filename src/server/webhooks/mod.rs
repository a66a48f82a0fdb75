//! Incoming webhooks: `POST /webhooks/dodo` on a plain axum route. No
//! cookie, no CSRF check: the Standard Webhooks signature is the
//! authentication, checked on the raw body bytes.

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
