//! Clerk users and orgs become rows of ours the first time we see them.
//!
//! Our org id for a Clerk org is a UUIDv5 of its Clerk id, so mapping a
//! token to a tenant needs no cross-tenant lookup, and two processes seeing
//! the same new org at once create one row (the second insert is a no-op).
//! Orgs made here (built-in ids) are v4, so a v5 id that is not a personal
//! org is always a Clerk org: see [`is_clerk_org`].
//!
//! Clerk is the source of truth for Clerk orgs. A token's org and role are
//! Clerk's word as of the token's `iat`; a webhook (see `clerk_sync`) is its
//! word as of the event. The newest word wins: `users.clerk_synced_at`
//! remembers the time of the last one applied to a membership, and
//! `clerk_removed_members` the time of a removal.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    clerk::{ClerkOrg, ClerkSession, ClerkVerifier},
    clerk_api::ClerkBackend,
    identity::{CurrentAccount, SessionHandle},
};
use crate::{
    domain::{AccountId, Email, OrgId, OrgName, OrgRole, OrgSummary},
    error::AppError,
    server::{
        config::ClerkSettings,
        db::{Db, TenantScope},
        services::{db_error, orgs, unique_violation},
        webhooks::signature::WebhookVerifier,
    },
};

const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a53_9d4e_4f0b_8a71_3c5e_9b2d_7e10);

/// Everything Clerk mode needs: the token verifier, and, when configured,
/// the Backend API (emails) and the webhook verifier.
#[derive(Clone, Debug)]
pub struct ClerkAuth {
    pub verifier: ClerkVerifier,
    pub backend: Option<ClerkBackend>,
    pub webhooks: Option<WebhookVerifier>,
}

impl ClerkAuth {
    pub fn new(settings: ClerkSettings) -> anyhow::Result<ClerkAuth> {
        let backend = settings
            .secret_key
            .clone()
            .map(|key| ClerkBackend::new(settings.api_url.clone(), key))
            .transpose()?;
        if backend.is_none() {
            tracing::warn!(
                "CLERK_SECRET_KEY is unset: Clerk users' email addresses cannot be read, so they cannot check out or accept invitations"
            );
        }
        let webhooks = settings.webhooks.clone();
        Ok(ClerkAuth {
            verifier: ClerkVerifier::new(settings)?,
            backend,
            webhooks,
        })
    }
}

pub fn org_id_for(clerk_org_id: &str) -> OrgId {
    OrgId::from_uuid(Uuid::new_v5(
        &NAMESPACE,
        format!("org:{clerk_org_id}").as_bytes(),
    ))
}

fn personal_org_for(account: AccountId) -> OrgId {
    OrgId::from_uuid(Uuid::new_v5(
        &NAMESPACE,
        format!("personal:{account}").as_bytes(),
    ))
}

/// Mirrors a Clerk org, so only a token naming it opens it. Personal orgs
/// (also v5) and orgs made here (v4) are ours, and rows decide them.
pub fn is_clerk_org(org: &OrgSummary) -> bool {
    !org.personal && org.id.as_uuid().get_version_num() == 5
}

/// Clerk's role names, with or without the `org:` prefix. Clerk orgs have
/// no owner here: Clerk manages them.
pub fn role_for(clerk_role: Option<&str>) -> OrgRole {
    match clerk_role.map(|role| role.strip_prefix("org:").unwrap_or(role)) {
        Some("admin") => OrgRole::Admin,
        _ => OrgRole::Member,
    }
}

/// The personal org's slug comes from the account id, not a shared name:
/// every Clerk user's personal org is called "Personal workspace", and
/// random suffixes of one name run out (security review, finding 14).
fn personal_slug(account: AccountId) -> String {
    format!("p-{}", &account.as_uuid().simple().to_string()[..12])
}

/// The account for a verified Clerk session, creating the account, its
/// personal org and its membership of the token's org as needed. `None`
/// for a user deleted in Clerk. Its session handle carries the membership
/// of the token's org (none when Clerk removed it after the token was
/// issued).
#[tracing::instrument(skip_all, fields(clerk_user = %session.user_id))]
pub async fn account_for(
    db: &Db,
    clerk: &ClerkAuth,
    session: &ClerkSession,
) -> Result<Option<CurrentAccount>, AppError> {
    let Some((account, email)) = ensure_account(db, &session.user_id).await? else {
        return Ok(None);
    };
    let email = match email {
        Some(email) => Some(email),
        None => learn_email(db, clerk, account, session).await?,
    };
    let member = match &session.org {
        Some(clerk_org) => {
            ensure_membership(db, clerk_org, &session.user_id, account, session.issued_at).await?
        }
        None => None,
    };
    Ok(Some(CurrentAccount {
        id: account,
        email,
        session: SessionHandle::Clerk {
            org: member.as_ref().map(|m| m.id),
            member,
        },
    }))
}

