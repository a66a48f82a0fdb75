//! From a pasted link to a summary: history, quota, the shared cache and
//! the work itself.
//!
//! A video that is already in the shared cache is served in one statement
//! of one transaction (`ready`): history, the spent unit and its ledger row
//! commit together and the answer goes out, with no background task. For
//! anything else, a request that would add a video to the org's history
//! reserves a quota unit first (one atomic statement), then settles it in a
//! background task that either does the work (it won the video's lease) or
//! waits for whoever does. Success records the video in the history and
//! spends the unit; failure refunds it, once. No database transaction stays
//! open while YouTube or the model is working.
//!
//! Languages: an org may choose the language its summaries are written in
//! (`orgs.summary_language`). The summary in the video's own language (the
//! cache row with variant `''`) is made first, as for everyone; only if it
//! turns out to be in another language is the `(video, language)` variant
//! made too, by the same single flight. One reservation covers both steps
//! and is spent or refunded once. The one-statement cache hit makes the
//! same choice in SQL (`serve_ready_summary`).

mod abandoned;
pub mod ready;

pub use ready::ReadySummary;

use chrono::Utc;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{
    db_error, orgs,
    quota::{self, Reservation},
    video_cache::{self, CacheState, Completion, Failure, Lease, variant_key},
    waiter::VideoWaiter,
};
use crate::{
    domain::{
        Dashboard, HistoryItem, Permission, PlanCatalog, SummaryBody, SummaryLanguage,
        SummaryStatus, SummaryView, UserId, VideoId, transcript_file::parse_transcript,
    },
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        clients::youtube::{YouTubeClient, YouTubeError},
        config::SummarySettings,
        db::{Db, TenantScope},
        metrics::{self, Limited, SummaryOutcome},
        summarizer::{Language, Progress, Summarizer, TranscriptLine},
    },
};
use ready::HotPath;

#[derive(Clone)]
pub struct SummaryEngine {
    db: Db,
    youtube: YouTubeClient,
    summarizer: Arc<dyn Summarizer>,
    waiter: VideoWaiter,
    settings: Arc<SummarySettings>,
    plans: Arc<PlanCatalog>,
    /// The plans' limits as JSON text, for the one-statement cache hit.
    limits: Arc<str>,
    sweeper: Arc<std::sync::OnceLock<tokio::task::AbortHandle>>,
}

/// What a request for a summary got.
pub enum Requested {
    /// It was in the cache (or the org's history): here it is, settled.
    Ready(Box<ReadySummary>),
    /// It is being made (or fetched) in the background.
    Pending,
}

/// Settling after the work retries a failed database write from this wait,
/// doubling up to the last (about a minute in all).
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(500);
const SETTLE_RETRY_LAST: Duration = Duration::from_secs(32);
/// Text streamed to the shared row at most this often.
const PARTIAL_WRITE_INTERVAL: Duration = Duration::from_millis(250);
/// A waiter gives up after this long without the row settling or its
/// lease expiring (the lease is the real deadline; this is a backstop).
const WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);

impl SummaryEngine {
    pub fn new(
        db: Db,
        youtube: YouTubeClient,
        summarizer: Arc<dyn Summarizer>,
        waiter: VideoWaiter,
        settings: SummarySettings,
        plans: PlanCatalog,
    ) -> SummaryEngine {
        let limits = quota::limits_json(&plans).to_string().into();
        SummaryEngine {
            db,
            youtube,
            summarizer,
            waiter,
            settings: Arc::new(settings),
            plans: Arc::new(plans),
            limits,
            sweeper: Arc::default(),
        }
    }

    /// Starts settling abandoned reservations in the background (see
    /// `abandoned`). Once per engine.
    pub fn start_sweeper(&self) {
        let engine = self.clone();
        self.sweeper
            .get_or_init(|| tokio::spawn(abandoned::run_sweeper(engine)).abort_handle());
    }

    /// Stops background work (before the pool closes at shutdown).
    pub fn stop(&self) {
        self.waiter.stop();
        if let Some(sweeper) = self.sweeper.get() {
            sweeper.abort();
        }
    }

