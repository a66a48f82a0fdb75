//! Who is in an org and with which role. An org always keeps an owner.

use super::db_error;
use crate::{
    domain::{MemberView, OrgRole, Permission, UserId},
    error::AppError,
    server::{auth::identity::CurrentMember, db::Db},
};

const LAST_OWNER: &str =
    "An organization needs at least one owner. Make someone else an owner first.";

#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn list(db: &Db, member: &CurrentMember) -> Result<Vec<MemberView>, AppError> {
    member.require(Permission::ViewHistory)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let rows: Vec<(uuid::Uuid, Option<String>, String, String)> = sqlx::query_as(
        "select u.id, a.email, u.role, to_char(u.created_at, 'YYYY-MM-DD')
         from users u join accounts a on a.id = u.account_id
         where u.org_id = $1
         order by case u.role when 'owner' then 0 when 'admin' then 1 else 2 end, a.email",
    )
    .bind(member.org.id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, joined)| MemberView {
            user_id: UserId::from_uuid(id),
            email,
            role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
            joined,
            is_you: id == member.org.user_id.as_uuid(),
        })
        .collect())
}

/// Locks the org's owner rows and returns how many there are, so two
/// concurrent demotions cannot both see "another owner is left".
async fn lock_owners(
    conn: &mut sqlx::PgConnection,
    member: &CurrentMember,
) -> Result<i64, AppError> {
    let owners: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from users where org_id = $1 and role = 'owner' for update")
            .bind(member.org.id.as_uuid())
            .fetch_all(conn)
            .await
            .map_err(db_error)?;
    Ok(owners.len() as i64)
}

async fn role_of(
    conn: &mut sqlx::PgConnection,
    member: &CurrentMember,
    target: UserId,
) -> Result<OrgRole, AppError> {
    let role: Option<String> =
        sqlx::query_scalar("select role from users where org_id = $1 and id = $2 for update")
            .bind(member.org.id.as_uuid())
            .bind(target.as_uuid())
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
    role.and_then(|r| OrgRole::parse(&r))
        .ok_or_else(|| AppError::NotFound("member".into()))
}

#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn change_role(
    db: &Db,
    member: &CurrentMember,
    target: UserId,
    role: OrgRole,
) -> Result<(), AppError> {
    member.require(Permission::ManageMembers)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let owners = lock_owners(tx.conn(), member).await?;
    let current = role_of(tx.conn(), member, target).await?;
    // Making or unmaking owners is the owners' business.
    if (role == OrgRole::Owner || current == OrgRole::Owner) && member.role() != OrgRole::Owner {
        return Err(AppError::Forbidden);
    }
    if current == OrgRole::Owner && role != OrgRole::Owner && owners <= 1 {
        return Err(AppError::Conflict(LAST_OWNER.into()));
    }
    sqlx::query("update users set role = $3 where org_id = $1 and id = $2")
        .bind(member.org.id.as_uuid())
        .bind(target.as_uuid())
        .bind(role.as_str())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}

#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn remove(db: &Db, member: &CurrentMember, target: UserId) -> Result<(), AppError> {
    member.require(Permission::ManageMembers)?;
    if target == member.org.user_id {
        return leave(db, member).await;
    }
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let owners = lock_owners(tx.conn(), member).await?;
    let current = role_of(tx.conn(), member, target).await?;
    if current == OrgRole::Owner && member.role() != OrgRole::Owner {
        return Err(AppError::Forbidden);
    }
    if current == OrgRole::Owner && owners <= 1 {
        return Err(AppError::Conflict(LAST_OWNER.into()));
    }
    delete_member(tx.conn(), member, target).await?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}

#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn leave(db: &Db, member: &CurrentMember) -> Result<(), AppError> {
    if member.org.personal {
        return Err(AppError::Conflict(
            "You can't leave your personal organization.".into(),
        ));
    }
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let owners = lock_owners(tx.conn(), member).await?;
    let current = role_of(tx.conn(), member, member.org.user_id).await?;
    if current == OrgRole::Owner && owners <= 1 {
        return Err(AppError::Conflict(LAST_OWNER.into()));
    }
    delete_member(tx.conn(), member, member.org.user_id).await?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}

/// Makes `target` an owner and the current owner an admin.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn transfer_ownership(
    db: &Db,
    member: &CurrentMember,
    target: UserId,
) -> Result<(), AppError> {
    member.require(Permission::TransferOwnership)?;
    if target == member.org.user_id {
        return Err(AppError::Conflict(
            "You already own this organization.".into(),
        ));
    }
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    lock_owners(tx.conn(), member).await?;
    role_of(tx.conn(), member, target).await?;
    sqlx::query(
        "update users set role = case when id = $2 then 'owner' else 'admin' end
         where org_id = $1 and id in ($2, $3)",
    )
    .bind(member.org.id.as_uuid())
    .bind(target.as_uuid())
    .bind(member.org.user_id.as_uuid())
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}

async fn delete_member(
    conn: &mut sqlx::PgConnection,
    member: &CurrentMember,
    target: UserId,
) -> Result<(), AppError> {
    // Invitations they sent stay valid: they now count as sent by an owner.
    sqlx::query(
        "update invitations set invited_by = (
             select id from users where org_id = $1 and role = 'owner' and id <> $2 order by created_at limit 1)
         where org_id = $1 and invited_by = $2",
    )
    .bind(member.org.id.as_uuid())
    .bind(target.as_uuid())
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    sqlx::query("delete from users where org_id = $1 and id = $2")
        .bind(member.org.id.as_uuid())
        .bind(target.as_uuid())
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
