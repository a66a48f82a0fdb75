//! The shared cache's single flight, fencing and negative caching
//! (DESIGN.md invariant 4), at the database level.

use std::time::Duration;
use tldw::{
    domain::{KeyPoint, SummaryBody, VideoId},
    server::services::video_cache::{self, CacheState, Completion, Failure},
};

use crate::helpers::TestDb;

fn completion(tldr: &str) -> Completion {
    Completion {
        title: Some("A talk".into()),
        channel: Some("A channel".into()),
        duration_seconds: Some(316),
        thumbnail_url: None,
        language: Some("en".into()),
        body: SummaryBody {
            tldr: tldr.into(),
            key_points: vec![KeyPoint {
                text: "A point".into(),
                at_seconds: 42,
            }],
        },
        model: "test-model".into(),
        prompt_version: "v1".into(),
        built_in: false,
        prompt_tokens: 100,
        completion_tokens: 20,
        cost_micros: 30,
    }
}

#[tokio::test]
async fn concurrent_misses_elect_exactly_one_worker() {
    let test_db = TestDb::new().await;
    let (first, second) = (test_db.db(8).await, test_db.db(8).await);
    let video = VideoId::parse("dQw4w9WgXcQ").unwrap();
    let claims = (0..30).map(|n| {
        let db = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let video = video.clone();
        tokio::spawn(async move {
            video_cache::claim(&db, &video, Duration::from_secs(60))
                .await
                .unwrap()
        })
    });
    let mut winners = Vec::new();
    for claim in claims {
        if let Some(lease) = claim.await.unwrap() {
            winners.push(lease);
        }
    }
    assert_eq!(winners.len(), 1);
    assert!(matches!(
        video_cache::peek(&first, &video).await.unwrap(),
        CacheState::Working { .. }
    ));
    assert!(
        video_cache::complete(&first, &video, winners[0], &completion("done"))
            .await
            .unwrap()
    );
    let CacheState::Ready(view) = video_cache::peek(&second, &video).await.unwrap() else {
        panic!("not ready")
    };
    assert_eq!(view.body.tldr, "done");
    assert_eq!(view.duration_seconds, Some(316));
    // Settled: nobody can claim it again.
    assert_eq!(
        video_cache::claim(&second, &video, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_late_worker_changes_nothing() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let video = VideoId::parse("abcdefghijk").unwrap();
    let crashed = video_cache::claim(&db, &video, Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        video_cache::claim(&db, &video, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let successor = video_cache::claim(&db, &video, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(successor.attempt, crashed.attempt + 1);

    // The first worker wakes up late: its writes are fenced off.
    assert!(
        !video_cache::progress(
            &db,
            &video,
            crashed,
            Duration::from_secs(60),
            "summarizing",
            Some("stale")
        )
        .await
        .unwrap()
    );
    assert!(
        !video_cache::complete(&db, &video, crashed, &completion("stale"))
            .await
            .unwrap()
    );
    assert!(
        !video_cache::fail(
            &db,
            &video,
            crashed,
            "no_captions",
            "stale",
            Failure::Permanent {
                ttl: Duration::from_secs(60)
            }
        )
        .await
        .unwrap()
    );

    assert!(
        video_cache::complete(&db, &video, successor, &completion("fresh"))
            .await
            .unwrap()
    );
    let CacheState::Ready(view) = video_cache::peek(&db, &video).await.unwrap() else {
        panic!("not ready")
    };
    assert_eq!(view.body.tldr, "fresh");
}

#[tokio::test]
async fn permanent_failures_are_cached_for_their_ttl_and_transient_ones_for_a_growing_cool_down() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let video = VideoId::parse("noCaptions1").unwrap();
    let lease = video_cache::claim(&db, &video, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(
        video_cache::fail(
            &db,
            &video,
            lease,
            "no_captions",
            "This video has no captions.",
            Failure::Permanent {
                ttl: Duration::from_millis(300)
            }
        )
        .await
        .unwrap()
    );
    assert_eq!(
        video_cache::peek(&db, &video).await.unwrap(),
        CacheState::Failed {
            message: "This video has no captions.".into()
        }
    );
    assert_eq!(
        video_cache::claim(&db, &video, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let retry = video_cache::claim(&db, &video, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();

    // A transient failure is shared for a cool-down (400 ms here), with
    // words that say nothing was charged and when to come back; then the
    // next request may claim again.
    let cool_down = Failure::Transient {
        base: Duration::from_millis(400),
        max: Duration::from_millis(1000),
    };
    let fail = |lease| {
        let (db, video) = (db.clone(), video.clone());
        async move {
            video_cache::fail(
                &db,
                &video,
                lease,
                "blocked",
                "YouTube is blocking us.",
                cool_down,
            )
            .await
            .unwrap()
        }
    };
    assert!(fail(retry).await);
    let CacheState::Failed { message } = video_cache::peek(&db, &video).await.unwrap() else {
        panic!("a transient failure was not shared");
    };
    assert!(
        message.starts_with("YouTube is blocking us. Nothing was charged; try again in"),
        "{message}"
    );
    assert_eq!(
        video_cache::claim(&db, &video, Duration::from_secs(60))
            .await
            .unwrap(),
        None,
        "claimed during the cool-down"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        video_cache::peek(&db, &video).await.unwrap(),
        CacheState::Claimable {
            last_error: Some("YouTube is blocking us.".into())
        }
    );
    let second = video_cache::claim(&db, &video, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();

    // A second failure in a row doubles the cool-down (800 ms).
    assert!(fail(second).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(matches!(
        video_cache::peek(&db, &video).await.unwrap(),
        CacheState::Failed { .. }
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = video_cache::claim(&db, &video, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();

    // Success ends the streak: the next failure starts from the base again.
    assert!(
        video_cache::complete(&db, &video, third, &completion("fine"))
            .await
            .unwrap()
    );
    let streak: i32 =
        sqlx::query_scalar("select consecutive_failures from videos where video_id = $1")
            .bind(video.as_str())
            .fetch_one(&mut test_db.app_conn().await)
            .await
            .unwrap();
    assert_eq!(streak, 0);
}

#[tokio::test]
async fn progress_is_visible_to_waiters_and_keeps_the_lease_alive() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let video = VideoId::parse("streaming01").unwrap();
    let lease = video_cache::claim(&db, &video, Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert!(
        video_cache::progress(
            &db,
            &video,
            lease,
            Duration::from_secs(60),
            "summarizing",
            Some("The talk opens")
        )
        .await
        .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Extended: no takeover after the original 300 ms.
    assert_eq!(
        video_cache::claim(&db, &video, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        video_cache::peek(&db, &video).await.unwrap(),
        CacheState::Working {
            stage: Some("summarizing".into()),
            partial: Some("The talk opens".into())
        }
    );
}

#[tokio::test]
async fn the_cache_row_holds_no_tenant_data() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    let columns: Vec<String> = sqlx::query_scalar(
        "select column_name::text from information_schema.columns where table_name = 'videos'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for forbidden in [
        "org_id",
        "user_id",
        "account_id",
        "email",
        "prompt",
        "requested_by",
    ] {
        assert!(
            !columns.iter().any(|c| c == forbidden),
            "videos has {forbidden}"
        );
    }
}
