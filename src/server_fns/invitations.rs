use leptos::prelude::*;

use crate::{
    domain::{InvitationId, InvitationPreview, OrgRole},
    error::AppError,
};

/// Creates an invitation and returns to the settings page with the link to
/// copy (it exists only now: we store its hash).
#[server(endpoint = "invitations/create")]
pub async fn invite(slug: String, email: String, role: OrgRole) -> Result<(), AppError> {
    use crate::{
        domain::Email,
        server::{http::ctx::serve, services::invitations},
    };
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        let email = Email::parse(&email).map_err(|e| AppError::field("email", e.to_string()))?;
        let created = invitations::create(
            &ctx.state.db,
            &ctx.state.mailer,
            &member,
            &email,
            role,
            &ctx.site_origin(),
        )
        .await?;
        leptos_axum::redirect(&format!(
            "/o/{slug}/settings?invite={}&mail={}#invitations",
            created.token, created.mail
        ));
        Ok(())
    })
    .await
}

#[server(endpoint = "invitations/revoke")]
pub async fn revoke_invitation(slug: String, id: InvitationId) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::invitations};
    serve(async |ctx| {
        let member = ctx.member(&slug).await?;
        invitations::revoke(&ctx.state.db, &member, id).await
    })
    .await
}

#[server(endpoint = "invitations/preview")]
pub async fn get_invitation(token: String) -> Result<InvitationPreview, AppError> {
    use crate::server::{http::ctx::serve, services::invitations};
    serve(async |ctx| invitations::preview(&ctx.state.db, &token).await).await
}

/// Joins the org and makes it the active one.
#[server(endpoint = "invitations/accept")]
pub async fn accept_invitation(token: String) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::invitations};
    serve(async |ctx| {
        let account = ctx.account().await?;
        invitations::accept(&ctx.state.db, &account, &token).await?;
        leptos_axum::redirect("/app");
        Ok(())
    })
    .await
}
