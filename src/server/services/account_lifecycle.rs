//! The life of a built-in account after sign-up: proving its email,
//! resetting a forgotten password, changing password and email, and
//! deleting itself (issue 12, security review finding 10).
//!
//! Every emailed link carries a random 256-bit token; only its SHA-256 is
//! stored (`account_tokens`), bound to one account, one purpose and the
//! address it was mailed to. A link works once: using it, or asking for a
//! newer one of the same purpose, marks it used. Its row stays until it
//! expires so that a second click is told "already used", then
//! [`purge_expired`] removes it.

use std::net::IpAddr;
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{db_error, invitations, members, unique_violation};
use crate::{
    domain::{AccountId, AccountStatus, Email, LinkDelivery, NewPassword, OrgRole, OrgSummary},
    error::AppError,
    server::{
        auth::{
            identity::{self, Authenticator, CurrentAccount, SessionHandle},
            password,
            rate_limit::{self, Limit},
        },
        clients::mailer::Mailer,
        db::{Db, TenantScope},
    },
};

/// A sign-up's verification link lasts two days: long enough for a
/// weekend, short enough that an old mailbox leak is not a key.
pub const VERIFY_HOURS: i32 = 48;
/// A password reset link lasts one hour.
pub const RESET_HOURS: i32 = 1;
/// A link confirming a new email address lasts one day.
pub const CHANGE_EMAIL_HOURS: i32 = 24;

/// Links asked for by address (forgot password), per client address.
const LINKS_PER_ADDRESS: Limit = Limit {
    max_hits: 10,
    window: Duration::from_secs(60 * 60),
};
/// Links mailed to one address or account per hour: enough for a lost
/// mail or two, too few to flood someone's inbox through us.
const LINKS_PER_MAILBOX: Limit = Limit {
    max_hits: 5,
    window: Duration::from_secs(60 * 60),
};
/// Password checks by a signed-in session (change password or email,
/// delete): a stolen session cannot guess the password at leisure.
const PASSWORD_CHECKS: Limit = Limit {
    max_hits: 10,
    window: Duration::from_secs(15 * 60),
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    VerifyEmail,
    ResetPassword,
    ChangeEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
        }
    }

    fn hours(self) -> i32 {
        match self {
            Purpose::VerifyEmail => VERIFY_HOURS,
            Purpose::ResetPassword => RESET_HOURS,
            Purpose::ChangeEmail => CHANGE_EMAIL_HOURS,
        }
    }

    /// The page the link opens.
    fn path(self) -> &'static str {
        match self {
            Purpose::VerifyEmail | Purpose::ChangeEmail => "/verify-email",
            Purpose::ResetPassword => "/reset-password",
        }
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn builtin_only(auth: &Authenticator) -> Result<(), AppError> {
    if auth.is_builtin() {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "Accounts are managed by Clerk on this site.".into(),
        ))
    }
}

/// Refuses anything but a signed-in browser session of a built-in account.
fn builtin_session(account: &CurrentAccount) -> Result<&[u8], AppError> {
    match &account.session {
        SessionHandle::Builtin { token_hash, .. } => Ok(token_hash),
        _ => Err(AppError::Conflict(
            "This account is managed by Clerk: change it in Clerk's account settings.".into(),
        )),
    }
}

/// Stores a new link for `account` and returns its token. Older unused
/// links of the same purpose stop working: only the newest mail counts.
async fn issue(
    db: &Db,
    account: AccountId,
    purpose: Purpose,
    email: &Email,
) -> Result<String, AppError> {
    let token = new_token();
    let mut tx = db.shared().await?;
    sqlx::query(
        "update account_tokens set used_at = now()
         where account_id = $1 and purpose = $2 and used_at is null",
    )
    .bind(account.as_uuid())
    .bind(purpose.as_str())
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into account_tokens (token_hash, account_id, purpose, email, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(hours => $5))",
    )
    .bind(token_hash(&token))
    .bind(account.as_uuid())
    .bind(purpose.as_str())
    .bind(email.as_str())
    .bind(purpose.hours())
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// A link that was just used.
struct Used {
    account: AccountId,
    email: String,
}

