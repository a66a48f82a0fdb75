//! Transcripts a member pasted (YouTube had none, or blocks us): summarized
//! for that org only, never written to the shared cache.
//!
//! The work runs in a task of its own, like the YouTube path: a dropped
//! connection does not cancel model calls already paid for, and the work
//! settles its unit itself. The reservation carries a heartbeat
//! (`work_expires_at`) so the abandoned-reservation sweep leaves it alone
//! while the work is alive, and takes over if the process dies.

use std::sync::{Arc, Mutex};

use super::{SummaryEngine, limits::TokenCap, priced_and_counted, quota_exceeded, record_history};
use crate::{
    domain::{Permission, VideoId, transcript_file::parse_transcript},
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        db::TenantScope,
        services::{db_error, orgs, quota},
        summarizer::{
            Language, Progress, SummaryLanguage, TranscriptLine, Usage, chunking::transcript_tokens,
        },
    },
};

impl SummaryEngine {
    /// Summarizes a transcript a member pasted. It costs a unit like any
    /// summary, is refused before any model call when it is over the plan's
    /// cap, and is stored for this org only. Returns when the work is done;
    /// if the caller goes away first, the work carries on regardless.
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
        let cap = self.cap(&mut tx).await?;
        if let Some(message) = cap.refuse(transcript_tokens(&lines)) {
            tx.rollback().await.map_err(db_error)?;
            return Err(AppError::field(
                "transcript",
                format!("{message} Nothing was charged."),
            ));
        }
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
        quota::keep_working(&mut tx, reservation, self.settings.lease).await?;
        // The org's own summary, so in the org's language if it chose one.
        let wanted = orgs::summary_language_in(&mut tx).await?;
        tx.commit().await.map_err(db_error)?;

        let work = OwnWork {
            scope: member.scope(),
            user: member.org.user_id.as_uuid(),
            reservation,
            video: video.clone(),
            lines,
            wanted,
        };
        let engine = self.clone();
        tokio::spawn(async move { engine.own_work(work).await })
            .await
            .map_err(AppError::internal)?
    }

    /// The plan's cap on one summary, read in the org's transaction.
    pub(super) async fn cap(
        &self,
        tx: &mut crate::server::db::TenantTx,
    ) -> Result<TokenCap, AppError> {
        let plan = quota::plan(tx).await?;
        Ok(TokenCap {
            plan,
            max_tokens: self.settings.spend.max_tokens(plan),
        })
    }

    /// The paid part, in its own task: the model, then the unit settled
    /// one way or the other.
    async fn own_work(&self, work: OwnWork) -> Result<(), AppError> {
        let OwnWork {
            scope,
            user,
            reservation,
            video,
            lines,
            wanted,
        } = work;
        let heartbeat = {
            let (db, lease) = (self.db.clone(), self.settings.lease);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let alive = async {
                        let mut tx = db.tenant(scope).await?;
                        let alive = quota::keep_working(&mut tx, reservation, lease).await?;
                        tx.commit().await?;
                        Ok::<_, AppError>(alive)
                    };
                    match alive.await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(error) => tracing::warn!(%error, "pasted-transcript heartbeat failed"),
                    }
                }
            })
        };
        let billed = Arc::new(Mutex::new(Usage::default()));
        let on_progress = {
            let billed = billed.clone();
            move |progress: Progress| {
                if let Progress::Billed(usage) = progress {
                    billed.lock().unwrap_or_else(|e| e.into_inner()).add(usage);
                }
            }
        };
        let language = match wanted {
            Some(chosen) => Language::Chosen(chosen),
            None => Language::Transcript(None),
        };
        let result = self
            .summarizer
            .summarize_in("", &lines, language, &on_progress)
            .await;
        heartbeat.abort();

        let summary = match result {
            Ok(summary) => summary,
            Err(error) => {
                let billed = *billed.lock().unwrap_or_else(|e| e.into_inner());
                let tokens = billed.prompt_tokens + billed.completion_tokens;
                tracing::warn!(%error, billed_tokens = tokens, "summarizing a pasted transcript failed");
                let mut tx = self.db.tenant(scope).await.map_err(db_error)?;
                if tokens > 0 {
                    quota::charge(&mut tx, reservation, tokens).await?;
                } else {
                    quota::refund(&mut tx, reservation).await?;
                }
                tx.commit().await.map_err(db_error)?;
                return Err(AppError::Unavailable(if tokens > 0 {
                    format!(
                        "The AI service could not finish summarizing this transcript. It had already \
                         worked on it ({tokens} tokens), so this attempt used one summary."
                    )
                } else {
                    "The AI service could not summarize this transcript. Nothing was charged; please try again later.".into()
                }));
            }
        };
        let body = summary.body();
        let cost = priced_and_counted(&self.settings.prices, &summary);
        let mut tx = self.db.tenant(scope).await.map_err(db_error)?;
        sqlx::query(
            "insert into own_transcript_summaries (org_id, id, user_id, video_id, summary, model, prompt_version,
                 built_in, prompt_tokens, completion_tokens, cost_micros)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             on conflict (org_id, video_id) do update set summary = excluded.summary, model = excluded.model,
                 prompt_version = excluded.prompt_version, built_in = excluded.built_in, user_id = excluded.user_id,
                 prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
                 cost_micros = excluded.cost_micros, created_at = now()",
        )
        .bind(tx.org_id().as_uuid())
        .bind(uuid::Uuid::new_v4())
        .bind(user)
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
            user,
            video.as_str(),
            None,
            Some("Your pasted transcript"),
            false,
        )
        .await?;
        quota::succeed(&mut tx, reservation).await?;
        tx.commit().await.map_err(db_error)
    }
}

/// Everything the background task needs, owned.
struct OwnWork {
    scope: TenantScope,
    user: uuid::Uuid,
    reservation: quota::Reservation,
    video: VideoId,
    lines: Vec<TranscriptLine>,
    wanted: Option<SummaryLanguage>,
}
