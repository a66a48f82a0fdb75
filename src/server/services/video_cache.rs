//! The shared summary cache, single-flight across every process.
//!
//! A miss claims the video's row with a lease in one statement; only the
//! claimant fetches the transcript and calls the model, without holding a
//! transaction open meanwhile. Everyone else waits for the row to settle.
//! Completion is fenced on (lease owner, attempt): a worker whose lease ran
//! out and was taken over can no longer write. Permanent failures (no
//! captions…) stay cached until `retry_after`; so do transient ones (the
//! model or YouTube failed), for a short cool-down that grows with each
//! consecutive failure (doubling for the model, on a 1 → 5 → 30 min ladder
//! for YouTube): everyone waiting on the failed attempt, and every
//! request meanwhile, gets the failure at once and pays nothing, instead of
//! each calling the model again.
//!
//! A row is keyed by (video, variant): variant `''` (`None` here) is the
//! summary in the video's own language, shared by every org that wants
//! that; `Some(language)` the same video summarized in another language for
//! the orgs that chose it. Everything above holds per row. The functions
//! without a variant argument work on the `''` row.

use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

use super::db_error;
use crate::{
    domain::{SummaryBody, SummaryLanguage, SummaryView, VideoId},
    error::AppError,
    server::db::Db,
};

/// The cache row as a request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheState {
    Missing,
    Ready(Box<SummaryView>),
    /// Someone holds a live lease and is working on it.
    Working {
        stage: Option<String>,
        partial: Option<String>,
    },
    /// Failed permanently (until its TTL ends): nobody is charged for it.
    Failed {
        message: String,
    },
    /// Failed transiently, or the lease expired: free to claim again.
    /// `last_error` says why the last attempt failed, if it did.
    Claimable {
        last_error: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: Uuid,
    pub attempt: i32,
    /// Which row of the video the lease is on (`None`: the `''` row).
    pub variant: Option<SummaryLanguage>,
}

/// The `videos.variant` key of a language: `''` for the video's own.
pub fn variant_key(variant: Option<SummaryLanguage>) -> &'static str {
    variant.map_or("", SummaryLanguage::code)
}

/// How a failed attempt is remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The video cannot be summarized (no captions…): cached for `ttl`.
    Permanent { ttl: Duration },
    /// Worth trying again later: cached for `base` × 2^(earlier consecutive
    /// failures), at most `max`.
    Transient { base: Duration, max: Duration },
    /// Worth trying again later, on a ladder: cached for `steps[n]` after
    /// `n` earlier consecutive failures (the last step from then on).
    Stepped { steps: [Duration; 3] },
}

/// What a worker hands back when it is done.
#[derive(Clone, Debug)]
pub struct Completion {
    pub title: Option<String>,
    pub channel: Option<String>,
    pub duration_seconds: Option<u32>,
    pub thumbnail_url: Option<String>,
    pub language: Option<String>,
    pub body: SummaryBody,
    pub model: String,
    pub prompt_version: String,
    pub built_in: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<Value>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<String>,
    bool,
    bool,
    bool,
    Option<String>,
    Option<String>,
    Option<f64>,
);

const SELECT: &str = "select status, title, channel, duration_seconds, thumbnail_url, summary, model, prompt_version,
        built_in, failure_message,
        coalesce(lease_expires_at > now(), false),
        coalesce(retry_after > now(), false),
        consecutive_failures > 0,
        stage, partial_text,
        extract(epoch from retry_after - now())::float8
    from videos where video_id = $1 and variant = $2";

pub async fn peek(db: &Db, video: &VideoId) -> Result<CacheState, AppError> {
    peek_variant(db, video, None).await
}

/// [`peek`] for one variant of the video.
pub async fn peek_variant(
    db: &Db,
    video: &VideoId,
    variant: Option<SummaryLanguage>,
) -> Result<CacheState, AppError> {
    let mut tx = db.shared().await?;
    let state = read_variant(tx.conn(), video, variant).await?;
    tx.commit().await?;
    Ok(state)
}

