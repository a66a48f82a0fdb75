//! The account lifecycle (issue 12): verify email, forgot/reset password,
//! change password or email, delete the account. Thin: the rules live in
//! `services::account_lifecycle`.

use leptos::prelude::*;

use crate::{
    domain::{AccountStatus, LinkDelivery},
    error::AppError,
};

/// The signed-in account's address and whether it is verified.
#[server(name = GetAccountStatus, endpoint = "account/status")]
pub async fn get_account_status() -> Result<AccountStatus, AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        let account = ctx.account().await?;
        account_lifecycle::status(&ctx.state.db, &account).await
    })
    .await
}

/// Sends the verification link again.
#[server(endpoint = "account/resend-verification")]
pub async fn resend_verification() -> Result<LinkDelivery, AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        let account = ctx.account().await?;
        account_lifecycle::resend_verification(
            &ctx.state.db,
            &ctx.state.mailer,
            &account,
            &ctx.site_origin(),
        )
        .await
    })
    .await
}

/// Uses a verification link (sign-up, or a new address). A button on the
/// link's page posts it, so a mail scanner that only opens links uses none.
#[server(endpoint = "account/verify-email")]
pub async fn verify_email(token: String) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        account_lifecycle::verify_email(&ctx.state.db, &token)
            .await
            .map(|_| ())
    })
    .await
}

/// "Forgot password?": the same answer whether or not the address has an
/// account.
#[server(endpoint = "account/forgot-password")]
pub async fn forgot_password(email: String) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        account_lifecycle::request_password_reset(
            &ctx.state.db,
            &ctx.state.auth,
            &ctx.state.mailer,
            ctx.client_ip(),
            &email,
            &ctx.site_origin(),
        )
        .await
    })
    .await
}

/// Sets a new password from a reset link, ends every session, and signs
/// this browser in.
#[server(endpoint = "account/reset-password")]
pub async fn reset_password(token: String, password: String) -> Result<(), AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        let account =
            account_lifecycle::reset_password(&ctx.state.db, &ctx.state.auth, &token, &password)
                .await?;
        ctx.start_session(account, None, Some("/account?password=reset".into()))
            .await
    })
    .await
}

/// Changes the password; other sessions end. Returns how many ended.
#[server(endpoint = "account/change-password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<u64, AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        let account = ctx.account().await?;
        account_lifecycle::change_password(&ctx.state.db, &account, current_password, &new_password)
            .await
    })
    .await
}

/// Asks to move the account to a new address (confirmed by a link sent
/// there).
#[server(endpoint = "account/change-email")]
pub async fn change_email(password: String, new_email: String) -> Result<LinkDelivery, AppError> {
    use crate::server::{http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        let account = ctx.account().await?;
        account_lifecycle::request_email_change(
            &ctx.state.db,
            &ctx.state.mailer,
            &account,
            password,
            &new_email,
            &ctx.site_origin(),
        )
        .await
    })
    .await
}

/// Deletes the account (see the service for when it is refused).
#[server(endpoint = "account/delete")]
pub async fn delete_account(confirm_password: String) -> Result<(), AppError> {
    use crate::server::{auth::session, http::ctx::serve, services::account_lifecycle};
    serve(async |ctx| {
        let account = ctx.account().await?;
        account_lifecycle::delete_account(&ctx.state.db, &account, confirm_password).await?;
        ctx.set_cookie(session::clear_cookie(ctx.secure_cookies()));
        leptos_axum::redirect("/sign-in?account=deleted");
        Ok(())
    })
    .await
}
