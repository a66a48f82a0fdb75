//! Attempt limits for sign-in and sign-up, counted in PostgreSQL so that
//! every app process shares them (a per-process counter would multiply the
//! limit by the number of processes).

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

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
/// Wrong passwords for one email. Only failures count, and reaching the
/// limit does not stop the owner: see [`SIGN_IN_FAILURES_PER_ADDRESS`].
pub const SIGN_IN_FAILURES_PER_ACCOUNT: Limit = Limit {
    max_hits: 8,
    window: Duration::from_secs(15 * 60),
};
/// An address with no wrong password in the last hour is "clean": it may
/// try an account that strangers have pushed over its failure limit, so
/// they cannot lock its owner out. One failure and it is not clean any more,
/// so a guesser gets one try per address (and addresses are keyed by /64).
pub const SIGN_IN_FAILURES_PER_ADDRESS: Limit = Limit {
    max_hits: 1,
    window: Duration::from_secs(60 * 60),
};
pub const SIGN_UP_PER_ADDRESS: Limit = Limit {
    max_hits: 10,
    window: Duration::from_secs(60 * 60),
};

/// The part of a client address that one party controls, as a limit key:
/// an IPv4 address whole, an IPv6 address by its /64 (one subscriber
/// usually gets at least a /64, so keying on all 128 bits would give each
/// of them 2^64 separate budgets).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Counts one attempt against `key` (fixed window) and refuses it with 429
/// and the seconds until the window ends once over the limit. One atomic
/// upsert, so concurrent attempts cannot slip past the count.
#[tracing::instrument(skip(db), fields(key))]
pub async fn hit(db: &Db, key: &str, limit: Limit) -> Result<(), AppError> {
    let (hits, retry_after_seconds) = record(db, key, limit).await?;
    if hits > limit.max_hits {
        tracing::warn!(key, hits, "rate limit reached");
        crate::server::metrics::rate_limited(crate::server::metrics::Limited::Auth);
        return Err(AppError::RateLimited {
            retry_after_seconds,
        });
    }
    Ok(())
}

/// Whether `key` has used up `limit` in its current window: the seconds
/// until it frees up, or `None`. Reads only, counts nothing.
#[tracing::instrument(skip(db), fields(key))]
pub async fn exhausted(db: &Db, key: &str, limit: Limit) -> Result<Option<u64>, AppError> {
    let mut tx = db.shared().await.map_err(AppError::from)?;
    let row: Option<(i32, f64)> = sqlx::query_as(
        "select hits, extract(epoch from (window_start + make_interval(secs => $2) - now()))::float8
         from rate_limits where key = $1 and window_start > now() - make_interval(secs => $2)",
    )
    .bind(key)
    .bind(limit.window.as_secs_f64())
    .fetch_optional(tx.conn())
    .await
    .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::from)?;
    Ok(row
        .filter(|(hits, _)| *hits >= limit.max_hits)
        .map(|(_, left)| seconds(left)))
}

fn seconds(left: f64) -> u64 {
    left.ceil().max(1.0) as u64
}

/// Counts one event against `key` and returns the window's count so far
/// and the seconds left in the window.
pub async fn record(db: &Db, key: &str, limit: Limit) -> Result<(i32, u64), AppError> {
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
    Ok((hits, seconds(retry_after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> String {
        address_key(ip.parse().unwrap())
    }

    #[test]
    fn ipv6_addresses_share_a_key_per_64() {
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            key("2001:db8:1:2:1234:5678:9abc:def0")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "::/64");
    }

    #[test]
    fn ipv4_keys_are_the_whole_address() {
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"));
        // The same client over a dual-stack socket.
        assert_eq!(key("::ffff:203.0.113.9"), "203.0.113.9");
    }
}
