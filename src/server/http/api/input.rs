//! Request bodies and query strings for `/api/v1`: axum's extractors with
//! their rejections turned into the error envelope, so a bad body is a
//! 400/413/415/422 that names the problem, never plain text.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{StatusCode, header},
};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The most a JSON body of `/api/v1` may hold (every body is a few fields).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A JSON body, and its bytes as sent (for the idempotency fingerprint).
/// A body that is not JSON is a 400, JSON of the wrong shape a 422 that
/// names the field, a body not sent as JSON a 415, one too big a 413.
pub struct ApiBody<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T, S> FromRequest<S> for ApiBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_media_type);
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        let raw = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge {
                        limit_bytes: MAX_JSON_BYTES,
                    }
                } else {
                    AppError::BadRequest(format!(
                        "The body could not be read: {}.",
                        rejection.body_text()
                    ))
                }
            })?;
        let value = match axum::Json::<T>::from_bytes(&raw) {
            Ok(axum::Json(value)) => value,
            // serde calls some type mismatches syntax errors ("expected
            // value"); for JSON that parses, it is the shape that is wrong.
            Err(JsonRejection::JsonSyntaxError(error))
                if serde_json::from_slice::<serde::de::IgnoredAny>(&raw).is_ok() =>
            {
                return Err(AppError::field(
                    "body",
                    format!(
                        "The JSON does not have the fields this route takes: {}.",
                        inner_reason(&error.body_text())
                    ),
                ));
            }
            Err(rejection) => return Err(rejection.into()),
        };
        Ok(ApiBody { value, raw })
    }
}

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

/// `application/json` or `application/…+json`, parameters aside (axum's
/// rule for `Json`).
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
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
