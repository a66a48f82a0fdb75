//! Invitations: single-use links, stored only as a hash, valid 7 days.
//!
//! The link's token is `<org id>.<secret>`. The org part scopes the lookup
//! to one tenant (an ordinary tenant transaction), and the secret's hash must
//! match a row there, so finding an invitation never reads across tenants.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{db_error, orgs, unique_violation};
use crate::{
    domain::{Email, InvitationId, InvitationPreview, InvitationView, OrgId, OrgRole, Permission},
    error::AppError,
    server::{
        auth::{
            identity::{CurrentAccount, CurrentMember},
            rate_limit,
        },
        clients::mailer::Mailer,
        db::{Db, TenantScope},
    },
};

pub const VALID_DAYS: i32 = 7;

/// Invitations one org may send an hour: each is a mail from our sender to
/// an address of the admin's choosing (security review finding 9).
pub const PER_ORG_PER_HOUR: rate_limit::Limit = rate_limit::Limit {
    max_hits: 20,
    window: std::time::Duration::from_secs(60 * 60),
};
/// Open (unused, unexpired, unrevoked) invitations one org may hold.
pub const MAX_OPEN: i64 = 50;

/// What became of an invitation's email. The invitation exists whatever
/// it is: mail is a convenience on top of the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailOutcome {
    Sent,
    /// SMTP is not configured here; the link is only shown (and logged).
    Off,
    Failed,
}

impl MailOutcome {
    /// The word the settings page reads from its URL after a redirect.
    pub fn as_str(self) -> &'static str {
        match self {
            MailOutcome::Sent => "sent",
            MailOutcome::Off => "off",
            MailOutcome::Failed => "failed",
        }
    }

    pub fn parse(word: &str) -> Option<MailOutcome> {
        [MailOutcome::Sent, MailOutcome::Off, MailOutcome::Failed]
            .into_iter()
            .find(|outcome| outcome.as_str() == word)
    }
}

impl fmt::Display for MailOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A just-created invitation. No `Debug`: it holds the link's secret.
pub struct NewInvitation {
    pub invitation: InvitationView,
    /// The link's token: it exists only now (we store its hash).
    pub token: String,
    /// `{site origin}/invite/{token}`, the link the invitee opens.
    pub link: String,
    pub mail: MailOutcome,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn org_of(token: &str) -> Result<OrgId, AppError> {
    let (org, secret) = token
        .split_once('.')
        .ok_or_else(|| AppError::NotFound("invitation".into()))?;
    if secret.len() < 40 {
        return Err(AppError::NotFound("invitation".into()));
    }
    org.parse()
        .map_err(|_| AppError::NotFound("invitation".into()))
}

/// Creates an invitation to `email` and mails its link (links point at
/// `site_origin`). Returns the link: the only time it exists.
#[tracing::instrument(skip(db, mailer, member, site_origin), fields(org = %member.org.id))]
pub async fn create(
    db: &Db,
    mailer: &Mailer,
    member: &CurrentMember,
    email: &Email,
    role: OrgRole,
    site_origin: &str,
) -> Result<NewInvitation, AppError> {
    let (invitation, token) = insert(db, member, email, role).await?;
    let link = format!("{site_origin}/invite/{token}");
    let mail = match mailer.send_invitation(email, &member.org.name, &link).await {
        Ok(true) => MailOutcome::Sent,
        Ok(false) => {
            tracing::info!(
                org = %member.org.slug,
                invitee = %email,
                %link,
                "invitation link (SMTP not configured)"
            );
            MailOutcome::Off
        }
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                invitee = %email,
                "could not email an invitation"
            );
            MailOutcome::Failed
        }
    };
    Ok(NewInvitation {
        invitation,
        token,
        link,
        mail,
    })
}

