//! How [`AppError`] leaves a plain route: its status, `Retry-After` when a
//! retry will help, and one JSON envelope
//! `{"error": {"code", "message", "fields"?, …}}` that the OpenAPI document
//! describes as [`ErrorEnvelope`].

use std::collections::BTreeMap;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Every error answer of `/api/v1` (and of the other plain routes).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable and machine-readable: `invalid`, `bad_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `quota_exceeded`, `rate_limited`,
    /// `too_large`, `unsupported_media_type`, `method_not_allowed`,
    /// `unavailable`, `internal`, …
    pub code: String,
    /// Words a person can act on.
    pub message: String,
    /// For `invalid`: what is wrong with each named field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// For `quota_exceeded`: summaries used this period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i32>,
    /// For `quota_exceeded`: the plan's summaries per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i32>,
    /// For `quota_exceeded`: when the period ends (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    /// For 429 and 503: the same number as the `Retry-After` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl From<&AppError> for ErrorEnvelope {
    fn from(error: &AppError) -> ErrorEnvelope {
        let mut body = ErrorBody {
            code: error.code().to_owned(),
            message: error.to_string(),
            fields: None,
            used: None,
            limit: None,
            resets_at: None,
            retry_after_seconds: error.retry_after(),
        };
        match error {
            AppError::Validation(fields) => {
                body.fields = Some(
                    fields
                        .iter()
                        .map(|f| (f.field.clone(), f.message.clone()))
                        .collect(),
                );
            }
            AppError::QuotaExceeded {
                used,
                limit,
                resets_at,
                ..
            } => {
                body.used = Some(*used);
                body.limit = Some(*limit);
                body.resets_at = Some(resets_at.clone());
            }
            _ => {}
        }
        ErrorEnvelope { error: body }
    }
}

impl AppError {
    pub fn http_status(&self) -> StatusCode {
        StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.http_status(), Json(ErrorEnvelope::from(&self))).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
