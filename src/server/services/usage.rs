//! An org's usage numbers, for the REST API and the dashboard. What is
//! counted and what the money means is documented on the domain types
//! (`crate::domain::usage`); the period and the limit are the quota's own
//! (`quota::status`), never computed a second time here.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{
    db_error,
    quota::{self, QuotaStatus},
};
use crate::{
    domain::{
        CumulativeDay, DailyUsage, MemberUsage, MemberUsageLine, OrgRole, Permission, PlanCatalog,
        QuotaView, UsageDay, UsageNow, UsageOverview, UsageTotals, UsageWindow, UserId,
    },
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        db::{Db, TenantTx},
    },
};

/// The units the org spent (`succeeded`, or `charged`: a failure the model
/// already billed), each with its member, period, day, kind and money. A
/// spent unit and the history row that says what the org
/// got are written in one transaction (one history row per org and video),
/// so the history row tells a ledger row's kind and which cache row it was.
/// Binds `$1`: the org. A macro, so every query that uses it stays a
/// `&'static str`.
macro_rules! spent_units {
    () => {
        "select r.user_id, r.period_start,
                (r.created_at at time zone 'UTC')::date as day,
                coalesce(s.from_cache, false) as cached,
                case when s.from_cache then coalesce(v.cost_micros, 0)
                     else coalesce(o.cost_micros, v.cost_micros, 0) end as cost,
                r.created_at
         from usage_records r
         left join user_summaries s on s.org_id = r.org_id and s.video_id = r.video_id
         left join own_transcript_summaries o on o.org_id = r.org_id and o.video_id = r.video_id
         left join videos v on v.video_id = r.video_id and v.variant = s.variant
         where r.org_id = $1 and r.status in ('succeeded', 'charged')"
    };
}

/// Where the member's org stands in its current period. Every member may
/// see it. `plans` is the configured catalog (the limits the quota uses).
#[tracing::instrument(skip(db, plans, member), fields(org = %member.org.id))]
pub async fn current(
    db: &Db,
    plans: &PlanCatalog,
    member: &CurrentMember,
) -> Result<UsageNow, AppError> {
    member.require(Permission::ViewHistory)?;
    let mut tx = db.tenant(member.scope()).await?;
    let status = quota::status(&mut tx, plans).await?;
    tx.commit().await?;
    Ok(usage_now(&status, plans))
}

/// The meter's words for the org shell: every member may see them.
#[tracing::instrument(skip(db, plans, member), fields(org = %member.org.id))]
pub async fn quota(
    db: &Db,
    plans: &PlanCatalog,
    member: &CurrentMember,
) -> Result<QuotaView, AppError> {
    member.require(Permission::ViewHistory)?;
    let mut tx = db.tenant(member.scope()).await?;
    let status = quota::status(&mut tx, plans).await?;
    tx.commit().await?;
    Ok(status.view())
}

fn usage_now(status: &QuotaStatus, plans: &PlanCatalog) -> UsageNow {
    UsageNow {
        used: status.used,
        limit: status.limit,
        remaining: (status.limit - status.used).max(0),
        period_start: rfc3339(status.period_start),
        period_end: rfc3339(status.resets_at),
        plan: status.plan.as_str().to_owned(),
        plan_name: plans.get(status.plan).name.clone(),
    }
}

/// The dashboard's usage: the quota, this period's spent units (fresh,
/// cached, spend, savings), the last 30 days, the period day by day, and
/// per-member lines as [`members`] shows them. Every member may see it;
/// one tenant transaction, and the period is the quota's own.
#[tracing::instrument(skip(db, plans, member), fields(org = %member.org.id))]
pub async fn overview(
    db: &Db,
    plans: &PlanCatalog,
    member: &CurrentMember,
) -> Result<UsageOverview, AppError> {
    member.require(Permission::ViewHistory)?;
    let mut tx = db.tenant(member.scope()).await?;
    let status = quota::status(&mut tx, plans).await?;
    let period = period_totals(&mut tx, member, &status).await?;
    let cumulative = cumulative(&mut tx, member, &status).await?;
    let daily = daily_days(&mut tx, member, UsageWindow::DEFAULT).await?;
    let members = member_lines(&mut tx, member, &status).await?;
    tx.commit().await?;
    Ok(UsageOverview {
        now: usage_now(&status, plans),
        quota: status.view(),
        period,
        daily: daily_usage(daily)?,
        cumulative,
        period_days: period_days(&status),
        members,
    })
}

