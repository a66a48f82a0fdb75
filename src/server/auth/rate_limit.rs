//! Attempt limits for sign-in and sign-up, counted in PostgreSQL so that
//! every app process shares them (a per-process counter would multiply the
//! limit by the number of processes).

use std::time::Duration;

use crate::{error::AppError, server::db::Db};

#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max_hits: i32,
    pub window: Duration,
}

pub const SIGN_IN_PER_ADDRESS: Limit = Limit {
    max_hits: 20,
    window: Duration::from_secs(15 * 60),
};
pub const SIGN_IN_PER_ACCOUNT: Limit = Limit {
    max_hits: 8,
    window: Duration::from_secs(15 * 60),
};
pub const SIGN_UP_PER_ADDRESS: Limit = Limit {
    max_hits: 10,
    window: Duration::from_secs(60 * 60),
};

/// Counts one attempt against `key` (fixed window) and refuses it with 429
/// and the seconds until the window ends once over the limit. One atomic
/// upsert, so concurrent attempts cannot slip past the count.
#[tracing::instrument(skip(db), fields(key))]
pub async fn hit(db: &Db, key: &str, limit: Limit) -> Result<(), AppError> {
    let mut tx = db.shared().await.map_err(AppError::from)?;
    let (hits, retry_after): (i32, f64) = sqlx::query_as(
        "insert into rate_limits as r (key, window_start, hits) values ($1, now(), 1)
         on conflict (key) do update set
             hits = case when r.window_start <= now() - make_interval(secs => $2) then 1 else r.hits + 1 end,
             window_start = case when r.window_start <= now() - make_interval(secs => $2) then now() else r.window_start end
         returning hits, extract(epoch from (window_start + make_interval(secs => $2) - now()))::float8",
    )
    .bind(key)
    .bind(limit.window.as_secs_f64())
    .fetch_one(tx.conn())
    .await
    .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::from)?;
    if hits > limit.max_hits {
        tracing::warn!(key, hits, "rate limit reached");
        crate::server::metrics::rate_limited(crate::server::metrics::Limited::Auth);
        return Err(AppError::RateLimited {
            retry_after_seconds: retry_after.ceil().max(1.0) as u64,
        });
    }
    Ok(())
}
