use leptos::prelude::*;

use crate::{
    domain::{BillingOverview, CheckoutProgress, Plan},
    error::AppError,
};

/// The plans for the pricing table, and whether they can be bought here.
#[server(endpoint = "billing/plans")]
pub async fn get_plans() -> Result<(Vec<Plan>, bool), AppError> {
    use crate::server::http::ctx::serve;
    serve(async |ctx| {
        let billing = &ctx.state.billing;
        Ok((billing.plans().plans().to_vec(), billing.enabled()))
    })
    .await
}

#[server(endpoint = "billing/overview")]
pub async fn get_billing(slug: String) -> Result<BillingOverview, AppError> {
    use crate::server::http::ctx::serve;
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        ctx.state.billing.overview(&member).await
    })
    .await
}

/// Starts a Dodo checkout for `plan` and answers with its URL (and, for a
/// plain form post, a redirect there).
#[server(endpoint = "billing/checkout")]
pub async fn start_checkout(slug: String, plan: String) -> Result<String, AppError> {
    use crate::{domain::PlanId, server::http::ctx::serve};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let plan = PlanId::parse(&plan).ok_or_else(|| AppError::field("plan", "Choose a plan."))?;
        let url = ctx
            .state
            .billing
            .start_checkout(&member, plan, &ctx.site_origin())
            .await?;
        crate::server::http::ctx::redirect_external(&url)?;
        Ok(url)
    })
    .await
}

/// Moves a running subscription to another paid plan (Dodo confirms by
/// webhook).
#[server(endpoint = "billing/change-plan")]
pub async fn change_plan(slug: String, plan: String) -> Result<(), AppError> {
    use crate::{domain::PlanId, server::http::ctx::serve};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let plan = PlanId::parse(&plan).ok_or_else(|| AppError::field("plan", "Choose a plan."))?;
        ctx.state.billing.change_plan(&member, plan).await
    })
    .await
}

/// A link to Dodo's customer portal (and, for a plain form post, a redirect
/// there).
#[server(endpoint = "billing/portal")]
pub async fn open_portal(slug: String) -> Result<String, AppError> {
    use crate::server::http::ctx::serve;
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let url = ctx
            .state
            .billing
            .portal(&member, &ctx.site_origin())
            .await?;
        crate::server::http::ctx::redirect_external(&url)?;
        Ok(url)
    })
    .await
}

/// Whether the webhook for checkout `checkout` (our reference) has landed.
#[server(endpoint = "billing/checkout-progress")]
pub async fn get_checkout_progress(
    slug: String,
    checkout: String,
) -> Result<CheckoutProgress, AppError> {
    use crate::server::http::ctx::serve;
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let checkout = uuid::Uuid::parse_str(checkout.trim())
            .map_err(|_| AppError::NotFound("checkout".into()))?;
        ctx.state.billing.checkout_progress(&member, checkout).await
    })
    .await
}