/// Uses the link behind `token` once, inside `conn`'s transaction: a
/// concurrent second use waits on the row lock and is then told it was
/// used. Wrong, used and expired links each get their own words.
async fn consume(
    conn: &mut sqlx::PgConnection,
    token: &str,
    purpose: Purpose,
) -> Result<Used, AppError> {
    let invalid = || {
        AppError::BadRequest(
            "This link is not valid. Check that you copied all of it, or ask for a new one.".into(),
        )
    };
    let token = token.trim();
    if !(40..=100).contains(&token.len()) {
        return Err(invalid());
    }
    let row: Option<(uuid::Uuid, String, bool, bool)> = sqlx::query_as(
        "select account_id, email, used_at is not null, expires_at <= now()
         from account_tokens where token_hash = $1 and purpose = $2 for update",
    )
    .bind(token_hash(token))
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let (account, email, used, expired) = row.ok_or_else(invalid)?;
    if used {
        return Err(AppError::Conflict(
            "This link has already been used, or a newer one was sent. Use the newest link, or ask for a new one.".into(),
        ));
    }
    if expired {
        return Err(AppError::Conflict(format!(
            "This link expired (it lasted {}). Ask for a new one.",
            match purpose.hours() {
                1 => "one hour".to_owned(),
                h => format!("{h} hours"),
            }
        )));
    }
    sqlx::query("update account_tokens set used_at = now() where token_hash = $1")
        .bind(token_hash(token))
        .execute(&mut *conn)
        .await?;
    Ok(Used {
        account: AccountId::from_uuid(account),
        email,
    })
}

/// Mails `body` (which contains `link`, if any) to `to`. With mail off the
/// link is logged, as invitation links are, so a local install still works.
async fn deliver(
    mailer: &Mailer,
    to: &Email,
    subject: &str,
    body: &str,
    link: Option<&str>,
) -> LinkDelivery {
    match mailer.send_text(to, subject, body).await {
        Ok(true) => LinkDelivery::Sent,
        Ok(false) => {
            match link {
                Some(link) => {
                    tracing::info!(to = %to, %link, subject, "account link (SMTP not configured)")
                }
                None => tracing::info!(to = %to, subject, "account notice (SMTP not configured)"),
            }
            LinkDelivery::Logged
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), to = %to, subject, "could not send an account email");
            LinkDelivery::Failed
        }
    }
}

async fn send_verification_link(
    db: &Db,
    mailer: &Mailer,
    account: AccountId,
    email: &Email,
    site_origin: &str,
) -> Result<LinkDelivery, AppError> {
    let token = issue(db, account, Purpose::VerifyEmail, email).await?;
    let link = format!("{site_origin}{}?token={token}", Purpose::VerifyEmail.path());
    let body = format!(
        "Welcome to tldw!\n\n\
         Confirm that {email} is your address (the link works once, for {VERIFY_HOURS} hours):\n{link}\n\n\
         Until you do, you can use your personal workspace, but you can't join an organization by invitation.\n\n\
         If you didn't create a tldw account, ignore this email."
    );
    Ok(deliver(
        mailer,
        email,
        "Confirm your email for tldw",
        &body,
        Some(&link),
    )
    .await)
}