async fn ensure_account(
    db: &Db,
    clerk_user_id: &str,
) -> Result<Option<(AccountId, Option<Email>)>, AppError> {
    let mut tx = db.shared().await.map_err(db_error)?;
    let (deleted, existing, email): (bool, Option<Uuid>, Option<String>) = sqlx::query_as(
        "select exists (select from clerk_deleted_users where clerk_user_id = $1),
                (select id from accounts where clerk_user_id = $1),
                (select email from accounts where clerk_user_id = $1)",
    )
    .bind(clerk_user_id)
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    if deleted {
        return Ok(None);
    }
    if let Some(id) = existing {
        let email = email.and_then(|e| Email::parse(&e).ok());
        return Ok(Some((AccountId::from_uuid(id), email)));
    }

    let account = AccountId::random();
    let personal = personal_org_for(account);
    let mut tx = db
        .tenant(TenantScope::org(personal))
        .await
        .map_err(db_error)?;
    let id: Uuid = sqlx::query_scalar(
        "insert into accounts (id, clerk_user_id) values ($1, $2)
         on conflict (clerk_user_id) do update set clerk_user_id = excluded.clerk_user_id
         returning id",
    )
    .bind(account.as_uuid())
    .bind(clerk_user_id)
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)?;
    if id != account.as_uuid() {
        // Another request created it first; it made the personal org too.
        return Ok(Some((AccountId::from_uuid(id), None)));
    }
    let name = OrgName::parse("Personal workspace").expect("a valid name");
    orgs::insert_org_slugged(
        tx.conn(),
        personal,
        &name,
        &personal_slug(account),
        true,
        None,
    )
    .await?;
    orgs::insert_member(tx.conn(), personal, account, OrgRole::Owner)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(Some((account, None)))
}

/// The account has no email yet: take the token's `email` claim, else ask
/// Clerk's Backend API, and keep the answer. Failing to learn it never
/// blocks sign-in; checkout and invitations say what is missing.
async fn learn_email(
    db: &Db,
    clerk: &ClerkAuth,
    account: AccountId,
    session: &ClerkSession,
) -> Result<Option<Email>, AppError> {
    let claimed = session
        .email
        .as_deref()
        .and_then(|email| Email::parse(email).ok());
    let email = match (claimed, &clerk.backend) {
        (Some(email), _) => email,
        (None, None) => return Ok(None),
        (None, Some(backend)) => match backend.primary_email(&session.user_id).await {
            Ok(Some(email)) => email,
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(%error, "could not read the Clerk user's email");
                return Ok(None);
            }
        },
    };
    let mut tx = db.shared().await.map_err(db_error)?;
    let stored = sqlx::query("update accounts set email = $2 where id = $1 and email is null")
        .bind(account.as_uuid())
        .bind(email.as_str())
        .execute(tx.conn())
        .await;
    match stored {
        Ok(_) => {
            tx.commit().await.map_err(db_error)?;
            Ok(Some(email))
        }
        Err(error) if unique_violation(&error).is_some() => {
            // Another account holds the address (a Clerk user deleted and
            // re-created under a new id, say): claiming it would let this
            // one accept the other's invitations.
            tracing::warn!("a Clerk user's email belongs to another account; not stored");
            Ok(None)
        }
        Err(error) => Err(db_error(error)),
    }
}