    /// Serves `video` to the member's org from the cache in one
    /// transaction, or starts (or joins) making it. Reopening a video
    /// already in the org's history is free; a cached failure is answered
    /// at once and charges nothing.
    #[tracing::instrument(level = "debug", skip(self, member), fields(org = %member.org.id, video = %video))]
    pub async fn request(
        &self,
        member: &CurrentMember,
        video: &VideoId,
    ) -> Result<Requested, AppError> {
        member.require(Permission::Summarize)?;
        metrics::summary_requested();
        let mut tx = self.db.tenant(member.scope()).await?;
        let throttle = self.throttle_for(member);
        match ready::serve(&mut tx, member.org.user_id, video, &self.limits, &throttle).await? {
            HotPath::Ready(summary) => {
                tx.commit().await?;
                metrics::summary_outcome(SummaryOutcome::Cached);
                return Ok(Requested::Ready(summary));
            }
            HotPath::Exhausted {
                used,
                limit,
                resets_at,
            } => {
                tx.rollback().await?;
                return Err(quota_exceeded(used, limit, resets_at));
            }
            HotPath::Throttled {
                per_minute,
                retry_after_seconds,
            } => {
                // Committed: the refused attempt counts too, so a loop
                // cannot hammer its way through.
                tx.commit().await?;
                metrics::rate_limited(Limited::Throttle);
                return Err(AppError::Throttled {
                    per_minute,
                    retry_after_seconds,
                });
            }
            HotPath::Miss => {}
        }

        // Not in the cache: the lease path, still in this transaction.
        abandoned::settle(&mut tx, self.settings.lease).await?;
        if already_requested(&mut tx, video).await? {
            tx.commit().await?;
            return Ok(Requested::Pending);
        }
        let wanted = orgs::summary_language_in(&mut tx).await?;
        if let (_, CacheState::Failed { message }) =
            video_cache::read_for(tx.conn(), video, wanted).await?
        {
            tx.commit().await?;
            metrics::summary_outcome(SummaryOutcome::Failed);
            return Err(AppError::Conflict(message));
        }
        let reservation =
            match quota::reserve(&mut tx, member.org.user_id, video, &self.plans).await? {
                quota::Reserve::Reserved(reservation) => reservation,
                quota::Reserve::Exhausted(status) => {
                    return Err(quota_exceeded(status.used, status.limit, status.resets_at));
                }
                // Someone in the org reserved it a moment ago (one open
                // reservation per org and video): join that request, for free.
                quota::Reserve::AlreadyOpen => return Ok(Requested::Pending),
            };
        quota::mark_variant(&mut tx, reservation, wanted).await?;
        tx.commit().await?;

        let engine = self.clone();
        let (scope, video) = (member.scope(), video.clone());
        let user = member.org.user_id;
        tokio::spawn(async move {
            if let Err(error) = engine.settle(scope, user, reservation, video, wanted).await {
                tracing::error!(error = %error, "settling a summary request failed");
            }
        });
        Ok(Requested::Pending)
    }

    /// A person is throttled as a member of the org, a program as its API
    /// key, each with its own per-minute limit.
    fn throttle_for(&self, member: &CurrentMember) -> ready::Throttle {
        match member.api_key() {
            Some(key) => ready::Throttle {
                key: format!("summaries:key:{key}"),
                per_minute: self.settings.api_key_requests_per_minute,
            },
            None => ready::Throttle {
                key: format!("summaries:member:{}", member.org.user_id),
                per_minute: self.settings.requests_per_minute,
            },
        }
    }