/// Who used how many summaries this period. Owners and admins see every
/// current member (those who used none too); anyone else sees only their
/// own line. Units of a member who has left went with their membership.
#[tracing::instrument(skip(db, plans, member), fields(org = %member.org.id))]
pub async fn members(
    db: &Db,
    plans: &PlanCatalog,
    member: &CurrentMember,
) -> Result<MemberUsage, AppError> {
    member.require(Permission::ViewHistory)?;
    let mut tx = db.tenant(member.scope()).await?;
    let status = quota::status(&mut tx, plans).await?;
    let members = member_lines(&mut tx, member, &status).await?;
    tx.commit().await?;
    Ok(members)
}

/// Spent units of the period the quota counts now (the ledger row names
/// its period, so a renewal mid-day splits that day exactly).
async fn period_totals(
    tx: &mut TenantTx,
    member: &CurrentMember,
    status: &QuotaStatus,
) -> Result<UsageTotals, AppError> {
    let (fresh, cached, cost_micros, saved_micros): (i32, i32, i64, i64) = sqlx::query_as(concat!(
        "select (count(*) filter (where not spent.cached))::int,
                    (count(*) filter (where spent.cached))::int,
                    coalesce(sum(spent.cost) filter (where not spent.cached), 0)::bigint,
                    coalesce(sum(spent.cost) filter (where spent.cached), 0)::bigint
             from (",
        spent_units!(),
        " and r.period_start = $2) spent"
    ))
    .bind(member.org.id.as_uuid())
    .bind(status.period_start)
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(UsageTotals {
        fresh,
        cached,
        cost_micros,
        saved_micros,
    })
}

/// The period's running total per UTC day, from the day it started to
/// today (or its last day), every day present.
async fn cumulative(
    tx: &mut TenantTx,
    member: &CurrentMember,
    status: &QuotaStatus,
) -> Result<Vec<CumulativeDay>, AppError> {
    let rows: Vec<(NaiveDate, i32)> = sqlx::query_as(concat!(
        "with spent as (",
        spent_units!(),
        " and r.period_start = $2),
         days as (
             select d::date as day
             from generate_series(($2::timestamptz at time zone 'UTC')::date,
                                  greatest(($2::timestamptz at time zone 'UTC')::date,
                                           least((now() at time zone 'UTC')::date,
                                                 (($3::timestamptz - interval '1 microsecond') at time zone 'UTC')::date)),
                                  interval '1 day') d
         )
         select days.day, (sum(count(spent.day)) over (order by days.day))::int
         from days left join spent on spent.day = days.day
         group by days.day
         order by days.day"
    ))
    .bind(member.org.id.as_uuid())
    .bind(status.period_start)
    .bind(status.resets_at)
    .fetch_all(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(date, total)| CumulativeDay {
            date: date.format("%Y-%m-%d").to_string(),
            total,
        })
        .collect())
}

