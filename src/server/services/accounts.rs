//! Built-in accounts: sign-up creates the account and its personal org in
//! one transaction; sign-in checks the password without revealing whether
//! the email exists. Both are rate limited per client address (sign-in also
//! per email), counted before the input is even read, so that malformed
//! attempts count too.

use std::net::IpAddr;

use super::{db_error, orgs, unique_violation};
use crate::{
    domain::{AccountId, Email, NewPassword, OrgId, OrgName, OrgRole, Viewer},
    error::AppError,
    server::{
        auth::{
            identity::{self, Authenticator, CurrentAccount, SessionHandle},
            password, rate_limit,
        },
        db::{Db, TenantScope},
    },
};

/// Creates a built-in account and its personal org from what the sign-up
/// form sent; returns both.
#[tracing::instrument(skip(db, auth, password))]
pub async fn sign_up(
    db: &Db,
    auth: &Authenticator,
    client_ip: IpAddr,
    sign_ups_per_hour: u32,
    email: &str,
    password: &str,
) -> Result<(AccountId, OrgId), AppError> {
    if !auth.is_builtin() {
        return Err(AppError::Conflict(
            "Accounts are managed by Clerk on this site.".into(),
        ));
    }
    rate_limit::hit(
        db,
        &format!("signup:ip:{}", rate_limit::address_key(client_ip)),
        rate_limit::Limit {
            max_hits: i32::try_from(sign_ups_per_hour).unwrap_or(i32::MAX),
            ..rate_limit::SIGN_UP_PER_ADDRESS
        },
    )
    .await?;
    let email = Email::parse(email).map_err(|e| AppError::field("email", e.to_string()))?;
    let password = NewPassword::parse(password, email.as_str())
        .map_err(|e| AppError::field("password", e.to_string()))?;
    create_account(db, &email, password).await
}

/// The built-in account for these credentials.
#[tracing::instrument(skip(db, auth, password))]
pub async fn sign_in(
    db: &Db,
    auth: &Authenticator,
    client_ip: IpAddr,
    email: &str,
    password: String,
) -> Result<AccountId, AppError> {
    if !auth.is_builtin() {
        return Err(AppError::Conflict(
            "Sign-in is handled by Clerk on this site.".into(),
        ));
    }
    let address = rate_limit::address_key(client_ip);
    rate_limit::hit(
        db,
        &format!("signin:ip:{address}"),
        rate_limit::SIGN_IN_PER_ADDRESS,
    )
    .await?;
    // Keyed by what was typed (normalized), so guessing at one account is
    // slowed whether or not the address exists. Nothing longer than an
    // email can be becomes a key: it cannot be an account anyway.
    let normalized = email.trim().to_lowercase();
    if normalized.len() > Email::MAX_LEN {
        return Err(AppError::BadCredentials);
    }
    let account_key = format!("signin:fail:email:{normalized}");
    let address_key = format!("signin:fail:ip:{address}");
    // Past its failure limit an account still lets in a password from an
    // address with no failures of its own: strangers guessing cannot lock
    // the owner out, and each guessing address gets one try, not more.
    let locked =
        rate_limit::exhausted(db, &account_key, rate_limit::SIGN_IN_FAILURES_PER_ACCOUNT).await?;
    if let Some(retry_after_seconds) = locked
        && rate_limit::exhausted(db, &address_key, rate_limit::SIGN_IN_FAILURES_PER_ADDRESS)
            .await?
            .is_some()
    {
        crate::server::metrics::rate_limited(crate::server::metrics::Limited::Auth);
        return Err(AppError::RateLimited {
            retry_after_seconds,
        });
    }
    match check_credentials(db, email, password).await {
        Err(AppError::BadCredentials) => {
            rate_limit::record(db, &account_key, rate_limit::SIGN_IN_FAILURES_PER_ACCOUNT).await?;
            rate_limit::record(db, &address_key, rate_limit::SIGN_IN_FAILURES_PER_ADDRESS).await?;
            Err(match locked {
                Some(retry_after_seconds) => AppError::RateLimited {
                    retry_after_seconds,
                },
                None => AppError::BadCredentials,
            })
        }
        other => other,
    }
}

/// The signed-in person as the header and the account page show them.
pub async fn viewer(db: &Db, account: &CurrentAccount) -> Result<Viewer, AppError> {
    // A key session (never on pages today) sees its one org, not its
    // creator's others; a Clerk token the Clerk org it names.
    let orgs = identity::orgs_for(db, account).await?;
    let active_slug = identity::active_org(account, &orgs).map(|o| o.slug);
    Ok(Viewer {
        email: account.email.as_ref().map(|e| e.to_string()),
        orgs,
        active_slug,
        builtin: matches!(account.session, SessionHandle::Builtin { .. }),
    })
}

/// Returns the new account and its personal org.
#[tracing::instrument(skip(db, password), fields(email = %email))]
async fn create_account(
    db: &Db,
    email: &Email,
    password: NewPassword,
) -> Result<(AccountId, OrgId), AppError> {
    let hash = password::hash(password).await.map_err(AppError::internal)?;
    let account = AccountId::random();
    let org = OrgId::random();
    let local = email.as_str().split('@').next().unwrap_or("my");
    let name = OrgName::parse(&format!("{local}'s workspace"))
        .unwrap_or_else(|_| OrgName::parse("My workspace").expect("a valid name"));

    // Account, personal org and membership land together or not at all.
    let mut tx = db.tenant(TenantScope::org(org)).await.map_err(db_error)?;
    let inserted =
        sqlx::query("insert into accounts (id, email, password_hash) values ($1, $2, $3)")
            .bind(account.as_uuid())
            .bind(email.as_str())
            .bind(&hash)
            .execute(tx.conn())
            .await;
    if let Err(error) = inserted {
        return Err(match unique_violation(&error).as_deref() {
            Some("accounts_email_key") => AppError::field(
                "email",
                "An account with this email already exists. Sign in instead.",
            ),
            _ => db_error(error),
        });
    }
    orgs::insert_org(tx.conn(), org, &name, true, None).await?;
    orgs::insert_member(tx.conn(), org, account, OrgRole::Owner)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok((account, org))
}

/// The account for these credentials. A wrong email and a wrong password
/// get the same error after the same amount of work.
#[tracing::instrument(skip(db, password))]
async fn check_credentials(db: &Db, email: &str, password: String) -> Result<AccountId, AppError> {
    let email = Email::parse(email).ok();
    let found: Option<(uuid::Uuid, Option<String>)> = match &email {
        Some(email) => {
            let mut tx = db.shared().await.map_err(db_error)?;
            let row = sqlx::query_as("select id, password_hash from accounts where email = $1")
                .bind(email.as_str())
                .fetch_optional(tx.conn())
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            row
        }
        None => None,
    };
    let (id, hash) = match found {
        Some((id, hash)) => (Some(id), hash),
        None => (None, None),
    };
    if password::verify(password, hash).await
        && let Some(id) = id
    {
        return Ok(AccountId::from_uuid(id));
    }
    Err(AppError::BadCredentials)
}