async fn set_verified(db: &Db, account: AccountId, email: &str) -> Result<bool, AppError> {
    let mut tx = db.shared().await?;
    let done = sqlx::query(
        "update accounts set email_verified_at = coalesce(email_verified_at, now())
         where id = $1 and email = $2",
    )
    .bind(account.as_uuid())
    .bind(email)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// After a sign-up: an account made through an invitation link for this
/// very address is verified by it (the link was mailed there); any other
/// gets a verification link. `next` is where the sign-up form goes next.
#[tracing::instrument(skip(db, mailer, next, site_origin), fields(%account))]
pub async fn after_sign_up(
    db: &Db,
    mailer: &Mailer,
    account: AccountId,
    email: &Email,
    next: Option<&str>,
    site_origin: &str,
) -> Result<LinkDelivery, AppError> {
    let invitation = next
        .and_then(|next| next.strip_prefix("/invite/"))
        .map(|token| token.split(['?', '#']).next().unwrap_or(token));
    if let Some(token) = invitation
        && let Ok(preview) = invitations::preview(db, token).await
        && preview.email == email.as_str()
    {
        set_verified(db, account, email.as_str()).await?;
        return Ok(LinkDelivery::Sent);
    }
    send_verification_link(db, mailer, account, email, site_origin).await
}

/// Whether the account has proved its address. Clerk accounts count as
/// proved: Clerk verified the address before issuing their token.
pub async fn is_verified(
    conn: &mut sqlx::PgConnection,
    account: AccountId,
) -> Result<bool, AppError> {
    let verified: Option<bool> = sqlx::query_scalar(
        "select email_verified_at is not null or clerk_user_id is not null from accounts where id = $1",
    )
    .bind(account.as_uuid())
    .fetch_optional(conn)
    .await?;
    Ok(verified.unwrap_or(false))
}

/// What the account page shows about the address.
pub async fn status(db: &Db, account: &CurrentAccount) -> Result<AccountStatus, AppError> {
    let mut tx = db.shared().await?;
    let verified = is_verified(tx.conn(), account.id).await?;
    tx.commit().await?;
    Ok(AccountStatus {
        email: account.email.as_ref().map(Email::to_string),
        verified,
        builtin: matches!(account.session, SessionHandle::Builtin { .. }),
    })
}

/// "Send the link again", from the account page.
#[tracing::instrument(skip(db, mailer, account, site_origin), fields(account = %account.id))]
pub async fn resend_verification(
    db: &Db,
    mailer: &Mailer,
    account: &CurrentAccount,
    site_origin: &str,
) -> Result<LinkDelivery, AppError> {
    builtin_session(account)?;
    let email = account
        .email
        .clone()
        .ok_or_else(|| AppError::Conflict("This account has no email address.".into()))?;
    let mut tx = db.shared().await?;
    let verified = is_verified(tx.conn(), account.id).await?;
    tx.commit().await?;
    if verified {
        return Err(AppError::Conflict(format!("{email} is already verified.")));
    }
    rate_limit::hit(
        db,
        &format!("links:account:{}", account.id),
        LINKS_PER_MAILBOX,
    )
    .await?;
    send_verification_link(db, mailer, account.id, &email, site_origin).await
}

/// Opens a verification link (from sign-up, or a change of email): the
/// address it was mailed to becomes the account's verified address.
#[tracing::instrument(skip_all)]
pub async fn verify_email(db: &Db, token: &str) -> Result<AccountId, AppError> {
    let mut tx = db.shared().await?;
    // Either kind of link: which one it is decides what it does.
    let hash = token_hash(token.trim());
    let purpose: Option<String> =
        sqlx::query_scalar("select purpose from account_tokens where token_hash = $1")
            .bind(&hash)
            .fetch_optional(tx.conn())
            .await?;
    let purpose = match purpose.as_deref() {
        Some("change_email") => Purpose::ChangeEmail,
        _ => Purpose::VerifyEmail,
    };
    let used = consume(tx.conn(), token, purpose).await?;
    let updated = match purpose {
        Purpose::ChangeEmail => {
            let result = sqlx::query(
                "update accounts set email = $2, email_verified_at = now() where id = $1",
            )
            .bind(used.account.as_uuid())
            .bind(&used.email)
            .execute(tx.conn())
            .await;
            match result {
                Ok(done) => done.rows_affected(),
                Err(error) if unique_violation(&error).as_deref() == Some("accounts_email_key") => {
                    return Err(AppError::Conflict(format!(
                        "{} now belongs to another account, so yours keeps its old address.",
                        used.email
                    )));
                }
                Err(error) => return Err(db_error(error)),
            }
        }
        _ => sqlx::query(
            "update accounts set email_verified_at = coalesce(email_verified_at, now())
             where id = $1 and email = $2",
        )
        .bind(used.account.as_uuid())
        .bind(&used.email)
        .execute(tx.conn())
        .await?
        .rows_affected(),
    };
    if updated == 0 {
        return Err(AppError::Conflict(
            "This link was for an address the account no longer has. Ask for a new one from your account page.".into(),
        ));
    }
    tx.commit().await?;
    // Sessions carry the email (the identity cache holds them briefly).
    db.identity().forget_sessions();
    tracing::info!(account = %used.account, "email verified");
    Ok(used.account)
}

/// "Forgot password?": mails a reset link if `email` has a built-in
/// account. The answer is the same either way (nothing says whether the
/// account exists), and both cases do a comparable amount of work.
#[tracing::instrument(skip(db, auth, mailer, email, site_origin))]
pub async fn request_password_reset(
    db: &Db,
    auth: &Authenticator,
    mailer: &Mailer,
    client_ip: IpAddr,
    email: &str,
    site_origin: &str,
) -> Result<(), AppError> {
    builtin_only(auth)?;
    rate_limit::hit(db, &format!("links:ip:{client_ip}"), LINKS_PER_ADDRESS).await?;
    let email = Email::parse(email).map_err(|e| AppError::field("email", e.to_string()))?;
    rate_limit::hit(db, &format!("links:email:{email}"), LINKS_PER_MAILBOX).await?;
    let mut tx = db.shared().await?;
    let account: Option<uuid::Uuid> = sqlx::query_scalar(
        "select id from accounts where email = $1 and password_hash is not null",
    )
    .bind(email.as_str())
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    let Some(account) = account else {
        tracing::info!("password reset asked for an address without an account");
        return Ok(());
    };
    let token = issue(
        db,
        AccountId::from_uuid(account),
        Purpose::ResetPassword,
        &email,
    )
    .await?;
    let link = format!(
        "{site_origin}{}?token={token}",
        Purpose::ResetPassword.path()
    );
    let body = format!(
        "Someone (hopefully you) asked to reset the password of the tldw account for {email}.\n\n\
         Choose a new password here (the link works once, for one hour):\n{link}\n\n\
         Setting a new password signs the account out on every device.\n\
         If you didn't ask for this, ignore this email: your password stays as it is."
    );
    // Sent in the background: the answer must not wait on SMTP only when
    // the account exists, or its timing would tell.
    let mailer = mailer.clone();
    tokio::spawn(async move {
        deliver(
            &mailer,
            &email,
            "Reset your tldw password",
            &body,
            Some(&link),
        )
        .await;
    });
    Ok(())
}

/// Sets a new password from a reset link. Every session of the account
/// ends; the link also proves the address, so the account counts as
/// verified from now on (this is also how the real owner takes back an
/// address someone else signed up with). Returns the account, for the
/// caller to sign it in.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    db: &Db,
    auth: &Authenticator,
    token: &str,
    new_password: &str,
) -> Result<AccountId, AppError> {
    builtin_only(auth)?;
    let mut tx = db.shared().await?;
    let used = consume(tx.conn(), token, Purpose::ResetPassword).await?;
    let password = NewPassword::parse(new_password, &used.email)
        .map_err(|e| AppError::field("password", e.to_string()))?;
    let hash = password::hash(password).await.map_err(AppError::internal)?;
    let updated = sqlx::query(
        "update accounts set password_hash = $2,
                email_verified_at = case when email = $3 then coalesce(email_verified_at, now()) else email_verified_at end
         where id = $1",
    )
    .bind(used.account.as_uuid())
    .bind(&hash)
    .bind(&used.email)
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(AppError::BadRequest(
            "This link is not valid. Check that you copied all of it, or ask for a new one.".into(),
        ));
    }
    // Sessions end in the same transaction as the change: no window in
    // which the old password's sessions outlive it.
    let ended = sqlx::query("delete from sessions where account_id = $1")
        .bind(used.account.as_uuid())
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    db.identity().forget_sessions();
    tracing::info!(account = %used.account, sessions_ended = ended.rows_affected(), "password reset");
    Ok(used.account)
}

