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
//! spends the unit; failure refunds it, once, unless this request's own
//! attempt had already been billed tokens by the model: then the unit is
//! charged (`quota::charge`), so a failure someone can provoke is never a
//! free loop of paid model calls. No database transaction stays open while
//! YouTube or the model is working. Limits on cost and on YouTube (token
//! caps per plan, an hourly attempt budget per org, a global breaker) are
//! in `limits` and `youtube_guard`.
//!
//! Languages: an org may choose the language its summaries are written in
//! (`orgs.summary_language`). The summary in the video's own language (the
//! cache row with variant `''`) is made first, as for everyone; only if it
//! turns out to be in another language is the `(video, language)` variant
//! made too, by the same single flight. One reservation covers both steps
//! and is spent or refunded once. The one-statement cache hit makes the
//! same choice in SQL (`serve_ready_summary`).

mod abandoned;
mod flight;
pub mod limits;
mod own;
pub mod ready;
mod youtube_guard;

pub use ready::ReadySummary;

use chrono::Utc;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use limits::TokenCap;

use super::{
    db_error, orgs,
    quota::{self, Reservation},
    video_cache::{self, CacheState, Completion, Failure, Lease, variant_key},
    waiter::{self, VideoWaiter},
};
use crate::{
    domain::{
        Dashboard, HistoryItem, Permission, PlanCatalog, SummaryBody, SummaryLanguage,
        SummaryStatus, SummaryView, UserId, VideoId,
    },
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        clients::youtube::{YouTubeClient, YouTubeError},
        config::SummarySettings,
        db::{Db, TenantScope},
        metrics::{self, Limited, SummaryOutcome},
        summarizer::{
            Language, Progress, Summarizer, TranscriptLine, Usage, chunking::transcript_tokens,
        },
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
    /// One wait per video (and variant and cap) per process: every settle
    /// task of this process that needs the same row shares it.
    flights: flight::Flights,
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
            flights: flight::Flights::default(),
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
        // A new attempt on YouTube's (and maybe the model's) time, counted
        // whatever becomes of it: a refund does not give it back. Over the
        // budget, the reservation is rolled back with it (the count is
        // already past the limit, so losing this one hit changes nothing).
        if let Some(retry_after_seconds) =
            youtube_guard::spend_attempt(&mut tx, self.settings.spend.youtube_attempts_per_org_hour)
                .await?
        {
            tx.rollback().await?;
            metrics::rate_limited(Limited::Throttle);
            return Err(AppError::RateLimited {
                retry_after_seconds,
            });
        }
        let cap = self.cap(&mut tx).await?;
        quota::mark_variant(&mut tx, reservation, wanted).await?;
        tx.commit().await?;

        let engine = self.clone();
        let (scope, video) = (member.scope(), video.clone());
        let user = member.org.user_id;
        tokio::spawn(async move {
            if let Err(error) = engine
                .settle(scope, user, reservation, video, wanted, cap)
                .await
            {
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
        let (from_cache, variant, open, charged): (Option<bool>, Option<String>, bool, bool) =
            sqlx::query_as(
                "select s.from_cache, s.variant,
                    exists (select from usage_records r
                            where r.org_id = $1 and r.video_id = $2 and r.status = 'reserved'),
                    coalesce((select r.status = 'charged' from usage_records r
                              where r.org_id = $1 and r.video_id = $2
                              order by r.created_at desc limit 1), false)
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
            // This org's own last attempt failed after the model had
            // started: the shared "nothing was charged" is not true for it.
            (
                None,
                CacheState::Failed { .. }
                | CacheState::Claimable {
                    last_error: Some(_),
                },
            ) if charged && !open => SummaryStatus::Failed {
                message: CHARGED_MESSAGE.into(),
            },
            // While this org's unit is still reserved, whether the failure
            // costs it is not settled yet: the shared "nothing was charged"
            // may be untrue for it (a failure after billed tokens is
            // charged), so it waits below with the other unsettled states.
            (None, CacheState::Failed { message }) if !open => SummaryStatus::Failed { message },
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
        cap: TokenCap,
    ) -> Result<(), AppError> {
        let outcome = self.obtain_for(&video, wanted, cap).await;
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
        outcome: &Result<(Box<SummaryView>, bool, Option<SummaryLanguage>), Failed>,
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
            // This request's own attempt failed after the model billed
            // tokens: the unit stays spent (the failure is cached for
            // everyone meanwhile, so this is charged once per attempt).
            Err(failed) if failed.billed_tokens() > 0 => {
                tracing::info!(message = %failed.message, tokens = failed.billed_tokens(), "summary failed after the model billed tokens; charging");
                quota::charge(&mut tx, reservation, failed.billed_tokens()).await?;
            }
            Err(failed) => {
                tracing::info!(message = %failed.message, "summary failed; refunding");
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
        cap: TokenCap,
    ) -> Result<(Box<SummaryView>, bool, Option<SummaryLanguage>), Failed> {
        let (view, from_cache) = self.obtain(video, None, cap).await?;
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
                let (view, from_cache) = self.obtain(video, Some(variant), cap).await?;
                Ok((view, from_cache, Some(variant)))
            }
        }
    }

    /// One cache row of the video, from the cache, from another worker, or
    /// made here. Every settle task of this process that wants the same row
    /// (and has the same cap) shares one wait: the first one does it, the
    /// others take its outcome as waiters (nothing billed to them).
    async fn obtain(
        &self,
        video: &VideoId,
        variant: Option<SummaryLanguage>,
        cap: TokenCap,
    ) -> Obtained {
        let key = (video.clone(), variant, cap);
        self.flights
            .join(key, self.obtain_here(video, variant, cap))
            .await
    }

    /// [`Self::obtain`] in this task. `Err` carries the member-facing
    /// reason, and the tokens the model billed if this task did the work.
    async fn obtain_here(
        &self,
        video: &VideoId,
        variant: Option<SummaryLanguage>,
        cap: TokenCap,
    ) -> Obtained {
        let mut notifications = self.waiter.subscribe();
        let started = Instant::now();
        let mut waited = false;
        let mut poll = waiter::FIRST_POLL;
        loop {
            if started.elapsed() > WAIT_LIMIT {
                return Err("Summarizing took too long. Please try again.".into());
            }
            match video_cache::claim_variant(&self.db, video, variant, self.settings.lease)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(lease) => {
                    return self.work(video, lease, cap).await.map(|view| (view, false));
                }
                None => match video_cache::peek_variant(&self.db, video, variant)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    CacheState::Ready(view) => return Ok((view, !waited)),
                    CacheState::Failed { message } => return Err(message.into()),
                    CacheState::Working { .. } => {
                        waited = true;
                        // Woken at once by a notification; the poll is a
                        // backstop for missed ones, so it backs off.
                        self.waiter
                            .nudge(&mut notifications, video.as_str(), poll)
                            .await;
                        poll = waiter::next_poll(poll);
                    }
                    // The attempt we waited on failed (and its cool-down is
                    // already over): share its failure rather than call
                    // the model again for this waiter.
                    CacheState::Claimable {
                        last_error: Some(message),
                    } if waited => return Err(message.into()),
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
    async fn work(
        &self,
        video: &VideoId,
        lease: Lease,
        cap: TokenCap,
    ) -> Result<Box<SummaryView>, Failed> {
        let spend = &self.settings.spend;
        // YouTube is blocking us: nobody asks it anything until the
        // breaker's cool-down is over (asking more is what keeps us blocked).
        match youtube_guard::breaker_open(
            &self.db,
            spend.youtube_blocked_cooldown,
            spend.youtube_blocked_cooldown_max,
        )
        .await
        {
            Ok(Some(wait)) => {
                let message = format!(
                    "YouTube is refusing our requests right now, so we did not ask it for this video. \
                     Nothing was charged; try again in about {} minutes, or paste the transcript.",
                    wait.as_secs().div_ceil(60).max(1)
                );
                self.release(
                    video,
                    lease,
                    "blocked",
                    &message,
                    Failure::Permanent { ttl: wait },
                )
                .await;
                return Err(message.into());
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "reading the YouTube breaker failed; fetching anyway")
            }
        }
        let fetched = self.youtube.fetch(video).await;
        let breaker = match &fetched {
            Ok(_) => youtube_guard::reset(&self.db).await,
            Err(YouTubeError::Blocked | YouTubeError::PoTokenRequired) => {
                youtube_guard::trip(&self.db).await
            }
            Err(_) => Ok(()),
        };
        if let Err(error) = breaker {
            tracing::warn!(%error, "updating the YouTube breaker failed");
        }
        let transcript = match fetched {
            Ok(transcript) => transcript,
            Err(error) => {
                let failure = if error.is_permanent() {
                    Failure::Permanent {
                        ttl: self.settings.negative_ttl,
                    }
                } else {
                    // Retrying a failing video soon is pointless and
                    // hammers YouTube: 1 → 5 → 30 minutes.
                    Failure::Stepped {
                        steps: spend.youtube_failure_ttls,
                    }
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
                return Err(message.into());
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
        // Over the claimant's plan cap: refused before any model call. The
        // row is released at once (not cached), since an org on a bigger
        // plan may make it.
        if let Some(message) = cap.refuse(transcript_tokens(&lines)) {
            self.release(
                video,
                lease,
                "over_cap",
                &message,
                Failure::Permanent {
                    ttl: Duration::ZERO,
                },
            )
            .await;
            return Err(message.into());
        }
        let streamed = Arc::new(Mutex::new(String::new()));
        let billed = Arc::new(Mutex::new(Usage::default()));
        let (tick_tx, mut tick_rx) = tokio::sync::watch::channel(());
        let on_progress = {
            let (streamed, billed) = (streamed.clone(), billed.clone());
            move |progress: Progress| {
                if let Progress::Billed(usage) = progress {
                    billed.lock().unwrap_or_else(|e| e.into_inner()).add(usage);
                    return;
                }
                let mut text = streamed.lock().unwrap_or_else(|e| e.into_inner());
                match progress {
                    Progress::Text(delta) => text.push_str(&delta),
                    Progress::Restart { .. } => text.clear(),
                    Progress::Chunk { .. } | Progress::Billed(_) => {}
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
                let billed = *billed.lock().unwrap_or_else(|e| e.into_inner());
                tracing::warn!(%error, billed_tokens = billed.prompt_tokens + billed.completion_tokens, "the summarizer failed");
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
                // Everyone gets the failure as the cache now words it; the
                // org whose attempt this was pays for the tokens it cost.
                let message = match video_cache::peek_variant(&self.db, video, lease.variant).await
                {
                    Ok(CacheState::Failed { message }) => message,
                    _ => format!("{message} Nothing was charged; please try again later."),
                };
                return Err(Failed { message, billed });
            }
        };
        let cost = priced_and_counted(&self.settings.prices, &summary);
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
    /// Gives the lease up with a failure that is not the video's fault
    /// (YouTube blocks us, the plan's cap): recorded like any failure, so
    /// waiters wake and see why.
    async fn release(
        &self,
        video: &VideoId,
        lease: Lease,
        kind: &str,
        message: &str,
        failure: Failure,
    ) {
        if let Err(error) = video_cache::fail(&self.db, video, lease, kind, message, failure).await
        {
            tracing::warn!(%error, kind, "giving up a lease failed");
        }
    }

    /// How long a transient failure is shared before anyone may retry.
    fn cool_down(&self) -> Failure {
        Failure::Transient {
            base: self.settings.failure_cooldown,
            max: self.settings.failure_cooldown_max,
        }
    }
}

/// Why a summary could not be had (the member-facing reason), and the
/// tokens the model billed for it when this task did the work; waiters and
/// cached failures carry none.
#[derive(Clone, Debug)]
pub(crate) struct Failed {
    message: String,
    billed: Usage,
}

impl Failed {
    fn billed_tokens(&self) -> u64 {
        self.billed.prompt_tokens + self.billed.completion_tokens
    }

    /// The same failure, seen by someone who only waited for it.
    fn as_waiter(&self) -> Failed {
        Failed {
            message: self.message.clone(),
            billed: Usage::default(),
        }
    }
}

impl From<&str> for Failed {
    fn from(message: &str) -> Failed {
        message.to_owned().into()
    }
}

impl From<String> for Failed {
    fn from(message: String) -> Failed {
        Failed {
            message,
            billed: Usage::default(),
        }
    }
}

/// One cache row as a settle task gets it: the summary and whether it came
/// straight from the cache, or why not.
type Obtained = Result<(Box<SummaryView>, bool), Failed>;

/// What the status page says to an org whose attempt failed after the
/// model had started (its unit was charged, see `quota::charge`).
const CHARGED_MESSAGE: &str = "The AI service could not finish this summary after it had started \
    working on it. That work is billed either way, so this attempt used one of your summaries. \
    You can try again later.";

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

/// What a made summary cost (see [`cost_micros`]), counted in the metrics
/// as it is priced: every summary a model makes goes through here once.
pub fn priced_and_counted(
    prices: &[(String, f64, f64)],
    summary: &crate::server::summarizer::Summary,
) -> u64 {
    let (prompt, completion) = (summary.usage.prompt_tokens, summary.usage.completion_tokens);
    let cost = cost_micros(prices, &summary.model, prompt, completion);
    metrics::summary_made(&summary.model, summary.built_in, prompt, completion, cost);
    cost
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
