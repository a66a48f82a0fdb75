//! `/api/v1/orgs/{slug}`: the org itself and its members.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{ApiResult, caller::OrgMember, input::ApiBody};
use crate::{
    domain::{MemberView, OrgName, OrgRole, OrgSummary, SummaryLanguage, UserId},
    error::AppError,
    server::{
        auth::identity::CurrentMember,
        http::{AppState, error_response::ErrorEnvelope},
        services::{members, orgs},
    },
};

/// An org as the caller sees it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgJson {
    pub slug: String,
    pub name: String,
    /// The caller's role here.
    pub role: OrgRole,
    /// The account's own workspace (cannot be left or shared).
    pub personal: bool,
}

impl From<OrgSummary> for OrgJson {
    fn from(org: OrgSummary) -> OrgJson {
        OrgJson {
            slug: org.slug,
            name: org.name,
            role: org.role,
            personal: org.personal,
        }
    }
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgDetails {
    #[serde(flatten)]
    pub org: OrgJson,
    /// The language summaries are written in (a code such as `de`), or
    /// `null` for each video's own language.
    pub summary_language: Option<String>,
}

/// What may change about an org; absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgChanges {
    /// A new display name (the slug stays).
    pub name: Option<String>,
    /// A language code from the settings page's list, or `""` for each
    /// video's own language.
    pub summary_language: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: OrgRole,
}

/// The org.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}",
    tag = "orgs",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, description = "The org", body = OrgDetails)),
)]
pub async fn get_org(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
) -> ApiResult<Json<OrgDetails>> {
    details(&state, &member).await.map(Json)
}

/// Renames the org and/or sets its summary language (owners and admins).
#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{slug}",
    tag = "orgs",
    params(("slug" = String, Path, description = "The organization's slug")),
    request_body = OrgChanges,
    responses(
        (status = 200, description = "The org as changed", body = OrgDetails),
        (status = 403, description = "Members may not change the org", body = ErrorEnvelope),
        (status = 422, description = "A bad name or language", body = ErrorEnvelope),
    ),
)]
pub async fn patch_org(
    State(state): State<AppState>,
    OrgMember(mut member): OrgMember,
    ApiBody { value: changes, .. }: ApiBody<OrgChanges>,
) -> ApiResult<Json<OrgDetails>> {
    let name = changes
        .name
        .as_deref()
        .map(OrgName::parse)
        .transpose()
        .map_err(|e| AppError::field("name", e.to_string()))?;
    let language = changes
        .summary_language
        .as_deref()
        .map(SummaryLanguage::parse_setting)
        .transpose()
        .map_err(|e| AppError::field("summary_language", e.to_string()))?;
    if let Some(name) = name {
        orgs::rename(&state.db, &member, name.clone()).await?;
        member.org.name = name.to_string();
    }
    if let Some(language) = language {
        orgs::set_summary_language(&state.db, &member, language).await?;
    }
    details(&state, &member).await.map(Json)
}

async fn details(state: &AppState, member: &CurrentMember) -> Result<OrgDetails, AppError> {
    let language = orgs::summary_language(&state.db, member).await?;
    Ok(OrgDetails {
        org: OrgJson::from(member.org.clone()),
        summary_language: language.map(|l| l.code().to_owned()),
    })
}

/// The org's members.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/members",
    tag = "members",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, description = "Members, owners first", body = [MemberView])),
)]
pub async fn list_members(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
) -> ApiResult<Json<Vec<MemberView>>> {
    Ok(Json(members::list(&state.db, &member).await?))
}

/// Changes a member's role (owners and admins; only owners touch owners).
#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{slug}/members/{user_id}",
    tag = "members",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("user_id" = String, Path, description = "The member's `user_id`"),
    ),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The member as changed", body = MemberView),
        (status = 403, description = "Not allowed to change this role", body = ErrorEnvelope),
        (status = 404, description = "No such member", body = ErrorEnvelope),
        (status = 409, description = "It would leave the org without an owner", body = ErrorEnvelope),
    ),
)]
pub async fn patch_member(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    Path((_, user_id)): Path<(String, String)>,
    ApiBody { value: change, .. }: ApiBody<RoleChange>,
) -> ApiResult<Json<MemberView>> {
    let target = member_id(&user_id)?;
    members::change_role(&state.db, &member, target, change.role).await?;
    members::list(&state.db, &member)
        .await?
        .into_iter()
        .find(|m| m.user_id == target)
        .map(Json)
        .ok_or_else(|| AppError::NotFound("member".into()))
}

/// Removes a member (owners and admins); their summaries stay the org's.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{slug}/members/{user_id}",
    tag = "members",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("user_id" = String, Path, description = "The member's `user_id`"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed", body = ErrorEnvelope),
        (status = 404, description = "No such member", body = ErrorEnvelope),
        (status = 409, description = "The last owner cannot go", body = ErrorEnvelope),
    ),
)]
pub async fn delete_member(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    Path((_, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    members::remove(&state.db, &member, member_id(&user_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn member_id(raw: &str) -> Result<UserId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound("member".into()))
}
