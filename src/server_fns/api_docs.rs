use leptos::prelude::*;

use crate::{domain::api_reference::ApiReference, error::AppError};

/// The REST API's reference, from its OpenAPI document.
#[server(endpoint = "docs/api-reference")]
pub async fn get_api_reference() -> Result<ApiReference, AppError> {
    Ok(crate::server::http::api::api_reference())
}