/// The rule of [`members`], in the caller's transaction.
async fn member_lines(
    tx: &mut TenantTx,
    member: &CurrentMember,
    status: &QuotaStatus,
) -> Result<MemberUsage, AppError> {
    let everyone = member.org.role.allows(Permission::ManageMembers);
    let only = (!everyone).then(|| member.org.user_id.as_uuid());
    let rows: Vec<(uuid::Uuid, Option<String>, String, i32, i32)> = sqlx::query_as(concat!(
        "with spent as (",
        spent_units!(),
        " and r.period_start = $2)
         select u.id, a.email, u.role,
                (count(spent.user_id) filter (where not spent.cached))::int,
                (count(spent.user_id) filter (where spent.cached))::int
         from users u
         join accounts a on a.id = u.account_id
         left join spent on spent.user_id = u.id
         where u.org_id = $1 and ($3::uuid is null or u.id = $3)
         group by u.id, a.email, u.role
         order by count(spent.user_id) desc, a.email nulls last, u.id"
    ))
    .bind(member.org.id.as_uuid())
    .bind(status.period_start)
    .bind(only)
    .fetch_all(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(MemberUsage {
        everyone,
        members: rows
            .into_iter()
            .map(|(id, email, role, fresh, cached)| MemberUsageLine {
                user_id: UserId::from_uuid(id),
                email,
                role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
                fresh,
                cached,
                is_you: id == member.org.user_id.as_uuid(),
            })
            .collect(),
    })
}

/// The member's org's spent units per UTC day over the last `days` days
/// (the raw `?days=` value: 1 to 90, 30 when absent; anything else is a
/// 422 on `days`), ending today by the database clock, oldest day first,
/// every day present. One statement in one tenant transaction.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn daily(
    db: &Db,
    member: &CurrentMember,
    days: Option<&str>,
) -> Result<DailyUsage, AppError> {
    member.require(Permission::ViewHistory)?;
    let window = UsageWindow::parse(days).map_err(|e| AppError::field("days", e.to_string()))?;
    let mut tx = db.tenant(member.scope()).await?;
    let days = daily_days(&mut tx, member, window).await?;
    tx.commit().await?;
    daily_usage(days)
}

/// The window's days, oldest first, zero-filled. One statement.
async fn daily_days(
    tx: &mut TenantTx,
    member: &CurrentMember,
    window: UsageWindow,
) -> Result<Vec<UsageDay>, AppError> {
    let rows: Vec<(NaiveDate, i32, i32, i64, i64)> = sqlx::query_as(concat!(
        "with window_days as (
             select d::date as day
             from generate_series((now() at time zone 'UTC')::date - ($2::int - 1),
                                  (now() at time zone 'UTC')::date, interval '1 day') d
         ),
         spent as (",
        spent_units!(),
        "    and r.created_at >= ((select min(day) from window_days)::timestamp at time zone 'UTC')
         )
         select w.day,
                (count(spent.day) filter (where not spent.cached))::int,
                (count(spent.day) filter (where spent.cached))::int,
                coalesce(sum(spent.cost) filter (where not spent.cached), 0)::bigint,
                coalesce(sum(spent.cost) filter (where spent.cached), 0)::bigint
         from window_days w left join spent on spent.day = w.day
         group by w.day
         order by w.day"
    ))
    .bind(member.org.id.as_uuid())
    .bind(i32::from(window.days()))
    .fetch_all(tx.conn())
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(
            |(date, fresh, cached, cost_micros, saved_micros)| UsageDay {
                date: date.format("%Y-%m-%d").to_string(),
                fresh,
                cached,
                cost_micros,
                saved_micros,
            },
        )
        .collect())
}

fn daily_usage(days: Vec<UsageDay>) -> Result<DailyUsage, AppError> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Err(AppError::internal(anyhow::anyhow!(
            "the usage window had no days"
        )));
    };
    Ok(DailyUsage {
        from: first.date.clone(),
        to: last.date.clone(),
        totals: UsageTotals::of(&days),
        days,
    })
}

/// The UTC days from the one the period starts on to the one holding its
/// last instant.
fn period_days(status: &QuotaStatus) -> u32 {
    let first = status.period_start.date_naive();
    let last = (status.resets_at - chrono::Duration::microseconds(1)).date_naive();
    ((last - first).num_days() + 1).max(1) as u32
}

/// "2026-12-01T00:00:00Z": UTC, fractions only when there are some.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
