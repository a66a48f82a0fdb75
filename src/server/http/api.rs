//! `/api/v1`: JSON for programmatic callers (cookie or Bearer auth). Each
//! handler authenticates, calls the same service function the pages use,
//! and picks the status; the rules live in the services.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::{
    domain::{SummaryStatus, VideoId},
    error::AppError,
    server::{
        auth::identity::{self, CurrentMember},
        services::summaries::{ReadySummary, Requested},
    },
};

/// How long a client should wait before polling a summary being made.
const POLL_AFTER_SECONDS: u32 = 2;

#[derive(Deserialize)]
pub struct SummaryRequest {
    pub url: String,
}

/// `?cursor=&limit=&q=`, all optional; parsed by the service, so a bad
/// value is a 422 naming the field rather than the framework's plain text.
#[derive(Deserialize)]
pub struct HistoryQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub q: Option<String>,
}

/// Items per page when the caller does not say.
const DEFAULT_PAGE_SIZE: u32 = 20;

async fn member(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
) -> Result<CurrentMember, AppError> {
    let account = state
        .auth
        .authenticate(&state.db, headers)
        .await?
        .ok_or(AppError::Unauthorized)?;
    identity::member_of(&state.db, &account, slug).await
}

/// `POST /api/v1/orgs/{slug}/summaries {"url": "…"}` → 200 with the
/// summary when it is ready (a cache hit or already in the org's history),
/// 202 with `Location` and `Retry-After` while it is being made, or 429
/// `{error, used, limit, resets_at}` with `Retry-After`.
pub async fn request_summary(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Json(request): Json<SummaryRequest>,
) -> Result<Response, AppError> {
    let member = member(&state, &headers, &slug).await?;
    let video = VideoId::parse(&request.url).map_err(|e| AppError::field("url", e.to_string()))?;
    Ok(match state.summaries.request(&member, &video).await? {
        Requested::Ready(summary) => ready(&summary),
        Requested::Pending => pending(&slug, &video, None),
    })
}

/// `GET /api/v1/orgs/{slug}/summaries/{video_id}`: the same shapes as the
/// POST; 404 for a video this org never asked for.
pub async fn get_summary(
    State(state): State<AppState>,
    Path((slug, video_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let member = member(&state, &headers, &slug).await?;
    let video = VideoId::try_from(video_id).map_err(|_| AppError::NotFound("summary".into()))?;
    match state.summaries.status(&member, &video).await? {
        SummaryStatus::Ready { view, from_cache } => {
            Ok(ready(&ReadySummary::from_view(&view, from_cache)?))
        }
        SummaryStatus::Working { stage, .. } => Ok(pending(&slug, &video, Some(&stage))),
        SummaryStatus::Failed { message } => Err(AppError::Conflict(message)),
        SummaryStatus::NotRequested => Err(AppError::NotFound("summary".into())),
    }
}

/// `GET /api/v1/orgs/{slug}/summaries?cursor=&limit=&q=`: the org's
/// history, newest first, `{items, next_cursor}` (keyset pagination).
pub async fn list_summaries(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, AppError> {
    let member = member(&state, &headers, &slug).await?;
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_PAGE_SIZE,
        Some(raw) => raw
            .parse()
            .map_err(|_| AppError::field("limit", "The page size must be a whole number."))?,
    };
    let page = state
        .summaries
        .history(&member, query.q.as_deref(), query.cursor.as_deref(), limit)
        .await?;
    Ok(Json(json!({ "items": page.items, "next_cursor": page.next_cursor })).into_response())
}

fn ready(summary: &ReadySummary) -> Response {
    Json(summary).into_response()
}

fn pending(slug: &str, video: &VideoId, stage: Option<&str>) -> Response {
    let location = format!("/api/v1/orgs/{slug}/summaries/{video}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({
            "video_id": video.as_str(),
            "status": "working",
            "stage": stage.unwrap_or("queued"),
            "page": format!("/o/{slug}/v/{video}"),
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(POLL_AFTER_SECONDS));
    response
}
