//! The application's one error type. It travels to the browser (server
//! functions) and maps to an HTTP status (plain routes), so it carries only
//! public words: causes are logged on the server, never sent.

use serde::{Deserialize, Serialize};

/// A problem with one form field, shown next to that field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    /// The body is bigger than the route accepts (413).
    #[error("The request body is too large: send at most {limit_bytes} bytes.")]
    TooLarge { limit_bytes: usize },
    /// The body is not JSON, or says it isn't (415).
    #[error("Send the body as JSON with `Content-Type: application/json`.")]
    UnsupportedMediaType,
    /// No route here answers this method (405).
    #[error("This route does not accept {method} requests.")]
    MethodNotAllowed { method: String },
    #[error("Please sign in to continue.")]
    Unauthorized,
    /// An `Authorization: Bearer tldw_…` key we don't know (or no longer).
    #[error(
        "This API key is not valid: it was revoked, mistyped, or its creator left the organization. An owner or admin can create a new one on the organization's settings page."
    )]
    InvalidApiKey,
    #[error("That email and password don't match an account.")]
    BadCredentials,
    #[error("You don't have permission to do that.")]
    Forbidden,
    #[error("{0}")]
    Refused(String),
    #[error("We couldn't find that {0}.")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A request with the same `Idempotency-Key` is still being answered.
    #[error(
        "A request with this Idempotency-Key is still being processed. Retry in {retry_after_seconds} seconds to get its answer."
    )]
    InProgress { retry_after_seconds: u64 },
    #[error("Please correct the highlighted fields.")]
    Validation(Vec<FieldError>),
    #[error("Too many attempts. Try again in {retry_after_seconds} seconds.")]
    RateLimited { retry_after_seconds: u64 },
    /// One member has as many live pages (event streams) open as allowed.
    #[error(
        "You already have {limit} live pages of this organization open. Close one, then reload this page."
    )]
    TooManyStreams { limit: usize },
    /// One member asked for summaries faster than the per-minute throttle
    /// allows (the monthly quota is a different thing).
    #[error(
        "You're asking for summaries faster than {per_minute} a minute. Nothing was charged; try again in {retry_after_seconds} seconds."
    )]
    Throttled {
        per_minute: i32,
        retry_after_seconds: u64,
    },
    /// The org's monthly summaries are used up.
    #[error(
        "Your organization has used all {limit} summaries for this period. The quota resets on {resets_on}; upgrade your plan for more."
    )]
    QuotaExceeded {
        used: i32,
        limit: i32,
        /// RFC 3339.
        resets_at: String,
        /// Human form of `resets_at`, e.g. "December 1".
        resets_on: String,
        retry_after_seconds: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// The database is down, restarting or saturated: nothing was done.
    #[error(
        "tldw's database is not answering right now. Nothing was done; please try again in a few seconds."
    )]
    DatabaseUnavailable { retry_after_seconds: u64 },
    #[error("Something went wrong on our side. Please try again in a moment.")]
    Internal,
}

impl AppError {
    /// A 422 for one form field.
    pub fn field(field: &str, message: impl Into<String>) -> AppError {
        AppError::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// Seconds a client should wait before trying again, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited {
                retry_after_seconds,
            }
            | AppError::Throttled {
                retry_after_seconds,
                ..
            }
            | AppError::QuotaExceeded {
                retry_after_seconds,
                ..
            }
            | AppError::DatabaseUnavailable {
                retry_after_seconds,
            }
            | AppError::InProgress {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// The message for `field`, when this is a validation error about it.
    pub fn field_message(&self, field: &str) -> Option<String> {
        match self {
            AppError::Validation(fields) => fields
                .iter()
                .find(|f| f.field == field)
                .map(|f| f.message.clone()),
            _ => None,
        }
    }

    pub fn status_code(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::TooLarge { .. } => 413,
            AppError::UnsupportedMediaType => 415,
            AppError::MethodNotAllowed { .. } => 405,
            AppError::Unauthorized | AppError::InvalidApiKey | AppError::BadCredentials => 401,
            AppError::Forbidden | AppError::Refused(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) | AppError::InProgress { .. } => 409,
            AppError::Validation(_) => 422,
            AppError::RateLimited { .. }
            | AppError::Throttled { .. }
            | AppError::TooManyStreams { .. }
            | AppError::QuotaExceeded { .. } => 429,
            AppError::Unavailable(_) | AppError::DatabaseUnavailable { .. } => 503,
            AppError::Internal => 500,
        }
    }

    /// A short, stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::TooLarge { .. } => "too_large",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Unauthorized | AppError::InvalidApiKey => "unauthorized",
            AppError::BadCredentials => "bad_credentials",
            AppError::Forbidden | AppError::Refused(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::InProgress { .. } => "in_progress",
            AppError::Validation(_) => "invalid",
            AppError::RateLimited { .. }
            | AppError::Throttled { .. }
            | AppError::TooManyStreams { .. } => "rate_limited",
            AppError::QuotaExceeded { .. } => "quota_exceeded",
            AppError::Unavailable(_) | AppError::DatabaseUnavailable { .. } => "unavailable",
            AppError::Internal => "internal",
        }
    }

    /// Logs an unexpected failure with its whole cause chain and returns the
    /// opaque error the client is allowed to see.
    #[cfg(feature = "ssr")]
    pub fn internal(error: impl Into<anyhow::Error>) -> AppError {
        let error = error.into();
        tracing::error!(error = format!("{error:#}"), "internal error");
        AppError::Internal
    }
}

/// `?` on a query: an unreachable database becomes a 503 with
/// `Retry-After` (logged as a warning), anything else an opaque 500 with its
/// cause logged.
#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> AppError {
        if crate::server::db::is_unavailable(&error) {
            tracing::warn!(error = %error, "the database is unavailable");
            AppError::DatabaseUnavailable {
                retry_after_seconds: 2,
            }
        } else {
            AppError::internal(error)
        }
    }
}

/// Lets server functions return `AppError` itself, so the browser gets the
/// same variants (and words) the server chose.
impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(_) | E::Response(_) => AppError::Unavailable(
                "We couldn't reach tldw. Check your connection and try again.".into(),
            ),
            E::Args(_) | E::Deserialization(_) | E::MissingArg(_) => AppError::BadRequest(
                "The form was incomplete. Please reload the page and try again.".into(),
            ),
            _ => AppError::Internal,
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_say_nothing_about_their_cause() {
        let error = AppError::internal(anyhow::anyhow!("relation \"users\" does not exist"));
        assert_eq!(error, AppError::Internal);
        assert!(!error.to_string().contains("relation"));
        assert_eq!(error.status_code(), 500);
    }
}
