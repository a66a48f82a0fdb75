//! Quotas are exact under concurrency (DESIGN.md invariant 3).

use tldw::{
    domain::{OrgId, PlanCatalog, PlanId, UserId, VideoId},
    server::{
        db::{Db, TenantScope},
        services::quota::{self, Reservation},
    },
};

use crate::helpers::{TestDb, seed_org};

fn video(n: usize) -> VideoId {
    VideoId::parse(&format!("vid{n:08}")).unwrap()
}

/// The default catalog with the Free plan's limit set to `limit`.
pub fn free_limit(limit: i32) -> PlanCatalog {
    PlanCatalog::default().with(PlanId::Free, limit as u32, 0)
}

async fn reserve(db: &Db, org: OrgId, user: UserId, n: usize, limit: i32) -> Option<Reservation> {
    let mut tx = db.tenant(TenantScope::member(org, user)).await.unwrap();
    let outcome = quota::reserve(&mut tx, user, &video(n), &free_limit(limit))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outcome.reserved()
}

async fn counter_and_ledger(db: &Db, org: OrgId) -> (i32, i64) {
    let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
    let used = quota::status(&mut tx, &free_limit(10)).await.unwrap().used;
    let ledger: i64 =
        sqlx::query_scalar("select count(*) from usage_records where status <> 'refunded'")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    (used, ledger)
}

#[tokio::test]
async fn sixty_concurrent_requests_from_two_processes_get_exactly_the_limit() {
    let test_db = TestDb::new().await;
    // Two pools stand for two app processes.
    let (first, second) = (test_db.db(8).await, test_db.db(8).await);
    let (org, user) = seed_org(&first, "busy").await;

    let attempts = (0..60).map(|n| {
        let db = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move { reserve(&db, org, user, n, 10).await })
    });
    let mut granted = 0;
    for attempt in attempts {
        if attempt.await.unwrap().is_some() {
            granted += 1;
        }
    }
    assert_eq!(granted, 10);
    assert_eq!(counter_and_ledger(&first, org).await, (10, 10));
}

#[tokio::test]
async fn exhaustion_reports_usage_limit_and_the_next_period() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let (org, user) = seed_org(&db, "full").await;
    for n in 0..3 {
        assert!(reserve(&db, org, user, n, 3).await.is_some());
    }
    let mut tx = db.tenant(TenantScope::member(org, user)).await.unwrap();
    let quota::Reserve::Exhausted(exhausted) =
        quota::reserve(&mut tx, user, &video(99), &free_limit(3))
            .await
            .unwrap()
    else {
        panic!("a fourth unit was reserved past a limit of 3");
    };
    assert_eq!((exhausted.used, exhausted.limit), (3, 3));
    let now = chrono::Utc::now();
    assert!(exhausted.resets_at > now);
    assert!(exhausted.resets_at - now <= chrono::Duration::days(31));
    assert_eq!(chrono::Datelike::day(&exhausted.resets_at), 1);
}

#[tokio::test]
async fn a_refund_happens_exactly_once() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "refunds").await;
    let reservation = reserve(&db, org, user, 1, 10).await.unwrap();
    assert_eq!(counter_and_ledger(&db, org).await, (1, 1));

    // Concurrent refunds of the same unit: one wins.
    let refunds = (0..5).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
            let refunded = quota::refund(&mut tx, reservation).await.unwrap();
            tx.commit().await.unwrap();
            refunded
        })
    });
    let mut wins = 0;
    for refund in refunds {
        wins += usize::from(refund.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(counter_and_ledger(&db, org).await, (0, 0));

    // A refunded unit cannot be marked spent afterwards, nor refunded again.
    let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
    assert!(!quota::succeed(&mut tx, reservation).await.unwrap());
    assert!(!quota::refund(&mut tx, reservation).await.unwrap());
}

#[tokio::test]
async fn a_spent_unit_is_never_refunded() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let (org, user) = seed_org(&db, "spent").await;
    let reservation = reserve(&db, org, user, 1, 10).await.unwrap();
    let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
    assert!(quota::succeed(&mut tx, reservation).await.unwrap());
    assert!(!quota::refund(&mut tx, reservation).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(counter_and_ledger(&db, org).await, (1, 1));
}

#[tokio::test]
async fn one_org_exhausting_its_quota_leaves_others_alone() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (a, a_user) = seed_org(&db, "org-a").await;
    let (b, b_user) = seed_org(&db, "org-b").await;
    for n in 0..2 {
        assert!(reserve(&db, a, a_user, n, 2).await.is_some());
    }
    assert!(reserve(&db, a, a_user, 9, 2).await.is_none());
    assert!(reserve(&db, b, b_user, 0, 2).await.is_some());
    assert_eq!(counter_and_ledger(&db, b).await, (1, 1));
}
