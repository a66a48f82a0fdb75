use leptos::prelude::*;

use crate::{domain::Viewer, error::AppError};

/// The signed-in person, or `None` for a visitor.
#[server(endpoint = "auth/whoami")]
pub async fn whoami() -> Result<Option<Viewer>, AppError> {
    use crate::server::{http::ctx::serve, services::accounts};
    serve(async |ctx| match ctx.maybe_account().await? {
        Some(account) => Ok(Some(accounts::viewer(&ctx.state.db, &account).await?)),
        None => Ok(None),
    })
    .await
}

#[server(endpoint = "auth/sign-up")]
pub async fn sign_up(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::accounts};
    serve(async |ctx| {
        let (account, org) = accounts::sign_up(
            &ctx.state.db,
            &ctx.state.auth,
            ctx.client_ip(),
            ctx.state.web.sign_ups_per_hour,
            &email,
            &password,
        )
        .await?;
        if let Ok(email) = crate::domain::Email::parse(&email) {
            crate::server::services::account_lifecycle::after_sign_up(
                &ctx.state.db,
                &ctx.state.mailer,
                account,
                &email,
                next.as_deref(),
                &ctx.site_origin(),
            )
            .await?;
        }
        ctx.start_session(account, Some(org), next).await
    })
    .await
}

#[server(endpoint = "auth/sign-in")]
pub async fn sign_in(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::accounts};
    serve(async |ctx| {
        let account = accounts::sign_in(
            &ctx.state.db,
            &ctx.state.auth,
            ctx.client_ip(),
            &email,
            password,
        )
        .await?;
        ctx.start_session(account, None, next).await
    })
    .await
}

/// Ends this session (POST only, like every state change).
#[server(endpoint = "auth/sign-out")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::server::{
        auth::{identity::SessionHandle, session},
        http::ctx::serve,
    };
    serve(async |ctx| {
        if let Some(account) = ctx.maybe_account().await?
            && let SessionHandle::Builtin { token_hash, .. } = &account.session
        {
            session::revoke(&ctx.state.db, token_hash)
                .await
                .map_err(AppError::from)?;
        }
        ctx.set_cookie(session::clear_cookie(ctx.secure_cookies()));
        leptos_axum::redirect("/");
        Ok(())
    })
    .await
}

/// Ends every session of this account, on every device.
#[server(endpoint = "auth/sign-out-everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    use crate::server::{auth::session, http::ctx::serve};
    serve(async |ctx| {
        let account = ctx.account().await?;
        session::revoke_all(&ctx.state.db, account.id)
            .await
            .map_err(AppError::from)?;
        ctx.set_cookie(session::clear_cookie(ctx.secure_cookies()));
        leptos_axum::redirect("/sign-in?signed_out=everywhere");
        Ok(())
    })
    .await
}
