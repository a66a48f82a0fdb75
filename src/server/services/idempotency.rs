//! `Idempotency-Key` for the REST API's POSTs, stored in PostgreSQL so it
//! holds across every app process.
//!
//! The rule:
//! * a key is scoped to one org and one [`Principal`] (an API key, or a
//!   member signed in by cookie): two programs of one org may pick the same
//!   keys without receiving each other's answers;
//! * the first request with a key claims it ([`claim`] → [`Claim::Fresh`]):
//!   a row inserted and committed at once, so duplicates in any process see
//!   it; the caller runs the request and hands the answer to [`complete`];
//! * a retry with the same key and the same request (method, route path,
//!   SHA-256 of the canonical body) gets the stored answer
//!   ([`Claim::Replay`]) and does nothing again; the same key with another
//!   request is a 422 naming the header;
//! * a duplicate that arrives while the first is still running polls with a
//!   short backoff for up to [`Timing::wait`], then returns the answer, or a
//!   409 `in_progress` ([`still_running`], with `Retry-After:`
//!   [`RETRY_AFTER_SECONDS`]) if there is none yet;
//! * answers kept: every status below 500 except 408, 409, 425 and 429
//!   (see [`is_kept`]). 4xx are kept as Stripe does: a rejected request
//!   retried with the same key stays rejected rather than quietly turning
//!   into a success hours later. The transient ones (409 conflict, 429 too
//!   many, 408/425) say "try again later", so pinning them for 24 h would
//!   make the key useless. A 5xx, a database outage included, is not kept
//!   either: the request failed before doing anything (our handlers commit
//!   their effect in one transaction or refund it), so the claim is
//!   released and a retry runs for real;
//! * a claim whose process died (no answer within [`Timing::lease`]) is
//!   taken over by the next identical request; a fencing `claim_id` makes
//!   the dead claimant's late [`complete`]/[`release`] a no-op;
//! * rows live [`Timing::ttl`] (24 h) from their claim; reads ignore expired
//!   rows, the next claim overwrites one, and [`purge_expired`] deletes them.
//!
//! The claim commits on its own, before the work, rather than inside the
//! transaction that carries the effect: the wrapped handlers span several
//! transactions and outside calls (a Dodo checkout), and duplicates in other
//! processes must see the claim while that work runs.
//!
//! Waiting polls rather than LISTENs: duplicates are rare, the wait is
//! bounded, and a poll needs no per-process listener to keep alive.
//!
//! A handler future dropped half way (the client hung up) leaves its claim
//! running until the lease passes: whether its effect committed is unknown,
//! so a retry gets 409 for up to a lease rather than risking a second effect.

use rand::Rng;
use sha2::{Digest, Sha256};
use std::{
    fmt,
    time::{Duration, Instant},
};
use uuid::Uuid;

use crate::{
    domain::{OrgId, UserId},
    error::AppError,
    server::db::{Db, TenantScope, TenantTx},
};

/// The request header's name, as named in 422s.
pub const HEADER: &str = "Idempotency-Key";

/// What a 409 "still running" answer should send as `Retry-After`.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Response headers worth replaying (lower case); the rest are rebuilt by
/// the adapter (content type, CORS, request ids).
const KEPT_HEADERS: &[&str] = &["location", "retry-after"];

const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// The client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<IdempotencyKey, AppError> {
        if raw.is_empty() || raw.len() > 255 {
            return Err(AppError::field(
                HEADER,
                "An Idempotency-Key must be 1 to 255 characters long.",
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::field(
                HEADER,
                "An Idempotency-Key may only contain visible ASCII characters (no spaces or control characters); a UUID is a good choice.",
            ));
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys these are, inside one org.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A program calling with an API key (its id).
    ApiKey(Uuid),
    /// A member signed in by cookie.
    Member(UserId),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::ApiKey(id) => write!(f, "key:{id}"),
            Principal::Member(id) => write!(f, "user:{id}"),
        }
    }
}

/// What makes two requests "the same": method, route path and the SHA-256
/// of the canonical body. Pass the route's template as the path (e.g.
/// `/api/v1/orgs/{slug}/summaries`): keys are already scoped to the org,
/// and a rename of the org's slug between retries must not turn a retry
/// into a mismatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFingerprint {
    method: String,
    path: String,
    body_sha256: [u8; 32],
}

