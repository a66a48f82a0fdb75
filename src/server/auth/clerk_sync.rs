//! Clerk's webhooks (`POST /webhooks/clerk`), applied to our rows: a user
//! deleted in Clerk loses every membership here, a membership removed or
//! changed in Clerk is removed or changed here.
//!
//! As with Dodo's: the ledger row (`webhook_events`, keyed by `clerk:` and
//! the `svix-id`) and the effect commit in one transaction, so a redelivery
//! (sequential or concurrent) changes nothing. Svix does not order
//! deliveries, so each effect is applied only if it is newer than the last
//! fact applied to the membership (`users.clerk_synced_at`, or the removal
//! in `clerk_removed_members`).

use chrono::{DateTime, Utc};
use std::fmt;

use super::clerk_link::{self, ClerkAuth};
use crate::{
    error::AppError,
    server::{
        db::{Db, TenantScope},
        webhooks::clerk::{ClerkChange, ClerkEvent, standard_headers},
    },
};

/// The ledger is shared with Dodo's; the prefix keeps the two id spaces
/// apart (both may come from Svix).
const LEDGER_PREFIX: &str = "clerk:";

/// What became of a delivery: the ledger's `outcome` and the answer's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Older than what we hold: recorded, not applied.
    Stale,
    /// About a user or membership we never stored: recorded.
    Unknown,
    /// A type we do not act on (or data we cannot read): recorded.
    Ignored,
    /// This `svix-id` was already processed: nothing happened now.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Unknown => "unknown",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database failure: 503, so Svix retries.
fn unavailable(error: sqlx::Error) -> AppError {
    tracing::error!(%error, "Clerk webhook: database error; Clerk will retry");
    AppError::Unavailable("The database is unavailable; please retry.".into())
}

