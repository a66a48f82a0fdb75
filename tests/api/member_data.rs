//! Issue 12 item 4 (review findings 4 and 18e): what a member made belongs
//! to the org. Removing the member keeps the history, the pasted-transcript
//! summaries, the usage ledger and the checkout references, names them as a
//! former member, and re-opening their videos stays free.

use serde_json::Value;
use std::time::{Duration, Instant};
use tldw::domain::{Dashboard, OrgId, SummaryStatus};

use crate::{
    billing::{FakeDodo, billing_vars},
    helpers::{TestApp, TestDb, member_id, superuser_conn},
    summaries::{Member, Tube, instance, is_ready, ledger, rest, status, vars, video},
};

const SRT: &str = "1\n00:00:01,000 --> 00:00:04,000\nWelcome to the quarterly planning review.\n\n2\n00:01:05,000 --> 00:01:09,000\nRevenue grew because the new onboarding flow converted better.\n";

async fn wait_ready(app: &TestApp, who: &Member, video: &str) {
    let started = Instant::now();
    loop {
        let now = status(app, who, video).await;
        if is_ready(&now) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{video}: still {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dashboard(app: &TestApp, who: &Member) -> Dashboard {
    app.call(&who.cookie, "summaries/dashboard", &[("slug", &who.slug)])
        .await
        .ok()
        .json()
}

/// Rows of `table` for `org`, counted as the superuser (no RLS).
async fn rows(db: &TestDb, table: &str, org: OrgId) -> i64 {
    let mut conn = superuser_conn(db).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} where org_id = $1"
    )))
    .bind(org.as_uuid())
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

async fn former_members(db: &TestDb, table: &str, org: OrgId) -> Vec<Option<String>> {
    let mut conn = superuser_conn(db).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select former_member from {table} where org_id = $1 order by 1"
    )))
    .bind(org.as_uuid())
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

async fn quota_used(app: &TestApp, who: &Member) -> i32 {
    dashboard(app, who).await.quota.used
}