impl RequestFingerprint {
    /// A JSON body is hashed in canonical form (object keys sorted, no
    /// whitespace), so a client that re-serializes its retry differently is
    /// still recognized; any other body is hashed as sent.
    pub fn new(method: &str, path: &str, body: &[u8]) -> RequestFingerprint {
        let canonical = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) => {
                let mut out = Vec::with_capacity(body.len());
                write_canonical(&value, &mut out);
                out
            }
            Err(_) => body.to_vec(),
        };
        RequestFingerprint {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            body_sha256: Sha256::digest(&canonical).into(),
        }
    }
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// An answer as it went to the client the first time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    /// The JSON text sent, replayed byte for byte.
    pub body: String,
    /// Only `location` and `retry-after` are stored (names lower case).
    pub headers: Vec<(String, String)>,
}

/// Whether an answer with this status is kept for replay (see the module
/// doc for why).
pub fn is_kept(status: u16) -> bool {
    status < 500 && !matches!(status, 408 | 409 | 425 | 429)
}

/// The 409 for a duplicate whose first request is still running.
pub fn still_running() -> AppError {
    AppError::InProgress {
        retry_after_seconds: RETRY_AFTER_SECONDS,
    }
}

fn mismatch() -> AppError {
    AppError::field(
        HEADER,
        "This Idempotency-Key was already used for a different request. Use a new key for a new request.",
    )
}

/// How long a duplicate waits, how long a claim is trusted, how long an
/// answer is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a duplicate waits for the first request's answer before 409.
    pub wait: Duration,
    /// A claim with no answer after this long belongs to a dead process and
    /// may be taken over. Longer than any of the wrapped handlers runs.
    pub lease: Duration,
    /// How long an answer is replayed.
    pub ttl: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            wait: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The right to run the request and record its answer; consumed by
/// [`complete`] or [`release`].
#[derive(Debug)]
#[must_use = "complete or release the claim, or duplicates wait for its lease"]
pub struct ClaimToken {
    org_id: OrgId,
    principal: Principal,
    key: IdempotencyKey,
    claim_id: Uuid,
}

#[derive(Debug)]
pub enum Claim {
    /// This request is the first: run it, then [`complete`] (or [`release`]).
    Fresh(ClaimToken),
    /// Answered before: send this and do nothing else.
    Replay(StoredAnswer),
}

/// [`claim_with`] and the default [`Timing`].
pub async fn claim(
    db: &Db,
    scope: TenantScope,
    principal: Principal,
    key: &IdempotencyKey,
    fingerprint: &RequestFingerprint,
) -> Result<Claim, AppError> {
    claim_with(db, scope, principal, key, fingerprint, &Timing::default()).await
}

