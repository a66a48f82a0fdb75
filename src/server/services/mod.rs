//! Business rules as plain async functions. Authorization is checked here,
//! not only hidden in the UI: every function that acts in an org takes the
//! `CurrentMember` and checks its permission first.

pub mod account_lifecycle;
pub mod accounts;
pub mod api_keys;
pub mod billing;
pub mod idempotency;
pub mod invitations;
pub mod members;
pub mod org_export;
pub mod orgs;
pub mod quota;
pub mod retention;
pub mod summaries;
pub mod usage;
pub mod video_cache;
pub mod waiter;

use crate::error::AppError;

/// The name of the unique constraint a statement broke, if that is what failed.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<String> {
    let db = error.as_database_error()?;
    (db.code().as_deref() == Some("23505")).then(|| db.constraint().unwrap_or_default().to_owned())
}

pub(crate) fn db_error(error: sqlx::Error) -> AppError {
    AppError::from(error)
}
