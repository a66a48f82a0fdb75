//! The identity cache (issue 15): a signed-in request resolves its session
//! and memberships without a database round trip for a few seconds, and a
//! change made in one process reaches every other within that bound.

use std::time::{Duration, Instant};

use tldw::server::auth::cache::TTL;

use crate::helpers::{TestDb, spawn_instance};

#[tokio::test]
async fn a_member_removed_here_loses_access_at_once_and_elsewhere_within_the_ttl() {
    let db = TestDb::new().await;
    let here = spawn_instance(&db).await;
    let elsewhere = spawn_instance(&db).await;
    let owner = here.sign_up("owner-cache@example.com").await;
    let slug = here.create_org(&owner, "Cached org").await;
    let alice = here.sign_up("alice-cache@example.com").await;
    let alice_id = here
        .add_member(&owner, &slug, &alice, "alice-cache@example.com", "member")
        .await;
    let bob = here.sign_up("bob-cache@example.com").await;
    let bob_id = here
        .add_member(&owner, &slug, &bob, "bob-cache@example.com", "member")
        .await;
    // Both are members, and both instances have it cached now.
    for app in [&here, &elsewhere] {
        for who in [&alice, &bob] {
            assert_eq!(app.get_org(who, &slug).await.status, 200);
        }
    }

    for target in [alice_id, bob_id] {
        let target = target.to_string();
        let removed = here
            .call(
                &owner,
                "orgs/remove-member",
                &[("slug", slug.as_str()), ("user_id", &target)],
            )
            .await;
        assert_eq!(removed.status, 200, "{}", removed.body);
    }
    let removed_at = Instant::now();

    // The process that made the change forgets at once.
    assert_eq!(here.get_org(&alice, &slug).await.status, 404);
    // Another process may serve its cached answer for at most the TTL.
    loop {
        let status = elsewhere.get_org(&bob, &slug).await.status;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            removed_at.elapsed() <= TTL + Duration::from_millis(500),
            "a removed member still had access {:?} after removal",
            removed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_new_membership_is_never_hidden_by_the_cache() {
    let db = TestDb::new().await;
    let app = spawn_instance(&db).await;
    let other = spawn_instance(&db).await;
    let owner = app.sign_up("owner-new@example.com").await;
    let carol = app.sign_up("carol-new@example.com").await;
    let slug = app.create_org(&owner, "Fresh org").await;
    // Carol's memberships (just her personal org) are cached in both.
    assert!(app.whoami(&carol).await.is_some());
    assert_eq!(other.get_org(&carol, &slug).await.status, 404);
    app.add_member(&owner, &slug, &carol, "carol-new@example.com", "member")
        .await;
    // A slug missing from the cached list is looked up again: no wait.
    assert_eq!(other.get_org(&carol, &slug).await.status, 200);
}
