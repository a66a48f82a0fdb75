//! How [`AppError`] leaves a plain route: its status, and a JSON body with a
//! stable code and the public message.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::error::AppError;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        match &self {
            AppError::Validation(fields) => body["fields"] = json!(fields),
            AppError::QuotaExceeded {
                used,
                limit,
                resets_at,
                ..
            } => {
                body["used"] = json!(used);
                body["limit"] = json!(limit);
                body["resets_at"] = json!(resets_at);
            }
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
