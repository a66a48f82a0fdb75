//! `/api/v1/orgs/{slug}/usage`: the period's quota, and a daily series of
//! summaries (fresh vs from the shared cache) with AI spend and savings,
//! and who used how many this period.

use axum::{Json, extract::State};
use serde::Deserialize;

use super::{ApiResult, caller::OrgMember, input::ApiQuery};
use crate::{
    domain::usage::{DailyUsage, MemberUsage, UsageNow},
    server::{
        http::{AppState, error_response::ErrorEnvelope},
        services::usage,
    },
};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// How many days, ending today (UTC): 1 to 90, 30 when absent.
    pub days: Option<String>,
}

/// Summaries used and left this period, and the plan.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/usage",
    tag = "usage",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, description = "This period's usage", body = UsageNow)),
)]
pub async fn current(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
) -> ApiResult<Json<UsageNow>> {
    Ok(Json(
        usage::current(&state.db, state.billing.plans(), &member).await?,
    ))
}

/// One entry per day, oldest first, zero-filled.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/usage/daily",
    tag = "usage",
    params(("slug" = String, Path, description = "The organization's slug"), DailyQuery),
    responses(
        (status = 200, description = "The daily series", body = DailyUsage),
        (status = 422, description = "`days` is not 1 to 90", body = ErrorEnvelope),
    ),
)]
pub async fn daily(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    ApiQuery(query): ApiQuery<DailyQuery>,
) -> ApiResult<Json<DailyUsage>> {
    Ok(Json(
        usage::daily(&state.db, &member, query.days.as_deref()).await?,
    ))
}

/// Summaries per member this period, fresh vs from the shared cache.
/// Owners and admins get every member; members get only their own line.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/usage/members",
    tag = "usage",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, description = "This period's usage per member", body = MemberUsage)),
)]
pub async fn members(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
) -> ApiResult<Json<MemberUsage>> {
    Ok(Json(
        usage::members(&state.db, state.billing.plans(), &member).await?,
    ))
}
