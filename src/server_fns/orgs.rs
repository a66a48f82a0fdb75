use leptos::prelude::*;

use crate::{
    domain::{OrgPage, OrgRole, UserId},
    error::AppError,
};

#[server(endpoint = "orgs/create")]
pub async fn create_org(name: String) -> Result<(), AppError> {
    use crate::{
        domain::OrgName,
        server::{http::ctx::serve, services::orgs},
    };
    serve(async |ctx| {
        let account = ctx.account().await?;
        let name = OrgName::parse(&name).map_err(|e| AppError::field("name", e.to_string()))?;
        let org = orgs::create(&ctx.state.db, &account, name, ctx.state.web.orgs_per_day).await?;
        leptos_axum::redirect(&format!("/o/{}/settings", org.slug));
        Ok(())
    })
    .await
}

/// The org as the viewer may see it; opening it makes it the session's
/// active org.
#[server(endpoint = "orgs/page")]
pub async fn get_org(slug: String) -> Result<OrgPage, AppError> {
    use crate::server::{http::ctx::serve, services::orgs};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        orgs::open(&ctx.state.db, &member, &ctx.site_origin()).await
    })
    .await
}

#[server(endpoint = "orgs/rename")]
pub async fn rename_org(slug: String, name: String) -> Result<(), AppError> {
    use crate::{
        domain::OrgName,
        server::{http::ctx::serve, services::orgs},
    };
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let name = OrgName::parse(&name).map_err(|e| AppError::field("name", e.to_string()))?;
        orgs::rename(&ctx.state.db, &member, name).await
    })
    .await
}

/// The language the org's summaries are written in: a listed code, or
/// empty for each video's own language. Owners and admins.
#[server(endpoint = "orgs/summary-language")]
pub async fn set_summary_language(slug: String, language: String) -> Result<(), AppError> {
    use crate::{
        domain::SummaryLanguage,
        server::{http::ctx::serve, services::orgs},
    };
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let language = SummaryLanguage::parse_setting(&language)
            .map_err(|e| AppError::field("language", e.to_string()))?;
        orgs::set_summary_language(&ctx.state.db, &member, language).await
    })
    .await
}

#[server(endpoint = "orgs/delete")]
pub async fn delete_org(slug: String, confirm: String) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::orgs};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        orgs::delete(&ctx.state.db, &member, &confirm).await?;
        leptos_axum::redirect("/app");
        Ok(())
    })
    .await
}

#[server(endpoint = "orgs/leave")]
pub async fn leave_org(slug: String) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::members};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        members::leave(&ctx.state.db, &member).await?;
        leptos_axum::redirect("/app");
        Ok(())
    })
    .await
}

#[server(endpoint = "orgs/change-role")]
pub async fn change_role(slug: String, user_id: UserId, role: OrgRole) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::members};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        members::change_role(&ctx.state.db, &member, user_id, role).await
    })
    .await
}

#[server(endpoint = "orgs/remove-member")]
pub async fn remove_member(slug: String, user_id: UserId) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::members};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        members::remove(&ctx.state.db, &member, user_id).await
    })
    .await
}

#[server(endpoint = "orgs/transfer-ownership")]
pub async fn transfer_ownership(slug: String, user_id: UserId) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::members};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        members::transfer_ownership(&ctx.state.db, &member, user_id).await
    })
    .await
}
