//! The whole app with Clerk sign-in, against a local JWKS server: Clerk's
//! users and orgs become ours on first sight, and the same extractors (and
//! tenant boundaries) apply.

use serde_json::json;
use tldw::{
    domain::{OrgRole, Viewer},
    error::AppError,
};

use crate::{
    clerk::{APP_ORIGIN, FakeClerk, ISSUER, claims, key_a, now, sign, with},
    helpers::{Reply, TestApp, spawn_app_with},
};

async fn clerk_app() -> TestApp {
    let clerk = FakeClerk::start(&[key_a()]).await;
    spawn_app_with(&[
        ("CLERK_ISSUER", ISSUER),
        ("CLERK_JWKS_URL", clerk.jwks_url.as_str()),
        ("CLERK_AUTHORIZED_PARTIES", APP_ORIGIN),
    ])
    .await
}

/// A session token for Clerk user `sub`, active in Clerk org `org` (id,
/// slug, role) if given.
fn token(sub: &str, org: Option<(&str, &str, &str)>) -> String {
    let mut claims = with(claims(), "sub", json!(sub));
    if let Some((id, slug, role)) = org {
        claims = with(claims, "o", json!({"id": id, "slg": slug, "rol": role}));
    }
    sign(key_a(), &claims)
}

async fn bearer(app: &TestApp, token: &str, endpoint: &str, form: &[(&str, &str)]) -> Reply {
    let response = app
        .post(endpoint)
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

async fn whoami(app: &TestApp, token: &str) -> Option<Viewer> {
    bearer(app, token, "auth/whoami", &[]).await.ok().json()
}

async fn count(app: &TestApp, sql: &str, bind: &str) -> i64 {
    let mut conn = app.db.app_conn().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(bind.to_owned())
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bearer_token_signs_in_with_the_org_and_role_it_names() {
    let app = clerk_app().await;
    let jwt = token("user_2ada", Some(("org_2acme", "acme", "admin")));

    let viewer = whoami(&app, &jwt).await.expect("signed in");

    assert!(!viewer.builtin);
    assert_eq!(viewer.active_slug.as_deref(), Some("acme"));
    let acme = viewer.orgs.iter().find(|o| o.slug == "acme").unwrap();
    assert_eq!(acme.role, OrgRole::Admin);
    assert!(!acme.personal);
    // Every account also has a personal org.
    assert_eq!(viewer.orgs.len(), 2, "{viewer:?}");
    assert!(
        viewer
            .orgs
            .iter()
            .any(|o| o.personal && o.role == OrgRole::Owner)
    );

    // Admins may manage the org, through the same server functions.
    let page: tldw::domain::OrgPage = bearer(&app, &jwt, "orgs/page", &[("slug", "acme")])
        .await
        .ok()
        .json();
    assert_eq!(page.members.len(), 1);
    assert!(page.invitations.is_some());

    // The role follows the token: demoted in Clerk, demoted here.
    let demoted = token("user_2ada", Some(("org_2acme", "acme", "member")));
    let viewer = whoami(&app, &demoted).await.unwrap();
    let acme = viewer.orgs.iter().find(|o| o.slug == "acme").unwrap();
    assert_eq!(acme.role, OrgRole::Member);
    let rename = bearer(
        &app,
        &demoted,
        "orgs/rename",
        &[("slug", "acme"), ("name", "x")],
    )
    .await;
    assert_eq!(rename.status, 403, "{}", rename.body);

    // Built-in sign-in is off.
    let sign_in = app
        .call(
            "",
            "auth/sign-in",
            &[
                ("email", "ada@example.com"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    assert_eq!(sign_in.status, 409, "{}", sign_in.body);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_session_cookie_works_too() {
    let app = clerk_app().await;
    let jwt = token("user_2cookie", Some(("org_2cook", "kitchen", "member")));
    let cookie = format!("__session={jwt}");

    let viewer: Option<Viewer> = app.call(&cookie, "auth/whoami", &[]).await.ok().json();

    let viewer = viewer.expect("signed in by cookie");
    assert_eq!(viewer.active_slug.as_deref(), Some("kitchen"));
    let created = app
        .call(&cookie, "orgs/create", &[("name", "Side project")])
        .await;
    created.ok();
    // A cookie is ambient authority, so CSRF rules apply to it.
    let forged = app
        .client
        .post(app.url("/api/orgs/create"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("name", "Forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let viewer: Option<Viewer> = app.call(&cookie, "auth/whoami", &[]).await.ok().json();
    assert_eq!(viewer.unwrap().orgs.len(), 3);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_api_client_with_a_bearer_token_needs_no_origin() {
    let app = clerk_app().await;
    let jwt = token("user_2api", None);
    let response = app
        .client
        .post(app.url("/api/orgs/create"))
        .bearer_auth(&jwt)
        .header("accept", "application/json")
        .form(&[("name", "From a script")])
        .send()
        .await
        .unwrap();
    Reply::read(response).await.ok();
    assert_eq!(whoami(&app, &jwt).await.unwrap().orgs.len(), 2);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn expired_or_foreign_tokens_are_signed_out() {
    let app = clerk_app().await;
    let good = token("user_2eve", Some(("org_2acme", "acme", "admin")));
    assert!(whoami(&app, &good).await.is_some());
    let org = json!({"id": "org_2acme", "slg": "acme", "rol": "admin"});
    let base = with(with(claims(), "sub", json!("user_2eve")), "o", org);
    let expired = with(
        with(
            with(base.clone(), "exp", json!(now() - 120)),
            "iat",
            json!(now() - 180),
        ),
        "nbf",
        json!(now() - 180),
    );
    let foreign_party = with(base.clone(), "azp", json!("https://evil.example"));
    let foreign_issuer = with(base, "iss", json!("https://clerk.evil.example"));

    for (what, claims) in [
        ("expired", expired),
        ("wrong azp", foreign_party),
        ("wrong iss", foreign_issuer),
    ] {
        let jwt = sign(key_a(), &claims);
        assert_eq!(whoami(&app, &jwt).await, None, "{what}");
        let cookie = format!("__session={jwt}");
        let viewer: Option<Viewer> = app.call(&cookie, "auth/whoami", &[]).await.ok().json();
        assert_eq!(viewer, None, "{what} (cookie)");
        for (endpoint, form) in [
            ("orgs/page", vec![("slug", "acme")]),
            ("orgs/rename", vec![("slug", "acme"), ("name", "Hijacked")]),
            ("orgs/create", vec![("name", "Mine")]),
        ] {
            let reply = bearer(&app, &jwt, endpoint, &form).await;
            assert_eq!(reply.status, 401, "{what} {endpoint}: {}", reply.body);
            assert_eq!(reply.error(), AppError::Unauthorized);
        }
    }
    let viewer = whoami(&app, &good).await.unwrap();
    assert_eq!(viewer.orgs.len(), 2);
    assert!(viewer.orgs.iter().all(|o| o.name != "Hijacked"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn one_clerk_user_is_one_account() {
    let app = clerk_app().await;
    let first = whoami(&app, &token("user_2same", None)).await.unwrap();
    let second = whoami(
        &app,
        &token("user_2same", Some(("org_2x", "xylo", "member"))),
    )
    .await
    .unwrap();
    let third = whoami(&app, &token("user_2same", None)).await.unwrap();

    let accounts = count(
        &app,
        "select count(*) from accounts where clerk_user_id = $1",
        "user_2same",
    )
    .await;
    assert_eq!(accounts, 1);
    let personal = |v: &Viewer| v.orgs.iter().find(|o| o.personal).unwrap().slug.clone();
    assert_eq!(personal(&first), personal(&second));
    assert_eq!(personal(&first), personal(&third));
    assert_eq!(third.orgs.len(), 2, "{third:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_clerk_user_arriving_in_several_requests_at_once_gets_one_account() {
    let app = clerk_app().await;
    // No org claim here; a new org seen by concurrent requests is the next test.
    let tokens: Vec<String> = (0..4).map(|_| token("user_2race", None)).collect();

    let (a, b, c, d) = tokio::join!(
        bearer(&app, &tokens[0], "auth/whoami", &[]),
        bearer(&app, &tokens[1], "auth/whoami", &[]),
        bearer(&app, &tokens[2], "auth/whoami", &[]),
        bearer(&app, &tokens[3], "auth/whoami", &[]),
    );

    for reply in [&a, &b, &c, &d] {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let accounts = count(
        &app,
        "select count(*) from accounts where clerk_user_id = $1",
        "user_2race",
    )
    .await;
    assert_eq!(accounts, 1);
    let viewer = whoami(&app, &tokens[0]).await.unwrap();
    assert_eq!(viewer.orgs.len(), 1, "{viewer:?}");
    assert!(viewer.orgs[0].personal);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn two_clerk_orgs_are_two_tenants() {
    let app = clerk_app().await;
    let alpha = token("user_2alpha", Some(("org_2alpha", "alpha", "admin")));
    let bravo = token("user_2bravo", Some(("org_2bravo", "bravo", "admin")));
    assert!(whoami(&app, &alpha).await.is_some());
    let bravo_viewer = whoami(&app, &bravo).await.unwrap();
    let before: tldw::domain::OrgPage = bearer(&app, &bravo, "orgs/page", &[("slug", "bravo")])
        .await
        .ok()
        .json();
    let bravo_member = before.members[0].user_id.to_string();

    for (endpoint, form) in [
        ("orgs/page", vec![("slug", "bravo")]),
        ("orgs/rename", vec![("slug", "bravo"), ("name", "Taken")]),
        (
            "invitations/create",
            vec![
                ("slug", "bravo"),
                ("email", "spy@example.com"),
                ("role", "admin"),
            ],
        ),
        (
            "orgs/remove-member",
            vec![("slug", "alpha"), ("user_id", bravo_member.as_str())],
        ),
    ] {
        let reply = bearer(&app, &alpha, endpoint, &form).await;
        assert_eq!(reply.status, 404, "{endpoint}: {}", reply.body);
    }
    let alpha_viewer = whoami(&app, &alpha).await.unwrap();
    assert!(!alpha_viewer.orgs.iter().any(|o| o.slug == "bravo"));
    assert_eq!(whoami(&app, &bravo).await.unwrap(), bravo_viewer);
    let after: tldw::domain::OrgPage = bearer(&app, &bravo, "orgs/page", &[("slug", "bravo")])
        .await
        .ok()
        .json();
    assert_eq!(after, before);

    // An org slug in a token cannot claim an existing tenant either: a
    // different Clerk org that says "bravo" gets an org of its own.
    let impostor = token("user_2mallory", Some(("org_2other", "bravo", "admin")));
    let viewer = whoami(&app, &impostor).await.unwrap();
    let active = viewer.active_slug.unwrap();
    assert_ne!(active, "bravo");
    let reply = bearer(&app, &impostor, "orgs/page", &[("slug", "bravo")]).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    app.stop().await.unwrap();
}

/// The module docs of src/server/auth/clerk_link.rs promise that "two
/// processes seeing the same new org at once create one row (the second
/// insert is a no-op)".
#[tokio::test]
async fn members_of_a_new_clerk_org_arriving_together_share_one_tenant() {
    let app = clerk_app().await;
    let users = ["user_2m1", "user_2m2", "user_2m3", "user_2m4"];
    // The accounts exist already; only the org is new.
    for user in users {
        whoami(&app, &token(user, None)).await.unwrap();
    }
    let tokens: Vec<String> = users
        .iter()
        .map(|user| token(user, Some(("org_2fresh", "fresh", "member"))))
        .collect();

    let (a, b, c, d) = tokio::join!(
        bearer(&app, &tokens[0], "auth/whoami", &[]),
        bearer(&app, &tokens[1], "auth/whoami", &[]),
        bearer(&app, &tokens[2], "auth/whoami", &[]),
        bearer(&app, &tokens[3], "auth/whoami", &[]),
    );

    for reply in [&a, &b, &c, &d] {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let page: tldw::domain::OrgPage = bearer(&app, &tokens[0], "orgs/page", &[("slug", "fresh")])
        .await
        .ok()
        .json();
    assert_eq!(page.members.len(), 4, "{page:?}");
    app.stop().await.unwrap();
}