/// Handles one delivery: 403 for a bad signature, 400 for a body that is
/// not an event, 503 when not configured or the database is down, else
/// 200 with the outcome.
#[tracing::instrument(name = "webhook.clerk", skip_all, fields(webhook_id = tracing::field::Empty, event_type = tracing::field::Empty, outcome = tracing::field::Empty))]
pub async fn receive(
    db: &Db,
    clerk: Option<&ClerkAuth>,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Outcome, AppError> {
    let verifier = clerk.and_then(|c| c.webhooks.as_ref()).ok_or_else(|| {
        AppError::Unavailable(
            "Clerk webhooks are not configured on this server (CLERK_WEBHOOK_SECRET).".into(),
        )
    })?;
    let verified = verifier
        .verify(&standard_headers(headers), body, Utc::now().timestamp())
        .map_err(|error| {
            let error = error.to_string().replace("webhook-", "svix-");
            AppError::Refused(format!("Webhook rejected: {error}."))
        })?;
    let span = tracing::Span::current();
    span.record("webhook_id", verified.id.as_str());
    let event = ClerkEvent::parse(body)
        .map_err(|error| AppError::BadRequest(format!("Webhook rejected: {error}.")))?;
    span.record("event_type", event.event_type.as_str());
    let ledger_id = format!("{LEDGER_PREFIX}{}", verified.id);
    if ledger_id.len() > 256 {
        return Err(AppError::BadRequest(
            "Webhook rejected: the svix-id is too long.".into(),
        ));
    }
    let outcome = apply(db, &ledger_id, &event).await?;
    span.record("outcome", outcome.as_str());
    tracing::info!("Clerk webhook processed");
    if outcome == Outcome::Applied {
        // Cached links of Clerk tokens to memberships are stale now (in this
        // process; others' expire within a token's life).
        db.identity().forget_memberships();
    }
    Ok(outcome)
}

async fn apply(db: &Db, ledger_id: &str, event: &ClerkEvent) -> Result<Outcome, AppError> {
    match &event.change {
        ClerkChange::UserDeleted { user_id } => delete_user(db, ledger_id, event, user_id).await,
        ClerkChange::MembershipDeleted { org_id, user_id } => {
            change_membership(db, ledger_id, event, org_id, user_id, None).await
        }
        ClerkChange::MembershipUpdated {
            org_id,
            user_id,
            role,
        } => change_membership(db, ledger_id, event, org_id, user_id, Some(role)).await,
        ClerkChange::Other { unreadable } => {
            if *unreadable {
                tracing::warn!("a Clerk event whose data we cannot read; recorded only");
            }
            let mut tx = db.shared().await.map_err(unavailable)?;
            let outcome = if insert_ledger(tx.conn(), ledger_id, event, Outcome::Ignored).await? {
                Outcome::Ignored
            } else {
                Outcome::Duplicate
            };
            tx.commit().await.map_err(unavailable)?;
            Ok(outcome)
        }
    }
}

/// `user.deleted`: the tombstone keeps a token minted just before the
/// deletion from creating the account again, and deleting the account
/// removes its memberships (and sessions) in every org in this one
/// transaction, through the foreign keys. The orgs and their data stay.
async fn delete_user(
    db: &Db,
    ledger_id: &str,
    event: &ClerkEvent,
    user_id: &str,
) -> Result<Outcome, AppError> {
    let mut tx = db.shared().await.map_err(unavailable)?;
    if !insert_ledger(tx.conn(), ledger_id, event, Outcome::Applied).await? {
        return Ok(Outcome::Duplicate);
    }
    sqlx::query(
        "insert into clerk_deleted_users (clerk_user_id, deleted_at) values ($1, $2)
         on conflict do nothing",
    )
    .bind(user_id)
    .bind(event.occurred_at)
    .execute(tx.conn())
    .await
    .map_err(unavailable)?;
    let deleted = sqlx::query("delete from accounts where clerk_user_id = $1")
        .bind(user_id)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?
        .rows_affected();
    let outcome = if deleted == 0 {
        Outcome::Unknown
    } else {
        Outcome::Applied
    };
    set_outcome(tx.conn(), ledger_id, outcome).await?;
    tx.commit().await.map_err(unavailable)?;
    // Unknown or not, the tombstone now holds.
    Ok(outcome)
}

/// `organizationMembership.deleted` (`role: None`) or `.updated`, in the
/// org's tenant transaction. Only existing rows change: memberships are
/// created from tokens, which carry the org's slug.
async fn change_membership(
    db: &Db,
    ledger_id: &str,
    event: &ClerkEvent,
    clerk_org_id: &str,
    clerk_user_id: &str,
    role: Option<&str>,
) -> Result<Outcome, AppError> {
    let org = clerk_link::org_id_for(clerk_org_id);
    let at = event.occurred_at;
    let mut tx = db
        .tenant(TenantScope::org(org))
        .await
        .map_err(unavailable)?;
    if !insert_ledger(tx.conn(), ledger_id, event, Outcome::Applied).await? {
        return Ok(Outcome::Duplicate);
    }
    // Accounts are global; readable from any transaction.
    let account: Option<uuid::Uuid> =
        sqlx::query_scalar("select id from accounts where clerk_user_id = $1")
            .bind(clerk_user_id)
            .fetch_optional(tx.conn())
            .await
            .map_err(unavailable)?;
    let removed_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select removed_at from clerk_removed_members where org_id = $1 and clerk_user_id = $2",
    )
    .bind(org.as_uuid())
    .bind(clerk_user_id)
    .fetch_optional(tx.conn())
    .await
    .map_err(unavailable)?;
    // The time of the membership as we hold it; None: no such row.
    let synced_at: Option<Option<DateTime<Utc>>> = match account {
        Some(account) => sqlx::query_scalar(
            "select clerk_synced_at from users where org_id = $1 and account_id = $2 for update",
        )
        .bind(org.as_uuid())
        .bind(account)
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable)?,
        None => None,
    };
    let newer_known = synced_at.flatten().is_some_and(|synced| synced > at)
        || removed_at.is_some_and(|removed| removed > at);
    let outcome = match role {
        None => {
            // Remembered even when there is no row (yet): a token issued
            // before this removal must not create one.
            sqlx::query(
                "insert into clerk_removed_members (org_id, clerk_user_id, removed_at)
                 values ($1, $2, $3)
                 on conflict (org_id, clerk_user_id)
                 do update set removed_at = greatest(clerk_removed_members.removed_at, excluded.removed_at)",
            )
            .bind(org.as_uuid())
            .bind(clerk_user_id)
            .bind(at)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
            match (account, synced_at) {
                (Some(account), Some(synced)) if synced.is_none_or(|synced| synced <= at) => {
                    sqlx::query("delete from users where org_id = $1 and account_id = $2")
                        .bind(org.as_uuid())
                        .bind(account)
                        .execute(tx.conn())
                        .await
                        .map_err(unavailable)?;
                    Outcome::Applied
                }
                // Re-added (by a token issued after this event) since.
                (Some(_), Some(_)) => Outcome::Stale,
                _ => Outcome::Unknown,
            }
        }
        Some(role) => match (account, synced_at) {
            _ if newer_known => Outcome::Stale,
            (Some(account), Some(_)) => {
                sqlx::query(
                    "update users set role = $3, clerk_synced_at = $4
                     where org_id = $1 and account_id = $2",
                )
                .bind(org.as_uuid())
                .bind(account)
                .bind(clerk_link::role_for(Some(role)).as_str())
                .bind(at)
                .execute(tx.conn())
                .await
                .map_err(unavailable)?;
                Outcome::Applied
            }
            _ => Outcome::Unknown,
        },
    };
    set_outcome(tx.conn(), ledger_id, outcome).await?;
    tx.commit().await.map_err(unavailable)?;
    Ok(outcome)
}

/// `false`: this delivery was recorded before (a concurrent copy waits
/// here on the key until the first commits, then finds it).
async fn insert_ledger(
    conn: &mut sqlx::PgConnection,
    ledger_id: &str,
    event: &ClerkEvent,
    outcome: Outcome,
) -> Result<bool, AppError> {
    let inserted = sqlx::query(
        "insert into webhook_events (webhook_id, event_type, occurred_at, payload, outcome)
         values ($1, $2, $3, $4, $5)
         on conflict (webhook_id) do nothing",
    )
    .bind(ledger_id)
    .bind(&event.event_type)
    .bind(event.occurred_at)
    .bind(&event.payload)
    .bind(outcome.as_str())
    .execute(conn)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(inserted == 1)
}

async fn set_outcome(
    conn: &mut sqlx::PgConnection,
    ledger_id: &str,
    outcome: Outcome,
) -> Result<(), AppError> {
    sqlx::query("update webhook_events set outcome = $2 where webhook_id = $1")
        .bind(ledger_id)
        .bind(outcome.as_str())
        .execute(conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}
