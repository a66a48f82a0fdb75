//! tldw behind a real PgBouncer 1.18 in transaction mode (issue 16): the
//! tenant isolation checks and the cross-process concurrency tests run
//! through it, and the statement cache is shown to be what breaks there.

use std::time::Duration;
use tldw::{
    domain::OrgId,
    server::db::{Db, Pooling, TenantScope},
};

use crate::{
    helpers::{PgBouncer, TestDb},
    rls, summaries,
};

/// The app's pool as `DATABASE_STATEMENT_CACHE` makes it, through `bouncer`.
async fn pooled_db(bouncer: &PgBouncer, db: &TestDb, statement_cache: bool, max: u32) -> Db {
    Db::connect_with(
        bouncer.app_options(db),
        max,
        Pooling {
            statement_cache,
            listen: None,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn tenants_stay_apart_through_pgbouncer() {
    let bouncer = PgBouncer::start(4).await;
    let test_db = TestDb::new().await;
    let db = pooled_db(&bouncer, &test_db, false, 4).await;
    rls::tenants_see_and_change_only_their_own_rows(&db).await;
}

#[tokio::test]
async fn tenants_take_turns_through_pgbouncer_without_leaking() {
    let bouncer = PgBouncer::start(2).await;
    let test_db = TestDb::new().await;
    let db = pooled_db(&bouncer, &test_db, false, 1).await;
    rls::tenants_in_turn_do_not_leak(&db).await;
}

/// One server connection, two client connections that take turns on it
/// (the second waits in PgBouncer while the first holds the server).
/// Returns what the second one's query got.
async fn second_client_on_a_shared_server(statement_cache: bool) -> Result<i64, sqlx::Error> {
    let bouncer = PgBouncer::start(1).await;
    let test_db = TestDb::new().await;
    let db = pooled_db(&bouncer, &test_db, statement_cache, 2).await;
    let (a, b) = (OrgId::random(), OrgId::random());
    let count = "select count(*) from users where org_id = $1";

    let mut first = db.tenant(TenantScope::org(a)).await.unwrap();
    let seen: i64 = sqlx::query_scalar(count)
        .bind(a.as_uuid())
        .fetch_one(first.conn())
        .await
        .unwrap();
    assert_eq!(seen, 0);
    // The pool has no idle connection now, so this opens a second one,
    // which PgBouncer parks until the only server is free.
    let second = tokio::spawn(async move {
        let mut tx = db.tenant(TenantScope::org(b)).await?;
        let seen: i64 = sqlx::query_scalar("select count(*) from orgs where id = $1")
            .bind(b.as_uuid())
            .fetch_one(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(seen)
    });
    // Not a timing assertion: the second client only needs to be queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second client never got the server")
        .unwrap()
}

#[tokio::test]
async fn the_statement_cache_breaks_behind_pgbouncer_and_turning_it_off_fixes_it() {
    // sqlx names its statements sqlx_s_1, sqlx_s_2… per client connection
    // and leaves them on the server: the second client's first statement
    // meets the first client's on the shared server.
    let error = second_client_on_a_shared_server(true)
        .await
        .expect_err("a cached statement crossed clients through PgBouncer");
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("42P05"), "{error}");
    assert!(error.to_string().contains("sqlx_s_1"), "{error}");

    // DATABASE_STATEMENT_CACHE=0: the same turns go through.
    assert_eq!(second_client_on_a_shared_server(false).await.unwrap(), 0);
}

#[tokio::test]
async fn sixty_concurrent_requests_through_pgbouncer_get_exactly_the_limit() {
    let bouncer = PgBouncer::start(8).await;
    let db = TestDb::new().await;
    summaries::sixty_requests_from_two_instances_get_exactly_the_limit(&db, &bouncer.settings(&db))
        .await;
    assert_went_through(&bouncer, &db);
}

#[tokio::test]
async fn fifty_concurrent_requests_through_pgbouncer_make_one_llm_call() {
    let bouncer = PgBouncer::start(8).await;
    let db = TestDb::new().await;
    summaries::fifty_requests_on_three_instances_make_one_llm_call(&db, &bouncer.settings(&db))
        .await;
    assert_went_through(&bouncer, &db);
}

/// The app's logins reached PostgreSQL through PgBouncer, not around it.
#[track_caller]
fn assert_went_through(bouncer: &PgBouncer, db: &TestDb) {
    let log = bouncer.log();
    let logins = log
        .lines()
        .filter(|line| line.contains("login attempt") && line.contains(&format!("db={}", db.name)))
        .count();
    assert!(logins > 0, "no login through PgBouncer: {log}");
}

/// `tldw doctor` through the pooler, with the statement cache off as the
/// app runs there: every check green (with the cache's named statements,
/// a second run on the same server connections would collide).
#[tokio::test]
async fn the_doctor_is_green_through_pgbouncer() {
    let bouncer = PgBouncer::start(2).await;
    let db = TestDb::new().await;
    for run in 0..2 {
        let checks = tldw::server::doctor::database_checks(
            bouncer.app_options(&db),
            Pooling {
                statement_cache: false,
                listen: None,
            },
        )
        .await;
        let red: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
        assert!(red.is_empty(), "run {run}: {red:#?}");
        assert!(checks.len() >= 5, "{checks:#?}");
    }
    assert_went_through(&bouncer, &db);
}
