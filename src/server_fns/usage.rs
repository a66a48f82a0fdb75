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

/// The quota meter of the org shell, on every org page; `None` when it
/// cannot be had. The shell never fails a page: the page's own load says
/// what is wrong (sign-in redirect, 404, 503) and sets the status, which
/// an error here would otherwise overwrite.
#[server(endpoint = "usage/quota")]
pub async fn get_quota(slug: String) -> Result<Option<QuotaView>, AppError> {
    use crate::server::{http::ctx::serve, services::usage};
    serve(async |ctx| {
        let Ok(member) = ctx.member(&slug).await else {
            return Ok(None);
        };
        Ok(
            usage::quota(&ctx.state.db, ctx.state.billing.plans(), &member)
                .await
                .ok(),
        )
    })
    .await
}
