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
        if let AppError::Validation(fields) = &self {
            body["fields"] = json!(fields);
        }
        let mut response = (status, Json(body)).into_response();
        if let AppError::RateLimited {
            retry_after_seconds,
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response
    }
}
