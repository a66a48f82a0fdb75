use leptos::prelude::*;

use crate::{domain::Viewer, error::AppError};

/// The signed-in person, or `None` for a visitor.
#[server(endpoint = "auth/whoami")]
pub async fn whoami() -> Result<Option<Viewer>, AppError> {
    use crate::server::http::ctx::serve;
    serve(async |ctx| ctx.viewer().await).await
}

#[server(endpoint = "auth/sign-up")]
pub async fn sign_up(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::{
        domain::{Email, NewPassword},
        server::{auth::rate_limit, http::ctx::serve, services::accounts},
    };
    serve(async |ctx| {
        if !ctx.state.auth.is_builtin() {
            return Err(AppError::Conflict(
                "Accounts are managed by Clerk on this site.".into(),
            ));
        }
        let db = &ctx.state.db;
        rate_limit::hit(
            db,
            &format!("signup:ip:{}", ctx.client_ip()),
            rate_limit::SIGN_UP_PER_ADDRESS,
        )
        .await?;
        let email = Email::parse(&email).map_err(|e| AppError::field("email", e.to_string()))?;
        let password = NewPassword::parse(&password, email.as_str())
            .map_err(|e| AppError::field("password", e.to_string()))?;
        let (account, org) = accounts::sign_up(db, &email, password).await?;
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
    use crate::server::{auth::rate_limit, http::ctx::serve, services::accounts};
    serve(async |ctx| {
        if !ctx.state.auth.is_builtin() {
            return Err(AppError::Conflict(
                "Sign-in is handled by Clerk on this site.".into(),
            ));
        }
        let db = &ctx.state.db;
        rate_limit::hit(
            db,
            &format!("signin:ip:{}", ctx.client_ip()),
            rate_limit::SIGN_IN_PER_ADDRESS,
        )
        .await?;
        let normalized = email.trim().to_lowercase();
        rate_limit::hit(
            db,
            &format!("signin:email:{normalized}"),
            rate_limit::SIGN_IN_PER_ACCOUNT,
        )
        .await?;
        let account = accounts::check_credentials(db, &email, password).await?;
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
