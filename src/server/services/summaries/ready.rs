//! The cached summary in one statement: see `serve_ready_summary` in the
//! hot-path migration for the rules (history, reserve-and-spend, the ledger
//! row, the 429) and why they are safe under concurrency.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::{
    domain::{SummaryView, UserId, VideoId},
    error::AppError,
    server::db::TenantTx,
};

/// A summary ready to send. The body is the JSON as stored, never parsed
/// and re-encoded on the way out.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReadySummary {
    pub video_id: String,
    /// Always `ready`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Served from the shared cache rather than made for this request.
    pub from_cache: bool,
    /// Made from a transcript this org pasted: visible to this org only.
    pub private: bool,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub duration_seconds: Option<i32>,
    pub thumbnail_url: Option<String>,
    pub model: String,
    pub prompt_version: String,
    pub built_in: bool,
    /// What the model wrote.
    #[schema(value_type = crate::domain::SummaryBody)]
    pub summary: Box<RawValue>,
}

impl ReadySummary {
    /// The same shape from a summary the page path already parsed.
    pub fn from_view(view: &SummaryView, from_cache: bool) -> Result<ReadySummary, AppError> {
        Ok(ReadySummary {
            video_id: view.video_id.clone(),
            status: "ready",
            from_cache,
            private: view.private,
            title: view.title.clone(),
            channel: view.channel.clone(),
            duration_seconds: view.duration_seconds.map(|d| d as i32),
            thumbnail_url: view.thumbnail_url.clone(),
            model: view.model.clone(),
            prompt_version: view.prompt_version.clone(),
            built_in: view.built_in,
            summary: serde_json::value::to_raw_value(&view.body).map_err(AppError::internal)?,
        })
    }
}

/// Summary requests per minute for one caller, shared by every process
/// (the `rate_limits` row under `key`).
pub struct Throttle {
    pub key: String,
    /// 0: no limit.
    pub per_minute: u32,
}

/// What the one statement decided.
pub enum HotPath {
    Ready(Box<ReadySummary>),
    /// The quota is used up; nothing was written.
    Exhausted {
        used: i32,
        limit: i32,
        resets_at: DateTime<Utc>,
    },
    /// The member asked more often than the per-minute throttle allows.
    Throttled {
        per_minute: i32,
        retry_after_seconds: u64,
    },
    /// Not in the shared cache (yet): the lease path takes over.
    Miss,
}

#[derive(sqlx::FromRow)]
struct Row {
    outcome: String,
    from_cache: Option<bool>,
    private: Option<bool>,
    title: Option<String>,
    channel: Option<String>,
    duration_seconds: Option<i32>,
    thumbnail_url: Option<String>,
    summary: Option<String>,
    model: Option<String>,
    prompt_version: Option<String>,
    built_in: Option<bool>,
    used: Option<i32>,
    max_used: Option<i32>,
    resets_at: Option<DateTime<Utc>>,
    retry_after: Option<i32>,
}

/// Serves `video` from the cache inside the org's transaction, if it is
/// there. `limits` is the plan catalog's `{"free": 10, …}` as JSON text;
/// `throttle` the caller's per-minute request limit.
pub async fn serve(
    tx: &mut TenantTx,
    user: UserId,
    video: &VideoId,
    limits: &str,
    throttle: &Throttle,
) -> Result<HotPath, AppError> {
    let row: Row =
        sqlx::query_as("select * from serve_ready_summary($1, $2, $3, $4::jsonb, $5, $6)")
            .bind(tx.org_id().as_uuid())
            .bind(user.as_uuid())
            .bind(video.as_str())
            .bind(limits)
            .bind(throttle.per_minute.min(i32::MAX as u32) as i32)
            .bind(&throttle.key)
            .fetch_one(tx.conn())
            .await?;
    Ok(match row.outcome.as_str() {
        "charged" | "history" => {
            let summary = row.summary.unwrap_or_default();
            HotPath::Ready(Box::new(ReadySummary {
                video_id: video.to_string(),
                status: "ready",
                from_cache: row.from_cache.unwrap_or(true),
                private: row.private.unwrap_or(false),
                title: row.title,
                channel: row.channel,
                duration_seconds: row.duration_seconds,
                thumbnail_url: row.thumbnail_url,
                model: row.model.unwrap_or_default(),
                prompt_version: row.prompt_version.unwrap_or_default(),
                built_in: row.built_in.unwrap_or(false),
                summary: RawValue::from_string(summary).map_err(AppError::internal)?,
            }))
        }
        "exhausted" => HotPath::Exhausted {
            used: row.used.unwrap_or(0),
            limit: row.max_used.unwrap_or(0),
            resets_at: row.resets_at.unwrap_or_else(Utc::now),
        },
        "throttled" => HotPath::Throttled {
            per_minute: row.max_used.unwrap_or(0),
            retry_after_seconds: row.retry_after.unwrap_or(1).max(1) as u64,
        },
        _ => HotPath::Miss,
    })
}
