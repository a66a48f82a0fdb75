//! Per-org API keys: a program acting as a member of exactly one org.
//!
//! - The secret is `tldw_` + 43 base64url characters (32 random bytes). It
//!   is returned once by [`create`]; only its SHA-256 is stored (a fast hash
//!   is enough for 256 bits of entropy, see the migration).
//! - A key's role is admin or member, never owner (deleting the org and
//!   handing it over stay with a signed-in person), and never above its
//!   creator's role: asking for more is a 422 on the `role` field, so the
//!   form can say so next to the select.
//! - On every use the role is capped again by the creator's CURRENT role,
//!   and a key whose creator left (or was removed) stops working: the row
//!   goes with the member row (cascade), and the lookup joins it anyway.
//! - No caching anywhere: a revoked key is refused on its very next request
//!   in every process.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    domain::{
        API_KEY_PREFIX, AccountId, ApiKeyId, ApiKeyName, ApiKeyView, CreatedApiKey, Email, OrgId,
        OrgRole, OrgSummary, Permission, UserId,
    },
    error::AppError,
    server::{
        auth::identity::{CurrentAccount, CurrentMember, SessionHandle},
        db::{Db, TenantScope},
    },
};

/// Base64url without padding of 32 bytes.
const SECRET_CHARS: usize = 43;
/// How much of the secret lists show (`tldw_` + 7 characters).
const SHOWN_PREFIX_CHARS: usize = 12;

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Could `secret` be one of ours at all? Anything else is refused without
/// a database round trip.
fn well_formed(secret: &str) -> bool {
    secret.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn creator_label(email: Option<String>) -> String {
    email.unwrap_or_else(|| "Clerk user".into())
}

/// Creates a key acting as `member` with `role`, and returns its secret:
/// the only time it exists (we store its hash).
#[tracing::instrument(skip(db, member, name), fields(org = %member.org.id, role = role.as_str()))]
pub async fn create(
    db: &Db,
    member: &CurrentMember,
    name: ApiKeyName,
    role: OrgRole,
) -> Result<CreatedApiKey, AppError> {
    member.require(Permission::ManageApiKeys)?;
    if role == OrgRole::Owner {
        return Err(AppError::field(
            "role",
            "A key can be an admin or a member. Deleting or handing over the organization stays with a signed-in owner.",
        ));
    }
    let mut tx = db.tenant(member.scope()).await?;
    // The creator's role as it is now, not as a cache remembers it: the
    // row is held (FOR SHARE) until the key exists, so a concurrent
    // demotion waits and then caps the key on its next use.
    let current: Option<String> =
        sqlx::query_scalar("select role from users where org_id = $1 and id = $2 for share")
            .bind(member.org.id.as_uuid())
            .bind(member.org.user_id.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    let current = current
        .as_deref()
        .and_then(OrgRole::parse)
        .ok_or_else(|| AppError::NotFound("organization".into()))?;
    if !current.allows(Permission::ManageApiKeys) {
        return Err(AppError::Forbidden);
    }
    if role > current {
        return Err(AppError::field(
            "role",
            format!(
                "A key cannot have a higher role than yours ({}).",
                current.label()
            ),
        ));
    }

    let secret = new_secret();
    let id = ApiKeyId::random();
    let prefix: String = secret.chars().take(SHOWN_PREFIX_CHARS).collect();
    let (created_at, email): (DateTime<Utc>, Option<String>) = sqlx::query_as(
        "with k as (
             insert into api_keys (org_id, id, name, role, created_by, prefix, secret_hash)
             values ($1, $2, $3, $4, $5, $6, $7)
             returning created_at)
         select k.created_at, (select email from accounts where id = $8) from k",
    )
    .bind(member.org.id.as_uuid())
    .bind(id.as_uuid())
    .bind(name.as_str())
    .bind(role.as_str())
    .bind(member.org.user_id.as_uuid())
    .bind(&prefix)
    .bind(secret_hash(&secret))
    .bind(member.account.id.as_uuid())
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    tracing::info!(key = %id, "API key created");
    Ok(CreatedApiKey {
        key: ApiKeyView {
            id,
            name: name.as_str().to_owned(),
            prefix,
            role,
            created_by: creator_label(email),
            created_at: rfc3339(created_at),
            last_used_at: None,
        },
        secret,
    })
}

/// The org's live keys, newest first.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn list(db: &Db, member: &CurrentMember) -> Result<Vec<ApiKeyView>, AppError> {
    member.require(Permission::ManageApiKeys)?;
    let mut tx = db.tenant(member.scope()).await?;
    type Row = (
        uuid::Uuid,
        String,
        String,
        String,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select k.id, k.name, k.prefix, k.role, a.email, k.created_at, k.last_used_at
         from api_keys k
         join users u on u.org_id = k.org_id and u.id = k.created_by
         join accounts a on a.id = u.account_id
         where k.org_id = $1 and k.revoked_at is null
         order by k.created_at desc, k.id",
    )
    .bind(member.org.id.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, prefix, role, email, created_at, last_used_at)| ApiKeyView {
                id: ApiKeyId::from_uuid(id),
                name,
                prefix,
                role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
                created_by: creator_label(email),
                created_at: rfc3339(created_at),
                last_used_at: last_used_at.map(rfc3339),
            },
        )
        .collect())
}