    /// Summarizes a transcript a member pasted (YouTube had none, or blocks
    /// us). It costs a unit like any summary and is stored for this org
    /// only; the shared cache never sees it.
    #[tracing::instrument(skip(self, member, text), fields(org = %member.org.id, video = %video))]
    pub async fn summarize_own_transcript(
        &self,
        member: &CurrentMember,
        video: &VideoId,
        text: &str,
    ) -> Result<(), AppError> {
        member.require(Permission::Summarize)?;
        let lines: Vec<TranscriptLine> = parse_transcript(text)
            .map_err(|e| AppError::field("transcript", e.to_string()))?
            .into_iter()
            .map(|line| TranscriptLine {
                start_ms: line.start_ms,
                text: line.text,
            })
            .collect();
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        let reservation =
            match quota::reserve(&mut tx, member.org.user_id, video, &self.plans).await? {
                quota::Reserve::Reserved(reservation) => reservation,
                quota::Reserve::Exhausted(status) => {
                    return Err(quota_exceeded(status.used, status.limit, status.resets_at));
                }
                quota::Reserve::AlreadyOpen => {
                    return Err(AppError::Conflict(
                        "This video is already being summarized.".into(),
                    ));
                }
            };
        // The org's own summary, so in the org's language if it chose one.
        let wanted = orgs::summary_language_in(&mut tx).await?;
        tx.commit().await.map_err(db_error)?;

        let language = match wanted {
            Some(chosen) => Language::Chosen(chosen),
            None => Language::Transcript(None),
        };
        let summary = match self
            .summarizer
            .summarize_in("", &lines, language, &|_| {})
            .await
        {
            Ok(summary) => summary,
            Err(error) => {
                tracing::warn!(%error, "summarizing a pasted transcript failed");
                let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
                quota::refund(&mut tx, reservation).await?;
                tx.commit().await.map_err(db_error)?;
                return Err(AppError::Unavailable(
                    "The AI service could not summarize this transcript. Nothing was charged; please try again later.".into(),
                ));
            }
        };
        let body = summary.body();
        let cost = cost_micros(
            &self.settings.prices,
            &summary.model,
            summary.usage.prompt_tokens,
            summary.usage.completion_tokens,
        );
        metrics::summary_made(
            &summary.model,
            summary.built_in,
            summary.usage.prompt_tokens,
            summary.usage.completion_tokens,
            cost,
        );
        let mut tx = self.db.tenant(member.scope()).await.map_err(db_error)?;
        sqlx::query(
            "insert into own_transcript_summaries (org_id, id, user_id, video_id, summary, model, prompt_version,
                 built_in, prompt_tokens, completion_tokens, cost_micros)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             on conflict (org_id, video_id) do update set summary = excluded.summary, model = excluded.model,
                 prompt_version = excluded.prompt_version, built_in = excluded.built_in, user_id = excluded.user_id,
                 prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
                 cost_micros = excluded.cost_micros, created_at = now()",
        )
        .bind(member.org.id.as_uuid())
        .bind(uuid::Uuid::new_v4())
        .bind(member.org.user_id.as_uuid())
        .bind(video.as_str())
        .bind(serde_json::to_value(&body).map_err(AppError::internal)?)
        .bind(&summary.model)
        .bind(&summary.prompt_version)
        .bind(summary.built_in)
        .bind(summary.usage.prompt_tokens as i64)
        .bind(summary.usage.completion_tokens as i64)
        .bind(cost as i64)
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
        // The history lists it too. Its row in the shared table carries only
        // the video id (no summary, nothing of ours) and stays claimable.
        sqlx::query("insert into videos (video_id, status) values ($1, 'failed') on conflict (video_id, variant) do nothing")
            .bind(video.as_str())
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        record_history(
            &mut tx,
            member.org.user_id.as_uuid(),
            video.as_str(),
            None,
            Some("Your pasted transcript"),
            false,
        )
        .await?;
        quota::succeed(&mut tx, reservation).await?;
        tx.commit().await.map_err(db_error)
    }

    /// Where `video` stands for the member's org (for the summary page).
    pub async fn status(
        &self,
        member: &CurrentMember,
        video: &VideoId,
    ) -> Result<SummaryStatus, AppError> {
        member.require(Permission::ViewHistory)?;
        let mut tx = self.db.tenant(member.scope()).await?;
        abandoned::settle(&mut tx, self.settings.lease).await?;
        let own: Option<(serde_json::Value, String, String, bool)> = sqlx::query_as(
            "select summary, model, prompt_version, built_in from own_transcript_summaries
             where org_id = $1 and video_id = $2",
        )
        .bind(member.org.id.as_uuid())
        .bind(video.as_str())
        .fetch_optional(tx.conn())
        .await
        .map_err(db_error)?;
        if let Some((summary, model, prompt_version, built_in)) = own {
            let body: SummaryBody = serde_json::from_value(summary).map_err(AppError::internal)?;
            return Ok(SummaryStatus::Ready {
                view: Box::new(SummaryView {
                    video_id: video.to_string(),
                    title: Some("Your pasted transcript".into()),
                    channel: None,
                    duration_seconds: None,
                    thumbnail_url: None,
                    body,
                    model,
                    prompt_version,
                    built_in,
                    private: true,
                }),
                from_cache: false,
            });
        }
        // History and open reservation in one statement, so one snapshot:
        // read apart, a settle committing between the two reads made a
        // video just being recorded look "not requested" (seen in the
        // billing journey: NotRequested 50 ms after the request).
        let (from_cache, variant, open): (Option<bool>, Option<String>, bool) = sqlx::query_as(
            "select s.from_cache, s.variant,
                    exists (select from usage_records r
                            where r.org_id = $1 and r.video_id = $2 and r.status = 'reserved')
             from (select 1) one
             left join user_summaries s on s.org_id = $1 and s.video_id = $2",
        )
        .bind(member.org.id.as_uuid())
        .bind(video.as_str())
        .fetch_one(tx.conn())
        .await?;
        let history = from_cache.zip(variant);
        // The org's summary: the variant its history points at, else the
        // row its language choice leads to.
        let state = match &history {
            Some((_, variant)) => {
                let variant = SummaryLanguage::parse(variant).ok();
                video_cache::read_variant(tx.conn(), video, variant).await?
            }
            None => {
                let wanted = orgs::summary_language_in(&mut tx).await?;
                video_cache::read_for(tx.conn(), video, wanted).await?.1
            }
        };
        let history = history.map(|(from_cache, _)| from_cache);
        tx.commit().await?;
        Ok(match (history, state) {
            (Some(from_cache), CacheState::Ready(view)) => {
                SummaryStatus::Ready { view, from_cache }
            }
            (None, CacheState::Failed { message }) => SummaryStatus::Failed { message },
            // The last attempt failed for a passing reason; say so, and let
            // the member try again.
            (
                None,
                CacheState::Claimable {
                    last_error: Some(message),
                },
            ) if !open => SummaryStatus::Failed {
                message: format!("{message} Nothing was charged; you can try again now."),
            },
            (None, _) if !open => SummaryStatus::NotRequested,
            (_, CacheState::Working { stage, partial }) => SummaryStatus::Working {
                stage: stage.unwrap_or_else(|| "fetching_transcript".into()),
                partial,
            },
            // Settled but not yet recorded for this org: moments away.
            _ => SummaryStatus::Working {
                stage: "done".into(),
                partial: None,
            },
        })
    }

    /// Makes or waits for the video, then spends or refunds the unit.
    async fn settle(
        &self,
        scope: TenantScope,
        user: UserId,
        reservation: Reservation,
        video: VideoId,
        wanted: Option<SummaryLanguage>,
    ) -> Result<(), AppError> {
        let outcome = self.obtain_for(&video, wanted).await;
        metrics::summary_outcome(match &outcome {
            Ok((_, true, _)) => SummaryOutcome::Cached,
            Ok((_, false, _)) => SummaryOutcome::Fresh,
            Err(_) => SummaryOutcome::Failed,
        });
        // The work is done (or failed); recording that must survive a
        // database blip: retried with backoff, then left to the sweeper,
        // which settles the reservation the same way once the lease is over.
        let mut backoff = SETTLE_RETRY_FIRST;
        loop {
            match self
                .record_outcome(scope, user, reservation, &video, &outcome)
                .await
            {
                Err(AppError::DatabaseUnavailable { .. }) if backoff <= SETTLE_RETRY_LAST => {
                    tracing::warn!(?backoff, "settling waits for the database");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                result => return result,
            }
        }
    }

    async fn record_outcome(
        &self,
        scope: TenantScope,
        user: UserId,
        reservation: Reservation,
        video: &VideoId,
        outcome: &Result<(Box<SummaryView>, bool, Option<SummaryLanguage>), String>,
    ) -> Result<(), AppError> {
        let mut tx = self.db.tenant(scope).await?;
        match outcome {
            Ok((view, from_cache, variant)) => {
                settle_success(
                    &mut tx,
                    reservation,
                    user.as_uuid(),
                    video.as_str(),
                    *variant,
                    view.title.as_deref(),
                    *from_cache,
                )
                .await?;
            }
            Err(message) => {
                tracing::info!(%message, "summary failed; refunding");
                quota::refund(&mut tx, reservation).await?;
            }
        }
        Ok(tx.commit().await?)
    }

    /// The summary an org that wants `wanted` gets, and the variant it is:
    /// the video's own (`None`), made or waited for as for everyone; then,
    /// if that one is in another language, the `wanted` variant, made or
    /// waited for the same way. `Err` carries the member-facing reason.
    async fn obtain_for(
        &self,
        video: &VideoId,
        wanted: Option<SummaryLanguage>,
    ) -> Result<(Box<SummaryView>, bool, Option<SummaryLanguage>), String> {
        let (view, from_cache) = self.obtain(video, None).await?;
        // The built-in summarizer only extracts sentences: it cannot write
        // in another language, so it never makes a variant.
        if wanted.is_none() || self.summarizer.built_in() {
            return Ok((view, from_cache, None));
        }
        let (language, built_in) = video_cache::own_language(&self.db, video)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or((None, false));
        match video_cache::variant_needed(wanted, language.as_deref(), built_in) {
            None => Ok((view, from_cache, None)),
            Some(variant) => {
                let (view, from_cache) = self.obtain(video, Some(variant)).await?;
                Ok((view, from_cache, Some(variant)))
            }
        }
    }

    /// One cache row of the video, from the cache, from another worker, or
    /// made here. `Err` carries the member-facing reason.
    async fn obtain(
        &self,
        video: &VideoId,
        variant: Option<SummaryLanguage>,
    ) -> Result<(Box<SummaryView>, bool), String> {
        let mut notifications = self.waiter.subscribe();
        let started = Instant::now();
        let mut waited = false;
        loop {
            if started.elapsed() > WAIT_LIMIT {
                return Err("Summarizing took too long. Please try again.".into());
            }
            match video_cache::claim_variant(&self.db, video, variant, self.settings.lease)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(lease) => return self.work(video, lease).await.map(|view| (view, false)),
                None => match video_cache::peek_variant(&self.db, video, variant)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    CacheState::Ready(view) => return Ok((view, !waited)),
                    CacheState::Failed { message } => return Err(message),
                    CacheState::Working { .. } => {
                        waited = true;
                        self.waiter.nudge(&mut notifications, video.as_str()).await;
                    }
                    // The attempt we waited on failed (and its cool-down is
                    // already over): share its failure rather than call
                    // the model again for this waiter.
                    CacheState::Claimable {
                        last_error: Some(message),
                    } if waited => return Err(message),
                    // An expired lease (its worker died), or a failure from
                    // before this request: claim again.
                    CacheState::Claimable { .. } | CacheState::Missing => {}
                },
            }
        }
    }

    /// The paid part: transcript, then model. Runs with the lease held and
    /// no transaction open.
    #[tracing::instrument(skip(self), fields(video = %video, variant = variant_key(lease.variant), attempt = lease.attempt))]
    async fn work(&self, video: &VideoId, lease: Lease) -> Result<Box<SummaryView>, String> {
        let transcript = match self.youtube.fetch(video).await {
            Ok(transcript) => transcript,
            Err(error) => {
                let failure = if error.is_permanent() {
                    Failure::Permanent {
                        ttl: self.settings.negative_ttl,
                    }
                } else {
                    self.cool_down()
                };
                let message = error.user_message();
                if let Err(error) = video_cache::fail(
                    &self.db,
                    video,
                    lease,
                    failure_kind(&error),
                    &message,
                    failure,
                )
                .await
                {
                    tracing::warn!(%error, "recording a failed transcript fetch failed");
                }
                return Err(message);
            }
        };
        let _ = video_cache::progress(
            &self.db,
            video,
            lease,
            self.settings.lease,
            "summarizing",
            None,
        )
        .await;

        let lines: Vec<TranscriptLine> = transcript
            .segments
            .iter()
            .map(|s| TranscriptLine {
                start_ms: s.start_ms,
                text: s.text.clone(),
            })
            .collect();
        let streamed = Arc::new(Mutex::new(String::new()));
        let (tick_tx, mut tick_rx) = tokio::sync::watch::channel(());
        let on_progress = {
            let streamed = streamed.clone();
            move |progress: Progress| {
                let mut text = streamed.lock().unwrap_or_else(|e| e.into_inner());
                match progress {
                    Progress::Text(delta) => text.push_str(&delta),
                    Progress::Restart { .. } => text.clear(),
                    Progress::Chunk { .. } => {}
                }
                let _ = tick_tx.send(());
            }
        };
        // Streams the text to the shared row for waiting pages, and keeps
        // the lease alive while the model works.
        let writer = {
            let (db, video, streamed, lease_len) = (
                self.db.clone(),
                video.clone(),
                streamed.clone(),
                self.settings.lease,
            );
            tokio::spawn(async move {
                let mut heartbeat = tokio::time::interval(lease_len / 3);
                loop {
                    tokio::select! {
                        changed = tick_rx.changed() => if changed.is_err() { return },
                        _ = heartbeat.tick() => {}
                    }
                    let text = streamed.lock().map(|t| t.clone()).unwrap_or_default();
                    let partial = (!text.is_empty()).then_some(text.as_str());
                    match video_cache::progress(
                        &db,
                        &video,
                        lease,
                        lease_len,
                        "summarizing",
                        partial,
                    )
                    .await
                    {
                        Ok(true) => {}
                        _ => return,
                    }
                    tokio::time::sleep(PARTIAL_WRITE_INTERVAL).await;
                }
            })
        };
        // The video's own row is written in the transcript's language; a
        // variant in the language it stands for.
        let language = match lease.variant {
            None => Language::Transcript(Some(&transcript.language)),
            Some(chosen) => Language::Chosen(chosen),
        };
        let result = self
            .summarizer
            .summarize_in(&transcript.metadata.title, &lines, language, &on_progress)
            .await;
        drop(on_progress);
        writer.abort();

        let summary = match result {
            Ok(summary) => summary,
            Err(error) => {
                tracing::warn!(%error, "the summarizer failed");
                let message = if error.is_transient() {
                    "The AI service failed to answer (it is busy or down)."
                } else {
                    "The AI service could not summarize this video."
                };
                if let Err(error) = video_cache::fail(
                    &self.db,
                    video,
                    lease,
                    "summarizer",
                    message,
                    self.cool_down(),
                )
                .await
                {
                    tracing::warn!(%error, "recording a failed model call failed");
                }
                // Everyone gets the failure as the cache now words it.
                return match video_cache::peek_variant(&self.db, video, lease.variant).await {
                    Ok(CacheState::Failed { message }) => Err(message),
                    _ => Err(format!(
                        "{message} Nothing was charged; please try again later."
                    )),
                };
            }
        };
        let cost = cost_micros(
            &self.settings.prices,
            &summary.model,
            summary.usage.prompt_tokens,
            summary.usage.completion_tokens,
        );
        metrics::summary_made(
            &summary.model,
            summary.built_in,
            summary.usage.prompt_tokens,
            summary.usage.completion_tokens,
            cost,
        );
        let completion = Completion {
            title: Some(transcript.metadata.title.clone()),
            channel: Some(transcript.metadata.channel.clone()),
            duration_seconds: transcript.metadata.duration_seconds,
            thumbnail_url: Some(transcript.metadata.thumbnail_url.clone()),
            // What the summary is written in: the track's language, or the
            // variant's (the built-in summarizer never makes variants).
            language: Some(match lease.variant {
                None => transcript.language.clone(),
                Some(chosen) => chosen.code().to_owned(),
            }),
            body: summary.body(),
            cost_micros: cost,
            model: summary.model,
            prompt_version: summary.prompt_version,
            built_in: summary.built_in,
            prompt_tokens: summary.usage.prompt_tokens,
            completion_tokens: summary.usage.completion_tokens,
        };
        if !video_cache::complete(&self.db, video, lease, &completion)
            .await
            .map_err(|e| e.to_string())?
        {
            // Superseded: someone else's result is (or will be) the one.
            tracing::warn!("lost the lease before completing; using the successor's result");
        }
        match video_cache::peek_variant(&self.db, video, lease.variant)
            .await
            .map_err(|e| e.to_string())?
        {
            CacheState::Ready(view) => Ok(view),
            _ => Err("Summarizing was interrupted. Please try again.".into()),
        }
    }
}

