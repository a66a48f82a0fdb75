//! `/api/v1/orgs/{slug}/export`: the org's history and summaries to take
//! away, for owners (also the download on the org's settings page, which
//! calls it with the session cookie).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{ApiResult, caller::OrgMember, input::ApiQuery};
use crate::{
    error::AppError,
    server::{
        http::{AppState, error_response::ErrorEnvelope},
        services::org_export::{self, OrgExport},
    },
};

/// `?format=json|markdown` (JSON when absent).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (the default) or `markdown`.
    pub format: Option<String>,
}

/// Everything the org has: its history, newest first, with each summary.
/// Owners only. Sent as a download (`Content-Disposition: attachment`).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/export",
    tag = "orgs",
    params(("slug" = String, Path, description = "The organization's slug"), ExportQuery),
    responses(
        (status = 200, description = "The export", content(
            (OrgExport = "application/json"),
            (String = "text/markdown"),
        )),
        (status = 403, description = "Only owners export the org's data", body = ErrorEnvelope),
        (status = 422, description = "`format` is neither `json` nor `markdown`", body = ErrorEnvelope),
    ),
)]
pub async fn export_org(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let markdown = match query.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("markdown") | Some("md") => true,
        Some(_) => {
            return Err(AppError::field(
                "format",
                "The format must be json or markdown.",
            ));
        }
    };
    let export = org_export::export(&state.db, &member).await?;
    let slug = export.org.slug.clone();
    let mut response = if markdown {
        (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            org_export::markdown(&export),
        )
            .into_response()
    } else {
        Json(export).into_response()
    };
    let extension = if markdown { "md" } else { "json" };
    // The slug is `[a-z0-9-]` (a database check), so it is safe in a header.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"tldw-{slug}.{extension}\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