/// Revokes a live key of this org; it is refused from its next request on.
/// A key of another org (or an unknown or already revoked one) is 404.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id, key = %id))]
pub async fn revoke(db: &Db, member: &CurrentMember, id: ApiKeyId) -> Result<(), AppError> {
    member.require(Permission::ManageApiKeys)?;
    let mut tx = db.tenant(member.scope()).await?;
    let done = sqlx::query(
        "update api_keys set revoked_at = now()
         where org_id = $1 and id = $2 and revoked_at is null",
    )
    .bind(member.org.id.as_uuid())
    .bind(id.as_uuid())
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound("API key".into()));
    }
    tx.commit().await?;
    tracing::info!("API key revoked");
    Ok(())
}

/// The member a presented secret acts as, or `None` when it is not a live
/// key (unknown, malformed, revoked, or its creator is no longer a member).
/// Its role is the lower of the key's and the creator's current role.
///
/// Read fresh on every call (no cache), through the one narrow definer
/// function `api_key_principal`, since the org is not known before.
#[tracing::instrument(skip_all, fields(key))]
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<CurrentMember>, AppError> {
    if !well_formed(secret) {
        return Ok(None);
    }
    let mut tx = db.shared().await?;
    type Row = (
        uuid::Uuid,
        uuid::Uuid,
        String,
        String,
        bool,
        String,
        uuid::Uuid,
        uuid::Uuid,
        Option<String>,
        String,
        bool,
    );
    let row: Option<Row> = sqlx::query_as(
        "select key_id, org_id, org_slug, org_name, org_personal, key_role, user_id, account_id,
                account_email, member_role, needs_touch
         from api_key_principal($1)",
    )
    .bind(secret_hash(secret))
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    let Some((key, org, slug, name, personal, key_role, user, account, email, member_role, touch)) =
        row
    else {
        return Ok(None);
    };
    let key = ApiKeyId::from_uuid(key);
    tracing::Span::current().record("key", tracing::field::display(key));
    let (Some(key_role), Some(member_role)) =
        (OrgRole::parse(&key_role), OrgRole::parse(&member_role))
    else {
        tracing::error!(%key, "an API key or its creator has an unknown role");
        return Ok(None);
    };
    let org = OrgSummary {
        id: OrgId::from_uuid(org),
        user_id: UserId::from_uuid(user),
        slug,
        name,
        role: key_role.min(member_role),
        personal,
    };
    if touch {
        // Off the request's path: a slow commit (a disk stall) must not
        // hold a read request and its connection.
        let (db, org) = (db.clone(), org.clone());
        tokio::spawn(async move { touch_last_used(&db, &org, key).await });
    }
    Ok(Some(CurrentMember {
        account: CurrentAccount {
            id: AccountId::from_uuid(account),
            email: email.as_deref().and_then(|e| Email::parse(e).ok()),
            session: SessionHandle::ApiKey {
                key,
                member: org.clone(),
            },
        },
        org,
    }))
}

/// Records that the key was used, at most once a minute: the condition is
/// in the statement, so concurrent requests write once between them. A
/// failure here is logged and never fails the request it rides on.
async fn touch_last_used(db: &Db, org: &OrgSummary, key: ApiKeyId) {
    let result = async {
        let mut tx = db.tenant(TenantScope::member(org.id, org.user_id)).await?;
        sqlx::query(
            "update api_keys set last_used_at = now()
             where org_id = $1 and id = $2
               and (last_used_at is null or last_used_at < now() - interval '1 minute')",
        )
        .bind(org.id.as_uuid())
        .bind(key.as_uuid())
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(%key, error = format!("{error:#}"), "could not record an API key's last use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_well_formed() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        for secret in [&a, &b] {
            assert!(secret.starts_with("tldw_"), "{secret}");
            assert_eq!(secret.len(), 5 + 43);
            assert!(well_formed(secret), "{secret}");
            assert_eq!(URL_SAFE_NO_PAD.decode(&secret[5..]).unwrap().len(), 32);
        }
    }

    #[test]
    fn malformed_secrets_are_refused_before_the_database() {
        let good = new_secret();
        assert!(!well_formed(""));
        assert!(!well_formed(&good[5..]));
        assert!(!well_formed(&good[..good.len() - 1]));
        assert!(!well_formed(&format!("{good}A")));
        assert!(!well_formed(&format!("tldw_{}", "+".repeat(43))));
        assert!(!well_formed(&format!("TLDW_{}", &good[5..])));
    }

    #[test]
    fn the_hash_is_sha256_of_the_whole_secret() {
        let hash = secret_hash("tldw_x");
        assert_eq!(hash.len(), 32);
        assert_eq!(hash, Sha256::digest(b"tldw_x").to_vec());
        assert_ne!(hash, secret_hash("tldw_y"));
    }
}