/// Checks the signed-in account's password (rate limited per account).
async fn check_password(
    db: &Db,
    account: &CurrentAccount,
    password: String,
    field: &str,
) -> Result<(), AppError> {
    rate_limit::hit(
        db,
        &format!("password:account:{}", account.id),
        PASSWORD_CHECKS,
    )
    .await?;
    let mut tx = db.shared().await?;
    let hash: Option<String> =
        sqlx::query_scalar("select password_hash from accounts where id = $1")
            .bind(account.id.as_uuid())
            .fetch_optional(tx.conn())
            .await?
            .flatten();
    tx.commit().await?;
    if hash.is_none() || !password::verify(password, hash).await {
        return Err(AppError::field(field, "That isn't your current password."));
    }
    Ok(())
}

/// Changes the password; every other session of the account ends (this
/// one stays signed in). Returns how many sessions ended.
#[tracing::instrument(skip_all, fields(account = %account.id))]
pub async fn change_password(
    db: &Db,
    account: &CurrentAccount,
    current: String,
    new_password: &str,
) -> Result<u64, AppError> {
    let this_session = builtin_session(account)?.to_vec();
    let email = account
        .email
        .as_ref()
        .map(Email::as_str)
        .unwrap_or_default();
    let password = NewPassword::parse(new_password, email)
        .map_err(|e| AppError::field("new_password", e.to_string()))?;
    check_password(db, account, current, "current_password").await?;
    let hash = password::hash(password).await.map_err(AppError::internal)?;
    let mut tx = db.shared().await?;
    sqlx::query("update accounts set password_hash = $2 where id = $1")
        .bind(account.id.as_uuid())
        .bind(&hash)
        .execute(tx.conn())
        .await?;
    let ended = sqlx::query("delete from sessions where account_id = $1 and token_hash <> $2")
        .bind(account.id.as_uuid())
        .bind(&this_session)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    db.identity().forget_sessions();
    Ok(ended.rows_affected())
}

