//! Creating, renaming and deleting organizations.

use rand::Rng;
use sqlx::PgConnection;

use super::db_error;
use crate::{
    domain::{OrgId, OrgName, OrgRole, OrgSummary, Permission, UserId},
    error::AppError,
    server::{
        auth::identity::{CurrentAccount, CurrentMember},
        db::{Db, TenantScope},
    },
};

/// Inserts the org row (the transaction must be scoped to `id`), choosing a
/// free slug: the name's, else the name's with a short random suffix. An org
/// that already exists with this id is left as it is.
pub(crate) async fn insert_org(
    conn: &mut PgConnection,
    id: OrgId,
    name: &OrgName,
    personal: bool,
    clerk_org_id: Option<&str>,
) -> Result<String, AppError> {
    let base = name.slug_base();
    for attempt in 0..8 {
        let slug = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}-{:04x}", rand::rng().random::<u16>())
        };
        let inserted: Option<String> = sqlx::query_scalar(
            "insert into orgs (id, slug, name, personal, clerk_org_id) values ($1, $2, $3, $4, $5)
             on conflict do nothing returning slug",
        )
        .bind(id.as_uuid())
        .bind(&slug)
        .bind(name.as_str())
        .bind(personal)
        .bind(clerk_org_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
        if let Some(slug) = inserted {
            return Ok(slug);
        }
        // Orgs with derived ids (Clerk's) may be created by a concurrent
        // request; then it exists and that is success. Otherwise the slug
        // was taken: try another.
        let existing: Option<String> = sqlx::query_scalar("select slug from orgs where id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
        if let Some(slug) = existing {
            return Ok(slug);
        }
    }
    Err(AppError::internal(anyhow::anyhow!(
        "no free slug for {base}"
    )))
}

pub(crate) async fn insert_member(
    conn: &mut PgConnection,
    org: OrgId,
    account: crate::domain::AccountId,
    role: OrgRole,
) -> Result<UserId, sqlx::Error> {
    let user = UserId::random();
    sqlx::query("insert into users (org_id, id, account_id, role) values ($1, $2, $3, $4)")
        .bind(org.as_uuid())
        .bind(user.as_uuid())
        .bind(account.as_uuid())
        .bind(role.as_str())
        .execute(conn)
        .await?;
    Ok(user)
}

/// A new org with the account as its owner.
#[tracing::instrument(skip(db, account), fields(account = %account.id))]
pub async fn create(
    db: &Db,
    account: &CurrentAccount,
    name: OrgName,
) -> Result<OrgSummary, AppError> {
    let id = OrgId::random();
    let mut tx = db.tenant(TenantScope::org(id)).await.map_err(db_error)?;
    let slug = insert_org(tx.conn(), id, &name, false, None).await?;
    let user_id = insert_member(tx.conn(), id, account.id, OrgRole::Owner)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(OrgSummary {
        id,
        user_id,
        slug,
        name: name.as_str().to_owned(),
        role: OrgRole::Owner,
        personal: false,
    })
}

#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn rename(db: &Db, member: &CurrentMember, name: OrgName) -> Result<(), AppError> {
    member.require(Permission::RenameOrg)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    sqlx::query("update orgs set name = $2 where id = $1")
        .bind(member.org.id.as_uuid())
        .bind(name.as_str())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}

/// Deletes the org and everything in it (cascades). The personal org stays.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn delete(db: &Db, member: &CurrentMember, confirm_slug: &str) -> Result<(), AppError> {
    member.require(Permission::DeleteOrg)?;
    if member.org.personal {
        return Err(AppError::Conflict(
            "Your personal organization can't be deleted.".into(),
        ));
    }
    if confirm_slug.trim() != member.org.slug {
        return Err(AppError::field(
            "confirm",
            format!("Type {} to confirm.", member.org.slug),
        ));
    }
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    sqlx::query("delete from orgs where id = $1")
        .bind(member.org.id.as_uuid())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}
