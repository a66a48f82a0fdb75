//! Idempotency-Key: the service against a real PostgreSQL as the app role.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;
use tldw::{
    error::AppError,
    server::{
        db::{Db, TenantScope},
        services::idempotency::{
            self, Claim, ClaimToken, HEADER, IdempotencyKey, Principal, RequestFingerprint,
            StoredAnswer, Timing,
        },
    },
};
use tokio::{sync::Barrier, task::JoinSet};
use uuid::Uuid;

use crate::helpers::{TestDb, seed_org};

const PATH: &str = "/api/v1/orgs/{slug}/summaries";

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

fn post(body: &str) -> RequestFingerprint {
    RequestFingerprint::new("POST", PATH, body.as_bytes())
}

fn answer(status: u16, body: &str) -> StoredAnswer {
    StoredAnswer {
        status,
        body: body.to_owned(),
        headers: vec![
            (
                "Location".into(),
                "/api/v1/orgs/acme/summaries/dQw4w9WgXcQ".into(),
            ),
            ("Retry-After".into(), "3".into()),
            ("X-Request-Id".into(), "not kept".into()),
        ],
    }
}

async fn fresh(
    db: &Db,
    scope: TenantScope,
    who: Principal,
    k: &IdempotencyKey,
    fp: &RequestFingerprint,
) -> ClaimToken {
    match idempotency::claim(db, scope, who, k, fp).await.unwrap() {
        Claim::Fresh(token) => token,
        Claim::Replay(answer) => panic!("expected a fresh claim, got a replay of {answer:?}"),
    }
}

async fn replay(
    db: &Db,
    scope: TenantScope,
    who: Principal,
    k: &IdempotencyKey,
    fp: &RequestFingerprint,
) -> StoredAnswer {
    match idempotency::claim(db, scope, who, k, fp).await.unwrap() {
        Claim::Replay(answer) => answer,
        Claim::Fresh(_) => panic!("expected a replay, got a fresh claim"),
    }
}

