//! The whole app with Clerk sign-in, against a local JWKS server: Clerk's
//! users and orgs become ours on first sight, and the same extractors (and
//! tenant boundaries) apply.

use serde_json::json;
use tldw::{
    domain::{OrgRole, Viewer},
    error::AppError,
};

use crate::{
    clerk::{
        APP_ORIGIN, FakeClerk, ISSUER, SECRET_KEY, claims, clerk_user, key_a, now, sign, with,
    },
    helpers::{Reply, TestApp, spawn_app_with},
};

/// The `whsec_…` secret of the Clerk webhook endpoint.
const WEBHOOK_SECRET: &str = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

async fn clerk_app() -> TestApp {
    clerk_app_and_fake().await.0
}

/// Clerk mode with the Backend API (emails) and webhooks configured.
async fn clerk_app_and_fake() -> (TestApp, FakeClerk) {
    let clerk = FakeClerk::start(&[key_a()]).await;
    let app = spawn_app_with(&[
        ("CLERK_ISSUER", ISSUER),
        ("CLERK_JWKS_URL", clerk.jwks_url.as_str()),
        ("CLERK_AUTHORIZED_PARTIES", APP_ORIGIN),
        ("CLERK_API_URL", clerk.api_url.as_str()),
        ("CLERK_SECRET_KEY", SECRET_KEY),
        ("CLERK_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ])
    .await;
    (app, clerk)
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

/// Counts as a superuser: memberships (RLS) of every org are visible.
async fn count(app: &TestApp, sql: &str, bind: &str) -> i64 {
    let mut conn = crate::helpers::superuser_conn(&app.db).await;
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
    assert_eq!(second.orgs.len(), 2, "{second:?}");
    // A token without the org does not open it (Clerk may have removed the
    // member): the personal org only.
    assert_eq!(third.orgs.len(), 1, "{third:?}");
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

// ---- Clerk decides: tokens, webhooks and the Backend API (issue 12) ----

/// A token for `sub` issued at `iat` (Unix seconds), naming `org` if given.
fn token_at(sub: &str, org: Option<(&str, &str, &str)>, iat: i64) -> String {
    let mut claims = with(claims(), "sub", json!(sub));
    claims = with(
        with(with(claims, "iat", json!(iat)), "nbf", json!(iat - 5)),
        "exp",
        json!(iat + 60),
    );
    if let Some((id, slug, role)) = org {
        claims = with(claims, "o", json!({"id": id, "slg": slug, "rol": role}));
    }
    sign(key_a(), &claims)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A REST call with a Clerk token.
async fn rest(app: &TestApp, token: &str, method: reqwest::Method, path: &str) -> Reply {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if method == reqwest::Method::PATCH {
        request = request.json(&json!({"name": "Renamed"}));
    }
    Reply::read(request.send().await.unwrap()).await
}

/// The org page, rendered for a Clerk token.
async fn page(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A Clerk event envelope (timestamp in milliseconds, as Clerk sends it).
fn clerk_event(kind: &str, data: serde_json::Value, at_ms: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": data,
        "object": "event",
        "type": kind,
        "timestamp": at_ms,
        "instance_id": "ins_test",
        "event_attributes": {"http_request": {"client_ip": "192.0.2.1", "user_agent": "test"}},
    }))
    .unwrap()
}

/// An organizationMembership object as Clerk documents it.
fn membership(org: &str, user: &str, role: &str) -> serde_json::Value {
    json!({
        "id": format!("orgmem_{org}_{user}"),
        "object": "organization_membership",
        "role": role,
        "role_name": "Member",
        "permissions": ["org:sys_memberships:read"],
        "organization": {
            "id": org, "object": "organization", "name": "Acme", "slug": "acme",
            "members_count": 2, "max_allowed_memberships": 5, "created_at": 1, "updated_at": 1,
        },
        "public_user_data": {
            "user_id": user, "identifier": "someone@example.com", "first_name": null,
            "last_name": null, "image_url": "https://img.clerk.com/x", "has_image": false,
        },
        "public_metadata": {},
        "private_metadata": {},
        "created_at": 1,
        "updated_at": 1,
    })
}

fn svix_signature(id: &str, timestamp: i64, body: &[u8]) -> String {
    use tldw::server::webhooks::signature::{WebhookSecret, WebhookVerifier};
    WebhookVerifier::sign(
        &WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
        id,
        timestamp,
        body,
    )
}

async fn post_clerk(app: &TestApp, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let mut request = app
        .client
        .post(app.url("/webhooks/clerk"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    Reply::read(request.body(body).send().await.unwrap()).await
}

/// Delivers `body` as Svix does, signed now.
async fn deliver(app: &TestApp, id: &str, body: &[u8]) -> Reply {
    let timestamp = now();
    post_clerk(
        app,
        &[
            ("svix-id", id.to_owned()),
            ("svix-timestamp", timestamp.to_string()),
            ("svix-signature", svix_signature(id, timestamp, body)),
        ],
        body.to_vec(),
    )
    .await
}

#[track_caller]
fn outcome(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json::<serde_json::Value>()["outcome"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn ledger_rows(app: &TestApp, svix_id: &str) -> i64 {
    count(
        app,
        "select count(*) from webhook_events where webhook_id = 'clerk:' || $1",
        svix_id,
    )
    .await
}

async fn admins_named(app: &TestApp, clerk_user: &str) -> i64 {
    count(
        app,
        "select count(*) from users u join accounts a on a.id = u.account_id
         where a.clerk_user_id = $1 and u.role = 'admin'",
        clerk_user,
    )
    .await
}

async fn members_of_acme(app: &TestApp, clerk_user: &str) -> i64 {
    count(
        app,
        "select count(*) from users u join accounts a on a.id = u.account_id
         join orgs o on o.id = u.org_id where a.clerk_user_id = $1 and o.slug = 'acme'",
        clerk_user,
    )
    .await
}

/// Security review finding 1: a member removed from a Clerk org (their
/// tokens no longer name it) kept full access through the stored row.
#[tokio::test]
async fn a_token_that_does_not_name_a_clerk_org_gets_404_on_its_pages_server_fns_and_rest() {
    let app = clerk_app().await;
    let admin = token("user_2gone", Some(("org_2acme", "acme", "admin")));
    assert!(whoami(&app, &admin).await.is_some());
    assert_eq!(
        rest(&app, &admin, reqwest::Method::GET, "/api/v1/orgs/acme")
            .await
            .status,
        200
    );
    let (status, html) = page(&app, &admin, "/o/acme/settings").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("data-testid=\"members\""),
        "the admin sees the page"
    );

    // Removed in Clerk (or working elsewhere): the token names no org, or another.
    let no_org = token("user_2gone", None);
    let other_org = token("user_2gone", Some(("org_2other", "other", "admin")));
    for (what, jwt) in [("no org", &no_org), ("another org", &other_org)] {
        for (endpoint, form) in [
            ("orgs/page", vec![("slug", "acme")]),
            ("orgs/rename", vec![("slug", "acme"), ("name", "Mine now")]),
            (
                "invitations/create",
                vec![
                    ("slug", "acme"),
                    ("email", "friend@example.com"),
                    ("role", "admin"),
                ],
            ),
        ] {
            let reply = bearer(&app, jwt, endpoint, &form).await;
            assert_eq!(reply.status, 404, "{what} {endpoint}: {}", reply.body);
        }
        for (method, path) in [
            (reqwest::Method::GET, "/api/v1/orgs/acme"),
            (reqwest::Method::PATCH, "/api/v1/orgs/acme"),
            (reqwest::Method::GET, "/api/v1/orgs/acme/members"),
            (reqwest::Method::GET, "/api/v1/orgs/acme/invitations"),
            (reqwest::Method::GET, "/api/v1/orgs/acme/usage"),
            (reqwest::Method::GET, "/api/v1/orgs/acme/billing"),
        ] {
            let reply = rest(&app, jwt, method.clone(), path).await;
            assert_eq!(reply.status, 404, "{what} {method} {path}: {}", reply.body);
        }
        for path in ["/o/acme", "/o/acme/settings"] {
            let (status, html) = page(&app, jwt, path).await;
            assert_eq!(status, 404, "{what} {path}");
            assert!(!html.contains("data-testid=\"members\""), "{what} {path}");
        }
        let viewer = whoami(&app, jwt).await.unwrap();
        assert!(
            !viewer.orgs.iter().any(|o| o.slug == "acme"),
            "{what}: {viewer:?}"
        );
        let me: serde_json::Value = rest(&app, jwt, reqwest::Method::GET, "/api/v1/me")
            .await
            .ok()
            .json();
        assert!(!me.to_string().contains("\"acme\""), "{what}: {me}");
    }
    // The stored row is still there: the token decided, not the row.
    assert_eq!(members_of_acme(&app, "user_2gone").await, 1);
    // A member's own personal org and the orgs made here stay open.
    let created = bearer(&app, &no_org, "orgs/create", &[("name", "Side project")]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let viewer = whoami(&app, &no_org).await.unwrap();
    assert_eq!(viewer.orgs.len(), 2, "{viewer:?}");
    assert!(viewer.orgs.iter().any(|o| o.personal));
    assert!(viewer.orgs.iter().any(|o| o.slug == "side-project"));
    let reply = bearer(&app, &no_org, "orgs/page", &[("slug", "side-project")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Named again (still a member in Clerk): open again.
    let back = bearer(&app, &admin, "orgs/page", &[("slug", "acme")]).await;
    assert_eq!(back.status, 200, "{}", back.body);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_demoted_admins_token_gets_403_on_admin_actions() {
    let app = clerk_app().await;
    // Clerk's timeline, oldest first: admin, demoted, promoted, demoted by webhook.
    let admin = token_at(
        "user_2demo",
        Some(("org_2acme", "acme", "admin")),
        now() - 50,
    );
    let page_json: tldw::domain::OrgPage = bearer(&app, &admin, "orgs/page", &[("slug", "acme")])
        .await
        .ok()
        .json();
    assert!(page_json.invitations.is_some());

    let demoted = token_at(
        "user_2demo",
        Some(("org_2acme", "acme", "member")),
        now() - 45,
    );
    for (endpoint, form) in [
        (
            "orgs/rename",
            vec![("slug", "acme"), ("name", "Still mine")],
        ),
        (
            "invitations/create",
            vec![
                ("slug", "acme"),
                ("email", "friend@example.com"),
                ("role", "admin"),
            ],
        ),
    ] {
        let reply = bearer(&app, &demoted, endpoint, &form).await;
        assert_eq!(reply.status, 403, "{endpoint}: {}", reply.body);
    }
    for (method, path) in [
        (reqwest::Method::PATCH, "/api/v1/orgs/acme"),
        (reqwest::Method::GET, "/api/v1/orgs/acme/invitations"),
    ] {
        let reply = rest(&app, &demoted, method.clone(), path).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
    }
    let page_json: tldw::domain::OrgPage = bearer(&app, &demoted, "orgs/page", &[("slug", "acme")])
        .await
        .ok()
        .json();
    assert_eq!(page_json.invitations, None);
    assert_eq!(page_json.org.role, OrgRole::Member);

    // Promoted again, then demoted by a webhook: an admin token issued
    // before the demotion (still within its 60 s) is a member's.
    let promoted = token_at(
        "user_2demo",
        Some(("org_2acme", "acme", "admin")),
        now() - 40,
    );
    let reply = bearer(
        &app,
        &promoted,
        "orgs/rename",
        &[("slug", "acme"), ("name", "Acme")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = clerk_event(
        "organizationMembership.updated",
        membership("org_2acme", "user_2demo", "org:member"),
        now_ms() - 20_000,
    );
    assert_eq!(
        outcome(&deliver(&app, "msg_demote", &body).await),
        "applied"
    );
    let stale_admin = token_at(
        "user_2demo",
        Some(("org_2acme", "acme", "admin")),
        now() - 30,
    );
    let reply = bearer(
        &app,
        &stale_admin,
        "orgs/rename",
        &[("slug", "acme"), ("name", "x")],
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    // A token issued after the webhook is Clerk's newer word.
    let fresh_admin = token_at("user_2demo", Some(("org_2acme", "acme", "admin")), now());
    let reply = bearer(
        &app,
        &fresh_admin,
        "orgs/rename",
        &[("slug", "acme"), ("name", "Acme")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn clerk_webhooks_need_a_valid_svix_signature() {
    let app = clerk_app().await;
    let body = clerk_event("user.created", json!({"id": "user_2new"}), now_ms());
    let ts = now();
    let good = svix_signature("msg_sig", ts, &body);
    let headers = |id: &str, ts: i64, sig: &str| {
        vec![
            ("svix-id", id.to_owned()),
            ("svix-timestamp", ts.to_string()),
            ("svix-signature", sig.to_owned()),
        ]
    };

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let reply = post_clerk(&app, &headers("msg_sig", ts, &good), tampered).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let other_id = post_clerk(&app, &headers("msg_other", ts, &good), body.clone()).await;
    assert_eq!(other_id.status, 403);
    let old = ts - 600;
    let stale = svix_signature("msg_sig", old, &body);
    let reply = post_clerk(&app, &headers("msg_sig", old, &stale), body.clone()).await;
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("too old"), "{}", reply.body);
    // Standard Webhooks names are not Svix's: Clerk never sends them.
    let renamed = vec![
        ("webhook-id", "msg_sig".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", good.clone()),
    ];
    let reply = post_clerk(&app, &renamed, body.clone()).await;
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("svix-id"), "{}", reply.body);
    for svix_id in ["msg_sig", "msg_other"] {
        assert_eq!(ledger_rows(&app, svix_id).await, 0, "nothing recorded");
    }

    let reply = post_clerk(&app, &headers("msg_sig", ts, &good), body.clone()).await;
    assert_eq!(outcome(&reply), "ignored");
    assert_eq!(ledger_rows(&app, "msg_sig").await, 1);
    let reply = post_clerk(
        &app,
        &headers("msg_sig2", ts, &svix_signature("msg_sig2", ts, b"{}")),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(reply.status, 400, "a signed body that is not an event");
    app.stop().await.unwrap();

    // Without CLERK_WEBHOOK_SECRET (or Clerk) there is nothing to verify with.
    let builtin = spawn_app_with(&[]).await;
    let reply = post_clerk(&builtin, &headers("msg_sig", ts, &good), body).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    builtin.stop().await.unwrap();
}

#[tokio::test]
async fn a_removed_member_loses_the_org_and_an_older_token_cannot_bring_it_back() {
    let app = clerk_app().await;
    let ada = token_at(
        "user_2ada",
        Some(("org_2acme", "acme", "admin")),
        now() - 30,
    );
    let bob = token("user_2bob", Some(("org_2acme", "acme", "member")));
    assert!(whoami(&app, &ada).await.is_some());
    assert!(whoami(&app, &bob).await.is_some());
    assert_eq!(members_of_acme(&app, "user_2ada").await, 1);

    let removed_at = now_ms() - 10_000;
    let body = clerk_event(
        "organizationMembership.deleted",
        membership("org_2acme", "user_2ada", "org:admin"),
        removed_at,
    );
    assert_eq!(outcome(&deliver(&app, "msg_rm", &body).await), "applied");
    assert_eq!(members_of_acme(&app, "user_2ada").await, 0);
    // The same delivery again (Svix retries): recorded once, nothing new.
    assert_eq!(outcome(&deliver(&app, "msg_rm", &body).await), "duplicate");
    assert_eq!(ledger_rows(&app, "msg_rm").await, 1);

    // Ada's token from before the removal still verifies for a few seconds
    // more, but no longer opens the org, nor re-creates the row.
    let reply = bearer(&app, &ada, "orgs/page", &[("slug", "acme")]).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let viewer = whoami(&app, &ada).await.unwrap();
    assert!(!viewer.orgs.iter().any(|o| o.slug == "acme"), "{viewer:?}");
    assert_eq!(members_of_acme(&app, "user_2ada").await, 0);
    // The org and its other members stay.
    let page_json: tldw::domain::OrgPage = bearer(&app, &bob, "orgs/page", &[("slug", "acme")])
        .await
        .ok()
        .json();
    assert_eq!(page_json.members.len(), 1);

    // Added again in Clerk: a token issued after the removal opens it.
    let again = token_at("user_2ada", Some(("org_2acme", "acme", "member")), now());
    let reply = bearer(&app, &again, "orgs/page", &[("slug", "acme")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(members_of_acme(&app, "user_2ada").await, 1);
    // An older removal delivered late is stale: it does not undo the re-add.
    let late = clerk_event(
        "organizationMembership.deleted",
        membership("org_2acme", "user_2ada", "org:admin"),
        removed_at - 5_000,
    );
    assert_eq!(outcome(&deliver(&app, "msg_rm_late", &late).await), "stale");
    assert_eq!(members_of_acme(&app, "user_2ada").await, 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn membership_updates_apply_newest_first_whatever_the_delivery_order() {
    let app = clerk_app().await;
    let jwt = token_at(
        "user_2ord",
        Some(("org_2acme", "acme", "member")),
        now() - 50,
    );
    assert!(whoami(&app, &jwt).await.is_some());

    let t = now_ms() - 30_000;
    let newer = clerk_event(
        "organizationMembership.updated",
        membership("org_2acme", "user_2ord", "org:admin"),
        t + 2_000,
    );
    let older = clerk_event(
        "organizationMembership.updated",
        membership("org_2acme", "user_2ord", "org:member"),
        t,
    );
    assert_eq!(outcome(&deliver(&app, "msg_new", &newer).await), "applied");
    assert_eq!(admins_named(&app, "user_2ord").await, 1);
    assert_eq!(outcome(&deliver(&app, "msg_old", &older).await), "stale");
    assert_eq!(
        admins_named(&app, "user_2ord").await,
        1,
        "the older event did not win"
    );
    // A membership we never stored: recorded, nothing created.
    let unknown = clerk_event(
        "organizationMembership.updated",
        membership("org_2acme", "user_2never", "org:admin"),
        t,
    );
    assert_eq!(
        outcome(&deliver(&app, "msg_unknown", &unknown).await),
        "unknown"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from accounts where clerk_user_id = $1",
            "user_2never"
        )
        .await,
        0
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_copies_of_one_clerk_event_apply_once() {
    let app = clerk_app().await;
    let jwt = token_at(
        "user_2dup",
        Some(("org_2acme", "acme", "admin")),
        now() - 50,
    );
    assert!(whoami(&app, &jwt).await.is_some());
    let body = clerk_event(
        "organizationMembership.deleted",
        membership("org_2acme", "user_2dup", "org:admin"),
        now_ms() - 1_000,
    );
    let replies =
        futures_util::future::join_all((0..10).map(|_| deliver(&app, "msg_many", &body))).await;
    let outcomes: Vec<String> = replies.iter().map(outcome).collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().all(|o| o == "applied" || o == "duplicate"),
        "{outcomes:?}"
    );
    assert_eq!(ledger_rows(&app, "msg_many").await, 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_user_deleted_in_clerk_is_signed_out_everywhere_and_the_orgs_stay() {
    let app = clerk_app().await;
    let gone = token("user_2del", Some(("org_2acme", "acme", "admin")));
    let stays = token("user_2stay", Some(("org_2acme", "acme", "member")));
    let viewer = whoami(&app, &gone).await.unwrap();
    let personal = viewer
        .orgs
        .iter()
        .find(|o| o.personal)
        .unwrap()
        .slug
        .clone();
    assert!(personal.starts_with("p-"), "{personal}");
    assert!(whoami(&app, &stays).await.is_some());

    let body = clerk_event(
        "user.deleted",
        json!({"id": "user_2del", "object": "user", "deleted": true}),
        now_ms(),
    );
    assert_eq!(
        outcome(&deliver(&app, "msg_user_del", &body).await),
        "applied"
    );
    assert_eq!(
        outcome(&deliver(&app, "msg_user_del", &body).await),
        "duplicate"
    );

    // Its token (still unexpired) is no session, and cannot re-create it.
    assert_eq!(whoami(&app, &gone).await, None);
    let reply = bearer(&app, &gone, "orgs/page", &[("slug", "acme")]).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let fresh = token("user_2del", None);
    assert_eq!(whoami(&app, &fresh).await, None);
    assert_eq!(
        count(
            &app,
            "select count(*) from accounts where clerk_user_id = $1",
            "user_2del"
        )
        .await,
        0
    );
    // The orgs, and everyone else in them, stay.
    let page_json: tldw::domain::OrgPage = bearer(&app, &stays, "orgs/page", &[("slug", "acme")])
        .await
        .ok()
        .json();
    assert_eq!(page_json.members.len(), 1);
    let mut su = crate::helpers::superuser_conn(&app.db).await;
    let orgs: i64 = sqlx::query_scalar("select count(*) from orgs where slug = any($1)")
        .bind(vec![personal, "acme".to_owned()])
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(orgs, 2, "the personal org and acme are kept");

    // A user we never saw: the tombstone holds for their first token too.
    let body = clerk_event(
        "user.deleted",
        json!({"id": "user_2unseen", "deleted": true}),
        now_ms(),
    );
    assert_eq!(
        outcome(&deliver(&app, "msg_unseen", &body).await),
        "unknown"
    );
    assert_eq!(whoami(&app, &token("user_2unseen", None)).await, None);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_clerk_users_verified_primary_email_comes_from_the_backend_api() {
    let (app, clerk) = clerk_app_and_fake().await;
    clerk.add_user(clerk_user("user_2mail", "Mail@Example.com", true));
    clerk.add_user(clerk_user("user_2unverified", "nope@example.com", false));

    let viewer = whoami(&app, &token("user_2mail", None)).await.unwrap();
    assert_eq!(viewer.email.as_deref(), Some("mail@example.com"));
    assert_eq!(clerk.api_hits(), 1);
    // Stored: later tokens need no lookup.
    let viewer = whoami(
        &app,
        &token("user_2mail", Some(("org_2x", "xylo", "member"))),
    )
    .await
    .unwrap();
    assert_eq!(viewer.email.as_deref(), Some("mail@example.com"));
    assert_eq!(clerk.api_hits(), 1);

    // An unverified primary address proves nothing: no email.
    let viewer = whoami(&app, &token("user_2unverified", None))
        .await
        .unwrap();
    assert_eq!(viewer.email, None);
    // A token that carries the address (a customized session token) needs no lookup.
    let hits = clerk.api_hits();
    let claimed = sign(
        key_a(),
        &with(
            with(claims(), "sub", json!("user_2claim")),
            "email",
            json!("claim@example.com"),
        ),
    );
    assert_eq!(
        whoami(&app, &claimed).await.unwrap().email.as_deref(),
        Some("claim@example.com")
    );
    assert_eq!(clerk.api_hits(), hits);

    // With an email, invitations work for Clerk users.
    let owner = format!("__session={}", token("user_2claim", None));
    let team = app.create_org(&owner, "Team").await;
    let invitee = format!("__session={}", token("user_2mail", None));
    app.add_member(&owner, &team, &invitee, "mail@example.com", "member")
        .await;
    let viewer = app.whoami(&invitee).await.unwrap();
    assert!(viewer.orgs.iter().any(|o| o.slug == team), "{viewer:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_secret_key_clerk_users_have_no_email_and_clerk_is_not_asked() {
    let clerk = FakeClerk::start(&[key_a()]).await;
    clerk.add_user(clerk_user("user_2nokey", "nokey@example.com", true));
    let app = spawn_app_with(&[
        ("CLERK_ISSUER", ISSUER),
        ("CLERK_JWKS_URL", clerk.jwks_url.as_str()),
        ("CLERK_AUTHORIZED_PARTIES", APP_ORIGIN),
        ("CLERK_API_URL", clerk.api_url.as_str()),
    ])
    .await;
    let viewer = whoami(&app, &token("user_2nokey", None)).await.unwrap();
    assert_eq!(viewer.email, None);
    assert_eq!(clerk.api_hits(), 0);
    app.stop().await.unwrap();

    // A wrong key is refused by Clerk: signed in all the same, no email.
    let app = spawn_app_with(&[
        ("CLERK_ISSUER", ISSUER),
        ("CLERK_JWKS_URL", clerk.jwks_url.as_str()),
        ("CLERK_AUTHORIZED_PARTIES", APP_ORIGIN),
        ("CLERK_API_URL", clerk.api_url.as_str()),
        ("CLERK_SECRET_KEY", "sk_test_wrong"),
    ])
    .await;
    let viewer = whoami(&app, &token("user_2nokey", None)).await.unwrap();
    assert_eq!(viewer.email, None);
    assert_eq!(clerk.api_hits(), 1, "a refused key is not retried");
    app.stop().await.unwrap();
}

/// Security review finding 14: 8 random tries over 65,536 suffixes. With
/// every suffix of one name taken, creating an org by that name was a 500.
#[tokio::test]
async fn a_name_whose_every_short_suffix_is_taken_still_gets_an_org() {
    let app = clerk_app().await;
    let mut su = crate::helpers::superuser_conn(&app.db).await;
    sqlx::query(
        "insert into orgs (id, slug, name)
         select gen_random_uuid(), s, 'Acme' from (
             select 'acme' as s
             union all select 'acme-' || lpad(to_hex(g), 4, '0') from generate_series(0, 65535) g
         ) slugs",
    )
    .execute(&mut su)
    .await
    .unwrap();

    let jwt = token("user_2full", None);
    let reply = bearer(&app, &jwt, "orgs/create", &[("name", "Acme")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let viewer = whoami(&app, &jwt).await.unwrap();
    let slug = &viewer.orgs.iter().find(|o| !o.personal).unwrap().slug;
    assert!(
        slug.starts_with("acme-") && slug.len() == "acme-".len() + 8,
        "{slug}"
    );
    app.stop().await.unwrap();
}
