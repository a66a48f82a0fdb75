//! How hard we lean on YouTube: a per-org attempt budget and a global
//! circuit breaker, both counted in `rate_limits` so that every process
//! shares them (a per-process counter would multiply the limit by the
//! number of processes, and a block is on the server's address, not on one
//! process).

use std::time::Duration;

use crate::{
    error::AppError,
    server::db::{Db, TenantTx},
};

/// The breaker's row: `window_start` is when YouTube last said "blocked",
/// `hits` how many times in a row it has.
const BREAKER_KEY: &str = "youtube:blocked";

/// Counts one new summary attempt of the tx's org against its hourly
/// budget (one atomic upsert, fixed window). `Some(seconds)`: over budget,
/// retry after that long. A refund never gives an attempt back: that is
/// the point, a failing video must not be a free retry loop.
pub async fn spend_attempt(tx: &mut TenantTx, per_hour: u32) -> Result<Option<u64>, AppError> {
    if per_hour == 0 {
        return Ok(None);
    }
    let key = format!("youtube:org:{}", tx.org_id());
    let (hits, retry_after): (i32, f64) = sqlx::query_as(
        "insert into rate_limits as r (key, window_start, hits) values ($1, now(), 1)
         on conflict (key) do update set
             hits = case when r.window_start <= now() - interval '1 hour' then 1 else r.hits + 1 end,
             window_start = case when r.window_start <= now() - interval '1 hour' then now() else r.window_start end
         returning hits, extract(epoch from (window_start + interval '1 hour' - now()))::float8",
    )
    .bind(&key)
    .fetch_one(tx.conn())
    .await?;
    Ok((i64::from(hits) > i64::from(per_hour)).then(|| retry_after.ceil().max(1.0) as u64))
}

/// How long the breaker stays open, if it is: nobody fetches from YouTube
/// until then.
pub async fn breaker_open(
    db: &Db,
    base: Duration,
    max: Duration,
) -> Result<Option<Duration>, AppError> {
    let mut tx = db.shared().await?;
    let left: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from window_start
                 + make_interval(secs => least($3::float8, $2::float8 * power(2, least(hits - 1, 30))))
                 - now())::float8
         from rate_limits where key = $1",
    )
    .bind(BREAKER_KEY)
    .bind(base.as_secs_f64())
    .bind(max.as_secs_f64())
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(left
        .filter(|s| *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.ceil())))
}

/// YouTube said "blocked" (or wants a PO token): open the breaker for
/// everyone, longer each consecutive time.
#[tracing::instrument(skip(db))]
pub async fn trip(db: &Db) -> Result<(), AppError> {
    let mut tx = db.shared().await?;
    let hits: i32 = sqlx::query_scalar(
        "insert into rate_limits as r (key, window_start, hits) values ($1, now(), 1)
         on conflict (key) do update set window_start = now(), hits = r.hits + 1
         returning hits",
    )
    .bind(BREAKER_KEY)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    tracing::warn!(
        consecutive = hits,
        "YouTube is blocking us: fetching paused for everyone"
    );
    Ok(())
}

/// A fetch went through: close the breaker.
pub async fn reset(db: &Db) -> Result<(), AppError> {
    let mut tx = db.shared().await?;
    sqlx::query("delete from rate_limits where key = $1")
        .bind(BREAKER_KEY)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
}
