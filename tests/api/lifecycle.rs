//! The account lifecycle (issue 12): email verification, password reset,
//! change of password and email, account deletion and the org export. The
//! links travel through a real SMTP conversation with a local server.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::Value;
use tldw::{error::AppError, server::services::account_lifecycle};

use super::{
    helpers::{PASSWORD, Reply, TestApp, spawn_app_with, superuser_conn},
    mail::fake_smtp,
    rest::{Auth, call},
};

const NEW_PASSWORD: &str = "purple elephant umbrella";

struct MailApp {
    app: TestApp,
    mail: Arc<Mutex<Vec<String>>>,
}

async fn spawn_mail_app() -> MailApp {
    let (port, mail) = fake_smtp(false).await;
    let url = format!("smtp://127.0.0.1:{port}");
    // Mail needs PUBLIC_URL, and the CSRF check holds requests to it: the
    // app gets a port chosen here, so that its public URL is its address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(&[
        ("SMTP_URL", &url),
        ("PORT", &port.to_string()),
        ("PUBLIC_URL", &public),
    ])
    .await;
    MailApp { app, mail }
}

impl MailApp {
    /// Every message sent to `to` so far.
    fn messages_to(&self, to: &str) -> Vec<String> {
        self.mail
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains(&format!("To: {to}")))
            .map(|m| decoded(m))
            .collect()
    }

    /// The token of the newest link to `path` mailed to `to`. Mail from a
    /// reset is sent in the background, so this waits a little for it.
    async fn token(&self, to: &str, path: &str) -> String {
        for _ in 0..100 {
            if let Some(token) = self
                .messages_to(to)
                .iter()
                .rev()
                .find_map(|m| token_in(m, path))
            {
                return token;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "no {path} link mailed to {to}: {:?}",
            self.mail.lock().unwrap()
        );
    }
}

/// The body as the recipient reads it: lettre sends long lines
/// quoted-printable (`=` soft breaks, `=3D` for `=`).
fn decoded(message: &str) -> String {
    let joined = message.replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `message` as [`decoded`] gives it.
fn token_in(message: &str, path: &str) -> Option<String> {
    let (_, rest) = message.split_once(&format!("{path}?token="))?;
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}

async fn verify(app: &TestApp, token: &str) -> Reply {
    app.call("", "account/verify-email", &[("token", token)])
        .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Reply {
    app.call(
        "",
        "account/reset-password",
        &[("token", token), ("password", password)],
    )
    .await
}

async fn forgot(app: &TestApp, email: &str) -> Reply {
    app.call("", "account/forgot-password", &[("email", email)])
        .await
}

async fn sign_in_with(app: &TestApp, email: &str, password: &str) -> Reply {
    app.call(
        "",
        "auth/sign-in",
        &[("email", email), ("password", password)],
    )
    .await
}

async fn is_verified(app: &TestApp, email: &str) -> bool {
    let mut conn = superuser_conn(&app.db).await;
    sqlx::query_scalar("select email_verified_at is not null from accounts where email = $1")
        .bind(email)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unverified_account_cannot_accept_an_invitation_until_its_single_use_link_is_opened() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let owner = app.sign_up("owner-verify@example.com").await;
    let slug = app.create_org(&owner, "Verify Co").await;
    let bob = app.sign_up_unverified("bob-verify@example.com").await;
    let token = m.token("bob-verify@example.com", "/verify-email").await;
    assert_eq!(token.len(), 43, "{token}");
    assert!(!is_verified(app, "bob-verify@example.com").await);
    // The account page says so.
    let status: Value = app.call(&bob, "account/status", &[]).await.ok().json();
    assert_eq!(status["verified"], false, "{status}");

    // Unverified: the invitation for that very address is refused, in words.
    let invitation = app
        .invite(&owner, &slug, "bob-verify@example.com", "admin")
        .await;
    let refused = app
        .call(&bob, "invitations/accept", &[("token", &invitation)])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Confirm your email"),
        "{}",
        refused.body
    );

    // A wrong link does nothing; the right one works once.
    let wrong = verify(app, &format!("{}x", &token[..42])).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(!is_verified(app, "bob-verify@example.com").await);
    verify(app, &token).await.ok();
    assert!(is_verified(app, "bob-verify@example.com").await);
    let again = verify(app, &token).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("already been used"), "{}", again.body);

    app.call(&bob, "invitations/accept", &[("token", &invitation)])
        .await
        .ok();
    let status: Value = app.call(&bob, "account/status", &[]).await.ok().json();
    assert_eq!(status["verified"], true, "{status}");
    // Verified: asking for another link is refused.
    let resend = app.call(&bob, "account/resend-verification", &[]).await;
    assert_eq!(resend.status, 409, "{}", resend.body);
}

