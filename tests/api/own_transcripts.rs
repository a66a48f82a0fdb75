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

use crate::{
    helpers::{Reply, TestDb, seed_org},
    summaries::{
        Member, Tube, count, empty_answer, instance, is_ready, ledger, members, status, vars,
    },
    summarizer::{Fake, Reply as Llm},
};
use std::time::{Duration, Instant};

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

// ---------------------------------------------------------------------------
// No free model spend (issue 12, item 2; security review finding 2): over
// HTTP, against the fake model.

fn paste<'a>(who: &'a Member, video: &'a str, transcript: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("slug", &who.slug),
        ("video", video),
        ("transcript", transcript),
    ]
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_dropped_connection_does_not_cancel_the_work_and_the_unit_is_spent() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(2500)));
    let base = llm.start().await;
    let db = TestDb::new().await;
    // A one-second lease: the abandoned-reservation sweep looks often and
    // would refund a unit whose work had died with the connection.
    let app = instance(
        &db,
        &vars(&tube, Some(&base), &[("TLDW_SUMMARY_LEASE_SECONDS", "1")]),
    )
    .await;
    let people = members(&app, "dropped", 1, 0).await;
    let who = &people[0];
    let video = "droppedOwn1";

    let gone = app
        .post("summaries/own-transcript")
        .header("cookie", &who.cookie)
        .form(&paste(who, video, SRT))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        gone.is_err(),
        "the request was meant to be cut off: {gone:?}"
    );

    until("the work finished after the caller left", || async {
        is_ready(&status(&app, who, video).await)
    })
    .await;
    until("the unit settled", || async {
        count(&ledger(&db, who.org).await, "reserved") == 0
    })
    .await;
    assert_eq!(
        ledger(&db, who.org).await,
        [(video.to_owned(), "succeeded".to_owned())]
    );
    assert_eq!(llm.calls(), 1);
}

#[tokio::test]
async fn a_pasted_transcript_that_fails_after_billed_tokens_is_charged_each_attempt() {
    let tube = Tube::start().await;
    let llm = Fake::new([Llm::ServerError], empty_answer());
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(&tube, Some(&base), &[("OPENAI_MAX_RETRIES", "0")]),
    )
    .await;
    let people = members(&app, "ownbill", 1, 0).await;
    let who = &people[0];
    let video = "ownBilled01";

    // A 500 bills nothing: refunded, as before.
    let first = app
        .call(
            &who.cookie,
            "summaries/own-transcript",
            &paste(who, video, SRT),
        )
        .await;
    assert_eq!(first.status, 503, "{}", first.body);
    assert!(first.body.contains("Nothing was charged"), "{}", first.body);
    // An answer the model billed but that holds no summary: charged.
    for attempt in 1..=2 {
        let reply: Reply = app
            .call(
                &who.cookie,
                "summaries/own-transcript",
                &paste(who, video, SRT),
            )
            .await;
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(
            reply.body.contains("used one summary"),
            "{attempt}: {}",
            reply.body
        );
    }
    let rows = ledger(&db, who.org).await;
    assert_eq!(count(&rows, "refunded"), 1, "{rows:?}");
    assert_eq!(count(&rows, "charged"), 2, "{rows:?}");
    let page = app
        .call(&who.cookie, "summaries/dashboard", &[("slug", &who.slug)])
        .await;
    let dashboard: tldw::domain::Dashboard = page.ok().json();
    assert_eq!(dashboard.quota.used, 2);
    assert_eq!(llm.calls(), 3);
}

#[tokio::test]
async fn a_pasted_transcript_over_the_plans_cap_is_refused_next_to_the_field() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(
            &tube,
            Some(&base),
            &[("TLDW_MAX_SUMMARY_TOKENS_FREE", "20")],
        ),
    )
    .await;
    let people = members(&app, "owncap", 1, 0).await;
    let who = &people[0];
    let reply = app
        .call(
            &who.cookie,
            "summaries/own-transcript",
            &paste(who, "ownCapped01", SRT),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let message = reply.error().field_message("transcript").unwrap();
    assert!(
        message.contains("Free plan's cap of 20 tokens"),
        "{message}"
    );
    assert_eq!(llm.calls(), 0);
    assert!(ledger(&db, who.org).await.is_empty());
}