/// Asks to move the account to `new_email`: a link to confirm goes to the
/// new address, and the old one is told. Nothing changes until the link
/// is opened.
#[tracing::instrument(skip(db, mailer, account, password, site_origin), fields(account = %account.id))]
pub async fn request_email_change(
    db: &Db,
    mailer: &Mailer,
    account: &CurrentAccount,
    password: String,
    new_email: &str,
    site_origin: &str,
) -> Result<LinkDelivery, AppError> {
    builtin_session(account)?;
    let new_email =
        Email::parse(new_email).map_err(|e| AppError::field("new_email", e.to_string()))?;
    if account.email.as_ref() == Some(&new_email) {
        return Err(AppError::field(
            "new_email",
            "That is already your address.",
        ));
    }
    check_password(db, account, password, "password").await?;
    rate_limit::hit(
        db,
        &format!("links:account:{}", account.id),
        LINKS_PER_MAILBOX,
    )
    .await?;
    let token = issue(db, account.id, Purpose::ChangeEmail, &new_email).await?;
    let link = format!("{site_origin}{}?token={token}", Purpose::ChangeEmail.path());
    let body = format!(
        "Someone signed in to tldw asked to use {new_email} as their account's address.\n\n\
         If that was you, confirm it here (the link works once, for {CHANGE_EMAIL_HOURS} hours):\n{link}\n\n\
         If it wasn't, ignore this email: nothing changes."
    );
    let delivery = deliver(
        mailer,
        &new_email,
        "Confirm your new email for tldw",
        &body,
        Some(&link),
    )
    .await;
    if let Some(old) = &account.email {
        let notice = format!(
            "Someone signed in to your tldw account asked to change its email from {old} to {new_email}.\n\n\
             Nothing changes until the new address confirms it.\n\
             If this wasn't you, change your password now (or use \"Forgot password?\" on the sign-in page): \
             that signs everyone else out."
        );
        deliver(
            mailer,
            old,
            "Your tldw email is being changed",
            &notice,
            None,
        )
        .await;
    }
    Ok(delivery)
}