impl SummaryEngine {
    /// How long a transient failure is shared before anyone may retry.
    fn cool_down(&self) -> Failure {
        Failure::Transient {
            base: self.settings.failure_cooldown,
            max: self.settings.failure_cooldown_max,
        }
    }
}

fn failure_kind(error: &YouTubeError) -> &'static str {
    match error {
        YouTubeError::NoCaptions => "no_captions",
        YouTubeError::Blocked => "blocked",
        YouTubeError::PoTokenRequired => "po_token",
        YouTubeError::AgeRestricted => "age_restricted",
        YouTubeError::Unavailable => "unavailable",
        YouTubeError::Unplayable(_) => "unplayable",
        _ => "transcript",
    }
}

/// Millionths of a dollar, from per-million-token prices: tokens × price.
pub fn cost_micros(
    prices: &[(String, f64, f64)],
    model: &str,
    prompt: u64,
    completion: u64,
) -> u64 {
    prices
        .iter()
        .find(|(name, _, _)| name == model)
        .map(|(_, input, output)| {
            (prompt as f64 * input + completion as f64 * output).round() as u64
        })
        .unwrap_or(0)
}

/// The 429 for a used-up quota (and its count in the metrics).
pub fn quota_exceeded(used: i32, limit: i32, resets_at: chrono::DateTime<Utc>) -> AppError {
    metrics::rate_limited(Limited::Quota);
    let retry = (resets_at - Utc::now()).num_seconds().max(1) as u64;
    AppError::QuotaExceeded {
        used,
        limit,
        resets_at: resets_at.to_rfc3339(),
        resets_on: resets_at.format("%B %-d").to_string(),
        retry_after_seconds: retry,
    }
}