/// Stores the invitation (only its token's hash) and returns it with its token.
async fn insert(
    db: &Db,
    member: &CurrentMember,
    email: &Email,
    role: OrgRole,
) -> Result<(InvitationView, String), AppError> {
    member.require(Permission::ManageInvitations)?;
    if role == OrgRole::Owner {
        return Err(AppError::field(
            "role",
            "Invite as admin or member; ownership is transferred later.",
        ));
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!(
        "{}.{}",
        member.org.id.as_uuid().simple(),
        URL_SAFE_NO_PAD.encode(secret)
    );

    rate_limit::hit(
        db,
        &format!("invitations:org:{}", member.org.id),
        PER_ORG_PER_HOUR,
    )
    .await?;

    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    // Serializes this org's invitations, so concurrent ones cannot all slip
    // under the cap (released at commit).
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('invitations:' || $1::text, 0))")
        .bind(member.org.id.as_uuid())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    let open: i64 = sqlx::query_scalar(
        "select count(*) from invitations
         where org_id = $1 and accepted_at is null and revoked_at is null and expires_at > now()",
    )
    .bind(member.org.id.as_uuid())
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)?;
    if open >= MAX_OPEN {
        return Err(AppError::Refused(format!(
            "This organization has {MAX_OPEN} open invitations. Revoke some, or wait for them to be used, before sending more."
        )));
    }
    let already_member: bool = sqlx::query_scalar(
        "select exists (select from users u join accounts a on a.id = u.account_id where u.org_id = $1 and a.email = $2)",
    )
    .bind(member.org.id.as_uuid())
    .bind(email.as_str())
    .fetch_one(tx.conn())
    .await
    .map_err(db_error)?;
    if already_member {
        return Err(AppError::field("email", "That person is already a member."));
    }
    let id = InvitationId::random();
    let inserted: Result<String, _> = sqlx::query_scalar(
        "insert into invitations (org_id, id, email, role, token_hash, invited_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))
         returning to_char(expires_at, 'YYYY-MM-DD')",
    )
    .bind(member.org.id.as_uuid())
    .bind(id.as_uuid())
    .bind(email.as_str())
    .bind(role.as_str())
    .bind(token_hash(&token))
    .bind(member.org.user_id.as_uuid())
    .bind(VALID_DAYS)
    .fetch_one(tx.conn())
    .await;
    let expires = match inserted {
        Ok(expires) => expires,
        Err(error) => {
            return Err(match unique_violation(&error).as_deref() {
                Some("invitations_open_email_idx") => AppError::field(
                    "email",
                    "That address already has an open invitation. Revoke it to send a new one.",
                ),
                _ => db_error(error),
            });
        }
    };
    tx.commit().await.map_err(db_error)?;
    tracing::info!(invitee = %email, "invitation created");
    let invitation = InvitationView {
        id,
        email: email.as_str().to_owned(),
        role,
        expires,
    };
    Ok((invitation, token))
}

/// Open invitations (not accepted, revoked or expired).
pub async fn list(db: &Db, member: &CurrentMember) -> Result<Vec<InvitationView>, AppError> {
    member.require(Permission::ManageInvitations)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let rows: Vec<(uuid::Uuid, String, String, String)> = sqlx::query_as(
        "select id, email, role, to_char(expires_at, 'YYYY-MM-DD') from invitations
         where org_id = $1 and accepted_at is null and revoked_at is null and expires_at > now()
         order by created_at desc",
    )
    .bind(member.org.id.as_uuid())
    .fetch_all(tx.conn())
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, expires)| InvitationView {
            id: InvitationId::from_uuid(id),
            email,
            role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
            expires,
        })
        .collect())
}

pub async fn revoke(db: &Db, member: &CurrentMember, id: InvitationId) -> Result<(), AppError> {
    member.require(Permission::ManageInvitations)?;
    let mut tx = db.tenant(member.scope()).await.map_err(db_error)?;
    let done = sqlx::query(
        "update invitations set revoked_at = now()
         where org_id = $1 and id = $2 and accepted_at is null and revoked_at is null",
    )
    .bind(member.org.id.as_uuid())
    .bind(id.as_uuid())
    .execute(tx.conn())
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound("invitation".into()));
    }
    tx.commit().await.map_err(db_error)
}

struct Found {
    id: uuid::Uuid,
    email: String,
    role: OrgRole,
    org_name: String,
}

