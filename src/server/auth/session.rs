//! Built-in sign-in sessions: a random token in an HttpOnly cookie, its
//! SHA-256 in the database, so sessions can be listed and revoked.
//!
//! Lifetime: a session ends after 7 days without use (sliding: every use
//! pushes that back, at most every 10 minutes to spare the database) and
//! 30 days after sign-in at the latest.

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    domain::{AccountId, Email, OrgId},
    server::db::Db,
};

pub const COOKIE: &str = "tldw_session";
pub const IDLE_DAYS: i64 = 7;
pub const ABSOLUTE_DAYS: i64 = 30;

/// A session as the request sees it.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub token_hash: Vec<u8>,
    pub account_id: AccountId,
    pub email: Option<Email>,
    pub active_org: Option<OrgId>,
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a session and returns the token for the cookie.
#[tracing::instrument(skip(db, user_agent), fields(%account_id))]
pub async fn create(
    db: &Db,
    account_id: AccountId,
    active_org: Option<OrgId>,
    user_agent: Option<&str>,
) -> Result<String, sqlx::Error> {
    let token = new_token();
    let mut tx = db.shared().await?;
    sqlx::query(
        "insert into sessions (token_hash, account_id, active_org_id, expires_at, user_agent)
         values ($1, $2, $3, now() + make_interval(days => $4), left($5, 300))",
    )
    .bind(hash_token(&token))
    .bind(account_id.as_uuid())
    .bind(active_org.map(|o| o.as_uuid()))
    .bind(IDLE_DAYS as i32)
    .bind(user_agent)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// The live session behind `token`, sliding its idle expiry forward.
#[tracing::instrument(skip_all)]
pub async fn lookup(db: &Db, token: &str) -> Result<Option<SessionRecord>, sqlx::Error> {
    let token_hash = hash_token(token);
    let mut tx = db.shared().await?;
    let row: Option<(uuid::Uuid, Option<String>, Option<uuid::Uuid>)> = sqlx::query_as(
        "update sessions s set
             last_seen_at = now(),
             expires_at = least(now() + make_interval(days => $2), s.created_at + make_interval(days => $3))
         from accounts a
         where s.token_hash = $1 and a.id = s.account_id and s.expires_at > now()
           and s.created_at + make_interval(days => $3) > now()
           and s.last_seen_at < now() - interval '10 minutes'
         returning s.account_id, a.email, s.active_org_id",
    )
    .bind(&token_hash)
    .bind(IDLE_DAYS as i32)
    .bind(ABSOLUTE_DAYS as i32)
    .fetch_optional(tx.conn())
    .await?;
    let row = match row {
        Some(row) => Some(row),
        // Used within the last 10 minutes: read it without writing.
        None => {
            sqlx::query_as(
                "select s.account_id, a.email, s.active_org_id
                 from sessions s join accounts a on a.id = s.account_id
                 where s.token_hash = $1 and s.expires_at > now()",
            )
            .bind(&token_hash)
            .fetch_optional(tx.conn())
            .await?
        }
    };
    tx.commit().await?;
    Ok(row.map(|(account_id, email, active_org)| SessionRecord {
        token_hash,
        account_id: AccountId::from_uuid(account_id),
        email: email.and_then(|e| Email::parse(&e).ok()),
        active_org: active_org.map(OrgId::from_uuid),
    }))
}

pub async fn set_active_org(db: &Db, token_hash: &[u8], org: OrgId) -> Result<(), sqlx::Error> {
    db.identity().forget_session(token_hash);
    let mut tx = db.shared().await?;
    sqlx::query("update sessions set active_org_id = $2 where token_hash = $1")
        .bind(token_hash)
        .bind(org.as_uuid())
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

pub async fn revoke(db: &Db, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    db.identity().forget_session(token_hash);
    let mut tx = db.shared().await?;
    sqlx::query("delete from sessions where token_hash = $1")
        .bind(token_hash)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

/// "Sign out everywhere": every session of the account ends now.
pub async fn revoke_all(db: &Db, account_id: AccountId) -> Result<u64, sqlx::Error> {
    db.identity().forget_sessions();
    let mut tx = db.shared().await?;
    let done = sqlx::query("delete from sessions where account_id = $1")
        .bind(account_id.as_uuid())
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// The cookie's name over https: browsers accept a `__Host-` cookie only
/// with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot
/// set or overwrite it.
pub const HOST_COOKIE: &str = "__Host-tldw_session";

fn name(secure: bool) -> &'static str {
    if secure { HOST_COOKIE } else { COOKIE }
}

/// The session token, from the `__Host-` cookie first.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    let jar = CookieJar::from_headers(headers);
    [HOST_COOKIE, COOKIE]
        .into_iter()
        .filter_map(|name| jar.get(name))
        .map(|c| c.value().to_owned())
        .find(|t| !t.is_empty() && t.len() <= 128)
}

/// `Set-Cookie` for a new session. `Secure` whenever we are served over https.
pub fn cookie(token: String, secure: bool) -> String {
    Cookie::build((name(secure), token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::days(ABSOLUTE_DAYS))
        .build()
        .to_string()
}

pub fn clear_cookie(secure: bool) -> String {
    Cookie::build((name(secure), ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::ZERO)
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_lax_and_secure_on_https() {
        let c = cookie("abc".into(), true);
        assert!(c.starts_with("__Host-tldw_session=abc"), "{c}");
        for part in [
            "tldw_session=abc",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=2592000",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!cookie("abc".into(), false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a).len(), 32);
        assert_ne!(hash_token(&a), a.as_bytes());
    }
}