async fn record_history(
    tx: &mut crate::server::db::TenantTx,
    user: uuid::Uuid,
    video: &str,
    variant: Option<SummaryLanguage>,
    title: Option<&str>,
    from_cache: bool,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "insert into user_summaries (org_id, id, user_id, video_id, variant, title, from_cache)
         values ($1, $2, $3, $4, $7, $5, $6) on conflict (org_id, video_id) do nothing",
    )
    .bind(tx.org_id().as_uuid())
    .bind(uuid::Uuid::new_v4())
    .bind(user)
    .bind(video)
    .bind(title)
    .bind(from_cache)
    .bind(variant_key(variant))
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Spends the unit if this request put the video into the org's history;
/// if it was already there (a concurrent request won), it was free.
async fn settle_success(
    tx: &mut crate::server::db::TenantTx,
    reservation: Reservation,
    user: uuid::Uuid,
    video: &str,
    variant: Option<SummaryLanguage>,
    title: Option<&str>,
    from_cache: bool,
) -> Result<(), AppError> {
    if record_history(tx, user, video, variant, title, from_cache).await? {
        quota::succeed(tx, reservation).await?;
    } else {
        quota::refund(tx, reservation).await?;
    }
    Ok(())
}

/// In the org's history already, or being settled for it right now: either
/// way asking again costs nothing. One round trip on the request path.
async fn already_requested(
    tx: &mut crate::server::db::TenantTx,
    video: &VideoId,
) -> Result<bool, AppError> {
    sqlx::query_scalar(
        "select exists (select from user_summaries where org_id = $1 and video_id = $2)
             or exists (select from usage_records where org_id = $1 and video_id = $2 and status = 'reserved')",
    )
    .bind(tx.org_id().as_uuid())
    .bind(video.as_str())
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)
}