async fn rows_visible(db: &Db, scope: TenantScope) -> i64 {
    let mut tx = db.tenant(scope).await.unwrap();
    let n = sqlx::query_scalar("select count(*) from idempotency_keys")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn a_retry_gets_the_stored_answer_with_only_the_headers_that_matter() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "acme").await;
    let (scope, who, k) = (TenantScope::org(org), Principal::Member(user), key("k-1"));

    let token = fresh(&db, scope, who, &k, &post(r#"{"url":"x","lang":"en"}"#)).await;
    idempotency::complete(&db, token, &answer(202, r#"{"status":"pending"}"#))
        .await
        .unwrap();

    // Same request, re-serialized differently by the client: still a retry.
    let got = replay(
        &db,
        scope,
        who,
        &k,
        &post(r#"{ "lang": "en", "url": "x" }"#),
    )
    .await;
    assert_eq!(got.status, 202);
    assert_eq!(got.body, r#"{"status":"pending"}"#);
    assert_eq!(
        got.headers,
        vec![
            (
                "location".to_owned(),
                "/api/v1/orgs/acme/summaries/dQw4w9WgXcQ".to_owned()
            ),
            ("retry-after".to_owned(), "3".to_owned()),
        ]
    );
    // And again: a replay does not consume the answer.
    assert_eq!(
        replay(&db, scope, who, &k, &post(r#"{"url":"x","lang":"en"}"#)).await,
        got
    );
}

#[tokio::test]
async fn the_same_key_for_another_request_is_422_even_while_the_first_runs() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "acme").await;
    let (scope, who, k) = (TenantScope::org(org), Principal::Member(user), key("k-1"));

    let token = fresh(&db, scope, who, &k, &post(r#"{"url":"a"}"#)).await;
    let others = [
        post(r#"{"url":"b"}"#),
        RequestFingerprint::new("POST", "/api/v1/orgs/{slug}/invitations", br#"{"url":"a"}"#),
        RequestFingerprint::new("PUT", PATH, br#"{"url":"a"}"#),
    ];
    for other in &others {
        let error = idempotency::claim(&db, scope, who, &k, other)
            .await
            .unwrap_err();
        assert_eq!(error.status_code(), 422);
        assert!(error.field_message(HEADER).is_some(), "{error:?}");
    }
    idempotency::complete(&db, token, &answer(200, "{}"))
        .await
        .unwrap();
    for other in &others {
        let error = idempotency::claim(&db, scope, who, &k, other)
            .await
            .unwrap_err();
        assert_eq!(error.status_code(), 422);
    }
}

#[tokio::test]
async fn keys_belong_to_one_org_and_one_principal() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (a, a_user) = seed_org(&db, "org-a").await;
    let (b, b_user) = seed_org(&db, "org-b").await;
    let (k, fp) = (key("shared-key"), post("{}"));
    let api_key = Principal::ApiKey(Uuid::new_v4());

    let first = fresh(&db, TenantScope::org(a), Principal::Member(a_user), &k, &fp).await;
    idempotency::complete(&db, first, &answer(200, r#"{"org":"a"}"#))
        .await
        .unwrap();
    // Another principal of the same org, and another org: their own claims.
    for (scope, who) in [
        (TenantScope::org(a), api_key),
        (TenantScope::org(b), Principal::Member(b_user)),
        // Even the same principal string in another org.
        (TenantScope::org(b), Principal::Member(a_user)),
    ] {
        let token = fresh(&db, scope, who, &k, &fp).await;
        idempotency::complete(&db, token, &answer(201, r#"{"other":true}"#))
            .await
            .unwrap();
    }
    let a_answer = replay(&db, TenantScope::org(a), Principal::Member(a_user), &k, &fp).await;
    assert_eq!(a_answer.body, r#"{"org":"a"}"#);

    // RLS: org B's transaction sees its own two rows, never org A's.
    assert_eq!(rows_visible(&db, TenantScope::org(a)).await, 2);
    assert_eq!(rows_visible(&db, TenantScope::org(b)).await, 2);
    let mut tx = db.tenant(TenantScope::org(b)).await.unwrap();
    let leaked: i64 = sqlx::query_scalar("select count(*) from idempotency_keys where org_id = $1")
        .bind(a.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(leaked, 0);
    let planted = sqlx::query(
        "insert into idempotency_keys (org_id, principal, key, claim_id, method, path,
             request_fingerprint, lease_until, expires_at)
         values ($1, 'user:00000000-0000-0000-0000-000000000000', 'x', gen_random_uuid(), 'POST',
                 '/', sha256(''), now(), now() + interval '1 day')",
    )
    .bind(a.as_uuid())
    .execute(tx.conn())
    .await;
    assert!(planted.is_err(), "org B wrote a row into org A");
}

#[tokio::test]
async fn twenty_concurrent_duplicates_across_two_processes_make_one_effect() {
    let test_db = TestDb::new().await;
    let pools = [test_db.db(5).await, test_db.db(5).await];
    let (org, user) = seed_org(&pools[0], "acme").await;
    let (scope, who, k) = (TenantScope::org(org), Principal::Member(user), key("once"));
    let effects = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(20));

    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let db = pools[i % 2].clone();
        let (effects, start, k) = (effects.clone(), start.clone(), k.clone());
        tasks.spawn(async move {
            start.wait().await;
            let fp = post(r#"{"url":"dQw4w9WgXcQ"}"#);
            match idempotency::claim(&db, scope, who, &k, &fp).await? {
                Claim::Fresh(token) => {
                    let n = effects.fetch_add(1, Ordering::SeqCst) + 1;
                    // The work takes a while, so the duplicates really wait.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let made = answer(201, &format!(r#"{{"effect":{n}}}"#));
                    idempotency::complete(&db, token, &made).await?;
                    Ok::<_, AppError>((made, false))
                }
                Claim::Replay(answer) => Ok((answer, true)),
            }
        });
    }
    let results: Vec<(StoredAnswer, bool)> = tasks
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(effects.load(Ordering::SeqCst), 1);
    assert_eq!(results.iter().filter(|(_, replayed)| !replayed).count(), 1);
    for (got, replayed) in &results {
        assert_eq!(got.status, 201);
        assert_eq!(got.body, r#"{"effect":1}"#);
        if *replayed {
            assert_eq!(
                got.headers.len(),
                2,
                "only Location and Retry-After are replayed"
            );
        }
    }
    for pool in pools {
        pool.close().await;
    }
}

#[tokio::test]
async fn a_duplicate_of_a_request_still_running_gets_409_when_its_wait_ends() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "acme").await;
    let (scope, who, k, fp) = (
        TenantScope::org(org),
        Principal::Member(user),
        key("slow"),
        post("{}"),
    );
    let token = fresh(&db, scope, who, &k, &fp).await;
    let short = Timing {
        wait: Duration::from_millis(200),
        ..Timing::default()
    };
    let error = idempotency::claim_with(&db, scope, who, &k, &fp, &short)
        .await
        .unwrap_err();
    assert_eq!(error, idempotency::still_running());
    assert_eq!(error.status_code(), 409);
    // Once answered, the same duplicate gets the answer.
    idempotency::complete(&db, token, &answer(200, r#"{"done":true}"#))
        .await
        .unwrap();
    assert_eq!(
        replay(&db, scope, who, &k, &fp).await.body,
        r#"{"done":true}"#
    );
}

#[tokio::test]
async fn released_and_unkept_answers_let_the_next_request_run() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "acme").await;
    let (scope, who, fp) = (TenantScope::org(org), Principal::Member(user), post("{}"));

    let k = key("released");
    let token = fresh(&db, scope, who, &k, &fp).await;
    idempotency::release(&db, token).await.unwrap();
    let token = fresh(&db, scope, who, &k, &fp).await;
    idempotency::complete(&db, token, &answer(200, "{}"))
        .await
        .unwrap();
    replay(&db, scope, who, &k, &fp).await;

    // A 5xx, a database outage, a 429 or a 409: nothing kept, a retry runs.
    for (i, status) in [500u16, 503, 429, 409].into_iter().enumerate() {
        let k = key(&format!("not-kept-{i}"));
        let token = fresh(&db, scope, who, &k, &fp).await;
        idempotency::complete(&db, token, &answer(status, r#"{"error":{}}"#))
            .await
            .unwrap();
        let token = fresh(&db, scope, who, &k, &fp).await;
        idempotency::release(&db, token).await.unwrap();
    }
    // A 4xx is kept: the retry is refused the same way.
    let k = key("refused");
    let token = fresh(&db, scope, who, &k, &fp).await;
    idempotency::complete(
        &db,
        token,
        &answer(403, r#"{"error":{"code":"forbidden"}}"#),
    )
    .await
    .unwrap();
    assert_eq!(replay(&db, scope, who, &k, &fp).await.status, 403);
}

#[tokio::test]
async fn a_dead_claim_is_taken_over_after_its_lease_and_its_late_answer_is_ignored() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "acme").await;
    let (scope, who, k, fp) = (
        TenantScope::org(org),
        Principal::Member(user),
        key("crashed"),
        post(r#"{"plan":"pro"}"#),
    );
    let no_lease = Timing {
        lease: Duration::ZERO,
        ..Timing::default()
    };
    let dead = match idempotency::claim_with(&db, scope, who, &k, &fp, &no_lease)
        .await
        .unwrap()
    {
        Claim::Fresh(token) => token,
        Claim::Replay(_) => panic!("expected a fresh claim"),
    };
    // Another request cannot take over a lapsed claim of a different request.
    let error = idempotency::claim(&db, scope, who, &k, &post(r#"{"plan":"team"}"#))
        .await
        .unwrap_err();
    assert_eq!(error.status_code(), 422);
    // The same request can: the first claimant is presumed dead.
    let heir = fresh(&db, scope, who, &k, &fp).await;
    // The first claimant wakes up late; its answer and release do nothing.
    idempotency::complete(&db, dead, &answer(201, r#"{"who":"dead"}"#))
        .await
        .unwrap();
    idempotency::complete(&db, heir, &answer(201, r#"{"who":"heir"}"#))
        .await
        .unwrap();
    assert_eq!(
        replay(&db, scope, who, &k, &fp).await.body,
        r#"{"who":"heir"}"#
    );
}

#[tokio::test]
async fn expired_rows_are_ignored_and_purged() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (a, a_user) = seed_org(&db, "org-a").await;
    let (b, b_user) = seed_org(&db, "org-b").await;
    let expired = Timing {
        ttl: Duration::ZERO,
        ..Timing::default()
    };
    let fp = post("{}");
    for (org, user, name) in [(a, a_user, "old-a"), (b, b_user, "old-b")] {
        let Claim::Fresh(token) = idempotency::claim_with(
            &db,
            TenantScope::org(org),
            Principal::Member(user),
            &key(name),
            &fp,
            &expired,
        )
        .await
        .unwrap() else {
            panic!("expected a fresh claim");
        };
        idempotency::complete(&db, token, &answer(200, "{}"))
            .await
            .unwrap();
    }
    let (scope_a, who_a) = (TenantScope::org(a), Principal::Member(a_user));
    let live = fresh(&db, scope_a, who_a, &key("live"), &fp).await;
    idempotency::complete(&db, live, &answer(200, r#"{"live":true}"#))
        .await
        .unwrap();

    // An expired answer is not replayed, and its key is free for anything.
    let token = fresh(
        &db,
        TenantScope::org(b),
        Principal::Member(b_user),
        &key("old-b"),
        &post(r#"{"new":1}"#),
    )
    .await;
    idempotency::release(&db, token).await.unwrap();

    assert_eq!(idempotency::purge_expired(&db).await.unwrap(), 1);
    assert_eq!(rows_visible(&db, scope_a).await, 1);
    assert_eq!(rows_visible(&db, TenantScope::org(b)).await, 0);
    assert_eq!(idempotency::purge_expired(&db).await.unwrap(), 0);
    assert_eq!(
        replay(&db, scope_a, who_a, &key("live"), &fp).await.body,
        r#"{"live":true}"#
    );
}

#[tokio::test]
async fn run_replays_without_running_the_handler_again() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let (org, user) = seed_org(&db, "acme").await;
    let (scope, who, k, fp) = (
        TenantScope::org(org),
        Principal::Member(user),
        key("run"),
        post("{}"),
    );
    let calls = AtomicUsize::new(0);
    let handler = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        answer(201, r#"{"id":1}"#)
    };
    let first = idempotency::run(&db, scope, who, Some(&k), &fp, handler)
        .await
        .unwrap();
    let second = idempotency::run(&db, scope, who, Some(&k), &fp, handler)
        .await
        .unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(second.answer.body, first.answer.body);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Without a key every request runs.
    idempotency::run(&db, scope, who, None, &fp, handler)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn malformed_keys_are_422_naming_the_header() {
    for bad in [
        "",
        &"k".repeat(256),
        "tab\there",
        "new\nline",
        "späti",
        "nul\0",
    ] {
        let error = IdempotencyKey::parse(bad).unwrap_err();
        assert_eq!(error.status_code(), 422, "{bad:?}");
        assert!(error.field_message(HEADER).is_some(), "{bad:?}");
    }
    assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
}
