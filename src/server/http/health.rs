//! Probes for load balancers and orchestrators.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::AppState;
use crate::error::AppError;

/// The process is alive and serving HTTP; says nothing about the database.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready for traffic: the database answers and its schema is current.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    state
        .db
        .readiness()
        .await
        .map_err(|reason| AppError::Unavailable(format!("Not ready: {reason}.")))?;
    Ok(Json(json!({ "status": "ready" })))
}
