//! Request bodies and query strings for `/api/v1`: axum's extractors with
//! their rejections turned into the error envelope, so a bad body is a
//! 400/413/415/422 that names the problem, never plain text.

use axum::{
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, QueryRejection},
    },
    http::StatusCode,
};

use crate::error::AppError;

/// The most a JSON body of `/api/v1` may hold (every body is a few fields).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// `axum::Json` whose rejection is an [`AppError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejection is an [`AppError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> AppError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
            JsonRejection::JsonSyntaxError(error) => AppError::BadRequest(format!(
                "The body is not valid JSON ({}). Send a JSON object.",
                inner_reason(&error.body_text())
            )),
            JsonRejection::JsonDataError(error) => AppError::field(
                "body",
                format!(
                    "The JSON does not have the fields this route takes: {}.",
                    inner_reason(&error.body_text())
                ),
            ),
            JsonRejection::BytesRejection(error)
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                AppError::TooLarge {
                    limit_bytes: MAX_JSON_BYTES,
                }
            }
            other => AppError::BadRequest(format!(
                "The body could not be read: {}.",
                other.body_text()
            )),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> AppError {
        AppError::field(
            "query",
            format!(
                "The query string is not what this route takes: {}.",
                inner_reason(&rejection.body_text())
            ),
        )
    }
}

/// serde's own words (which name the field and the type it wanted) without
/// axum's "Failed to deserialize…" preamble.
fn inner_reason(text: &str) -> &str {
    text.rsplit_once(": ")
        .map(|(_, reason)| reason)
        .unwrap_or(text)
        .trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::inner_reason;

    #[test]
    fn serde_words_survive_without_the_preamble() {
        assert_eq!(
            inner_reason(
                "Failed to deserialize the JSON body into the target type: unknown field `x`, expected `url` at line 1 column 4"
            ),
            "unknown field `x`, expected `url` at line 1 column 4"
        );
        assert_eq!(inner_reason("plain"), "plain");
    }
}
