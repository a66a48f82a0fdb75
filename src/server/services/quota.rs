//! Monthly summary quotas, exact under any concurrency.
//!
//! A unit is reserved by one conditional upsert (`… do update … where used <
//! limit`) before any paid work starts; PostgreSQL's row lock on the counter
//! serializes concurrent reservations, so the count can never pass the
//! limit. A failed summary refunds its unit through a status transition on
//! its ledger row, which can happen only once; one that failed after the
//! model had billed tokens is `charged` instead (spent, with no history). The database clock decides
//! the period and the plan: `org_entitlement` (a SQL function, see the
//! billing migration) answers "which plan, which period" from the org's
//! subscription row, and the plan's limit comes from the configured catalog,
//! passed in as JSON so that reserving stays one statement.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::db_error;
use crate::{
    domain::{OrgId, PlanCatalog, PlanId, UserId, VideoId},
    error::AppError,
    server::db::TenantTx,
};

/// What the dashboard meter shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaStatus {
    pub plan: PlanId,
    pub period_start: DateTime<Utc>,
    pub used: i32,
    pub limit: i32,
    pub resets_at: DateTime<Utc>,
}

impl QuotaStatus {
    /// The meter's words.
    pub fn view(&self) -> crate::domain::QuotaView {
        crate::domain::QuotaView {
            plan: self.plan,
            used: self.used,
            limit: self.limit,
            resets_on: self.resets_at.format("%B %-d").to_string(),
            resets_in_days: (self.resets_at - Utc::now()).num_days().max(0) + 1,
        }
    }
}

/// One reserved unit, to be settled (succeeded or refunded) later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub org_id: OrgId,
    pub id: Uuid,
}

/// What asking for a unit got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reserve {
    Reserved(Reservation),
    /// The quota ran out; the caller answers 429 with these numbers.
    Exhausted(QuotaStatus),
    /// The org already has an open reservation for this video (one per org
    /// and video): the caller joins that request instead of paying twice.
    AlreadyOpen,
}

impl Reserve {
    /// The reservation, if one was made.
    pub fn reserved(self) -> Option<Reservation> {
        match self {
            Reserve::Reserved(reservation) => Some(reservation),
            _ => None,
        }
    }
}

