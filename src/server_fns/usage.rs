use leptos::prelude::*;

use crate::{
    domain::{QuotaView, UsageOverview},
    error::AppError,
};

/// The dashboard's numbers: cards, chart and per-member lines.
#[server(endpoint = "usage/overview")]
pub async fn get_usage_overview(slug: String) -> Result<UsageOverview, AppError> {
    use crate::server::{http::ctx::serve, services::usage};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        usage::overview(&ctx.state.db, ctx.state.billing.plans(), &member).await
    })
    .await
}

/// The quota meter of the org shell, on every org page.
#[server(endpoint = "usage/quota")]
pub async fn get_quota(slug: String) -> Result<QuotaView, AppError> {
    use crate::server::{http::ctx::serve, services::usage};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        usage::quota(&ctx.state.db, ctx.state.billing.plans(), &member).await
    })
    .await
}