#[tokio::test]
async fn removing_a_member_keeps_their_history_summaries_usage_and_checkouts() {
    let tube = Tube::start().await;
    let dodo = FakeDodo::start().await;
    let db = TestDb::new().await;
    let mut settings = vars(&tube, None, &[]);
    settings.extend(billing_vars(&dodo.base_url, &[]));
    let app = instance(&db, &settings).await;

    let owner_cookie = app.sign_up("owner@example.com").await;
    let slug = app.create_org(&owner_cookie, "Keepers").await;
    let org = app.org_page(&owner_cookie, &slug).await.org.id;
    let bob_cookie = app.sign_up("bob@example.com").await;
    app.add_member(
        &owner_cookie,
        &slug,
        &bob_cookie,
        "bob@example.com",
        "admin",
    )
    .await;
    let owner = Member {
        cookie: owner_cookie.clone(),
        slug: slug.clone(),
        org,
    };
    let bob = Member {
        cookie: bob_cookie.clone(),
        slug: slug.clone(),
        org,
    };

    // Bob summarizes a video, pastes a transcript, and starts a checkout.
    let watched = video("keep", 1);
    assert_eq!(rest(&app, &bob, &watched).await.status, 202);
    wait_ready(&app, &bob, &watched).await;
    let pasted = video("keep", 2);
    tube.without_captions(&pasted);
    app.call(
        &bob.cookie,
        "summaries/own-transcript",
        &[("slug", &slug), ("video", &pasted), ("transcript", SRT)],
    )
    .await;
    wait_ready(&app, &bob, &pasted).await;
    let checkout = app
        .call(
            &bob.cookie,
            "billing/checkout",
            &[("slug", &slug), ("plan", "pro")],
        )
        .await;
    assert_eq!(checkout.status, 200, "{}", checkout.body);

    let history_before = dashboard(&app, &owner).await.items.len();
    let used_before = quota_used(&app, &owner).await;
    let ledger_before = ledger(&db, org).await;
    assert!(
        history_before >= 1 && used_before >= 2,
        "{history_before} {used_before}"
    );
    assert_eq!(rows(&db, "own_transcript_summaries", org).await, 1);
    assert_eq!(rows(&db, "checkout_sessions", org).await, 1);

    // The owner removes Bob.
    let page = app.org_page(&owner.cookie, &slug).await;
    let bob_id = member_id(&page, "bob@example.com");
    app.call(
        &owner.cookie,
        "orgs/remove-member",
        &[("slug", &slug), ("user_id", &bob_id.to_string())],
    )
    .await
    .ok();
    assert!(app.org_page(&owner.cookie, &slug).await.members.len() == 1);

    // Everything Bob made is still the org's.
    let after = dashboard(&app, &owner).await;
    assert_eq!(after.items.len(), history_before, "{:?}", after.items);
    assert!(
        after
            .items
            .iter()
            .all(|item| item.requested_by.as_deref() == Some("Former member: bob@example.com")),
        "{:?}",
        after.items
    );
    assert_eq!(ledger(&db, org).await, ledger_before);
    assert_eq!(rows(&db, "own_transcript_summaries", org).await, 1);
    assert_eq!(rows(&db, "checkout_sessions", org).await, 1);
    for table in [
        "user_summaries",
        "own_transcript_summaries",
        "checkout_sessions",
    ] {
        assert!(
            former_members(&db, table, org)
                .await
                .iter()
                .all(|m| m.as_deref() == Some("bob@example.com")),
            "{table}"
        );
    }
    // The REST history says the same.
    let listed = app
        .client
        .get(app.url(&format!("/api/v1/orgs/{slug}/summaries")))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(
        listed["items"][0]["requested_by"], "Former member: bob@example.com",
        "{listed}"
    );

    // The private summary is still served, and re-opening either video
    // costs nothing.
    let SummaryStatus::Ready { view, .. } = status(&app, &owner, &pasted).await else {
        panic!("the pasted-transcript summary is gone");
    };
    assert!(view.private);
    assert!(rest(&app, &owner, &watched).await.status < 300);
    assert!(is_ready(&status(&app, &owner, &watched).await));
    assert_eq!(quota_used(&app, &owner).await, used_before);
}

#[tokio::test]
async fn removing_an_inviter_from_an_org_without_another_owner_keeps_the_invitation() {
    // Clerk orgs have admins and no owner; an admin who invited someone is
    // removed by another admin. The re-homing found no owner (NULL) and the
    // NOT NULL column made that a 500.
    let db = TestDb::new().await;
    let app = crate::helpers::spawn_instance(&db).await;
    let first = app.sign_up("first@example.com").await;
    let slug = app.create_org(&first, "No Owner Co").await;
    let org = app.org_page(&first, &slug).await.org.id;
    let inviter = app.sign_up("inviter@example.com").await;
    let inviter_id = app
        .add_member(&first, &slug, &inviter, "inviter@example.com", "admin")
        .await;
    app.invite(&inviter, &slug, "guest@example.com", "member")
        .await;
    // As in a Clerk org: nobody is an owner.
    let mut conn = superuser_conn(&db).await;
    sqlx::query("update users set role = 'admin' where org_id = $1")
        .bind(org.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    // Memberships are cached per process for a moment: sign in again.
    let first = app.sign_in("first@example.com").await;

    let removed = app
        .call(
            &first,
            "orgs/remove-member",
            &[("slug", &slug), ("user_id", &inviter_id.to_string())],
        )
        .await;
    assert!(removed.status < 400, "{removed:?}");
    let open: Vec<(String, Option<uuid::Uuid>)> = sqlx::query_as(
        "select email, invited_by from invitations
         where org_id = $1 and accepted_at is null and revoked_at is null",
    )
    .bind(org.as_uuid())
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(open, vec![("guest@example.com".to_owned(), None)]);
}
