//! Retention: what nothing else ever deletes (security review finding 17).
//!
//! Expired sessions, rate-limit windows long past, and webhook ledger rows
//! past the retry window are deleted by one pass that runs on the summaries
//! sweeper's task (`summaries::abandoned::run_sweeper`, which also settles
//! abandoned reservations and purges expired idempotency keys): one
//! background sweeper per process.
//!
//! Any number of processes run it. A pass takes a transaction-scoped
//! advisory lock with `pg_try_advisory_xact_lock` (transaction-scoped, so
//! it works through a transaction pooler), and a process that finds the lock
//! taken skips its pass instead of repeating the work.

use crate::{error::AppError, server::db::Db};

/// The advisory lock key of the retention pass (an arbitrary constant, the
/// same in every process).
pub const LOCK_KEY: i64 = 0x746c_6477_7265_7431; // "tldwret1"

/// Webhook ledger rows older than this are deleted: far beyond Dodo's
/// retry window, so no duplicate of them can still arrive.
pub const WEBHOOK_LEDGER_DAYS: i32 = 30;
/// Rate-limit rows whose window started this long ago are dead: the
/// longest window is a day.
pub const RATE_LIMIT_KEEP_HOURS: i32 = 48;

/// What one pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub rate_limits: u64,
    pub webhook_events: u64,
    /// Expired account links (verify, reset, change email).
    pub account_tokens: u64,
}

/// One pass, or `None` when another process is running one right now.
#[tracing::instrument(skip(db))]
pub async fn purge(db: &Db) -> Result<Option<Purged>, AppError> {
    let mut tx = db.shared().await?;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(tx.conn())
        .await?;
    if !locked {
        tx.commit().await?;
        return Ok(None);
    }
    let sessions = sqlx::query(
        "delete from sessions
         where expires_at <= now() or last_seen_at <= now() - make_interval(days => $1)",
    )
    .bind(crate::server::auth::session::IDLE_DAYS as i32)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let rate_limits = sqlx::query(
        "delete from rate_limits where window_start <= now() - make_interval(hours => $1)",
    )
    .bind(RATE_LIMIT_KEEP_HOURS)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let webhook_events = sqlx::query(
        "delete from webhook_events where received_at <= now() - make_interval(days => $1)",
    )
    .bind(WEBHOOK_LEDGER_DAYS)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    let account_tokens = super::account_lifecycle::purge_expired(db).await?;
    let purged = Purged {
        sessions,
        rate_limits,
        webhook_events,
        account_tokens,
    };
    if purged != Purged::default() {
        tracing::info!(?purged, "retention pass");
    }
    Ok(Some(purged))
}