/// `{"free": 10, "pro": 200, …}`: the limits, for SQL.
pub fn limits_json(plans: &PlanCatalog) -> serde_json::Value {
    plans
        .plans()
        .iter()
        .map(|plan| (plan.id.as_str().to_owned(), plans.limit(plan.id).into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Reserves one unit for `user` and `video` in the current period.
#[tracing::instrument(skip(tx, plans), fields(org = %tx.org_id(), video = %video))]
pub async fn reserve(
    tx: &mut TenantTx,
    user: UserId,
    video: &VideoId,
    plans: &PlanCatalog,
) -> Result<Reserve, AppError> {
    let org = tx.org_id();
    let id = Uuid::new_v4();
    let reserved: Result<Option<Uuid>, sqlx::Error> = sqlx::query_scalar(
        "with entitlement as (
             select e.period_start, e.period_end, coalesce(($2::jsonb ->> e.plan)::int, 0) as max_used
             from org_entitlement($1) e
         ),
         counter as (
             insert into usage_counters as c (org_id, period_start, period_end, used)
             select $1, period_start, period_end, 1 from entitlement where max_used > 0
             on conflict (org_id, period_start) do update set used = c.used + 1
                 where c.used < (select max_used from entitlement)
             returning c.period_start
         )
         insert into usage_records (org_id, id, user_id, video_id, period_start)
         select $1, $3, $4, $5, period_start from counter
         returning id",
    )
    .bind(org.as_uuid())
    .bind(limits_json(plans))
    .bind(id)
    .bind(user.as_uuid())
    .bind(video.as_str())
    .fetch_optional(tx.conn())
    .await;
    match reserved {
        Ok(Some(id)) => Ok(Reserve::Reserved(Reservation { org_id: org, id })),
        Ok(None) => Ok(Reserve::Exhausted(status(tx, plans).await?)),
        // At most one open reservation per org and video.
        Err(error)
            if super::unique_violation(&error).as_deref()
                == Some("usage_records_open_video_idx") =>
        {
            Ok(Reserve::AlreadyOpen)
        }
        Err(error) => Err(db_error(error)),
    }
}

/// The plan, the period and its counter: one function call and one row read
/// by primary key. After a downgrade `used` may exceed `limit`; it is never
/// negative.
pub async fn status(tx: &mut TenantTx, plans: &PlanCatalog) -> Result<QuotaStatus, AppError> {
    let (plan, period_start, resets_at, used): (String, DateTime<Utc>, DateTime<Utc>, Option<i32>) =
        sqlx::query_as(
            "select e.plan, e.period_start, e.period_end,
                    (select used from usage_counters c
                     where c.org_id = $1 and c.period_start = e.period_start)
             from org_entitlement($1) e",
        )
        .bind(tx.org_id().as_uuid())
        .fetch_one(tx.conn())
        .await
        .map_err(db_error)?;
    let plan = PlanId::parse(&plan).unwrap_or(PlanId::Free);
    Ok(QuotaStatus {
        plan,
        period_start,
        used: used.unwrap_or(0),
        limit: plans.limit(plan),
        resets_at,
    })
}

/// Notes which language copy the reserved unit is for, so whoever settles
/// it (the request, or the sweeper after a crash) looks at the right cache
/// row. The video's own (`None`) is the default.
pub async fn mark_variant(
    tx: &mut TenantTx,
    reservation: Reservation,
    variant: Option<crate::domain::SummaryLanguage>,
) -> Result<(), AppError> {
    if variant.is_some() {
        sqlx::query("update usage_records set variant = $3 where org_id = $1 and id = $2")
            .bind(reservation.org_id.as_uuid())
            .bind(reservation.id)
            .bind(crate::server::services::video_cache::variant_key(variant))
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Marks the unit as spent. Returns whether this call settled it.
pub async fn succeed(tx: &mut TenantTx, reservation: Reservation) -> Result<bool, AppError> {
    let done = sqlx::query(
        "update usage_records set status = 'succeeded', settled_at = now()
         where org_id = $1 and id = $2 and status = 'reserved'",
    )
    .bind(reservation.org_id.as_uuid())
    .bind(reservation.id)
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Gives the unit back, once: a second refund (or a refund after success)
/// changes nothing. Returns whether this call refunded it.
pub async fn refund(tx: &mut TenantTx, reservation: Reservation) -> Result<bool, AppError> {
    let refunded: Option<i32> = sqlx::query_scalar(
        "with record as (
             update usage_records set status = 'refunded', settled_at = now()
             where org_id = $1 and id = $2 and status = 'reserved'
             returning period_start
         )
         update usage_counters c set used = c.used - 1
         from record
         where c.org_id = $1 and c.period_start = record.period_start and c.used > 0
         returning c.used",
    )
    .bind(reservation.org_id.as_uuid())
    .bind(reservation.id)
    .fetch_optional(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(refunded.is_some())
}

/// Keeps the unit spent for work that failed after the model had already
/// billed `billed_tokens`: no history row, and no refund, because a refund
/// would make a failure someone can provoke an endless run of paid model
/// calls (DESIGN.md invariant 3: refunded unless the model already billed
/// tokens). Returns whether this call settled it.
pub async fn charge(
    tx: &mut TenantTx,
    reservation: Reservation,
    billed_tokens: u64,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "update usage_records set status = 'charged', settled_at = now(), billed_tokens = $3
         where org_id = $1 and id = $2 and status = 'reserved'",
    )
    .bind(reservation.org_id.as_uuid())
    .bind(reservation.id)
    .bind(i64::try_from(billed_tokens).unwrap_or(i64::MAX))
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// The org's current plan, by the database clock.
pub async fn plan(tx: &mut TenantTx) -> Result<PlanId, AppError> {
    let plan: String = sqlx::query_scalar("select plan from org_entitlement($1)")
        .bind(tx.org_id().as_uuid())
        .fetch_one(tx.conn())
        .await
        .map_err(db_error)?;
    Ok(PlanId::parse(&plan).unwrap_or(PlanId::Free))
}

/// Marks a reservation's work as alive until `for_` from now; while it is,
/// the abandoned-reservation sweep leaves the unit alone (work with no
/// cache lease, such as a pasted transcript, heartbeats through this).
pub async fn keep_working(
    tx: &mut TenantTx,
    reservation: Reservation,
    for_: std::time::Duration,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "update usage_records set work_expires_at = now() + make_interval(secs => $3)
         where org_id = $1 and id = $2 and status = 'reserved'",
    )
    .bind(reservation.org_id.as_uuid())
    .bind(reservation.id)
    .bind(for_.as_secs_f64())
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}
