//! The org's API keys, for the settings page. Keys themselves never
//! authenticate these calls: server functions read only the session cookie
//! (or a Clerk session), never `Bearer tldw_…`.

use leptos::prelude::*;

use crate::{
    domain::{ApiKeyId, ApiKeyView, CreatedApiKey, OrgRole},
    error::AppError,
};

#[server(endpoint = "api-keys/list")]
pub async fn list_api_keys(slug: String) -> Result<Vec<ApiKeyView>, AppError> {
    use crate::server::{http::ctx::serve, services::api_keys};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        api_keys::list(&ctx.state.db, &member).await
    })
    .await
}

/// Creates a key and answers with its secret, the only time it is shown.
/// The secret travels in the response body, never in a URL.
#[server(endpoint = "api-keys/create")]
pub async fn create_api_key(
    slug: String,
    name: String,
    role: OrgRole,
) -> Result<CreatedApiKey, AppError> {
    use crate::{
        domain::ApiKeyName,
        server::{http::ctx::serve, services::api_keys},
    };
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let name = ApiKeyName::parse(&name).map_err(|e| AppError::field("name", e.to_string()))?;
        api_keys::create(&ctx.state.db, &member, name, role).await
    })
    .await
}

#[server(endpoint = "api-keys/revoke")]
pub async fn revoke_api_key(slug: String, id: ApiKeyId) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::api_keys};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        api_keys::revoke(&ctx.state.db, &member, id).await
    })
    .await
}