/// The invitation behind `token` if it can still be used; otherwise a
/// message that says why not.
async fn find_usable(
    conn: &mut sqlx::PgConnection,
    org: OrgId,
    token: &str,
    lock: bool,
) -> Result<Found, AppError> {
    let sql = if lock {
        "select i.id, i.email, i.role, o.name, i.accepted_at is not null, i.revoked_at is not null, i.expires_at <= now()
         from invitations i join orgs o on o.id = i.org_id
         where i.org_id = $1 and i.token_hash = $2 for update of i"
    } else {
        "select i.id, i.email, i.role, o.name, i.accepted_at is not null, i.revoked_at is not null, i.expires_at <= now()
         from invitations i join orgs o on o.id = i.org_id
         where i.org_id = $1 and i.token_hash = $2"
    };
    let row: Option<(uuid::Uuid, String, String, String, bool, bool, bool)> = sqlx::query_as(sql)
        .bind(org.as_uuid())
        .bind(token_hash(token))
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    let (id, email, role, org_name, accepted, revoked, expired) =
        row.ok_or_else(|| AppError::NotFound("invitation".into()))?;
    if accepted {
        return Err(AppError::Conflict(
            "This invitation has already been used. Ask for a new one if you need it.".into(),
        ));
    }
    if revoked {
        return Err(AppError::Conflict(
            "This invitation was revoked. Ask the person who invited you for a new one.".into(),
        ));
    }
    if expired {
        return Err(AppError::Conflict(format!(
            "This invitation expired (links last {VALID_DAYS} days). Ask for a new one."
        )));
    }
    Ok(Found {
        id,
        email,
        role: OrgRole::parse(&role).unwrap_or(OrgRole::Member),
        org_name,
    })
}

pub async fn preview(db: &Db, token: &str) -> Result<InvitationPreview, AppError> {
    let org = org_of(token)?;
    let mut tx = db.tenant(TenantScope::org(org)).await.map_err(db_error)?;
    let found = find_usable(tx.conn(), org, token, false).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(InvitationPreview {
        org_name: found.org_name,
        email: found.email,
        role: found.role,
    })
}

/// Joins the org as invited and makes it the session's active org. Only
/// the invited address may accept, once.
#[tracing::instrument(skip(db, account, token), fields(account = %account.id))]
pub async fn accept(db: &Db, account: &CurrentAccount, token: &str) -> Result<OrgId, AppError> {
    let org = org_of(token)?;
    let mut tx = db.tenant(TenantScope::org(org)).await.map_err(db_error)?;
    let found = find_usable(tx.conn(), org, token, true).await?;
    if account.email.as_ref().map(Email::as_str) != Some(found.email.as_str()) {
        return Err(AppError::Refused(format!(
            "This invitation is for {}. Sign in with that address to accept it.",
            found.email
        )));
    }
    // Finding 10: only an address the account proved may join by invitation.
    if !super::account_lifecycle::is_verified(tx.conn(), account.id).await? {
        return Err(AppError::Refused(format!(
            "Confirm your email address first: open the link we sent to {}, or send a new one from your account page (/account). Then accept again.",
            found.email
        )));
    }
    let user = match orgs::insert_member(tx.conn(), org, account.id, found.role).await {
        Ok(user) => user,
        Err(error) if unique_violation(&error).as_deref() == Some("users_org_account_key") => {
            return Err(AppError::Conflict(
                "You're already a member of this organization.".into(),
            ));
        }
        Err(error) => return Err(db_error(error)),
    };
    sqlx::query("update invitations set accepted_at = now(), accepted_by = $3 where org_id = $1 and id = $2")
        .bind(org.as_uuid())
        .bind(found.id)
        .bind(user.as_uuid())
        .execute(tx.conn())
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    db.identity().forget_memberships();
    orgs::make_active(db, account, org).await?;
    Ok(org)
}

#[cfg(test)]
mod tests {
    use super::MailOutcome;

    #[test]
    fn a_mail_outcome_survives_the_redirect_url() {
        for outcome in [MailOutcome::Sent, MailOutcome::Off, MailOutcome::Failed] {
            assert_eq!(MailOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(MailOutcome::parse("delivered"), None);
    }
}
