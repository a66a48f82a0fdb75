//! Issue 12, the abuse findings of the security review: sign-in lockout by
//! strangers, IPv6 budgets, oversized keys, and the limits on orgs and
//! invitations.

use tldw::error::AppError;

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app_with};

/// A sign-in as a client behind our trusted proxy at `from`.
async fn sign_in_from(app: &TestApp, from: &str, email: &str, password: &str) -> Reply {
    let response = app
        .post("auth/sign-in")
        .header("x-forwarded-for", from)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

fn behind_proxy() -> [(&'static str, &'static str); 1] {
    [("TLDW_TRUSTED_PROXIES", "127.0.0.1")]
}

#[tokio::test]
async fn strangers_guessing_cannot_lock_the_owner_out() {
    let app = spawn_app_with(&behind_proxy()).await;
    app.sign_up("owner@example.com").await;
    let stranger = "198.51.100.7";
    for attempt in 1..=8 {
        let reply = sign_in_from(&app, stranger, "owner@example.com", "a wrong guess").await;
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.body);
    }
    // The account is past its failure limit: the stranger is refused, even
    // with the right password.
    let reply = sign_in_from(&app, stranger, "owner@example.com", PASSWORD).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(reply.header("retry-after").is_some());

    // A second guessing address gets one try, then it is refused too.
    let other = "198.51.100.8";
    let reply = sign_in_from(&app, other, "owner@example.com", "another guess").await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    let reply = sign_in_from(&app, other, "owner@example.com", PASSWORD).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(reply.session_cookie().is_none());

    // The owner, from an address with no failures, gets in.
    let reply = sign_in_from(&app, "203.0.113.5", "owner@example.com", PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.session_cookie().is_some());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn only_failures_count_against_an_email() {
    let app = spawn_app_with(&behind_proxy()).await;
    app.sign_up("busy@example.com").await;
    for attempt in 1..=12 {
        let reply = sign_in_from(&app, "203.0.113.9", "busy@example.com", PASSWORD).await;
        assert_eq!(reply.status, 200, "attempt {attempt}: {}", reply.body);
    }
    let reply = sign_in_from(&app, "203.0.113.9", "busy@example.com", "wrong one").await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn one_ipv6_64_is_one_budget() {
    let app = spawn_app_with(&behind_proxy()).await;
    for n in 1..=20 {
        let from = format!("2001:db8:7:7::{n:x}");
        let reply = sign_in_from(&app, &from, &format!("v6-{n}@example.com"), "wrong").await;
        assert_eq!(reply.status, 401, "attempt {n}: {}", reply.body);
    }
    let same_64 = sign_in_from(&app, "2001:db8:7:7:ffff::1", "v6-x@example.com", "wrong").await;
    assert_eq!(same_64.status, 429, "{}", same_64.body);
    let next_64 = sign_in_from(&app, "2001:db8:7:8::1", "v6-y@example.com", "wrong").await;
    assert_eq!(next_64.status, 401, "{}", next_64.body);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_oversized_email_is_a_client_error_not_a_500() {
    let app = spawn_app_with(&[]).await;
    let huge = format!("{}@example.com", "a".repeat(3000));
    let reply = app
        .call("", "auth/sign-in", &[("email", &huge), ("password", PASSWORD)])
        .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.error(), AppError::BadCredentials);
    let reply = app
        .call("", "auth/sign-up", &[("email", &huge), ("password", PASSWORD)])
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    // Nothing that long became a key.
    let mut conn = app.db.app_conn().await;
    let longest: Option<i32> = sqlx::query_scalar("select max(length(key)) from rate_limits")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(longest.unwrap_or(0) < 300, "{longest:?}");
    app.stop().await.unwrap();
}
