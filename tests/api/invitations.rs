//! Invitations end to end: a single-use link, stored as a hash, that only
//! the invited address may accept, before it expires or is revoked.

use tldw::{
    domain::{InvitationPreview, OrgId, OrgRole},
    error::AppError,
};

use crate::helpers::{TestApp, as_owner_in_org, invite_token, spawn_app};

const INVITEE: &str = "invitee@example.com";

/// An org run by an owner and an admin, whose admin has invited INVITEE.
struct Setup {
    app: TestApp,
    owner: String,
    admin: String,
    invitee: String,
    slug: String,
    org: OrgId,
    token: String,
}

async fn setup(role: &str) -> Setup {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com").await;
    let admin = app.sign_up("admin@example.com").await;
    let invitee = app.sign_up(INVITEE).await;
    let slug = app.create_org(&owner, "Hosts").await;
    app.add_member(&owner, &slug, &admin, "admin@example.com", "admin")
        .await;
    let org = app.org_page(&owner, &slug).await.org.id;

    let reply = app
        .call(
            &admin,
            "invitations/create",
            &[
                ("slug", &slug),
                ("email", " Invitee@Example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    reply.ok();
    let location = reply.location().unwrap();
    assert!(
        location.starts_with(&format!("/o/{slug}/settings?invite=")),
        "{location}"
    );
    let token = invite_token(&reply);
    // The role under test, when not admin: a second, separate invitation.
    let token = if role == "admin" {
        token
    } else {
        app.call(
            &admin,
            "invitations/revoke",
            &[
                ("slug", &slug),
                ("id", &invitation_id(&app, &owner, &slug).await),
            ],
        )
        .await
        .ok();
        app.invite(&admin, &slug, INVITEE, role).await
    };
    Setup {
        app,
        owner,
        admin,
        invitee,
        slug,
        org,
        token,
    }
}

async fn invitation_id(app: &TestApp, cookie: &str, slug: &str) -> String {
    let page = app.org_page(cookie, slug).await;
    page.invitations
        .unwrap()
        .into_iter()
        .find(|i| i.email == INVITEE)
        .expect("no open invitation")
        .id
        .to_string()
}

async fn accept(app: &TestApp, cookie: &str, token: &str) -> crate::helpers::Reply {
    app.call(cookie, "invitations/accept", &[("token", token)])
        .await
}

async fn preview(app: &TestApp, token: &str) -> crate::helpers::Reply {
    app.call("", "invitations/preview", &[("token", token)])
        .await
}

#[tokio::test]
async fn the_invited_person_previews_accepts_and_becomes_a_member() {
    let s = setup("admin").await;

    let shown: InvitationPreview = preview(&s.app, &s.token).await.ok().json();
    assert_eq!(
        shown,
        InvitationPreview {
            org_name: "Hosts".into(),
            email: INVITEE.into(),
            role: OrgRole::Admin,
        }
    );
    let page = s.app.org_page(&s.admin, &s.slug).await;
    assert_eq!(page.invitations.as_ref().unwrap().len(), 1);

    let reply = accept(&s.app, &s.invitee, &s.token).await;
    reply.ok();
    assert_eq!(reply.location(), Some("/app"));

    let viewer = s.app.whoami(&s.invitee).await.unwrap();
    let joined = viewer.orgs.iter().find(|o| o.slug == s.slug).unwrap();
    assert_eq!(joined.role, OrgRole::Admin);
    // Accepting switches to the org.
    assert_eq!(viewer.active_slug.as_deref(), Some(s.slug.as_str()));
    let page = s.app.org_page(&s.owner, &s.slug).await;
    let member = page
        .members
        .iter()
        .find(|m| m.email.as_deref() == Some(INVITEE))
        .unwrap();
    assert_eq!(member.role, OrgRole::Admin);
    assert_eq!(page.invitations.unwrap(), vec![]);

    // The link is single-use.
    let again = accept(&s.app, &s.invitee, &s.token).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(matches!(again.error(), AppError::Conflict(_)));
    assert_eq!(preview(&s.app, &s.token).await.status, 409);
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_member_invitation_makes_a_member() {
    let s = setup("member").await;
    accept(&s.app, &s.invitee, &s.token).await.ok();
    let viewer = s.app.whoami(&s.invitee).await.unwrap();
    let joined = viewer.orgs.iter().find(|o| o.slug == s.slug).unwrap();
    assert_eq!(joined.role, OrgRole::Member);
    // Members do not see the invitations list.
    assert_eq!(s.app.org_page(&s.invitee, &s.slug).await.invitations, None);
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_revoked_invitation_cannot_be_used() {
    let s = setup("admin").await;
    let id = invitation_id(&s.app, &s.owner, &s.slug).await;

    s.app
        .call(
            &s.admin,
            "invitations/revoke",
            &[("slug", &s.slug), ("id", &id)],
        )
        .await
        .ok();

    let reply = accept(&s.app, &s.invitee, &s.token).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(
        reply.error().to_string().contains("revoked"),
        "{}",
        reply.body
    );
    assert_eq!(preview(&s.app, &s.token).await.status, 409);
    // Revoking twice finds nothing left to revoke.
    let twice = s
        .app
        .call(
            &s.admin,
            "invitations/revoke",
            &[("slug", &s.slug), ("id", &id)],
        )
        .await;
    assert_eq!(twice.status, 404, "{}", twice.body);
    let viewer = s.app.whoami(&s.invitee).await.unwrap();
    assert!(!viewer.orgs.iter().any(|o| o.slug == s.slug));
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_invitation_cannot_be_used() {
    let s = setup("admin").await;
    let changed = as_owner_in_org(
        &s.app.db,
        s.org,
        "update invitations set expires_at = now() - interval '1 second' where accepted_at is null",
    )
    .await;
    assert_eq!(changed, 1);

    let reply = accept(&s.app, &s.invitee, &s.token).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(
        reply.error().to_string().contains("expired"),
        "{}",
        reply.body
    );
    assert_eq!(preview(&s.app, &s.token).await.status, 409);
    // Expired links drop off the list.
    let page = s.app.org_page(&s.owner, &s.slug).await;
    assert_eq!(page.invitations.unwrap(), vec![]);
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn an_invitation_lasts_seven_days() {
    let s = setup("admin").await;
    let mut conn = s.app.db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(s.org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let days: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - created_at)::float8 / 86400 from invitations
         where email = $1",
    )
    .bind(INVITEE)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!((days - 7.0).abs() < 0.01, "{days}");
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn someone_else_cannot_accept_it_and_is_told_whose_it_is() {
    let s = setup("admin").await;
    let stranger = s.app.sign_up("stranger@example.com").await;

    let reply = accept(&s.app, &stranger, &s.token).await;

    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.error().to_string().contains(INVITEE),
        "{}",
        reply.body
    );
    let viewer = s.app.whoami(&stranger).await.unwrap();
    assert!(!viewer.orgs.iter().any(|o| o.slug == s.slug));
    // A visitor must sign in first.
    assert_eq!(accept(&s.app, "", &s.token).await.status, 401);
    // The invitation is still there for the right person.
    accept(&s.app, &s.invitee, &s.token).await.ok();
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn garbage_and_other_orgs_tokens_are_not_found() {
    let s = setup("admin").await;
    // A second org with its own open invitation for the same person.
    let other = s.app.create_org(&s.owner, "Elsewhere").await;
    let other_org = s.app.org_page(&s.owner, &other).await.org.id;
    let other_token = s.app.invite(&s.owner, &other, INVITEE, "member").await;
    let (_, secret) = s.token.split_once('.').unwrap();
    let (_, other_secret) = other_token.split_once('.').unwrap();

    let forged = [
        "".to_owned(),
        "garbage".to_owned(),
        format!("{}.short", s.org.as_uuid().simple()),
        format!("not-a-uuid.{secret}"),
        // Hosts' secret presented as Elsewhere's, and the other way round.
        format!("{}.{secret}", other_org.as_uuid().simple()),
        format!("{}.{other_secret}", s.org.as_uuid().simple()),
        format!("{}.{}", s.org.as_uuid().simple(), "A".repeat(43)),
    ];
    for token in &forged {
        let shown = preview(&s.app, token).await;
        assert_eq!(shown.status, 404, "preview {token:?}: {}", shown.body);
        assert!(matches!(shown.error(), AppError::NotFound(_)));
        let taken = accept(&s.app, &s.invitee, token).await;
        assert_eq!(taken.status, 404, "accept {token:?}: {}", taken.body);
    }
    let viewer = s.app.whoami(&s.invitee).await.unwrap();
    assert_eq!(viewer.orgs.len(), 1, "{viewer:?}");
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn only_a_hash_of_the_token_is_stored() {
    let s = setup("admin").await;
    let (_, secret) = s.token.split_once('.').unwrap();
    let mut conn = s.app.db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(s.org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "select token_hash, row_to_json(i)::text from invitations i where email = $1",
    )
    .bind(INVITEE)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows.len(), 1);
    let (hash, row) = &rows[0];
    assert_eq!(hash.len(), 32);
    assert_ne!(hash.as_slice(), secret.as_bytes());
    assert!(!row.contains(secret) && !row.contains(&s.token), "{row}");
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn one_open_invitation_per_address_and_none_for_members() {
    let s = setup("admin").await;
    let again = s
        .app
        .call(
            &s.owner,
            "invitations/create",
            &[("slug", &s.slug), ("email", INVITEE), ("role", "member")],
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(again.error().field_message("email").is_some());
    let member = s
        .app
        .call(
            &s.owner,
            "invitations/create",
            &[
                ("slug", &s.slug),
                ("email", "admin@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(member.status, 422, "{}", member.body);
    assert!(member.error().field_message("email").is_some());
    let page = s.app.org_page(&s.owner, &s.slug).await;
    assert_eq!(page.invitations.unwrap().len(), 1);
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn members_cannot_invite() {
    let s = setup("member").await;
    accept(&s.app, &s.invitee, &s.token).await.ok();
    let reply = s
        .app
        .call(
            &s.invitee,
            "invitations/create",
            &[
                ("slug", &s.slug),
                ("email", "friend@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.error(), AppError::Forbidden);
    let page = s.app.org_page(&s.owner, &s.slug).await;
    assert_eq!(page.invitations.unwrap(), vec![]);
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn two_simultaneous_accepts_of_one_link_join_once() {
    let s = setup("admin").await;

    let (first, second) = tokio::join!(
        accept(&s.app, &s.invitee, &s.token),
        accept(&s.app, &s.invitee, &s.token)
    );

    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{first:?} {second:?}");
    let page = s.app.org_page(&s.owner, &s.slug).await;
    let memberships = page
        .members
        .iter()
        .filter(|m| m.email.as_deref() == Some(INVITEE))
        .count();
    assert_eq!(memberships, 1);
    s.app.stop().await.unwrap();
}
