//! Reservations whose request died with its process (a crash between
//! reserving and settling): the unit is spent if the video got made,
//! refunded otherwise.
//!
//! A reservation counts as abandoned once it is older than the lease and
//! its video is settled, or its lease ran out a whole lease ago (a live
//! waiter would have taken it over within a poll interval). They are
//! settled on the org's lease path (a request that is not a cache hit) and
//! by a sweeper in every process, so a unit never stays reserved much past
//! a lease even if the org asks for nothing more. Cache hits never pay for
//! this.

use std::time::Duration;

use super::{SummaryEngine, settle_success};
use crate::{
    domain::{OrgId, SummaryLanguage},
    error::AppError,
    server::{
        db::{TenantScope, TenantTx},
        services::{
            quota::{self, Reservation},
            video_cache::variant_needed,
        },
    },
};

#[derive(sqlx::FromRow)]
struct AbandonedRow {
    id: uuid::Uuid,
    /// NULL once the member who asked was removed (the record stays).
    user_id: Option<uuid::Uuid>,
    video_id: String,
    /// The language asked for ('' = the video's own).
    variant: String,
    /// The video's own ('') row.
    status: Option<String>,
    title: Option<String>,
    language: Option<String>,
    built_in: Option<bool>,
    /// The row in the language asked for, if any.
    variant_status: Option<String>,
    variant_title: Option<String>,
}

/// Settles the org's abandoned reservations inside `tx`.
pub async fn settle(tx: &mut TenantTx, lease: Duration) -> Result<usize, AppError> {
    let abandoned: Vec<AbandonedRow> = sqlx::query_as(
        "select r.id, r.user_id, r.video_id, r.variant, v.status, v.title, v.language, v.built_in,
                l.status as variant_status, l.title as variant_title
         from usage_records r
         left join videos v on v.video_id = r.video_id and v.variant = ''
         left join videos l on r.variant <> '' and l.video_id = r.video_id and l.variant = r.variant
         where r.org_id = $1 and r.status = 'reserved'
           and r.created_at < now() - make_interval(secs => $2)
           -- Work with its own heartbeat (a pasted transcript) is alive.
           and (r.work_expires_at is null or r.work_expires_at < now())
           -- Nobody works on a row it may wait for, or nobody took an
           -- expired lease over for a whole lease period: every request
           -- waiting on it is gone too.
           and not exists (
               select from videos w
               where w.video_id = r.video_id and w.variant in ('', r.variant)
                 and w.status = 'pending'
                 and w.lease_expires_at > now() - make_interval(secs => $2))",
    )
    .bind(tx.org_id().as_uuid())
    .bind(lease.as_secs_f64())
    .fetch_all(tx.conn())
    .await?;
    let count = abandoned.len();
    for row in abandoned {
        let reservation = Reservation {
            org_id: tx.org_id(),
            id: row.id,
        };
        // The summary the org wanted exists: the video's own row, or, when
        // that one is in another language, the row in the language asked for.
        let made = if row.status.as_deref() != Some("ready") {
            None
        } else {
            let wanted = SummaryLanguage::parse(&row.variant).ok();
            match variant_needed(
                wanted,
                row.language.as_deref(),
                row.built_in.unwrap_or(false),
            ) {
                None => Some((None, row.title.as_deref())),
                Some(variant) if row.variant_status.as_deref() == Some("ready") => {
                    Some((Some(variant), row.variant_title.as_deref()))
                }
                Some(_) => None,
            }
        };
        match made.zip(row.user_id) {
            Some(((variant, title), user_id)) => {
                settle_success(
                    tx,
                    reservation,
                    user_id,
                    &row.video_id,
                    variant,
                    title,
                    false,
                )
                .await?;
            }
            // Not made, or the member who asked was removed before it
            // settled: nobody in the org is waiting for it, so the unit
            // goes back.
            None => {
                quota::refund(tx, reservation).await?;
            }
        }
        tracing::info!(video = %row.video_id, "settled an abandoned reservation");
    }
    Ok(count)
}

/// How often the sweeper looks: often enough that nothing stays reserved
/// much past a lease, rarely enough to cost nothing.
pub fn sweep_interval(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(500), Duration::from_secs(60))
}

impl SummaryEngine {
    /// One pass: find the orgs with abandoned reservations (the only
    /// cross-tenant read, through a narrow definer function that returns
    /// org ids) and settle each in its own tenant transaction.
    pub async fn sweep_abandoned(&self) -> Result<usize, AppError> {
        let mut shared = self.db.shared().await?;
        let orgs: Vec<uuid::Uuid> =
            sqlx::query_scalar("select org_id from orgs_with_abandoned_reservations($1)")
                .bind(self.settings.lease.as_secs_f64())
                .fetch_all(shared.conn())
                .await?;
        shared.commit().await?;
        let mut settled = 0;
        for org in orgs {
            let mut tx = self
                .db
                .tenant(TenantScope::org(OrgId::from_uuid(org)))
                .await?;
            settled += settle(&mut tx, self.settings.lease).await?;
            tx.commit().await?;
        }
        Ok(settled)
    }
}

/// Runs [`SummaryEngine::sweep_abandoned`] forever; a failed pass (the
/// database is down) is logged and tried again on the next tick.
pub async fn run_sweeper(engine: SummaryEngine) {
    let mut tick = tokio::time::interval(sweep_interval(engine.settings.lease));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if let Err(error) = engine.sweep_abandoned().await {
            tracing::warn!(%error, "sweeping abandoned reservations failed; will retry");
        }
        // Expired Idempotency-Key answers ride on the same task: reads
        // already ignore them, so once in a while is enough, and a purge
        // running in two processes at once deletes each row once.
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_IDEMPOTENCY_EVERY) {
            last_purge = Some(tokio::time::Instant::now());
            match crate::server::services::idempotency::purge_expired(&engine.db).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "purging idempotency keys failed; will retry"),
            }
            // Sessions, rate-limit rows and the webhook ledger: one process
            // at a time (advisory lock), the others skip.
            if let Err(error) = crate::server::services::retention::purge(&engine.db).await {
                tracing::warn!(%error, "the retention pass failed; will retry");
            }
        }
    }
}

/// How often the sweeper deletes expired `Idempotency-Key` answers.
const PURGE_IDEMPOTENCY_EVERY: Duration = Duration::from_secs(15 * 60);
