//! Pasted transcripts are the org's own content: summarized for it alone,
//! never written to the shared cache.

use tldw::{
    domain::{OrgRole, OrgSummary, SummaryStatus, VideoId},
    server::{
        auth::identity::{CurrentAccount, CurrentMember, SessionHandle},
        clients::youtube::YouTubeClient,
        config::Settings,
        services::{
            summaries::SummaryEngine,
            video_cache::{self, CacheState},
            waiter::VideoWaiter,
        },
        summarizer,
    },
};

use crate::helpers::{TestDb, seed_org};

/// The engine as the app builds it, with the built-in summarizer.
async fn engine(db: &tldw::server::db::Db) -> SummaryEngine {
    let settings = Settings::from_lookup(|_| None).unwrap();
    SummaryEngine::new(
        db.clone(),
        YouTubeClient::new(settings.summaries.youtube.clone()).unwrap(),
        summarizer::from_settings(None).unwrap(),
        VideoWaiter::start(db).await.unwrap(),
        settings.summaries,
        settings.billing.plans,
    )
}

const SRT: &str = "1\n00:00:01,000 --> 00:00:04,000\nWelcome to the quarterly planning review.\n\n2\n00:01:05,000 --> 00:01:09,000\nRevenue grew because the new onboarding flow converted better.\n";

fn member(org: tldw::domain::OrgId, user: tldw::domain::UserId) -> CurrentMember {
    CurrentMember {
        account: CurrentAccount {
            id: tldw::domain::AccountId::random(),
            email: None,
            session: SessionHandle::Clerk {
                org: None,
                member: None,
            },
        },
        org: OrgSummary {
            id: org,
            user_id: user,
            slug: "x".into(),
            name: "x".into(),
            role: OrgRole::Owner,
            personal: false,
        },
    }
}

#[tokio::test]
async fn a_pasted_transcript_is_summarized_for_its_org_only() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let engine = engine(&db).await;
    let (a, a_user) = seed_org(&db, "org-a").await;
    let (b, b_user) = seed_org(&db, "org-b").await;
    let (a, b) = (member(a, a_user), member(b, b_user));
    let video = VideoId::parse("ownTranscr1").unwrap();

    engine
        .summarize_own_transcript(&a, &video, SRT)
        .await
        .unwrap();
    let SummaryStatus::Ready { view, .. } = engine.status(&a, &video).await.unwrap() else {
        panic!("org A should see its summary");
    };
    assert!(view.private);
    assert!(
        view.body.key_points.iter().any(|p| p.at_seconds == 65),
        "{view:?}"
    );

    // Another org sees nothing of it, and the shared row holds no summary.
    assert_eq!(
        engine.status(&b, &video).await.unwrap(),
        SummaryStatus::NotRequested
    );
    let state = video_cache::peek(&db, &video).await.unwrap();
    assert!(!matches!(state, CacheState::Ready(_)), "{state:?}");
    let mut conn = test_db.app_conn().await;
    let shared: Option<serde_json::Value> =
        sqlx::query_scalar("select summary from videos where video_id = $1")
            .bind(video.as_str())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(shared, None);

    // It cost org A one unit, like any summary.
    let dashboard = engine.dashboard(&a, None, None).await.unwrap();
    assert_eq!(dashboard.quota.used, 1);
    assert_eq!(
        engine.dashboard(&b, None, None).await.unwrap().quota.used,
        0
    );
}

#[tokio::test]
async fn an_empty_paste_is_refused_next_to_the_field_and_charges_nothing() {
    let test_db = TestDb::new().await;
    let db = test_db.db(3).await;
    let engine = engine(&db).await;
    let (org, user) = seed_org(&db, "org-a").await;
    let a = member(org, user);
    let error = engine
        .summarize_own_transcript(&a, &VideoId::parse("ownTranscr2").unwrap(), "  \n ")
        .await
        .unwrap_err();
    assert!(error.field_message("transcript").is_some(), "{error:?}");
    assert_eq!(
        engine.dashboard(&a, None, None).await.unwrap().quota.used,
        0
    );
}
