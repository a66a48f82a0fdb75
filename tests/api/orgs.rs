//! Organizations through their server functions: the permission matrix,
//! last-owner protection, the personal org, and the cross-tenant matrix.

use tldw::{
    domain::{OrgPage, OrgRole},
    error::AppError,
};

use crate::helpers::{TestApp, member_id, spawn_app};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Rename,
    ChangeRole,
    RemoveMember,
    Invite,
    Revoke,
    TransferOwnership,
    Delete,
}

const ACTIONS: [Action; 7] = [
    Action::Rename,
    Action::ChangeRole,
    Action::RemoveMember,
    Action::Invite,
    Action::Revoke,
    Action::TransferOwnership,
    Action::Delete,
];

/// The matrix of src/domain/role.rs, written out again as the spec:
/// (owner, admin, member).
fn allowed(action: Action) -> [bool; 3] {
    match action {
        Action::Rename
        | Action::ChangeRole
        | Action::RemoveMember
        | Action::Invite
        | Action::Revoke => [true, true, false],
        Action::TransferOwnership | Action::Delete => [true, false, false],
    }
}

struct Cast {
    owner: String,
    admin: String,
    member: String,
    target: String,
}

const OWNER: &str = "owner@example.com";
const ADMIN: &str = "admin@example.com";
const MEMBER: &str = "member@example.com";
const TARGET: &str = "target@example.com";

/// A fresh org where the owner, an admin, a member and a target member
/// (plus one open invitation) wait for the action under test.
async fn fresh_org(app: &TestApp, cast: &Cast, n: usize) -> String {
    let slug = app.create_org(&cast.owner, &format!("Matrix {n}")).await;
    app.add_member(&cast.owner, &slug, &cast.admin, ADMIN, "admin")
        .await;
    app.add_member(&cast.owner, &slug, &cast.member, MEMBER, "member")
        .await;
    app.add_member(&cast.owner, &slug, &cast.target, TARGET, "member")
        .await;
    app.invite(&cast.owner, &slug, "pending@example.com", "member")
        .await;
    slug
}

async fn act(app: &TestApp, cookie: &str, action: Action, slug: &str, before: &OrgPage) -> u16 {
    let target = member_id(before, TARGET).to_string();
    let invitation = before.invitations.as_ref().unwrap()[0].id.to_string();
    let reply = match action {
        Action::Rename => {
            app.call(
                cookie,
                "orgs/rename",
                &[("slug", slug), ("name", "Renamed")],
            )
            .await
        }
        Action::ChangeRole => {
            app.call(
                cookie,
                "orgs/change-role",
                &[("slug", slug), ("user_id", &target), ("role", "admin")],
            )
            .await
        }
        Action::RemoveMember => {
            app.call(
                cookie,
                "orgs/remove-member",
                &[("slug", slug), ("user_id", &target)],
            )
            .await
        }
        Action::Invite => {
            app.call(
                cookie,
                "invitations/create",
                &[
                    ("slug", slug),
                    ("email", "new@example.com"),
                    ("role", "member"),
                ],
            )
            .await
        }
        Action::Revoke => {
            app.call(
                cookie,
                "invitations/revoke",
                &[("slug", slug), ("id", &invitation)],
            )
            .await
        }
        Action::TransferOwnership => {
            app.call(
                cookie,
                "orgs/transfer-ownership",
                &[("slug", slug), ("user_id", &target)],
            )
            .await
        }
        Action::Delete => {
            app.call(cookie, "orgs/delete", &[("slug", slug), ("confirm", slug)])
                .await
        }
    };
    if reply.status == 403 {
        assert_eq!(reply.error(), AppError::Forbidden, "{action:?}");
    }
    reply.status
}

/// Did the action leave its mark on the org (as its owner sees it)?
async fn took_effect(app: &TestApp, owner: &str, action: Action, slug: &str) -> bool {
    let reply = app.get_org(owner, slug).await;
    if action == Action::Delete {
        return reply.status == 404;
    }
    let page: OrgPage = reply.ok().json();
    let target = page
        .members
        .iter()
        .find(|m| m.email.as_deref() == Some(TARGET));
    let invitations = page.invitations.clone().unwrap_or_default();
    match action {
        Action::Rename => page.org.name == "Renamed",
        Action::ChangeRole => target.is_some_and(|t| t.role == OrgRole::Admin),
        Action::RemoveMember => target.is_none(),
        Action::Invite => invitations.iter().any(|i| i.email == "new@example.com"),
        Action::Revoke => !invitations.iter().any(|i| i.email == "pending@example.com"),
        Action::TransferOwnership => target.is_some_and(|t| t.role == OrgRole::Owner),
        Action::Delete => unreachable!(),
    }
}

