//! Clerk users and orgs become rows of ours the first time we see them.
//!
//! Our org id for a Clerk org is a UUIDv5 of its Clerk id, so mapping a
//! token to a tenant needs no cross-tenant lookup, and two processes seeing
//! the same new org at once create one row (the second insert is a no-op).

use uuid::Uuid;

use super::{
    clerk::ClerkSession,
    identity::{CurrentAccount, SessionHandle},
};
use crate::{
    domain::{AccountId, OrgId, OrgName, OrgRole, OrgSummary},
    error::AppError,
    server::{
        db::{Db, TenantScope},
        services::{db_error, orgs},
    },
};

const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a53_9d4e_4f0b_8a71_3c5e_9b2d_7e10);

fn org_id_for(clerk_org_id: &str) -> OrgId {
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

fn role_for(clerk_role: Option<&str>) -> OrgRole {
    match clerk_role {
        Some("admin") => OrgRole::Admin,
        _ => OrgRole::Member,
    }
}

/// The account for a verified Clerk session, creating the account, its
/// personal org and its membership of the token's org as needed.
#[tracing::instrument(skip_all, fields(clerk_user = %clerk.user_id))]
/// Its session handle carries the membership of the token's org, as the
/// token states it (Clerk is the source of truth for Clerk orgs).
pub async fn account_for(db: &Db, clerk: &ClerkSession) -> Result<CurrentAccount, AppError> {
    let account = ensure_account(db, &clerk.user_id).await?;
    let member = match &clerk.org {
        Some(clerk_org) => Some(
            ensure_membership(
                db,
                org_id_for(&clerk_org.id),
                account,
                clerk_org.slug.as_deref(),
                role_for(clerk_org.role.as_deref()),
            )
            .await?,
        ),
        None => None,
    };
    Ok(CurrentAccount {
        id: account,
        email: None,
        session: SessionHandle::Clerk {
            org: member.as_ref().map(|m| m.id),
            member,
        },
    })
}

async fn ensure_account(db: &Db, clerk_user_id: &str) -> Result<AccountId, AppError> {
    let mut tx = db.shared().await.map_err(db_error)?;
    let existing: Option<Uuid> =
        sqlx::query_scalar("select id from accounts where clerk_user_id = $1")
            .bind(clerk_user_id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    if let Some(id) = existing {
        return Ok(AccountId::from_uuid(id));
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
        return Ok(AccountId::from_uuid(id));
    }
    let name = OrgName::parse("Personal workspace").expect("a valid name");
    orgs::insert_org(tx.conn(), personal, &name, true, None).await?;
    orgs::insert_member(tx.conn(), personal, account, OrgRole::Owner)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(account)
}

/// Clerk is the source of truth for Clerk orgs: the member's role follows
/// the token's.
async fn ensure_membership(
    db: &Db,
    org: OrgId,
    account: AccountId,
    slug: Option<&str>,
    role: OrgRole,
) -> Result<OrgSummary, AppError> {
    let mut tx = db.tenant(TenantScope::org(org)).await.map_err(db_error)?;
    let exists: bool = sqlx::query_scalar("select exists (select from orgs where id = $1)")
        .bind(org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .map_err(db_error)?;
    if !exists {
        let name = OrgName::parse(slug.unwrap_or("Organization"))
            .unwrap_or_else(|_| OrgName::parse("Organization").expect("valid"));
        orgs::insert_org(tx.conn(), org, &name, false, None).await?;
    }
    let changed = sqlx::query(
        "insert into users (org_id, id, account_id, role) values ($1, $2, $3, $4)
         on conflict (org_id, account_id) do update set role = excluded.role
         where users.role is distinct from excluded.role",
    )
    .bind(org.as_uuid())
    .bind(Uuid::new_v4())
    .bind(account.as_uuid())
    .bind(role.as_str())
    .execute(tx.conn())
    .await
    .map_err(db_error)?
    .rows_affected()
        == 1;
    let (user_id, slug, name): (Uuid, String, String) = sqlx::query_as(
        "select u.id, o.slug, o.name from users u join orgs o on o.id = u.org_id
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
    Ok(OrgSummary {
        id: org,
        user_id: crate::domain::UserId::from_uuid(user_id),
        slug,
        name,
        role,
        personal: false,
    })
}
