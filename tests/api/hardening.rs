//! Issue 12, the HTTP findings of the security review: redirects after
//! sign-in, slow clients, security headers, and what reaches the logs.

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app};

/// Signs in with a raw form body, so `next` arrives exactly as an attacker
/// encoded it (reqwest's `.form` would escape the `%`).
async fn sign_in_raw(app: &TestApp, email: &str, next_encoded: &str) -> Reply {
    let body = format!(
        "email={}&password={}&next={next_encoded}",
        url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect::<String>(),
    );
    let response = app
        .post("auth/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

#[tokio::test]
async fn a_control_character_in_next_signs_in_normally() {
    let app = spawn_app().await;
    app.sign_up("ctl@example.com").await;
    // `/%01x` decodes to "/\u{1}x": leptos_axum::redirect used to panic on
    // it after the session row was written (finding 15).
    for next in ["/%01x", "%0A", "/%7F"] {
        let reply = sign_in_raw(&app, "ctl@example.com", next).await;
        assert_eq!(reply.status, 200, "{next}: {}", reply.body);
        assert_eq!(reply.location(), Some("/app"), "{next}");
        assert!(reply.session_cookie().is_some(), "{next}: no cookie");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn after_sign_in_encoded_and_whitespace_tricks_land_on_the_app() {
    let app = spawn_app().await;
    app.sign_up("redir@example.com").await;
    // As the form body carries them (one layer of form encoding).
    for next in [
        "/%09/evil.example/phish",
        "%2F%09%2Fevil.example",
        "/%0A/evil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%E3%80%80/evil.example",
    ] {
        let reply = sign_in_raw(&app, "redir@example.com", next).await;
        assert_eq!(reply.status, 200, "{next}: {}", reply.body);
        assert_eq!(reply.location(), Some("/app"), "{next}");
    }
    let good = sign_in_raw(&app, "redir@example.com", "%2Fo%2Fteam%2Fsettings%3Fx%3D1").await;
    assert_eq!(good.location(), Some("/o/team/settings?x=1"));
    app.stop().await.unwrap();
}