#[tokio::test]
async fn each_role_may_do_exactly_what_the_matrix_says() {
    // One owner makes 21 orgs here: past the daily limit on org creation.
    let app = crate::helpers::spawn_app_with(&[("TLDW_ORGS_PER_ACCOUNT_PER_DAY", "0")]).await;
    let cast = Cast {
        owner: app.sign_up(OWNER).await,
        admin: app.sign_up(ADMIN).await,
        member: app.sign_up(MEMBER).await,
        target: app.sign_up(TARGET).await,
    };
    let mut n = 0;
    let mut failures = Vec::new();
    for action in ACTIONS {
        for (i, (role, actor)) in [
            (OrgRole::Owner, &cast.owner),
            (OrgRole::Admin, &cast.admin),
            (OrgRole::Member, &cast.member),
        ]
        .into_iter()
        .enumerate()
        {
            n += 1;
            let slug = fresh_org(&app, &cast, n).await;
            let before = app.org_page(&cast.owner, &slug).await;
            let expected = allowed(action)[i];

            let status = act(&app, actor, action, &slug, &before).await;

            let effect = took_effect(&app, &cast.owner, action, &slug).await;
            let want_status = if expected { 200 } else { 403 };
            if status != want_status || effect != expected {
                failures.push(format!(
                    "{role:?} {action:?}: status {status} (want {want_status}), took effect {effect} (want {expected})"
                ));
            }
            if !expected && action != Action::Delete {
                assert_eq!(
                    app.org_page(&cast.owner, &slug).await,
                    before,
                    "{role:?} {action:?} changed something"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn admins_cannot_make_unmake_or_remove_owners() {
    let app = spawn_app().await;
    let owner = app.sign_up(OWNER).await;
    let admin = app.sign_up(ADMIN).await;
    let member = app.sign_up(MEMBER).await;
    let slug = app.create_org(&owner, "Hierarchy").await;
    app.add_member(&owner, &slug, &admin, ADMIN, "admin").await;
    let member_user = app
        .add_member(&owner, &slug, &member, MEMBER, "member")
        .await
        .to_string();
    let page = app.org_page(&owner, &slug).await;
    let owner_id = member_id(&page, OWNER).to_string();

    for (endpoint, form) in [
        (
            "orgs/change-role",
            vec![
                ("slug", slug.as_str()),
                ("user_id", &member_user),
                ("role", "owner"),
            ],
        ),
        (
            "orgs/change-role",
            vec![
                ("slug", slug.as_str()),
                ("user_id", &owner_id),
                ("role", "member"),
            ],
        ),
        (
            "orgs/remove-member",
            vec![("slug", slug.as_str()), ("user_id", &owner_id)],
        ),
    ] {
        let reply = app.call(&admin, endpoint, &form).await;
        assert_eq!(reply.status, 403, "{endpoint} {form:?}: {}", reply.body);
    }
    // Inviting someone straight in as owner is not a thing either.
    let reply = app
        .call(
            &admin,
            "invitations/create",
            &[
                ("slug", &slug),
                ("email", "boss@example.com"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(app.org_page(&owner, &slug).await, page);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_org_always_keeps_an_owner() {
    let app = spawn_app().await;
    let first = app.sign_up("first@example.com").await;
    let second = app.sign_up("second@example.com").await;
    let slug = app.create_org(&first, "Owned").await;
    let page = app.org_page(&first, &slug).await;
    let first_id = member_id(&page, "first@example.com").to_string();

    // Alone: no demoting, leaving or removing yourself.
    let attempts = [
        (
            "orgs/change-role",
            vec![
                ("slug", slug.as_str()),
                ("user_id", &first_id),
                ("role", "admin"),
            ],
        ),
        ("orgs/leave", vec![("slug", slug.as_str())]),
        (
            "orgs/remove-member",
            vec![("slug", slug.as_str()), ("user_id", &first_id)],
        ),
    ];
    for (endpoint, form) in &attempts {
        let reply = app.call(&first, endpoint, form).await;
        assert_eq!(reply.status, 409, "{endpoint}: {}", reply.body);
    }
    assert_eq!(app.org_page(&first, &slug).await, page);

    // With a second owner, the first may go.
    let second_id = app
        .add_member(&first, &slug, &second, "second@example.com", "admin")
        .await
        .to_string();
    app.call(
        &first,
        "orgs/change-role",
        &[("slug", &slug), ("user_id", &second_id), ("role", "owner")],
    )
    .await
    .ok();
    app.call(&first, "orgs/leave", &[("slug", &slug)])
        .await
        .ok();
    let viewer = app.whoami(&first).await.unwrap();
    assert!(!viewer.orgs.iter().any(|o| o.slug == slug), "{viewer:?}");

    // Now the second is the last owner, with the same protection.
    let reply = app
        .call(
            &second,
            "orgs/change-role",
            &[("slug", &slug), ("user_id", &second_id), ("role", "member")],
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    let reply = app.call(&second, "orgs/leave", &[("slug", &slug)]).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    let page = app.org_page(&second, &slug).await;
    assert_eq!(page.members.len(), 1);
    assert_eq!(page.members[0].role, OrgRole::Owner);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_personal_org_cannot_be_left_or_deleted() {
    let app = spawn_app().await;
    let cookie = app.sign_up("solo@example.com").await;
    let viewer = app.whoami(&cookie).await.unwrap();
    let personal = viewer.orgs[0].slug.clone();

    let leave = app
        .call(&cookie, "orgs/leave", &[("slug", &personal)])
        .await;
    assert_eq!(leave.status, 409, "{}", leave.body);
    let delete = app
        .call(
            &cookie,
            "orgs/delete",
            &[("slug", &personal), ("confirm", &personal)],
        )
        .await;
    assert_eq!(delete.status, 409, "{}", delete.body);
    assert_eq!(app.whoami(&cookie).await.unwrap().orgs, viewer.orgs);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_created_org_belongs_to_its_creator_and_deleting_needs_its_slug() {
    let app = spawn_app().await;
    let cookie = app.sign_up("maker@example.com").await;

    let slug = app.create_org(&cookie, "  Acme   Widgets ").await;

    assert_eq!(slug, "acme-widgets");
    let viewer = app.whoami(&cookie).await.unwrap();
    assert_eq!(viewer.orgs.len(), 2);
    let org = viewer.orgs.iter().find(|o| o.slug == slug).unwrap();
    assert_eq!(org.name, "Acme Widgets");
    assert_eq!(org.role, OrgRole::Owner);
    assert!(!org.personal);

    // The same name again gets a slug of its own.
    let twin = app.create_org(&cookie, "Acme Widgets").await;
    assert_ne!(twin, slug);

    let empty = app.call(&cookie, "orgs/create", &[("name", "   ")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.error().field_message("name").is_some());

    let wrong = app
        .call(
            &cookie,
            "orgs/delete",
            &[("slug", &slug), ("confirm", "acme")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.error().field_message("confirm").is_some());
    app.call(
        &cookie,
        "orgs/delete",
        &[("slug", &slug), ("confirm", &slug)],
    )
    .await
    .ok();
    let viewer = app.whoami(&cookie).await.unwrap();
    assert_eq!(viewer.orgs.len(), 2, "{viewer:?}");
    assert!(!viewer.orgs.iter().any(|o| o.slug == slug));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_active_org_is_remembered_per_session() {
    let app = spawn_app().await;
    let laptop = app.sign_up("switcher@example.com").await;
    let personal = app.whoami(&laptop).await.unwrap().active_slug.unwrap();
    let team = app.create_org(&laptop, "Team").await;
    let phone = app.sign_in("switcher@example.com").await;

    app.org_page(&laptop, &team).await;

    assert_eq!(
        app.whoami(&laptop).await.unwrap().active_slug.as_deref(),
        Some(team.as_str())
    );
    // The other session keeps its own choice.
    assert_eq!(
        app.whoami(&phone).await.unwrap().active_slug.as_deref(),
        Some(personal.as_str())
    );
    app.org_page(&laptop, &personal).await;
    assert_eq!(
        app.whoami(&laptop).await.unwrap().active_slug.as_deref(),
        Some(personal.as_str())
    );
    app.stop().await.unwrap();
}

/// A member of org A, however privileged there, can neither see nor touch
/// org B: another tenant's slug, member ids and invitation ids are 404.
#[tokio::test]
async fn another_tenant_is_invisible_and_untouchable() {
    let app = spawn_app().await;
    let alice = app.sign_up("alice@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    let carol = app.sign_up("carol@example.com").await;
    let org_a = app.create_org(&alice, "Alpha").await;
    let org_b = app.create_org(&bob, "Bravo").await;
    app.add_member(&bob, &org_b, &carol, "carol@example.com", "member")
        .await;
    app.invite(&bob, &org_b, "dave@example.com", "admin").await;
    let before = app.org_page(&bob, &org_b).await;
    let bob_id = member_id(&before, "bob@example.com").to_string();
    let carol_id = member_id(&before, "carol@example.com").to_string();
    let invitation = before.invitations.as_ref().unwrap()[0].id.to_string();
    let bob_personal = app.whoami(&bob).await.unwrap().orgs[0].slug.clone();

    let mut calls: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for b in [org_b.as_str(), bob_personal.as_str()] {
        calls.extend([
            ("orgs/page", vec![("slug", b)]),
            ("orgs/rename", vec![("slug", b), ("name", "Pwned")]),
            ("orgs/delete", vec![("slug", b), ("confirm", b)]),
            ("orgs/leave", vec![("slug", b)]),
            (
                "orgs/change-role",
                vec![("slug", b), ("user_id", &carol_id), ("role", "owner")],
            ),
            (
                "orgs/remove-member",
                vec![("slug", b), ("user_id", &carol_id)],
            ),
            (
                "orgs/transfer-ownership",
                vec![("slug", b), ("user_id", &carol_id)],
            ),
            (
                "invitations/create",
                vec![
                    ("slug", b),
                    ("email", "mallory@example.com"),
                    ("role", "admin"),
                ],
            ),
            ("invitations/revoke", vec![("slug", b), ("id", &invitation)]),
        ]);
    }
    // Alice's own slug with Bravo's ids.
    let a = org_a.as_str();
    for id in [&bob_id, &carol_id] {
        calls.extend([
            (
                "orgs/change-role",
                vec![("slug", a), ("user_id", id.as_str()), ("role", "member")],
            ),
            (
                "orgs/remove-member",
                vec![("slug", a), ("user_id", id.as_str())],
            ),
            (
                "orgs/transfer-ownership",
                vec![("slug", a), ("user_id", id.as_str())],
            ),
        ]);
    }
    calls.push(("invitations/revoke", vec![("slug", a), ("id", &invitation)]));

    let mut wrong = Vec::new();
    for (endpoint, form) in &calls {
        let reply = app.call(&alice, endpoint, form).await;
        if reply.status != 404 || !matches!(reply.error(), AppError::NotFound(_)) {
            wrong.push(format!(
                "{endpoint} {form:?}: {} {}",
                reply.status, reply.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // Nothing of Bravo changed, and Alice still holds only her own orgs.
    assert_eq!(app.org_page(&bob, &org_b).await, before);
    let bob_viewer = app.whoami(&bob).await.unwrap();
    assert_eq!(bob_viewer.orgs.len(), 2);
    assert!(bob_viewer.orgs.iter().all(|o| o.role == OrgRole::Owner));
    let alice_viewer = app.whoami(&alice).await.unwrap();
    assert_eq!(alice_viewer.orgs.len(), 2);
    assert!(
        !alice_viewer
            .orgs
            .iter()
            .any(|o| o.slug == org_b || o.slug == bob_personal)
    );
    let alpha_page = app.org_page(&alice, &org_a).await;
    assert_eq!(alpha_page.members.len(), 1);
    assert_eq!(alpha_page.invitations.as_deref(), Some(&[][..]));
    app.stop().await.unwrap();
}