/// The row's state, read inside a transaction the caller already has open
/// (the table is shared, so a tenant transaction may read it too).
pub async fn read(conn: &mut sqlx::PgConnection, video: &VideoId) -> Result<CacheState, AppError> {
    read_variant(conn, video, None).await
}

/// [`read`] for one variant of the video.
pub async fn read_variant(
    conn: &mut sqlx::PgConnection,
    video: &VideoId,
    variant: Option<SummaryLanguage>,
) -> Result<CacheState, AppError> {
    let row: Option<Row> = sqlx::query_as(SELECT)
        .bind(video.as_str())
        .bind(variant_key(variant))
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        None => CacheState::Missing,
        Some(row) => state_of(video, row),
    })
}

fn state_of(video: &VideoId, row: Row) -> CacheState {
    let (
        status,
        title,
        channel,
        duration,
        thumbnail,
        summary,
        model,
        prompt_version,
        built_in,
        failure,
        lease_live,
        ttl_live,
        transient,
        stage,
        partial,
        retry_in,
    ) = row;
    match status.as_str() {
        "ready" => match summary.and_then(|s| serde_json::from_value::<SummaryBody>(s).ok()) {
            Some(body) => CacheState::Ready(Box::new(SummaryView {
                video_id: video.to_string(),
                title,
                channel,
                duration_seconds: duration.map(|d| d.max(0) as u32),
                thumbnail_url: thumbnail,
                body,
                model: model.unwrap_or_default(),
                prompt_version: prompt_version.unwrap_or_default(),
                built_in: built_in.unwrap_or(false),
                private: false,
            })),
            None => CacheState::Claimable { last_error: None },
        },
        "pending" if lease_live => CacheState::Working { stage, partial },
        "failed" if ttl_live => CacheState::Failed {
            message: match (transient, retry_in) {
                (true, Some(seconds)) => format!(
                    "{} Nothing was charged; try again {}.",
                    failure.unwrap_or_default(),
                    retry_words(seconds)
                ),
                _ => failure.unwrap_or_default(),
            },
        },
        "failed" => CacheState::Claimable {
            last_error: failure,
        },
        _ => CacheState::Claimable { last_error: None },
    }
}

/// "in 25 seconds", "in about 4 minutes": when a retry makes sense.
fn retry_words(seconds: f64) -> String {
    let seconds = seconds.ceil().max(1.0) as u64;
    match seconds {
        1 => "in a second".into(),
        s if s < 90 => format!("in {s} seconds"),
        s => format!("in about {} minutes", s.div_ceil(60)),
    }
}

/// Takes the lease if the video is missing, abandoned (lease expired) or
/// retryable. `None`: someone else has it, or it is settled; `peek` says which.
pub async fn claim(db: &Db, video: &VideoId, lease: Duration) -> Result<Option<Lease>, AppError> {
    claim_variant(db, video, None, lease).await
}

/// [`claim`] for one variant of the video.
#[tracing::instrument(skip(db), fields(video = %video, variant = variant_key(variant)))]
pub async fn claim_variant(
    db: &Db,
    video: &VideoId,
    variant: Option<SummaryLanguage>,
    lease: Duration,
) -> Result<Option<Lease>, AppError> {
    let owner = Uuid::new_v4();
    let mut tx = db.shared().await.map_err(db_error)?;
    let attempt: Option<i32> = sqlx::query_scalar(
        "insert into videos as v (video_id, variant, status, lease_owner, lease_expires_at, attempt, stage)
         values ($1, $4, 'pending', $2, now() + make_interval(secs => $3), 1, 'fetching_transcript')
         on conflict (video_id, variant) do update set
             status = 'pending', lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3),
             attempt = v.attempt + 1, failure_kind = null, failure_message = null, retry_after = null,
             stage = 'fetching_transcript', partial_text = null, updated_at = now()
         where (v.status = 'pending' and v.lease_expires_at <= now())
            or (v.status = 'failed' and (v.retry_after is null or v.retry_after <= now()))
            or (v.status = 'ready' and v.summary is null)
         returning attempt",
    )
    .bind(video.as_str())
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(variant_key(variant))
    .fetch_optional(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(attempt.map(|attempt| Lease {
        owner,
        attempt,
        variant,
    }))
}