/// Claims `key` for this request, or returns the answer the first request
/// with it got, waiting up to `timing.wait` while that one runs. 422 when
/// the key was used for another request, 409 ([`still_running`]) when the
/// wait runs out.
#[tracing::instrument(skip(db, key, fingerprint, timing), fields(org = %scope.org_id, %principal))]
pub async fn claim_with(
    db: &Db,
    scope: TenantScope,
    principal: Principal,
    key: &IdempotencyKey,
    fingerprint: &RequestFingerprint,
    timing: &Timing,
) -> Result<Claim, AppError> {
    let deadline = Instant::now() + timing.wait;
    let mut pause = FIRST_PAUSE;
    loop {
        let claim_id = Uuid::new_v4();
        let mut tx = db.tenant(scope).await?;
        let seen = attempt(&mut tx, principal, key, fingerprint, claim_id, timing).await?;
        tx.commit().await?;
        match seen {
            Seen::Claimed => {
                return Ok(Claim::Fresh(ClaimToken {
                    org_id: scope.org_id,
                    principal,
                    key: key.clone(),
                    claim_id,
                }));
            }
            Seen::Answered(answer) => return Ok(Claim::Replay(answer)),
            Seen::Other => return Err(mismatch()),
            // Released or purged between our two statements: claim again.
            Seen::Gone if Instant::now() < deadline => continue,
            Seen::Gone | Seen::Running => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(still_running());
        }
        // Jitter spreads a crowd of duplicates over the poll interval.
        let jittered = pause.mul_f64(rand::rng().random_range(0.5..1.0));
        tokio::time::sleep(jittered.min(left)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

enum Seen {
    Claimed,
    Answered(StoredAnswer),
    Running,
    /// The key holds another request.
    Other,
    Gone,
}

type Row = (
    String,
    String,
    Vec<u8>,
    Option<i16>,
    Option<String>,
    Option<serde_json::Value>,
);

async fn attempt(
    tx: &mut TenantTx,
    principal: Principal,
    key: &IdempotencyKey,
    fingerprint: &RequestFingerprint,
    claim_id: Uuid,
    timing: &Timing,
) -> Result<Seen, AppError> {
    let org = tx.org_id().as_uuid();
    // One statement claims a free key, an expired row, or the same
    // request's claim whose lease passed (its process died). A live claim
    // or answer is left alone. A concurrent duplicate blocks on the key
    // until this commits, then re-checks the WHERE against our row.
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "insert into idempotency_keys as k
             (org_id, principal, key, claim_id, method, path, request_fingerprint, lease_until, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7,
                 now() + make_interval(secs => $8), now() + make_interval(secs => $9))
         on conflict (org_id, principal, key) do update set
             claim_id = excluded.claim_id, method = excluded.method, path = excluded.path,
             request_fingerprint = excluded.request_fingerprint, status = null,
             response_body = null, response_headers = null, claimed_at = now(),
             lease_until = excluded.lease_until, expires_at = excluded.expires_at
         where k.expires_at <= now()
            or (k.status is null and k.lease_until <= now()
                and k.method = excluded.method and k.path = excluded.path
                and k.request_fingerprint = excluded.request_fingerprint)
         returning k.claim_id",
    )
    .bind(org)
    .bind(principal.to_string())
    .bind(key.as_str())
    .bind(claim_id)
    .bind(&fingerprint.method)
    .bind(&fingerprint.path)
    .bind(fingerprint.body_sha256.as_slice())
    .bind(timing.lease.as_secs_f64())
    .bind(timing.ttl.as_secs_f64())
    .fetch_optional(tx.conn())
    .await?;
    if claimed == Some(claim_id) {
        return Ok(Seen::Claimed);
    }
    let row: Option<Row> = sqlx::query_as(
        "select method, path, request_fingerprint, status, response_body, response_headers
         from idempotency_keys
         where org_id = $1 and principal = $2 and key = $3 and expires_at > now()",
    )
    .bind(org)
    .bind(principal.to_string())
    .bind(key.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let Some((method, path, body_sha256, status, body, headers)) = row else {
        return Ok(Seen::Gone);
    };
    if method != fingerprint.method
        || path != fingerprint.path
        || body_sha256 != fingerprint.body_sha256
    {
        return Ok(Seen::Other);
    }
    match (status, body) {
        (Some(status), Some(body)) => Ok(Seen::Answered(StoredAnswer {
            status: u16::try_from(status).map_err(AppError::internal)?,
            body,
            headers: headers
                .map(serde_json::from_value)
                .transpose()
                .map_err(AppError::internal)?
                .unwrap_or_default(),
        })),
        _ => Ok(Seen::Running),
    }
}

/// Records the first request's answer for replay, or, when its status is
/// not one we keep ([`is_kept`]: a 5xx, a 429…), releases the claim so a
/// retry runs again. If the claim was taken over meanwhile (this process
/// outlived its lease), nothing is written and a warning is logged.
#[tracing::instrument(skip(db, token, answer), fields(org = %token.org_id, principal = %token.principal, status = answer.status))]
pub async fn complete(db: &Db, token: ClaimToken, answer: &StoredAnswer) -> Result<(), AppError> {
    if !is_kept(answer.status) {
        return release(db, token).await;
    }
    let headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .filter(|(name, _)| KEPT_HEADERS.contains(&name.as_str()))
        .collect();
    let mut tx = db.tenant(TenantScope::org(token.org_id)).await?;
    let done = sqlx::query(
        "update idempotency_keys
         set status = $5, response_body = $6, response_headers = $7
         where org_id = $1 and principal = $2 and key = $3 and claim_id = $4 and status is null",
    )
    .bind(token.org_id.as_uuid())
    .bind(token.principal.to_string())
    .bind(token.key.as_str())
    .bind(token.claim_id)
    .bind(i16::try_from(answer.status).map_err(AppError::internal)?)
    .bind(&answer.body)
    .bind(serde_json::to_value(&headers).map_err(AppError::internal)?)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    if done == 0 {
        tracing::warn!("idempotency claim was taken over before its answer was stored");
    }
    Ok(())
}

/// Gives the key up: nothing was done, so the next request with it (a
/// retry, or a duplicate still waiting) runs for real.
#[tracing::instrument(skip(db, token), fields(org = %token.org_id, principal = %token.principal))]
pub async fn release(db: &Db, token: ClaimToken) -> Result<(), AppError> {
    let mut tx = db.tenant(TenantScope::org(token.org_id)).await?;
    sqlx::query(
        "delete from idempotency_keys
         where org_id = $1 and principal = $2 and key = $3 and claim_id = $4 and status is null",
    )
    .bind(token.org_id.as_uuid())
    .bind(token.principal.to_string())
    .bind(token.key.as_str())
    .bind(token.claim_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes expired rows in every org and returns how many went. Only org
/// ids cross tenants (a narrow definer function); each org's rows are
/// deleted in its own tenant transaction. Call it from a sweeper; a pass
/// handles up to 1000 orgs, the next pass the rest.
#[tracing::instrument(skip_all)]
pub async fn purge_expired(db: &Db) -> Result<u64, AppError> {
    let mut shared = db.shared().await?;
    let orgs: Vec<Uuid> =
        sqlx::query_scalar("select org_id from orgs_with_expired_idempotency_keys()")
            .fetch_all(shared.conn())
            .await?;
    shared.commit().await?;
    let mut purged = 0;
    for org in orgs {
        let mut tx = db.tenant(TenantScope::org(OrgId::from_uuid(org))).await?;
        purged +=
            sqlx::query("delete from idempotency_keys where org_id = $1 and expires_at <= now()")
                .bind(org)
                .execute(tx.conn())
                .await?
                .rows_affected();
        tx.commit().await?;
    }
    Ok(purged)
}

/// What [`run`] sends back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    pub answer: StoredAnswer,
    /// True when this is a stored answer (e.g. for an `Idempotent-Replayed`
    /// header); the handler did not run.
    pub replayed: bool,
}

/// Runs `handler` at most once per key: with no key it simply runs; with
/// one it claims, runs, and completes (or releases), or replays the first
/// answer. `handler` renders its own errors into a [`StoredAnswer`] (the
/// API's error envelope), so a kept 4xx replays exactly; the `Err` of `run`
/// is only the idempotency layer's own 422/409/503.
pub async fn run<F, Fut>(
    db: &Db,
    scope: TenantScope,
    principal: Principal,
    key: Option<&IdempotencyKey>,
    fingerprint: &RequestFingerprint,
    handler: F,
) -> Result<Answered, AppError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoredAnswer>,
{
    let Some(key) = key else {
        return Ok(Answered {
            answer: handler().await,
            replayed: false,
        });
    };
    match claim(db, scope, principal, key, fingerprint).await? {
        Claim::Replay(answer) => Ok(Answered {
            answer,
            replayed: true,
        }),
        Claim::Fresh(token) => {
            let answer = handler().await;
            // The effect is done: the client gets its answer even if storing
            // it fails (the claim then stays until its lease passes).
            if let Err(error) = complete(db, token, &answer).await {
                tracing::warn!(%error, "could not store the idempotent answer");
            }
            Ok(Answered {
                answer,
                replayed: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("3f1c-!~{}").is_ok());
        for bad in [
            "",
            &"k".repeat(256),
            "a b",
            "a\tb",
            "a\nb",
            "ключ",
            "\u{7f}",
        ] {
            let error = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(error.status_code(), 422, "{bad:?}");
            assert!(error.field_message(HEADER).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn json_bodies_match_regardless_of_key_order_and_spacing() {
        let a = RequestFingerprint::new("post", "/p", br#"{"b": [1, {"y":2,"x":1}], "a": "z"}"#);
        let b = RequestFingerprint::new("POST", "/p", br#"{"a":"z","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(a, b);
        let other = RequestFingerprint::new("POST", "/p", br#"{"a":"z","b":[{"x":1,"y":2},1]}"#);
        assert_ne!(a, other);
        assert_ne!(
            a,
            RequestFingerprint::new("POST", "/q", br#"{"a":"z","b":[1,{"x":1,"y":2}]}"#)
        );
        assert_ne!(
            RequestFingerprint::new("POST", "/p", b"not json"),
            RequestFingerprint::new("POST", "/p", b"not  json")
        );
    }

    #[test]
    fn transient_and_server_errors_are_not_kept() {
        for kept in [200, 201, 202, 400, 403, 404, 422] {
            assert!(is_kept(kept), "{kept}");
        }
        for not in [408, 409, 425, 429, 500, 502, 503] {
            assert!(!is_kept(not), "{not}");
        }
    }
}