/// One org the account belongs to, as deletion sees it.
struct Standing {
    org: OrgSummary,
    others: i64,
    other_owners: i64,
    renewing_subscription: bool,
}

/// Deletes the account: its sessions, its memberships and every org where
/// it is the only member (its personal org among them). Refused, saying
/// which org and what to do, while it is the last owner of an org with
/// other members, or while an org it would delete has a paid
/// subscription that renews. The shared video cache is not touched; orgs
/// that continue keep their data (the member leaves as through "Leave").
#[tracing::instrument(skip_all, fields(account = %account.id))]
pub async fn delete_account(
    db: &Db,
    account: &CurrentAccount,
    password: String,
) -> Result<(), AppError> {
    builtin_session(account)?;
    check_password(db, account, password, "confirm_password").await?;
    db.identity().forget_memberships();
    let orgs = identity::memberships(db, account.id).await?;
    let mut standings = Vec::with_capacity(orgs.len());
    for org in orgs {
        let mut tx = db.tenant(TenantScope::org(org.id)).await?;
        let (others, other_owners): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where id <> $2), count(*) filter (where id <> $2 and role = 'owner')
             from users where org_id = $1",
        )
        .bind(org.id.as_uuid())
        .bind(org.user_id.as_uuid())
        .fetch_one(tx.conn())
        .await?;
        let renewing_subscription: bool = sqlx::query_scalar(
            "select exists (select from subscriptions where org_id = $1 and source = 'dodo'
                            and plan <> 'free' and not cancel_at_period_end)",
        )
        .bind(org.id.as_uuid())
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        standings.push(Standing {
            org,
            others,
            other_owners,
            renewing_subscription,
        });
    }
    refuse_if_blocked(&standings)?;

    for standing in &standings {
        let member = identity::CurrentMember {
            account: account.clone(),
            org: standing.org.clone(),
        };
        if standing.others == 0 {
            let mut tx = db.tenant(member.scope()).await?;
            sqlx::query("delete from orgs where id = $1")
                .bind(member.org.id.as_uuid())
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
        } else {
            members::leave(db, &member).await?;
        }
    }
    let mut tx = db.shared().await?;
    // Sessions and links go with the account (cascade).
    sqlx::query("delete from accounts where id = $1")
        .bind(account.id.as_uuid())
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    db.identity().forget_sessions();
    db.identity().forget_memberships();
    tracing::info!("account deleted");
    Ok(())
}

/// The orgs that stop the deletion, in words.
fn refuse_if_blocked(standings: &[Standing]) -> Result<(), AppError> {
    let mut reasons = Vec::new();
    for s in standings {
        if s.org.role == OrgRole::Owner && s.others > 0 && s.other_owners == 0 {
            reasons.push(format!(
                "You are the last owner of {} ({} other member{}). On its settings page (/o/{}/settings), make someone else an owner or delete the organization, then try again.",
                s.org.name,
                s.others,
                if s.others == 1 { "" } else { "s" },
                s.org.slug
            ));
        } else if s.others == 0 && s.renewing_subscription {
            reasons.push(format!(
                "{} has a paid subscription that renews. Cancel it on its billing page (/o/{}/billing) first, so you are not charged after your account is gone.",
                s.org.name, s.org.slug
            ));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(AppError::Conflict(format!(
            "Your account was not deleted. {}",
            reasons.join(" ")
        )))
    }
}

/// Removes links that expired (used or not). For the periodic sweeper;
/// returns how many rows went.
#[tracing::instrument(skip_all)]
pub async fn purge_expired(db: &Db) -> Result<u64, AppError> {
    let mut tx = db.shared().await?;
    let done = sqlx::query("delete from account_tokens where expires_at <= now()")
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}
