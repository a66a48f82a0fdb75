//! `/api/v1`: JSON for programmatic callers (cookie or Bearer auth).

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::{
    domain::{Permission, VideoId},
    error::AppError,
    server::auth::identity,
};

#[derive(Deserialize)]
pub struct SummaryRequest {
    pub url: String,
}

/// `POST /api/v1/orgs/{slug}/summaries {"url": "…"}` → 202 with where to
/// look, or 429 `{error, used, limit, resets_at}` with `Retry-After`.
pub async fn request_summary(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Json(request): Json<SummaryRequest>,
) -> Result<Response, AppError> {
    let account = state
        .auth
        .authenticate(&state.db, &headers)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let member = identity::member_of(&state.db, &account, &slug).await?;
    member.require(Permission::Summarize)?;
    let video = VideoId::parse(&request.url).map_err(|e| AppError::field("url", e.to_string()))?;
    state.summaries.request(&member, &video).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "video_id": video.as_str(),
            "page": format!("/o/{slug}/v/{video}"),
        })),
    )
        .into_response())
}
