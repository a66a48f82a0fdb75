//! An org's usage numbers, for the REST API and the dashboard. What is
//! counted and what the money means is documented on the domain types
//! (`crate::domain::usage`); the period and the limit are the quota's own
//! (`quota::status`), never computed a second time here.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{db_error, quota};
use crate::{
    domain::{DailyUsage, Permission, PlanCatalog, UsageDay, UsageNow, UsageTotals, UsageWindow},
    error::AppError,
    server::{auth::identity::CurrentMember, db::Db},
};

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
    Ok(UsageNow {
        used: status.used,
        limit: status.limit,
        remaining: (status.limit - status.used).max(0),
        period_start: rfc3339(status.period_start),
        period_end: rfc3339(status.resets_at),
        plan: status.plan.as_str().to_owned(),
        plan_name: plans.get(status.plan).name.clone(),
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
    // A spent unit and the history row that says what the org got are
    // written in one transaction (one history row per org and video), so
    // the history row tells a ledger row's kind and which cache row it was.
    let rows: Vec<(NaiveDate, i32, i32, i64, i64)> = sqlx::query_as(
        "with window_days as (
             select d::date as day
             from generate_series((now() at time zone 'UTC')::date - ($2::int - 1),
                                  (now() at time zone 'UTC')::date, interval '1 day') d
         ),
         spent as (
             select (r.created_at at time zone 'UTC')::date as day,
                    coalesce(s.from_cache, false) as cached,
                    case when s.from_cache then coalesce(v.cost_micros, 0)
                         else coalesce(o.cost_micros, v.cost_micros, 0) end as cost
             from usage_records r
             left join user_summaries s on s.org_id = r.org_id and s.video_id = r.video_id
             left join own_transcript_summaries o on o.org_id = r.org_id and o.video_id = r.video_id
             left join videos v on v.video_id = r.video_id and v.variant = s.variant
             where r.org_id = $1 and r.status = 'succeeded'
               and r.created_at >= ((select min(day) from window_days)::timestamp at time zone 'UTC')
         )
         select w.day,
                (count(spent.day) filter (where not spent.cached))::int,
                (count(spent.day) filter (where spent.cached))::int,
                coalesce(sum(spent.cost) filter (where not spent.cached), 0)::bigint,
                coalesce(sum(spent.cost) filter (where spent.cached), 0)::bigint
         from window_days w left join spent on spent.day = w.day
         group by w.day
         order by w.day",
    )
    .bind(member.org.id.as_uuid())
    .bind(i32::from(window.days()))
    .fetch_all(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await?;

    let days: Vec<UsageDay> = rows
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
        .collect();
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

/// "2026-12-01T00:00:00Z": UTC, fractions only when there are some.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
