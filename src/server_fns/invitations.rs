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
        let token = invitations::create(&ctx.state.db, &member, &email, role).await?;
        let link = format!("{}/invite/{token}", ctx.site_origin());
        // The invitation exists either way; mail is a convenience on top.
        let mailed = match ctx.state.mailer.send_invitation(&email, &member.org.name, &link).await {
            Ok(true) => "sent",
            Ok(false) => {
                tracing::info!(org = %member.org.slug, invitee = %email, %link, "invitation link (SMTP not configured)");
                "off"
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), invitee = %email, "could not email an invitation");
                "failed"
            }
        };
        leptos_axum::redirect(&format!("/o/{slug}/settings?invite={token}&mail={mailed}#invitations"));
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
    use crate::server::{
        auth::{identity::SessionHandle, session},
        http::ctx::serve,
        services::invitations,
    };
    serve(async |ctx| {
        let account = ctx.account().await?;
        let org = invitations::accept(&ctx.state.db, &account, &token).await?;
        if let SessionHandle::Builtin { token_hash, .. } = &account.session {
            session::set_active_org(&ctx.state.db, token_hash, org)
                .await
                .map_err(AppError::from)?;
        }
        leptos_axum::redirect("/app");
        Ok(())
    })
    .await
}