/// Progress for waiting pages, and a longer lease while work goes on.
/// `false`: the lease was lost (taken over); stop working.
pub async fn progress(
    db: &Db,
    video: &VideoId,
    lease: Lease,
    extend_by: Duration,
    stage: &str,
    partial_text: Option<&str>,
) -> Result<bool, AppError> {
    let mut tx = db.shared().await.map_err(db_error)?;
    let done = sqlx::query(
        "update videos set stage = $4, partial_text = coalesce($5, partial_text),
             lease_expires_at = now() + make_interval(secs => $6), updated_at = now()
         where video_id = $1 and variant = $7 and lease_owner = $2 and attempt = $3 and status = 'pending'",
    )
    .bind(video.as_str())
    .bind(lease.owner)
    .bind(lease.attempt)
    .bind(stage)
    .bind(partial_text)
    .bind(extend_by.as_secs_f64())
    .bind(variant_key(lease.variant))
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Stores the summary if this worker still holds the lease. `false`: it was
/// superseded, and nothing changed.
#[tracing::instrument(skip(db, completion), fields(video = %video, attempt = lease.attempt))]
pub async fn complete(
    db: &Db,
    video: &VideoId,
    lease: Lease,
    completion: &Completion,
) -> Result<bool, AppError> {
    let body = serde_json::to_value(&completion.body).map_err(AppError::internal)?;
    let mut tx = db.shared().await.map_err(db_error)?;
    let done = sqlx::query(
        "update videos set status = 'ready', title = $4, channel = $5, duration_seconds = $6, thumbnail_url = $7,
             language = $8, summary = $9, model = $10, prompt_version = $11, built_in = $12,
             prompt_tokens = $13, completion_tokens = $14, cost_micros = $15,
             lease_owner = null, lease_expires_at = null, stage = 'done', partial_text = null,
             consecutive_failures = 0, completed_at = now(), updated_at = now()
         where video_id = $1 and variant = $16 and lease_owner = $2 and attempt = $3 and status = 'pending'",
    )
    .bind(video.as_str())
    .bind(lease.owner)
    .bind(lease.attempt)
    .bind(&completion.title)
    .bind(&completion.channel)
    .bind(completion.duration_seconds.map(|d| d as i32))
    .bind(&completion.thumbnail_url)
    .bind(&completion.language)
    .bind(body)
    .bind(&completion.model)
    .bind(&completion.prompt_version)
    .bind(completion.built_in)
    .bind(completion.prompt_tokens as i64)
    .bind(completion.completion_tokens as i64)
    .bind(completion.cost_micros as i64)
    .bind(variant_key(lease.variant))
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    notify(&mut tx, video).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Records a failure (fenced like `complete`) and how long it stands:
/// until then requests get the cached error and are not charged.
pub async fn fail(
    db: &Db,
    video: &VideoId,
    lease: Lease,
    kind: &str,
    message: &str,
    failure: Failure,
) -> Result<bool, AppError> {
    let (permanent_for, base, max, steps) = match failure {
        Failure::Permanent { ttl } => (Some(ttl.as_secs_f64()), 0.0, 0.0, None),
        Failure::Transient { base, max } => (None, base.as_secs_f64(), max.as_secs_f64(), None),
        Failure::Stepped { steps } => (None, 0.0, 0.0, Some(steps.map(|s| s.as_secs_f64()))),
    };
    let mut tx = db.shared().await?;
    let done = sqlx::query(
        "update videos set status = 'failed', failure_kind = $4, failure_message = $5,
             retry_after = now() + make_interval(secs => coalesce($6::float8,
                 ($10::float8[])[least(consecutive_failures, 2) + 1],
                 least($8::float8, $7::float8 * power(2, least(consecutive_failures, 30))))),
             consecutive_failures = case when $6::float8 is null then consecutive_failures + 1 else 0 end,
             lease_owner = null, lease_expires_at = null, stage = null, partial_text = null, updated_at = now()
         where video_id = $1 and variant = $9 and lease_owner = $2 and attempt = $3 and status = 'pending'",
    )
    .bind(video.as_str())
    .bind(lease.owner)
    .bind(lease.attempt)
    .bind(kind)
    .bind(message)
    .bind(permanent_for)
    .bind(base)
    .bind(max)
    .bind(variant_key(lease.variant))
    .bind(steps.map(Vec::from))
    .execute(tx.conn())
    .await?;
    notify(&mut tx, video).await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// The language the ready `''` row of `video` was written in (its caption
/// track's code) and whether the built-in summarizer wrote it; `None` when
/// that row is not ready. Decides whether an org that chose a language
/// needs a variant.
pub async fn own_language(
    db: &Db,
    video: &VideoId,
) -> Result<Option<(Option<String>, bool)>, AppError> {
    let mut tx = db.shared().await?;
    let row = own_language_in(tx.conn(), video).await?;
    tx.commit().await?;
    Ok(row)
}

/// [`own_language`] inside a transaction the caller has open.
pub async fn own_language_in(
    conn: &mut sqlx::PgConnection,
    video: &VideoId,
) -> Result<Option<(Option<String>, bool)>, AppError> {
    let row: Option<(Option<String>, Option<bool>)> = sqlx::query_as(
        "select language, built_in from videos
         where video_id = $1 and variant = '' and status = 'ready' and summary is not null",
    )
    .bind(video.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(language, built_in)| (language, built_in.unwrap_or(false))))
}

/// The cache row an org that wants `wanted` looks at for `video`, and its
/// state: the `''` row until it is ready, then, if it is in another
/// language (see [`variant_needed`]), the `(video, wanted)` row.
pub async fn read_for(
    conn: &mut sqlx::PgConnection,
    video: &VideoId,
    wanted: Option<SummaryLanguage>,
) -> Result<(Option<SummaryLanguage>, CacheState), AppError> {
    let own = read(conn, video).await?;
    if wanted.is_none() || !matches!(own, CacheState::Ready(_)) {
        return Ok((None, own));
    }
    let (language, built_in) = own_language_in(conn, video).await?.unwrap_or((None, false));
    match variant_needed(wanted, language.as_deref(), built_in) {
        None => Ok((None, own)),
        Some(variant) => Ok((
            Some(variant),
            read_variant(conn, video, Some(variant)).await?,
        )),
    }
}

/// Whether an org that chose `wanted` needs a summary other than the
/// video's own (`''`) one, given that one's language and maker. The same
/// rule as `serve_ready_summary` in SQL: no choice, the built-in summarizer
/// (it cannot translate), or the same base language (`en` for `en-GB`)
/// means the `''` row.
pub fn variant_needed(
    wanted: Option<SummaryLanguage>,
    own_language: Option<&str>,
    built_in: bool,
) -> Option<SummaryLanguage> {
    let wanted = wanted?;
    if built_in || own_language.is_some_and(|code| wanted.matches_track(code)) {
        None
    } else {
        Some(wanted)
    }
}

/// Wakes waiters in every process (delivered at commit).
async fn notify(tx: &mut crate::server::db::SharedTx, video: &VideoId) -> Result<(), AppError> {
    sqlx::query("select pg_notify('video_ready', $1)")
        .bind(video.as_str())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    Ok(())
}
