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
        .call(
            "",
            "auth/sign-in",
            &[("email", &huge), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.error(), AppError::BadCredentials);
    let reply = app
        .call(
            "",
            "auth/sign-up",
            &[("email", &huge), ("password", PASSWORD)],
        )
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

#[tokio::test]
async fn an_account_creates_at_most_five_orgs_a_day() {
    let app = spawn_app_with(&[]).await;
    let cookie = app.sign_up("burner@example.com").await;
    for n in 1..=5 {
        app.create_org(&cookie, &format!("burner {n}")).await;
    }
    let sixth = app
        .call(&cookie, "orgs/create", &[("name", "burner 6")])
        .await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    assert!(sixth.header("retry-after").is_some());
    // Another account is not affected.
    let other = app.sign_up("someone@example.com").await;
    app.create_org(&other, "someone's team").await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn invitations_are_limited_per_org_per_hour() {
    let app = spawn_app_with(&[]).await;
    let cookie = app.sign_up("spammer@example.com").await;
    let slug = app.create_org(&cookie, "Mailer").await;
    for n in 1..=20 {
        app.invite(&cookie, &slug, &format!("target{n}@example.com"), "member")
            .await;
    }
    let reply = app
        .call(
            &cookie,
            "invitations/create",
            &[
                ("slug", &slug),
                ("email", "target21@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(matches!(reply.error(), AppError::RateLimited { .. }));
    let mut conn = app.db.app_conn().await;
    // The org's one limit row counted every try, the refused one too.
    let hits: i32 =
        sqlx::query_scalar("select hits from rate_limits where key like 'invitations:org:%'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(hits, 21);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_org_holds_at_most_fifty_open_invitations() {
    let app = spawn_app_with(&[]).await;
    let cookie = app.sign_up("hoarder@example.com").await;
    let slug = app.create_org(&cookie, "Hoard").await;
    let org = app.org_page(&cookie, &slug).await.org.id;
    // Fifty open ones already (made straight in the database: the hourly
    // limit would take three hours).
    let owner = app.org_page(&cookie, &slug).await.org.user_id;
    crate::helpers::as_owner_in_org(
        &app.db,
        org,
        &format!(
            "insert into invitations (org_id, id, email, role, token_hash, invited_by, expires_at)
             select '{org}', gen_random_uuid(), 'open' || n || '@example.com', 'member',
                    sha256(n::text::bytea), '{owner}', now() + interval '7 days'
             from generate_series(1, 50) n"
        ),
    )
    .await;
    let reply = app
        .call(
            &cookie,
            "invitations/create",
            &[
                ("slug", &slug),
                ("email", "one-more@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("50 open invitations"), "{}", reply.body);
    app.stop().await.unwrap();
}