#[tokio::test]
async fn a_resent_link_replaces_the_old_one() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let cookie = app.sign_up_unverified("resend@example.com").await;
    let first = m.token("resend@example.com", "/verify-email").await;
    app.call(&cookie, "account/resend-verification", &[])
        .await
        .ok();
    assert_eq!(m.messages_to("resend@example.com").len(), 2);
    let second = m.token("resend@example.com", "/verify-email").await;
    assert_ne!(first, second);
    assert_eq!(verify(app, &first).await.status, 409);
    verify(app, &second).await.ok();
    assert!(is_verified(app, "resend@example.com").await);
}

#[tokio::test]
async fn signing_up_through_an_invitation_link_proves_that_one_address() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let owner = app.sign_up("owner-link@example.com").await;
    let slug = app.create_org(&owner, "Link Co").await;
    let token = app
        .invite(&owner, &slug, "carol-link@example.com", "member")
        .await;
    let next = format!("/invite/{token}");

    // Another address signing up through the same link proves nothing.
    let other = app
        .call(
            "",
            "auth/sign-up",
            &[
                ("email", "mallory-link@example.com"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    other.ok();
    assert!(!is_verified(app, "mallory-link@example.com").await);
    assert_eq!(m.messages_to("mallory-link@example.com").len(), 1);

    let carol = app
        .call(
            "",
            "auth/sign-up",
            &[
                ("email", "carol-link@example.com"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    carol.ok();
    assert!(is_verified(app, "carol-link@example.com").await);
    // Only the invitation itself was mailed there, no verification link.
    let mails = m.messages_to("carol-link@example.com");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(!mails[0].contains("/verify-email"), "{}", mails[0]);
    let cookie = carol.session_cookie().unwrap();
    app.call(&cookie, "invitations/accept", &[("token", &token)])
        .await
        .ok();
}

#[tokio::test]
async fn links_expire_and_expired_ones_are_purged() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    app.sign_up_unverified("late@example.com").await;
    let token = m.token("late@example.com", "/verify-email").await;
    let mut conn = superuser_conn(&app.db).await;
    let hours: f64 = sqlx::query_scalar(
        "select (extract(epoch from expires_at - created_at) / 3600)::float8 from account_tokens",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(hours, f64::from(account_lifecycle::VERIFY_HOURS));
    sqlx::query("update account_tokens set expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .unwrap();
    let expired = verify(app, &token).await;
    assert_eq!(expired.status, 409, "{}", expired.body);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert!(!is_verified(app, "late@example.com").await);

    // A live link is kept; the expired one goes.
    app.sign_up_unverified("early@example.com").await;
    let db = app.db.db(2).await;
    assert_eq!(account_lifecycle::purge_expired(&db).await.unwrap(), 1);
    assert_eq!(account_lifecycle::purge_expired(&db).await.unwrap(), 0);
    let left: i64 = sqlx::query_scalar("select count(*) from account_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 1);
    assert_eq!(verify(app, &token).await.status, 400);
}

#[tokio::test]
async fn forgot_password_answers_the_same_whether_or_not_the_account_exists() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    app.sign_up("known@example.com").await;
    let known = forgot(app, "known@example.com").await;
    let unknown = forgot(app, "unknown@example.com").await;
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(known.body, unknown.body);
    m.token("known@example.com", "/reset-password").await;
    assert!(m.messages_to("unknown@example.com").is_empty());
    // A malformed address is a field error either way, not a hint.
    assert_eq!(forgot(app, "not an email").await.status, 422);
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_ends_every_session_and_signs_in() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let first = app.sign_up_unverified("reset@example.com").await;
    let second = app.sign_in("reset@example.com").await;
    forgot(app, "reset@example.com").await.ok();
    let token = m.token("reset@example.com", "/reset-password").await;

    // The sign-up rule applies; a refused password leaves the link usable.
    let weak = reset(app, &token, "short").await;
    assert_eq!(weak.status, 422, "{}", weak.body);
    assert!(app.whoami(&first).await.is_some());

    let done = reset(app, &token, NEW_PASSWORD).await;
    done.ok();
    assert_eq!(done.location(), Some("/account?password=reset"));
    let fresh = done.session_cookie().expect("signed in after the reset");
    assert!(app.whoami(&fresh).await.is_some());
    for old in [&first, &second] {
        assert!(app.whoami(old).await.is_none(), "an old session survived");
    }
    assert_eq!(
        sign_in_with(app, "reset@example.com", PASSWORD)
            .await
            .status,
        401
    );
    sign_in_with(app, "reset@example.com", NEW_PASSWORD)
        .await
        .ok();
    // The link was mailed to the address: the address is proved.
    assert!(is_verified(app, "reset@example.com").await);

    let again = reset(app, &token, "another fine password").await;
    assert_eq!(again.status, 409, "{}", again.body);
    let wrong = reset(
        app,
        "not-a-token-at-all-but-long-enough-to-look-like-one",
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
}

#[tokio::test]
async fn a_reset_link_lasts_one_hour() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    app.sign_up("hour@example.com").await;
    forgot(app, "hour@example.com").await.ok();
    let token = m.token("hour@example.com", "/reset-password").await;
    let mut conn = superuser_conn(&app.db).await;
    let seconds: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - created_at)::float8 from account_tokens where purpose = 'reset_password'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(seconds, 3600.0);
    sqlx::query("update account_tokens set expires_at = now() - interval '1 second' where purpose = 'reset_password'")
        .execute(&mut conn)
        .await
        .unwrap();
    let expired = reset(app, &token, NEW_PASSWORD).await;
    assert_eq!(expired.status, 409, "{}", expired.body);
    sign_in_with(app, "hour@example.com", PASSWORD).await.ok();
}

#[tokio::test]
async fn two_concurrent_uses_of_one_reset_link_succeed_once() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    app.sign_up("race@example.com").await;
    forgot(app, "race@example.com").await.ok();
    let token = m.token("race@example.com", "/reset-password").await;
    let (a, b) = tokio::join!(
        reset(app, &token, NEW_PASSWORD),
        reset(app, &token, "another fine password")
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let here = app.sign_up("change@example.com").await;
    let elsewhere = app.sign_in("change@example.com").await;
    let wrong = app
        .call(
            &here,
            "account/change-password",
            &[
                ("current_password", "not my password"),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.error().field_message("current_password").is_some());
    let weak = app
        .call(
            &here,
            "account/change-password",
            &[("current_password", PASSWORD), ("new_password", "short")],
        )
        .await;
    assert!(
        weak.error().field_message("new_password").is_some(),
        "{}",
        weak.body
    );

    let ended: u64 = app
        .call(
            &here,
            "account/change-password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(ended, 1);
    assert!(app.whoami(&here).await.is_some());
    assert!(app.whoami(&elsewhere).await.is_none());
    assert_eq!(
        sign_in_with(app, "change@example.com", PASSWORD)
            .await
            .status,
        401
    );
    sign_in_with(app, "change@example.com", NEW_PASSWORD)
        .await
        .ok();
}

#[tokio::test]
async fn changing_the_email_is_confirmed_by_the_new_address_and_told_to_the_old() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let cookie = app.sign_up("old-address@example.com").await;
    let wrong = app
        .call(
            &cookie,
            "account/change-email",
            &[
                ("password", "not my password"),
                ("new_email", "new-address@example.com"),
            ],
        )
        .await;
    assert!(
        wrong.error().field_message("password").is_some(),
        "{}",
        wrong.body
    );
    app.call(
        &cookie,
        "account/change-email",
        &[
            ("password", PASSWORD),
            ("new_email", "New-Address@example.com"),
        ],
    )
    .await
    .ok();
    let token = m.token("new-address@example.com", "/verify-email").await;
    let notice = m.messages_to("old-address@example.com");
    assert!(
        notice
            .iter()
            .any(|n| n.contains("new-address@example.com") && !n.contains("token=")),
        "{notice:?}"
    );
    // Nothing changed yet.
    sign_in_with(app, "old-address@example.com", PASSWORD)
        .await
        .ok();

    verify(app, &token).await.ok();
    assert_eq!(
        sign_in_with(app, "old-address@example.com", PASSWORD)
            .await
            .status,
        401
    );
    sign_in_with(app, "new-address@example.com", PASSWORD)
        .await
        .ok();
    assert!(is_verified(app, "new-address@example.com").await);
    assert_eq!(verify(app, &token).await.status, 409);

    // An address taken in the meantime is not stolen.
    app.call(
        &cookie,
        "account/change-email",
        &[("password", PASSWORD), ("new_email", "taken@example.com")],
    )
    .await
    .ok();
    let token = m.token("taken@example.com", "/verify-email").await;
    app.sign_up("taken@example.com").await;
    let taken = verify(app, &token).await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    sign_in_with(app, "new-address@example.com", PASSWORD)
        .await
        .ok();
}

async fn delete(app: &TestApp, cookie: &str, password: &str) -> Reply {
    app.call(cookie, "account/delete", &[("confirm_password", password)])
        .await
}

#[tokio::test]
async fn the_last_owner_of_an_org_with_members_cannot_delete_the_account() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let owner = app.sign_up("last-owner@example.com").await;
    let slug = app.create_org(&owner, "Shared Team").await;
    let member = app.sign_up("stays@example.com").await;
    let member_id = app
        .add_member(&owner, &slug, &member, "stays@example.com", "member")
        .await;

    let wrong = delete(app, &owner, "not my password").await;
    assert!(
        wrong.error().field_message("confirm_password").is_some(),
        "{}",
        wrong.body
    );
    let refused = delete(app, &owner, PASSWORD).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let AppError::Conflict(message) = refused.error() else {
        panic!("{}", refused.body)
    };
    assert!(message.contains("Shared Team"), "{message}");
    assert!(
        message.contains(&format!("/o/{slug}/settings")),
        "{message}"
    );
    assert!(message.contains("make someone else an owner"), "{message}");
    assert!(app.whoami(&owner).await.is_some());

    // Once someone else owns it, the account goes and the team stays.
    app.call(
        &owner,
        "orgs/transfer-ownership",
        &[("slug", &slug), ("user_id", &member_id.to_string())],
    )
    .await
    .ok();
    delete(app, &owner, PASSWORD).await.ok();
    assert!(app.whoami(&owner).await.is_none());
    let page = app.org_page(&member, &slug).await;
    assert_eq!(page.members.len(), 1, "{page:?}");
}

#[tokio::test]
async fn deleting_an_account_removes_its_sessions_memberships_and_solo_orgs_but_not_the_cache() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let leaver = app.sign_up("leaver@example.com").await;
    let other_session = app.sign_in("leaver@example.com").await;
    let solo = app.create_org(&leaver, "Solo Project").await;
    let owner = app.sign_up("team-owner@example.com").await;
    let team = app.create_org(&owner, "Team Stays").await;
    app.add_member(&owner, &team, &leaver, "leaver@example.com", "admin")
        .await;
    let mut su = superuser_conn(&app.db).await;
    sqlx::query(
        "insert into videos (video_id, status, title) values ('dQw4w9WgXcQ', 'ready', 'Cached')",
    )
    .execute(&mut su)
    .await
    .unwrap();
    let personal: uuid::Uuid = sqlx::query_scalar(
        "select o.id from orgs o join users u on u.org_id = o.id join accounts a on a.id = u.account_id
         where a.email = 'leaver@example.com' and o.personal",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();

    let done = delete(app, &leaver, PASSWORD).await;
    done.ok();
    assert_eq!(done.location(), Some("/sign-in?account=deleted"));
    assert!(done.header("set-cookie").unwrap().contains("Max-Age=0"));
    for cookie in [&leaver, &other_session] {
        assert!(app.whoami(cookie).await.is_none());
    }
    assert_eq!(
        sign_in_with(app, "leaver@example.com", PASSWORD)
            .await
            .status,
        401
    );
    let mut su = superuser_conn(&app.db).await;
    let orgs_left: i64 = sqlx::query_scalar("select count(*) from orgs where id = $1 or slug = $2")
        .bind(personal)
        .bind(&solo)
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(orgs_left, 0, "the personal and the solo org should be gone");
    let (accounts, sessions, videos): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from accounts where email = 'leaver@example.com'),
                (select count(*) from sessions),
                (select count(*) from videos where video_id = 'dQw4w9WgXcQ')",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    // Only the team owner's one session is left; the cache is untouched.
    assert_eq!((accounts, sessions, videos), (0, 1, 1));
    let page = app.org_page(&owner, &team).await;
    assert_eq!(page.members.len(), 1);
    assert_eq!(page.org.name, "Team Stays");
}

#[tokio::test]
async fn an_org_with_a_renewing_subscription_blocks_deleting_its_only_member() {
    let m = spawn_mail_app().await;
    let app = &m.app;
    let cookie = app.sign_up("payer@example.com").await;
    let slug = app.create_org(&cookie, "Paid Solo").await;
    let mut su = superuser_conn(&app.db).await;
    sqlx::query(
        "insert into subscriptions (org_id, plan, source, status, dodo_subscription_id, period_start, period_end)
         select id, 'pro', 'dodo', 'active', 'sub_1', now(), now() + interval '30 days' from orgs where slug = $1",
    )
    .bind(&slug)
    .execute(&mut su)
    .await
    .unwrap();
    let refused = delete(app, &cookie, PASSWORD).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("Paid Solo"), "{}", refused.body);
    assert!(refused.body.contains("billing"), "{}", refused.body);
    assert!(app.whoami(&cookie).await.is_some());
}

/// A ready summary in the shared cache, in `org`'s history as `user`'s.
async fn seed_history(app: &TestApp, org: uuid::Uuid, user: uuid::Uuid, video: &str, title: &str) {
    let mut su = superuser_conn(&app.db).await;
    sqlx::query(
        "insert into videos (video_id, status, title, channel, summary, model, built_in)
         values ($1, 'ready', $2, 'Chan', $3, 'test-model', false)
         on conflict do nothing",
    )
    .bind(video)
    .bind(title)
    .bind(serde_json::json!({"tldr": format!("TLDR of {title}"), "key_points": [{"text": "a point", "at_seconds": 7}]}))
    .execute(&mut su)
    .await
    .unwrap();
    sqlx::query(
        "insert into user_summaries (org_id, id, user_id, video_id, title) values ($1, $2, $3, $4, $5)",
    )
    .bind(org)
    .bind(uuid::Uuid::new_v4())
    .bind(user)
    .bind(video)
    .bind(title)
    .execute(&mut su)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_export_holds_the_orgs_history_and_summaries_and_nothing_of_another_org() {
    let app = spawn_app_with(&[]).await;
    let owner = app.sign_up("export-owner@example.com").await;
    let slug = app.create_org(&owner, "Export Co").await;
    let page = app.org_page(&owner, &slug).await;
    let other = app.sign_up("export-other@example.com").await;
    let other_slug = app.create_org(&other, "Other Co").await;
    let other_page = app.org_page(&other, &other_slug).await;
    seed_history(
        &app,
        page.org.id.as_uuid(),
        page.org.user_id.as_uuid(),
        "aaaaaaaaaaa",
        "Ours One",
    )
    .await;
    seed_history(
        &app,
        page.org.id.as_uuid(),
        page.org.user_id.as_uuid(),
        "bbbbbbbbbbb",
        "Ours Two",
    )
    .await;
    seed_history(
        &app,
        other_page.org.id.as_uuid(),
        other_page.org.user_id.as_uuid(),
        "ccccccccccc",
        "Theirs",
    )
    .await;
    // A pasted transcript's summary is the org's own and is exported too.
    let mut su = superuser_conn(&app.db).await;
    sqlx::query(
        "insert into own_transcript_summaries (org_id, id, user_id, video_id, summary, model, prompt_version, built_in)
         values ($1, $2, $3, 'aaaaaaaaaaa', $4, 'own-model', 'v1', true)",
    )
    .bind(page.org.id.as_uuid())
    .bind(uuid::Uuid::new_v4())
    .bind(page.org.user_id.as_uuid())
    .bind(serde_json::json!({"tldr": "Private words", "key_points": []}))
    .execute(&mut su)
    .await
    .unwrap();

    let path = format!("/api/v1/orgs/{slug}/export");
    let reply = call(&app, Method::GET, &path, Auth::Cookie(&owner), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .header("content-disposition")
            .unwrap()
            .contains(&format!("tldw-{slug}.json")),
        "{:?}",
        reply.headers
    );
    let export: Value = reply.json();
    assert_eq!(export["org"]["slug"], slug.as_str());
    let items = export["summaries"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{export:#}");
    let by_video = |v: &str| items.iter().find(|i| i["video_id"] == v).unwrap().clone();
    let one = by_video("aaaaaaaaaaa");
    assert_eq!(one["private"], true);
    assert_eq!(one["summary"]["tldr"], "Private words");
    assert_eq!(one["requested_by"], "export-owner@example.com");
    let two = by_video("bbbbbbbbbbb");
    assert_eq!(two["private"], false);
    assert_eq!(two["summary"]["tldr"], "TLDR of Ours Two");
    assert_eq!(two["summary"]["key_points"][0]["at_seconds"], 7);
    assert!(!reply.body.contains("Theirs") && !reply.body.contains("ccccccccccc"));

    let md = call(
        &app,
        Method::GET,
        &format!("{path}?format=markdown"),
        Auth::Cookie(&owner),
        None,
    )
    .await;
    assert_eq!(md.status, 200, "{}", md.body);
    assert!(
        md.header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    assert!(md.body.starts_with("# Export Co"), "{}", md.body);
    for expected in ["Ours Two", "TLDR of Ours Two", "Private words", "t=7s"] {
        assert!(
            md.body.contains(expected),
            "{expected} missing: {}",
            md.body
        );
    }
    assert!(!md.body.contains("Theirs"), "{}", md.body);

    // Another org's owner learns nothing; a member may not export.
    let foreign = call(&app, Method::GET, &path, Auth::Cookie(&other), None).await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    let member = app.sign_up("export-member@example.com").await;
    app.add_member(&owner, &slug, &member, "export-member@example.com", "admin")
        .await;
    let forbidden = call(&app, Method::GET, &path, Auth::Cookie(&member), None).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
}
