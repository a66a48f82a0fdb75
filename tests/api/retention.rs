//! Retention (security review finding 17): the sweeper's purge deletes dead
//! sessions, rate-limit rows and old webhook ledger rows, keeps live ones,
//! and runs in one process at a time.

use sqlx::Executor;
use tldw::server::services::retention::{self, Purged};

use crate::helpers::{TestDb, superuser_conn};

/// Two of each: one dead, one live.
async fn seed(db: &TestDb) {
    let mut conn = superuser_conn(db).await;
    conn.execute(
        "insert into accounts (id, email) values ('00000000-0000-4000-8000-000000000001', 'r@example.com');
         insert into sessions (token_hash, account_id, expires_at, last_seen_at) values
           (sha256('expired'), '00000000-0000-4000-8000-000000000001', now() - interval '1 minute', now() - interval '1 day'),
           (sha256('idle'),    '00000000-0000-4000-8000-000000000001', now() + interval '20 days', now() - interval '8 days'),
           (sha256('live'),    '00000000-0000-4000-8000-000000000001', now() + interval '20 days', now());
         insert into rate_limits (key, window_start, hits) values
           ('signin:ip:old', now() - interval '3 days', 5),
           ('signin:ip:new', now() - interval '10 minutes', 5);
         insert into webhook_events (webhook_id, event_type, payload, outcome, received_at) values
           ('msg_old', 'payment.succeeded', '{}', 'applied', now() - interval '31 days'),
           ('msg_new', 'payment.succeeded', '{}', 'applied', now() - interval '29 days');",
    )
    .await
    .unwrap();
}

async fn left(db: &TestDb) -> (i64, i64, i64) {
    let mut conn = superuser_conn(db).await;
    sqlx::query_as(
        "select (select count(*) from sessions), (select count(*) from rate_limits),
                (select count(*) from webhook_events)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn dead_rows_go_and_live_rows_stay() {
    let test_db = TestDb::new().await;
    seed(&test_db).await;
    let db = test_db.db(4).await;

    let purged = retention::purge(&db).await.unwrap();

    assert_eq!(
        purged,
        Some(Purged {
            sessions: 2,
            rate_limits: 1,
            webhook_events: 1,
            account_tokens: 0,
        })
    );
    assert_eq!(left(&test_db).await, (1, 1, 1));
    let mut conn = superuser_conn(&test_db).await;
    let kept: (bool, bool, bool) = sqlx::query_as(
        "select exists (select from sessions where token_hash = sha256('live')),
                exists (select from rate_limits where key = 'signin:ip:new'),
                exists (select from webhook_events where webhook_id = 'msg_new')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(kept, (true, true, true));
    // Nothing left to do the second time.
    assert_eq!(
        retention::purge(&db).await.unwrap(),
        Some(Purged::default())
    );
}

#[tokio::test]
async fn a_second_process_skips_while_one_is_sweeping() {
    let test_db = TestDb::new().await;
    seed(&test_db).await;
    let db = test_db.db(4).await;

    // Another process is mid-pass: it holds the lock in its transaction.
    let mut other = test_db.app_conn().await;
    let mut other_tx = sqlx::Connection::begin(&mut other).await.unwrap();
    let got: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(retention::LOCK_KEY)
        .fetch_one(&mut *other_tx)
        .await
        .unwrap();
    assert!(got);
    assert_eq!(retention::purge(&db).await.unwrap(), None);
    assert_eq!(
        left(&test_db).await,
        (3, 2, 2),
        "it deleted while locked out"
    );
    other_tx.rollback().await.unwrap();

    // Two passes at once: the rows are deleted once between them.
    let (a, b) = tokio::join!(retention::purge(&db), retention::purge(&db));
    let total = [a.unwrap(), b.unwrap()]
        .into_iter()
        .flatten()
        .fold(Purged::default(), |sum, p| Purged {
            sessions: sum.sessions + p.sessions,
            rate_limits: sum.rate_limits + p.rate_limits,
            webhook_events: sum.webhook_events + p.webhook_events,
            account_tokens: sum.account_tokens + p.account_tokens,
        });
    assert_eq!(
        total,
        Purged {
            sessions: 2,
            rate_limits: 1,
            webhook_events: 1,
            account_tokens: 0,
        }
    );
    assert_eq!(left(&test_db).await, (1, 1, 1));
}
