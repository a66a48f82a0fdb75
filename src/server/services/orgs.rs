//! Creating, opening, renaming and deleting organizations.

use rand::Rng;
use sqlx::PgConnection;

use super::{db_error, invitations, members};
use crate::{
    domain::{OrgId, OrgName, OrgPage, OrgRole, OrgSummary, Permission, SummaryLanguage, UserId},
    error::AppError,
    server::{
        auth::{
            identity::{CurrentAccount, CurrentMember, SessionHandle},
            rate_limit, session,
        },
        db::{Db, TenantScope, TenantTx},
    },
};

/// Inserts the org row (the transaction must be scoped to `id`), choosing a
/// free slug: the name's, else the name's with a random suffix. An org that
/// already exists with this id is left as it is.
pub(crate) async fn insert_org(
    conn: &mut PgConnection,
    id: OrgId,
    name: &OrgName,
    personal: bool,
    clerk_org_id: Option<&str>,
) -> Result<String, AppError> {
    insert_org_slugged(conn, id, name, &name.slug_base(), personal, clerk_org_id).await
}

/// Random suffixes tried after `base` is taken. With 36^8 (2.8·10^12)
/// suffixes per base, even a name a million orgs share almost never needs
/// a second try; the bound only stops a broken database from looping.
const SLUG_SUFFIX_TRIES: usize = 16;
const SLUG_SUFFIX_LEN: usize = 8;

/// Like [`insert_org`], with the slug base chosen by the caller (a valid
/// slug; cut short before a suffix so the result fits the schema's 48).
pub(crate) async fn insert_org_slugged(
    conn: &mut PgConnection,
    id: OrgId,
    name: &OrgName,
    base: &str,
    personal: bool,
    clerk_org_id: Option<&str>,
) -> Result<String, AppError> {
    let stem = base
        .get(..48 - 1 - SLUG_SUFFIX_LEN)
        .unwrap_or(base)
        .trim_end_matches('-');
    for attempt in 0..=SLUG_SUFFIX_TRIES {
        let slug = if attempt == 0 {
            base.to_owned()
        } else {
            format!("{stem}-{}", slug_suffix())
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

/// Lower-case letters and digits, as slugs allow.
fn slug_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..SLUG_SUFFIX_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
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

/// A new org with the account as its owner; at most `per_day` a day per
/// account (0: no limit). Each new org starts with a fresh free quota, so
/// unlimited orgs were unlimited free summaries (security review finding 6).
#[tracing::instrument(skip(db, account), fields(account = %account.id))]
pub async fn create(
    db: &Db,
    account: &CurrentAccount,
    name: OrgName,
    per_day: i32,
) -> Result<OrgSummary, AppError> {
    if per_day > 0 {
        rate_limit::hit(
            db,
            &format!("orgs:create:account:{}", account.id),
            rate_limit::Limit {
                max_hits: per_day,
                window: std::time::Duration::from_secs(24 * 60 * 60),
            },
        )
        .await?;
    }
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

/// The org as this member may see it (invitations only for those who
/// manage them; links point at `site_origin`). Opening an org makes it the
/// session's active one, where "the app" lands next time.
#[tracing::instrument(skip(db, member, site_origin), fields(org = %member.org.id))]
pub async fn open(db: &Db, member: &CurrentMember, site_origin: &str) -> Result<OrgPage, AppError> {
    member.require(Permission::ViewHistory)?;
    make_active(db, &member.account, member.org.id).await?;
    let members = members::list(db, member).await?;
    let invitations = if member.role().allows(Permission::ManageInvitations) {
        Some(invitations::list(db, member).await?)
    } else {
        None
    };
    let summary_language = summary_language(db, member).await?;
    Ok(OrgPage {
        org: member.org.clone(),
        members,
        invitations,
        site_origin: site_origin.to_owned(),
        summary_language,
    })
}

/// Makes `org` the session's active org. Only built-in sessions keep one:
/// Clerk's token names its own.
pub(crate) async fn make_active(
    db: &Db,
    account: &CurrentAccount,
    org: OrgId,
) -> Result<(), AppError> {
    if let SessionHandle::Builtin {
        token_hash,
        active_org,
    } = &account.session
        && *active_org != Some(org)
    {
        session::set_active_org(db, token_hash, org)
            .await
            .map_err(db_error)?;
    }
    Ok(())
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
    // The lock makes a webhook that starts a subscription now wait for (and
    // then fail against) the delete, or the delete see its subscription.
    sqlx::query("select id from orgs where id = $1 for update")
        .bind(member.org.id.as_uuid())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    if let Some(refused) = super::billing::deletion_refused(&mut tx).await? {
        return Err(refused);
    }
    sqlx::query("delete from orgs where id = $1")
        .bind(member.org.id.as_uuid())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    Ok(())
}

/// The language the org's summaries are written in: `None` is the video's
/// own (the default). Read inside the org's tenant transaction.
pub async fn summary_language_in(tx: &mut TenantTx) -> Result<Option<SummaryLanguage>, AppError> {
    let code: Option<String> =
        sqlx::query_scalar("select summary_language from orgs where id = $1")
            .bind(tx.org_id().as_uuid())
            .fetch_optional(tx.conn())
            .await
            .map_err(db_error)?
            .flatten();
    // The column's check allows only the closed set; anything else would be
    // a newer release's code, read as "the video's own".
    Ok(code.and_then(|code| SummaryLanguage::parse(&code).ok()))
}

/// The org's summary language, for its settings page.
pub async fn summary_language(
    db: &Db,
    member: &CurrentMember,
) -> Result<Option<SummaryLanguage>, AppError> {
    member.require(Permission::ViewHistory)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let language = summary_language_in(&mut tx).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(language)
}

/// Chooses the language the org's summaries are written in (`None`: the
/// video's own). Owners and admins, like the org's name. It applies to
/// videos the org asks for from now on; its history keeps what it got.
#[tracing::instrument(skip(db, member), fields(org = %member.org.id))]
pub async fn set_summary_language(
    db: &Db,
    member: &CurrentMember,
    language: Option<SummaryLanguage>,
) -> Result<(), AppError> {
    member.require(Permission::RenameOrg)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    sqlx::query("update orgs set summary_language = $2 where id = $1")
        .bind(member.org.id.as_uuid())
        .bind(language.map(SummaryLanguage::code))
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}