const PAGE_SIZE: i64 = 10;

#[derive(sqlx::FromRow)]
struct HistoryRow {
    video_id: String,
    title: Option<String>,
    created_at: chrono::DateTime<Utc>,
    id: uuid::Uuid,
    from_cache: bool,
    /// The member's email while they are in the org.
    member_email: Option<String>,
    /// Set once the member row is gone (see `former_member`).
    removed: bool,
    former_member: Option<String>,
}

/// One page of an org's history, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The most a page of history may hold.
pub const MAX_PAGE_SIZE: u32 = 100;

impl SummaryEngine {
    /// The dashboard: the O(1) quota counter, a page of history (keyset
    /// pagination on (created_at, id), optional title filter) and spend.
    pub async fn dashboard(
        &self,
        member: &CurrentMember,
        filter: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Dashboard, AppError> {
        member.require(Permission::ViewHistory)?;
        let mut tx = self.db.tenant(member.scope()).await?;
        let status = quota::status(&mut tx, &self.plans).await?;
        // The page's own links made the cursor; a mangled one starts over.
        let cursor = cursor.and_then(parse_cursor);
        let page = history_page(&mut tx, filter, cursor, PAGE_SIZE as u32).await?;
        let (spend, saved): (Option<i64>, Option<i64>) = sqlx::query_as(
            "select sum(v.cost_micros) filter (where not s.from_cache)::bigint,
                    sum(v.cost_micros) filter (where s.from_cache)::bigint
             from user_summaries s join videos v on v.video_id = s.video_id and v.variant = s.variant
             where s.org_id = $1 and s.created_at >= (select period_start from org_entitlement($1))",
        )
        .bind(member.org.id.as_uuid())
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Dashboard {
            quota: status.view(),
            items: page.items,
            next_cursor: page.next_cursor,
            spend_micros: spend.unwrap_or(0),
            saved_micros: saved.unwrap_or(0),
            built_in_summarizer: self.summarizer.built_in(),
        })
    }