/// The token's `iat` as a time; a token without one is older than any
/// webhook (Clerk always sends it, so this only makes odd tokens weaker).
fn token_time(issued_at: Option<i64>) -> DateTime<Utc> {
    issued_at
        .and_then(|iat| DateTime::from_timestamp(iat, 0))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The member's row in the token's org, created or brought up to the
/// token's role unless a newer webhook said otherwise. `None` when Clerk
/// removed the membership after the token was issued.
async fn ensure_membership(
    db: &Db,
    clerk_org: &ClerkOrg,
    clerk_user_id: &str,
    account: AccountId,
    issued_at: Option<i64>,
) -> Result<Option<OrgSummary>, AppError> {
    let org = org_id_for(&clerk_org.id);
    let issued_at = token_time(issued_at);
    let mut tx = db.tenant(TenantScope::org(org)).await.map_err(db_error)?;
    let removed_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select removed_at from clerk_removed_members where org_id = $1 and clerk_user_id = $2",
    )
    .bind(org.as_uuid())
    .bind(clerk_user_id)
    .fetch_optional(tx.conn())
    .await
    .map_err(db_error)?;
    if removed_at.is_some_and(|removed_at| removed_at >= issued_at) {
        tx.commit().await.map_err(db_error)?;
        return Ok(None);
    }
    let exists: bool = sqlx::query_scalar("select exists (select from orgs where id = $1)")
        .bind(org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .map_err(db_error)?;
    if !exists {
        let name = OrgName::parse(clerk_org.slug.as_deref().unwrap_or("Organization"))
            .unwrap_or_else(|_| OrgName::parse("Organization").expect("valid"));
        orgs::insert_org(tx.conn(), org, &name, false, Some(&clerk_org.id)).await?;
    }
    let role = role_for(clerk_org.role.as_deref());
    // Written only when the role changes, so a member's every token does
    // not cost a write; a newer webhook's role is not overwritten by an
    // older token's. `iat` has whole seconds: of two tokens from the same
    // second, the one that arrives later wins.
    let changed = sqlx::query(
        "insert into users (org_id, id, account_id, role, clerk_synced_at) values ($1, $2, $3, $4, $5)
         on conflict (org_id, account_id) do update
             set role = excluded.role, clerk_synced_at = excluded.clerk_synced_at
             where users.role is distinct from excluded.role
               and (users.clerk_synced_at is null or users.clerk_synced_at <= excluded.clerk_synced_at)",
    )
    .bind(org.as_uuid())
    .bind(Uuid::new_v4())
    .bind(account.as_uuid())
    .bind(role.as_str())
    .bind(issued_at)
    .execute(tx.conn())
    .await
    .map_err(db_error)?
    .rows_affected()
        == 1;
    let (user_id, slug, name, role): (Uuid, String, String, String) = sqlx::query_as(
        "select u.id, o.slug, o.name, u.role from users u join orgs o on o.id = u.org_id
         where u.org_id = $1 and u.account_id = $2",
    )
    .bind(org.as_uuid())
    .bind(account.as_uuid())
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    if changed {
        // A new membership or a new role: this account's cached list is stale.
        db.identity().forget_account(account);
    }
    Ok(Some(OrgSummary {
        id: org,
        user_id: crate::domain::UserId::from_uuid(user_id),
        slug,
        name,
        role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
        personal: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: OrgId, personal: bool) -> OrgSummary {
        OrgSummary {
            id,
            user_id: crate::domain::UserId::random(),
            slug: "x".into(),
            name: "x".into(),
            role: OrgRole::Member,
            personal,
        }
    }

    #[test]
    fn only_mirrored_clerk_orgs_count_as_clerk_orgs() {
        assert!(is_clerk_org(&summary(org_id_for("org_1"), false)));
        assert!(!is_clerk_org(&summary(OrgId::random(), false)));
        let account = AccountId::random();
        assert!(!is_clerk_org(&summary(personal_org_for(account), true)));
    }

    #[test]
    fn personal_slugs_are_valid_and_differ_by_account() {
        let (a, b) = (AccountId::random(), AccountId::random());
        assert_ne!(personal_slug(a), personal_slug(b));
        let slug = personal_slug(a);
        assert_eq!(slug.len(), 14);
        // The schema's check: ^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$
        assert!(
            slug.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !slug.ends_with('-'),
            "{slug}"
        );
    }

    #[test]
    fn roles_with_and_without_prefix() {
        assert_eq!(role_for(Some("org:admin")), OrgRole::Admin);
        assert_eq!(role_for(Some("admin")), OrgRole::Admin);
        assert_eq!(role_for(Some("org:member")), OrgRole::Member);
        assert_eq!(role_for(Some("org:billing_manager")), OrgRole::Member);
        assert_eq!(role_for(None), OrgRole::Member);
    }
}
