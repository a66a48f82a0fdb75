//! `/api/v1/orgs/{slug}/billing`: the plan, its subscription and payments;
//! checkout and the customer portal for owners and admins.

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{ApiResult, caller::OrgMember, idempotent, input::ApiBody};
use crate::{
    domain::{PaymentView, PlanId, SubscriptionView},
    error::AppError,
    server::http::{AppState, error_response::ErrorEnvelope},
};

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingJson {
    /// The plan in force now (what the quota applies).
    pub plan: PlanId,
    pub used: i32,
    pub limit: i32,
    /// When the quota resets, as words ("January 1").
    pub resets_on: String,
    /// `null` for an org that never had a plan other than Free.
    pub subscription: Option<SubscriptionView>,
    pub payments: Vec<PaymentView>,
    /// Checkout and the portal work on this server (Dodo is configured).
    pub billing_enabled: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// A paid plan: `pro` or `team`.
    pub plan: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutStarted {
    /// Send the buyer here; the plan changes when Dodo confirms by webhook.
    pub checkout_url: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortalLink {
    pub portal_url: String,
}

/// The org's plan, subscription and payments.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/billing",
    tag = "billing",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, description = "Billing", body = BillingJson)),
)]
pub async fn get_billing(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
) -> ApiResult<Json<BillingJson>> {
    let overview = state.billing.overview(&member).await?;
    Ok(Json(BillingJson {
        plan: overview.current,
        used: overview.quota.used,
        limit: overview.quota.limit,
        resets_on: overview.quota.resets_on,
        subscription: overview.subscription,
        payments: overview.payments,
        billing_enabled: overview.billing_enabled,
    }))
}

/// Starts a Dodo checkout for a paid plan (owners and admins).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{slug}/billing/checkout",
    tag = "billing",
    params(
        ("slug" = String, Path, description = "The organization's slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body return the first checkout"),
    ),
    request_body = CheckoutRequest,
    responses(
        (status = 200, description = "Where to pay", body = CheckoutStarted),
        (status = 409, description = "A request with this Idempotency-Key is still running (`in_progress`)", body = ErrorEnvelope),
        (status = 403, description = "Members may not buy", body = ErrorEnvelope),
        (status = 422, description = "Not a paid plan", body = ErrorEnvelope),
        (status = 503, description = "Billing is off here, or Dodo is not answering", body = ErrorEnvelope),
    ),
)]
pub async fn checkout(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    headers: HeaderMap,
    body: ApiBody<CheckoutRequest>,
) -> ApiResult<Response> {
    let route = "/api/v1/orgs/{slug}/billing/checkout";
    idempotent::once(&state.db, &member, &headers, route, &body.raw, || async {
        let plan = PlanId::parse(&body.value.plan)
            .ok_or_else(|| AppError::field("plan", "Choose a plan: pro or team."))?;
        let origin = state.web.site_origin(&headers);
        let checkout_url = state.billing.start_checkout(&member, plan, &origin).await?;
        Ok(Json(CheckoutStarted { checkout_url }).into_response())
    })
    .await
}

/// A link to Dodo's customer portal for the org (owners and admins).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{slug}/billing/portal",
    tag = "billing",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, description = "The portal", body = PortalLink),
        (status = 403, description = "Members may not manage billing", body = ErrorEnvelope),
        (status = 404, description = "No billing account yet", body = ErrorEnvelope),
        (status = 503, description = "Billing is off here, or Dodo is not answering", body = ErrorEnvelope),
    ),
)]
pub async fn portal(
    State(state): State<AppState>,
    OrgMember(member): OrgMember,
    headers: HeaderMap,
) -> ApiResult<Json<PortalLink>> {
    let origin = state.web.site_origin(&headers);
    let portal_url = state.billing.portal(&member, &origin).await?;
    Ok(Json(PortalLink { portal_url }))
}
