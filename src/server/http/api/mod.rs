//! `/api/v1`: JSON for programs (an API key) and for people's own scripts
//! (the session cookie). Every handler is an adapter: an extractor finds
//! the caller and the org, the same service function the pages use applies
//! the rules, and the handler picks the status. The OpenAPI document is
//! built from the same handlers and types (utoipa), so a route cannot exist
//! without being documented.

mod billing;
mod caller;
mod docs;
mod export;
mod idempotent;
mod input;
mod invitations;
mod me;
mod orgs;
mod summaries;
mod usage;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use docs::api_reference;
pub use input::MAX_JSON_BYTES;

use super::AppState;
use crate::error::AppError;

/// What every handler returns: its answer, or an error in the envelope.
pub type ApiResult<T> = Result<T, AppError>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tldw API",
        version = "1",
        description = "Summaries of YouTube videos for your organization. Authenticate with an API key (`Authorization: Bearer tldw_…`, created by an owner or admin on the organization's settings page). Every error is `{\"error\": {\"code\", \"message\", …}}`."
    ),
    modifiers(&Credentials),
    security(("api_key" = []), ("session" = [])),
    components(schemas(crate::server::http::error_response::ErrorEnvelope)),
    tags(
        (name = "account", description = "Who is calling"),
        (name = "orgs", description = "The organization"),
        (name = "members", description = "Who belongs to it"),
        (name = "invitations", description = "Bringing people in"),
        (name = "summaries", description = "Asking for summaries and reading the history"),
        (name = "usage", description = "The month's quota and the daily series"),
        (name = "billing", description = "Plans, checkout and the customer portal"),
    )
)]
struct ApiDoc;

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tldw_…")
                    .description(Some(
                        "An org's API key: it acts as a member of that org with the role it was given.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "tldw_session",
                "A signed-in browser's session (the pages' own calls).",
            ))),
        );
    }
}

/// The answers any route may give, added to each operation that does not
/// describe them itself, so the document lists every status a client can
/// meet (the contract test holds us to it).
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let envelope = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let takes_body = operation.request_body.is_some();
                let mut common = vec![
                    (
                        "401",
                        "No credential, or one that is expired or revoked (`unauthorized`)",
                    ),
                    (
                        "503",
                        "The database is not answering; nothing was done. Retry after `Retry-After` seconds (`unavailable`)",
                    ),
                ];
                if path.contains("{slug}") {
                    common.push((
                        "404",
                        "No such organization, or the caller is not a member of it (`not_found`)",
                    ));
                }
                if takes_body {
                    common.push(("400", "The body is not JSON (`bad_request`)"));
                    common.push(("413", "The body is too large (`too_large`)"));
                    common.push((
                        "415",
                        "The body is not sent as `application/json` (`unsupported_media_type`)",
                    ));
                    common.push((
                        "422",
                        "A field is missing, unknown or of the wrong type (`invalid`)",
                    ));
                } else if operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                {
                    common.push(("422", "A query parameter is wrong (`invalid`)"));
                }
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| envelope(description).into());
                }
            }
        }
    }
}

/// The routes and the document that describes them, built together.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::me))
        .routes(routes!(orgs::get_org, orgs::patch_org))
        .routes(routes!(orgs::list_members))
        .routes(routes!(export::export_org))
        .routes(routes!(orgs::patch_member, orgs::delete_member))
        .routes(routes!(
            invitations::list_invitations,
            invitations::create_invitation
        ))
        .routes(routes!(invitations::delete_invitation))
        .routes(routes!(
            summaries::request_summary,
            summaries::list_summaries
        ))
        .routes(routes!(summaries::get_summary))
        .routes(routes!(usage::current))
        .routes(routes!(usage::daily))
        .routes(routes!(usage::members))
        .routes(routes!(billing::get_billing))
        .routes(routes!(billing::checkout))
        .routes(routes!(billing::portal))
        .split_for_parts();
    // After the routes joined: a derive-time modifier sees no paths yet.
    CommonErrors.modify(&mut document);
    (router, document)
}

/// The OpenAPI 3.1 document of `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// `/api/v1/…` and `/api/v1/openapi.json`, with their CORS policy.
pub fn router(state: &AppState) -> Router<AppState> {
    let (routes, document) = parts();
    let document = std::sync::Arc::new(document);
    let routes = routes
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document) }
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES));
    match cors(&state.web.cors_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}

/// Browsers on the listed origins may call with a Bearer key. Credentials
/// (cookies) are never allowed cross-origin, so a page elsewhere cannot act
/// with a visitor's session.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([header::LOCATION, header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Any `/api/v1/` answer that is an error but not JSON (an unknown path,
/// a method a route lacks, a body over the server-wide limit) becomes the
/// envelope, so programs parse one shape.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/v1/");
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => AppError::NotFound("route (see /api/v1/openapi.json)".into()),
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed {
            method: method.to_string(),
        },
        StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge {
            limit_bytes: MAX_JSON_BYTES,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType,
        status if status.is_server_error() => AppError::Internal,
        status => AppError::BadRequest(format!(
            "The request was refused ({}).",
            status.canonical_reason().unwrap_or("bad request")
        )),
    };
    let mut replaced = error.into_response();
    *replaced.status_mut() = status;
    if let Some(allow) = response.headers().get(header::ALLOW) {
        replaced.headers_mut().insert(header::ALLOW, allow.clone());
    }
    replaced
}
