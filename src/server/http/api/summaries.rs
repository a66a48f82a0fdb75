//! `/api/v1/orgs/{slug}/summaries`: ask for a summary, poll it, page
//! through the org's history. The rules (permission, quota, throttle,
//! cache) are the summaries engine's; these handlers pick the status.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    ApiResult,
    caller::OrgMember,
    idempotent,
    input::{ApiBody, ApiQuery},
};
use crate::{
    domain::{SummaryStatus, VideoId},
    error::AppError,
    server::{
        http::{AppState, error_response::ErrorEnvelope},
        services::summaries::{HistoryPage, ReadySummary, Requested},
    },
};

/// How long a client should wait before polling a summary being made.
const POLL_AFTER_SECONDS: u32 = 2;

/// Items per page when the caller does not say.
const DEFAULT_PAGE_SIZE: u32 = 20;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryRequest {
    /// A YouTube link (watch, youtu.be, shorts, embed, live, music) or a
    /// bare 11-character video id.
    pub url: String,
}

/// A summary still being made: poll `Location` after `Retry-After` seconds.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingSummary {
    pub video_id: String,
    /// Always `working`.
    pub status: String,
    /// `queued`, `fetching_transcript`, `summarizing` or `done`.
    pub stage: String,
    /// The page a person can open to watch it being written.
    pub page: String,
}

/// `?cursor=&limit=&q=`, all optional; parsed by the service, so a bad
/// value is a 422 naming the field.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (20 when absent).
    pub limit: Option<String>,
    /// Only titles containing this text.
    pub q: Option<String>,
}

/// Ask for the summary of a video. Ready at once when it is in the shared
/// cache or already in the org's history; otherwise it is being made.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{slug}/summaries",
    tag = "summaries",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body return the first answer"),
    ),
    request_body = SummaryRequest,
    responses(
        (status = 200, description = "The summary, ready", body = ReadySummary),
        (status = 202, description = "Being made; poll `Location`", body = PendingSummary,
            headers(("Location" = String), ("Retry-After" = u32))),
        (status = 409, description = "The video has no summary we can make (no transcript, private, too long…: `conflict`), or a request with this Idempotency-Key is still running (`in_progress`)", body = ErrorEnvelope),
        (status = 429, description = "`quota_exceeded` (the month's summaries are used) or `rate_limited` (too fast)", body = ErrorEnvelope,
            headers(("Retry-After" = u64))),
    ),
)]
pub async fn request_summary(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    headers: HeaderMap,
    body: ApiBody<SummaryRequest>,
) -> ApiResult<Response> {
    let route = "/api/v1/orgs/{slug}/summaries";
    idempotent::once(&state.db, &member, &headers, route, &body.raw, || async {
        let url = &body.value.url;
        let video = VideoId::parse(url).map_err(|e| AppError::field("url", e.to_string()))?;
        Ok(match state.summaries.request(&member, &video).await? {
            Requested::Ready(summary) => Json(summary).into_response(),
            Requested::Pending => pending(&member.org.slug, &video, None),
        })
    })
    .await
}

/// The summary of a video this org asked for: the same shapes as the POST.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/summaries/{video_id}",
    tag = "summaries",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("video_id" = String, Path, description = "The 11-character YouTube video id"),
    ),
    responses(
        (status = 200, description = "The summary, ready", body = ReadySummary),
        (status = 202, description = "Being made; poll again", body = PendingSummary,
            headers(("Location" = String), ("Retry-After" = u32))),
        (status = 404, description = "Not in this org's history", body = ErrorEnvelope),
        (status = 409, description = "Making it failed", body = ErrorEnvelope),
    ),
)]
pub async fn get_summary(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    Path((_, video_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let video = VideoId::try_from(video_id).map_err(|_| AppError::NotFound("summary".into()))?;
    match state.summaries.status(&member, &video).await? {
        SummaryStatus::Ready { view, from_cache } => {
            Ok(Json(ReadySummary::from_view(&view, from_cache)?).into_response())
        }
        SummaryStatus::Working { stage, .. } => Ok(pending(&member.org.slug, &video, Some(&stage))),
        SummaryStatus::Failed { message } => Err(AppError::Conflict(message)),
        SummaryStatus::NotRequested => Err(AppError::NotFound("summary".into())),
    }
}

/// The org's history, newest first, a page at a time (keyset pagination:
/// pass `next_cursor` back as `cursor`).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/summaries",
    tag = "summaries",
    params(("slug" = String, Path, description = "The organization's slug"), HistoryQuery),
    responses(
        (status = 200, description = "A page of history", body = HistoryPage),
        (status = 422, description = "A bad `limit` or `cursor`", body = ErrorEnvelope),
    ),
)]
pub async fn list_summaries(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
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
    Ok(Json(page))
}

fn pending(slug: &str, video: &VideoId, stage: Option<&str>) -> Response {
    let location = format!("/api/v1/orgs/{slug}/summaries/{video}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(PendingSummary {
            video_id: video.as_str().to_owned(),
            status: "working".into(),
            stage: stage.unwrap_or("queued").to_owned(),
            page: format!("/o/{slug}/v/{video}"),
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(POLL_AFTER_SECONDS));
    response
}