    /// A page of the org's history for programs: `limit` items (1 to
    /// [`MAX_PAGE_SIZE`]) after `cursor`, optionally filtered by title. A
    /// cursor we did not hand out is a 422, not a silent first page.
    pub async fn history(
        &self,
        member: &CurrentMember,
        filter: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<HistoryPage, AppError> {
        member.require(Permission::ViewHistory)?;
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(AppError::field(
                "limit",
                format!("The page size must be between 1 and {MAX_PAGE_SIZE}."),
            ));
        }
        let cursor = match cursor {
            None => None,
            Some(raw) => Some(parse_cursor(raw).ok_or_else(|| {
                AppError::field(
                    "cursor",
                    "That cursor is not one we handed out; start again without it.",
                )
            })?),
        };
        let mut tx = self.db.tenant(member.scope()).await?;
        let page = history_page(&mut tx, filter, cursor, limit).await?;
        tx.commit().await?;
        Ok(page)
    }
}

/// Keyset pagination on (created_at, id), newest first, with an optional
/// title filter (a plain substring: `%` and `_` match themselves).
async fn history_page(
    tx: &mut crate::server::db::TenantTx,
    filter: Option<&str>,
    cursor: Option<(chrono::DateTime<Utc>, uuid::Uuid)>,
    limit: u32,
) -> Result<HistoryPage, AppError> {
    let pattern = filter.map(str::trim).filter(|f| !f.is_empty()).map(|f| {
        format!(
            "%{}%",
            f.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "select s.video_id, s.title, s.created_at, s.id, s.from_cache,
                a.email as member_email, s.user_id is null as removed, s.former_member
         from user_summaries s
         left join users u on u.org_id = s.org_id and u.id = s.user_id
         left join accounts a on a.id = u.account_id
         where s.org_id = $1
           and ($2::text is null or s.title ilike $2)
           and ($3::timestamptz is null or (s.created_at, s.id) < ($3, $4))
         order by s.created_at desc, s.id desc
         limit $5",
    )
    .bind(tx.org_id().as_uuid())
    .bind(pattern)
    .bind(cursor.map(|c| c.0))
    .bind(cursor.map(|c| c.1))
    .bind(i64::from(limit) + 1)
    .fetch_all(tx.conn())
    .await?;
    let more = rows.len() > limit as usize;
    let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|row| format!("{}_{}", row.created_at.timestamp_micros(), row.id))
        })
        .flatten();
    Ok(HistoryPage {
        items: rows
            .into_iter()
            .map(|row| HistoryItem {
                video_id: row.video_id,
                title: row.title,
                requested_on: row.created_at.format("%Y-%m-%d").to_string(),
                from_cache: row.from_cache,
                requested_by: if row.removed {
                    Some(crate::domain::former_member_label(
                        row.former_member.as_deref(),
                    ))
                } else {
                    row.member_email
                },
            })
            .collect(),
        next_cursor,
    })
}

fn parse_cursor(cursor: &str) -> Option<(chrono::DateTime<Utc>, uuid::Uuid)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}
