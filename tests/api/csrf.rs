//! Cross-site request forgery: a page on another site can make a browser
//! send our cookie along, so every state change must prove it came from us.

use crate::helpers::{Reply, TestApp, spawn_app};

async fn org_count(app: &TestApp, cookie: &str) -> usize {
    app.whoami(cookie).await.unwrap().orgs.len()
}

async fn create_org_with(app: &TestApp, cookie: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = app
        .client
        .post(app.url("/api/orgs/create"))
        .header("accept", "application/json")
        .header("cookie", cookie)
        .form(&[("name", "Forged")]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let cookie = app.sign_up("victim@example.com").await;
    let ours = app.address.clone();

    let forged: [&[(&str, &str)]; 6] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        // Fetch metadata decides even when the Origin looks right.
        &[("sec-fetch-site", "cross-site"), ("origin", &ours)],
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        // Neither header, but a cookie: refused.
        &[],
    ];
    for headers in forged {
        let reply = create_org_with(&app, &cookie, headers).await;
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.body);
        assert!(reply.body.contains("another website"), "{}", reply.body);
    }
    assert_eq!(org_count(&app, &cookie).await, 1);

    // Signing out and signing in count too (logout and login CSRF).
    let reply = app
        .client
        .post(app.url("/api/auth/sign-out"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    assert!(app.whoami(&cookie).await.is_some());
    let reply = app
        .client
        .post(app.url("/api/auth/sign-in"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("email", "victim@example.com"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    assert!(reply.headers().get("set-cookie").is_none());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn same_origin_posts_pass() {
    let app = spawn_app().await;
    let cookie = app.sign_up("owner@example.com").await;
    let ours = app.address.clone();

    for headers in [
        vec![("origin", ours.as_str())],
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "same-origin"), ("origin", ours.as_str())],
        // Typed into the address bar or a bookmark.
        vec![("sec-fetch-site", "none")],
    ] {
        let reply = create_org_with(&app, &cookie, &headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
    }
    assert_eq!(org_count(&app, &cookie).await, 5);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn get_never_changes_state() {
    let app = spawn_app().await;
    let cookie = app.sign_up("owner@example.com").await;
    let slug = app.whoami(&cookie).await.unwrap().orgs[0].slug.clone();

    for path in [
        "/api/orgs/create?name=Sneaky".to_owned(),
        format!("/api/orgs/rename?slug={slug}&name=Sneaky"),
        "/api/auth/sign-out".to_owned(),
        "/api/auth/sign-out-everywhere".to_owned(),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .header("cookie", &cookie)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_client_error(),
            "GET {path} answered {status}: {}",
            response.text().await.unwrap()
        );
    }
    let viewer = app.whoami(&cookie).await.expect("still signed in");
    assert_eq!(viewer.orgs.len(), 1);
    assert_ne!(viewer.orgs[0].name, "Sneaky");
    app.stop().await.unwrap();
}
