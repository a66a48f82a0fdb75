//! Summary language (issue 10, item 4): a summary is written in the video's
//! own language unless the org chose another, and only then is a variant of
//! the shared cache row made, once, for every org that chose it. A fake
//! YouTube serves videos with captions in one language only (e.g. a 3-hour
//! Spanish talk); the fake OpenAI-compatible server records every request,
//! so the prompts are checked at the wire.

use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tldw::domain::{OrgId, SummaryLanguage, SummaryStatus};
use tokio::net::TcpListener;

use crate::{
    helpers::{Reply, TestApp, TestDb, as_owner_in_org, spawn_instance_with},
    summarizer::{Fake, Reply as Llm},
    youtube::{API_KEY, VIDEO, fixture},
};

// ---------------------------------------------------------------------------
// A fake YouTube whose videos have captions in one language.

struct LangTubeState {
    watch_page: String,
    player: String,
    /// video id → (caption language, timedtext XML).
    captions: Mutex<HashMap<String, (String, String)>>,
}

struct LangTube {
    base_url: String,
    state: Arc<LangTubeState>,
}

impl LangTube {
    async fn start() -> LangTube {
        let state = Arc::new(LangTubeState {
            watch_page: fixture("youtube.html"),
            player: fixture("youtube.innertube.json"),
            captions: Mutex::default(),
        });
        let app = Router::new()
            .route("/watch", get(watch))
            .route("/youtubei/v1/player", post(player))
            .route("/api/timedtext", get(timedtext))
            .route("/oembed", get(|| async { StatusCode::NOT_FOUND }))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        LangTube {
            base_url: format!("http://{addr}/"),
            state,
        }
    }

    /// `video` has one manual caption track, in `language`.
    fn captions(&self, video: &str, language: &str, xml: String) {
        self.state
            .captions
            .lock()
            .unwrap()
            .insert(video.to_owned(), (language.to_owned(), xml));
    }
}

async fn watch(State(state): State<Arc<LangTubeState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        state.watch_page.clone(),
    )
        .into_response()
}

async fn player(
    State(state): State<Arc<LangTubeState>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if query.as_deref() != Some(&format!("key={API_KEY}")) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(video) = request["videoId"].as_str() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let language = match state.captions.lock().unwrap().get(video) {
        Some((language, _)) => language.clone(),
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut player: Value = serde_json::from_str(&state.player.replace(VIDEO, video)).unwrap();
    player["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"] = json!([{
        "baseUrl": format!("https://www.youtube.com/api/timedtext?v={video}&lang={language}&fmt=srv3"),
        "name": {"runs": [{"text": language}]},
        "vssId": format!(".{language}"),
        "languageCode": language,
        "isTranslatable": true,
        "trackName": "",
    }]);
    axum::Json(player).into_response()
}

async fn timedtext(State(state): State<Arc<LangTubeState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let video = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "v")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    match state.captions.lock().unwrap().get(&video) {
        Some((_, xml)) => ([(header::CONTENT_TYPE, "text/xml")], xml.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Captions of `seconds` of talk, a line every 6 s, from `sentences` in turn.
fn timedtext_xml(seconds: u32, sentences: &[&str]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<transcript>\n");
    for (n, start) in (0..seconds).step_by(6).enumerate() {
        let sentence = sentences[n % sentences.len()];
        xml.push_str(&format!(
            "<text start=\"{start}\" dur=\"5.5\">{sentence} (parte {n})</text>\n"
        ));
    }
    xml.push_str("</transcript>\n");
    xml
}

const SPANISH: &[&str] = &[
    "Hoy hablamos de cómo funcionan los mercados locales en las ciudades pequeñas",
    "Los agricultores venden directamente a las familias sin intermediarios",
    "El precio depende de la temporada y del clima de cada región",
    "Muchas cooperativas comparten transporte para reducir los costes",
    "Las nuevas aplicaciones ayudan a coordinar los pedidos semanales",
    "Al final, la confianza entre vecinos sostiene todo el sistema",
];

// ---------------------------------------------------------------------------
// Apps, members and calls.

fn vars(tube: &LangTube, llm: &str) -> Vec<(String, String)> {
    vars_with(tube, llm, &[])
}

fn vars_with(tube: &LangTube, llm: &str, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vec![
        ("TLDW_YOUTUBE_BASE_URL".into(), tube.base_url.clone()),
        ("DATABASE_MAX_CONNECTIONS".into(), "10".into()),
        ("TLDW_SUMMARY_REQUESTS_PER_MINUTE".into(), "0".into()),
        ("OPENAI_API_KEY".into(), "sk-test-key".into()),
        ("OPENAI_BASE_URL".into(), llm.to_owned()),
    ];
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

async fn instance(db: &TestDb, vars: &[(String, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_instance_with(db, &pairs).await
}

#[derive(Clone, Debug)]
struct Member {
    cookie: String,
    slug: String,
    org: OrgId,
}

async fn owner(app: &TestApp, email: &str, org_name: &str) -> Member {
    let cookie = app.sign_up(email).await;
    let slug = app.create_org(&cookie, org_name).await;
    let org = app.org_page(&cookie, &slug).await.org.id;
    Member { cookie, slug, org }
}

async fn choose(app: &TestApp, who: &Member, language: &str) -> Reply {
    app.call(
        &who.cookie,
        "orgs/summary-language",
        &[("slug", &who.slug), ("language", language)],
    )
    .await
}

/// `POST /api/v1/orgs/{slug}/summaries`, as an API client sends it.
async fn rest(app: &TestApp, who: &Member, video: &str) -> Reply {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/orgs/{}/summaries", who.slug)))
        .header("origin", &app.address)
        .header("cookie", &who.cookie)
        .json(&json!({ "url": format!("https://www.youtube.com/watch?v={video}") }))
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

async fn status(app: &TestApp, who: &Member, video: &str) -> SummaryStatus {
    app.call(
        &who.cookie,
        "summaries/status",
        &[("slug", &who.slug), ("video", video)],
    )
    .await
    .ok()
    .json()
}

async fn wait_ready(app: &TestApp, who: &Member, video: &str, within: Duration) -> SummaryStatus {
    let started = Instant::now();
    loop {
        let status = status(app, who, video).await;
        if matches!(status, SummaryStatus::Ready { .. }) {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "{video} for {}: still {status:?}",
            who.slug
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tldr(status: &SummaryStatus) -> String {
    match status {
        SummaryStatus::Ready { view, .. } => view.body.tldr.clone(),
        other => panic!("not ready: {other:?}"),
    }
}

/// Runs `sql` (with `$1` = the org id, `$2` = `arg`) as the owner role inside the org's
/// scope (forced RLS binds the owner too) and returns its rows.
async fn org_rows<T>(db: &TestDb, org: OrgId, sql: &'static str, arg: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut conn = db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows = sqlx::query_as(sql)
        .bind(org.as_uuid())
        .bind(arg)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

/// The org's history for `video`: (variant, from_cache).
async fn history(db: &TestDb, org: OrgId, video: &str) -> Vec<(String, bool)> {
    org_rows(
        db,
        org,
        "select variant, from_cache from user_summaries where org_id = $1 and video_id = $2",
        video,
    )
    .await
}

/// The org's ledger: (video, variant asked for, status).
async fn ledger(db: &TestDb, org: OrgId) -> Vec<(String, String, String)> {
    org_rows(
        db,
        org,
        "select video_id, variant, status from usage_records where org_id = $1 and $2 = $2
         order by created_at",
        "",
    )
    .await
}

/// The cache rows of `video`: (variant, status, language).
async fn cache_rows(db: &TestDb, video: &str) -> Vec<(String, String, Option<String>)> {
    let mut conn = db.owner_conn().await;
    sqlx::query_as(
        "select variant, status, language from videos where video_id = $1 order by variant",
    )
    .bind(video)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// Every message of a request to the model, as one text.
fn prompt_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

const IN_ENGLISH: &str = "Write in English (en), whatever the language of the";
const IN_SPANISH: &str = "Write in Spanish (es), the language of the";

// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_three_hour_spanish_video_is_written_in_english_once_for_the_orgs_that_chose_english() {
    let tube = LangTube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, &base)).await;
    let video = "esThreeHrs1";
    tube.captions(video, "es", timedtext_xml(3 * 3600, SPANISH));

    let english = owner(&app, "english1-lang@example.com", "English readers").await;
    let english2 = owner(&app, "english2-lang@example.com", "More English readers").await;
    let spanish = owner(&app, "spanish-lang@example.com", "Spanish readers").await;
    let plain = owner(&app, "plain-lang@example.com", "No preference").await;
    choose(&app, &english, "en").await.ok();
    choose(&app, &english2, "en").await.ok();
    choose(&app, &spanish, "es").await.ok();

    // The first org that chose English: the video's own summary (Spanish,
    // shared by everyone) is made first, then the English variant.
    assert_eq!(rest(&app, &english, video).await.status, 202);
    wait_ready(&app, &english, video, Duration::from_secs(60)).await;
    let bodies = llm.bodies();
    let own: Vec<&Value> = bodies
        .iter()
        .filter(|b| prompt_text(b).contains(IN_SPANISH))
        .collect();
    let translated: Vec<&Value> = bodies
        .iter()
        .filter(|b| prompt_text(b).contains(IN_ENGLISH))
        .collect();
    assert!(
        own.len() >= 3,
        "a 3-hour transcript is map-reduced: {} calls",
        own.len()
    );
    assert_eq!(
        own.len() + translated.len(),
        bodies.len(),
        "every call names the language to write in"
    );
    assert_eq!(
        translated.len(),
        own.len(),
        "the English variant is map-reduced the same way"
    );
    // Every call of the English variant names English, in its system
    // message, and comes after the Spanish summary was done.
    for body in &bodies[own.len()..] {
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains(IN_ENGLISH), "{system}");
        assert!(!prompt_text(body).contains("Write in the language of the"));
    }
    let made = llm.calls();
    assert_eq!(
        cache_rows(&db, video).await,
        vec![
            ("".into(), "ready".into(), Some("es".into())),
            ("en".into(), "ready".into(), Some("en".into())),
        ]
    );
    assert_eq!(
        history(&db, english.org, video).await,
        vec![("en".into(), false)]
    );

    // No preference: the shared '' row, from the cache, no model call.
    let reply = rest(&app, &plain, video).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json::<Value>()["from_cache"], true);
    assert_eq!(
        history(&db, plain.org, video).await,
        vec![("".into(), true)]
    );
    // A second org that chose English: the English variant, from the cache.
    let reply = rest(&app, &english2, video).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        history(&db, english2.org, video).await,
        vec![("en".into(), true)]
    );
    // An org that chose the video's own language shares the '' row.
    let reply = rest(&app, &spanish, video).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        history(&db, spanish.org, video).await,
        vec![("".into(), true)]
    );
    assert_eq!(llm.calls(), made, "nothing more was asked of the model");
    assert_eq!(cache_rows(&db, video).await.len(), 2);

    // Each org paid once.
    for (who, variant) in [
        (&english, "en"),
        (&english2, "en"),
        (&spanish, "es"),
        (&plain, ""),
    ] {
        assert_eq!(
            ledger(&db, who.org).await,
            vec![(video.to_owned(), variant.to_owned(), "succeeded".to_owned())],
            "{}",
            who.slug
        );
    }

    // The page shows each org its own summary: tell the two rows apart.
    let mut conn = db.owner_conn().await;
    for (variant, text) in [("", "Resumen en español."), ("en", "The English summary.")] {
        sqlx::query(
            "update videos set summary = jsonb_set(summary, '{tldr}', to_jsonb($3::text))
             where video_id = $1 and variant = $2",
        )
        .bind(video)
        .bind(variant)
        .bind(text)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    for (who, text) in [
        (&english, "The English summary."),
        (&english2, "The English summary."),
        (&spanish, "Resumen en español."),
        (&plain, "Resumen en español."),
    ] {
        assert_eq!(tldr(&status(&app, who, video).await), text, "{}", who.slug);
        // Reopening (the one-statement hit) serves the same and is free.
        let reply = rest(&app, who, video).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.json::<Value>()["summary"]["tldr"],
            text,
            "{}",
            who.slug
        );
    }
    // A new choice applies to new videos: what is in the history stays.
    choose(&app, &plain, "en").await.ok();
    let reply = rest(&app, &plain, video).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json::<Value>()["summary"]["tldr"],
        "Resumen en español."
    );
    assert_eq!(
        tldr(&status(&app, &plain, video).await),
        "Resumen en español."
    );
    assert_eq!(ledger(&db, plain.org).await.len(), 1, "reopening is free");
    assert_eq!(llm.calls(), made);
}

#[tokio::test]
async fn a_failed_variant_is_refunded_once_cools_down_and_leaves_the_shared_summary_alone() {
    let tube = LangTube::start().await;
    // The video's own summary is made; every later call fails.
    let llm = Fake::new([Llm::Echo], Llm::ServerError);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars_with(
            &tube,
            &base,
            &[
                ("OPENAI_MAX_RETRIES", "0"),
                ("TLDW_FAILURE_COOLDOWN_SECONDS", "30"),
            ],
        ),
    )
    .await;
    let video = "esFailVar01";
    tube.captions(video, "es", timedtext_xml(300, SPANISH));
    let english = owner(&app, "failvar1-lang@example.com", "English readers").await;
    let plain = owner(&app, "failvar2-lang@example.com", "No preference").await;
    choose(&app, &english, "en").await.ok();

    assert_eq!(rest(&app, &english, video).await.status, 202);
    let started = Instant::now();
    loop {
        match status(&app, &english, video).await {
            SummaryStatus::Failed { message } => {
                assert!(message.contains("Nothing was charged"), "{message}");
                break;
            }
            other => assert!(
                started.elapsed() < Duration::from_secs(30),
                "still {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        llm.calls(),
        2,
        "the video's own summary, then the failed variant"
    );
    assert_eq!(
        ledger(&db, english.org).await,
        vec![(video.to_owned(), "en".to_owned(), "refunded".to_owned())]
    );
    assert!(history(&db, english.org, video).await.is_empty());
    assert_eq!(
        cache_rows(&db, video).await,
        vec![
            ("".into(), "ready".into(), Some("es".into())),
            ("en".into(), "failed".into(), None),
        ]
    );
    // During the cool-down: answered at once, no call, nothing charged.
    let reply = rest(&app, &english, video).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(llm.calls(), 2);
    assert_eq!(ledger(&db, english.org).await.len(), 1);
    // Everyone else still gets the shared summary.
    let reply = rest(&app, &plain, video).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(llm.calls(), 2);
}

#[tokio::test]
async fn an_abandoned_reservation_for_a_variant_is_spent_or_refunded_by_its_rows() {
    let tube = LangTube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars_with(&tube, &base, &[("TLDW_SUMMARY_LEASE_SECONDS", "1")]),
    )
    .await;
    let made = owner(&app, "sweep1-lang@example.com", "Variant made").await;
    let missing = owner(&app, "sweep2-lang@example.com", "Variant missing").await;
    let (with_variant, without_variant) = ("esSweepVar1", "esSweepVar2");
    // Both videos are in the cache in Spanish; only the first in English.
    let mut conn = db.owner_conn().await;
    for (video, variant, language) in [
        (with_variant, "", "es"),
        (with_variant, "en", "en"),
        (without_variant, "", "es"),
    ] {
        sqlx::query(
            "insert into videos (video_id, variant, status, title, summary, model, prompt_version,
                 built_in, language, completed_at)
             values ($1, $2, 'ready', 'Seeded', '{\"tldr\": \"t\", \"key_points\": []}', 'gpt-4o-mini',
                 'v1', false, $3, now())",
        )
        .bind(video)
        .bind(variant)
        .bind(language)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // Units reserved for English by requests that died with their process.
    for (who, video) in [(&made, with_variant), (&missing, without_variant)] {
        as_owner_in_org(
            &db,
            who.org,
            &format!(
                "with c as (
                     insert into usage_counters (org_id, period_start, period_end, used)
                     select '{org}', period_start, period_end, 1 from org_entitlement('{org}')
                     returning period_start)
                 insert into usage_records (org_id, id, user_id, video_id, variant, period_start, created_at)
                 select '{org}', gen_random_uuid(), (select id from users where org_id = '{org}' limit 1),
                        '{video}', 'en', period_start, now() - interval '10 seconds' from c",
                org = who.org,
            ),
        )
        .await;
    }
    let started = Instant::now();
    loop {
        let open = ledger(&db, made.org)
            .await
            .into_iter()
            .chain(ledger(&db, missing.org).await)
            .filter(|(_, _, status)| status == "reserved")
            .count();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still reserved"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ledger(&db, made.org).await,
        vec![(
            with_variant.to_owned(),
            "en".to_owned(),
            "succeeded".to_owned()
        )]
    );
    assert_eq!(
        history(&db, made.org, with_variant).await,
        vec![("en".into(), false)]
    );
    assert_eq!(
        ledger(&db, missing.org).await,
        vec![(
            without_variant.to_owned(),
            "en".to_owned(),
            "refunded".to_owned()
        )]
    );
    assert!(history(&db, missing.org, without_variant).await.is_empty());
    assert_eq!(llm.calls(), 0);
}

#[tokio::test]
async fn a_video_already_in_the_chosen_language_makes_no_variant() {
    let tube = LangTube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, &base)).await;
    let video = "enBritish01";
    tube.captions(
        video,
        "en-GB",
        timedtext_xml(120, &["A short talk in English"]),
    );
    let english = owner(&app, "gb-lang@example.com", "English readers").await;
    let plain = owner(&app, "gb2-lang@example.com", "No preference").await;
    choose(&app, &english, "en").await.ok();

    assert_eq!(rest(&app, &english, video).await.status, 202);
    wait_ready(&app, &english, video, Duration::from_secs(30)).await;
    assert_eq!(llm.calls(), 1);
    let system = llm.bodies()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("Write in English (en), the language of the transcript."));
    assert_eq!(
        history(&db, english.org, video).await,
        vec![("".into(), false)]
    );
    assert_eq!(rest(&app, &plain, video).await.status, 200);
    assert_eq!(llm.calls(), 1);
    assert_eq!(cache_rows(&db, video).await.len(), 1);
}

#[tokio::test]
async fn the_language_setting_is_for_owners_and_admins_and_takes_only_listed_languages() {
    let tube = LangTube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, &base)).await;
    let boss = owner(&app, "boss-lang@example.com", "Settings org").await;
    let member_cookie = app.sign_up("member-lang@example.com").await;
    app.add_member(
        &boss.cookie,
        &boss.slug,
        &member_cookie,
        "member-lang@example.com",
        "member",
    )
    .await;
    let admin_cookie = app.sign_up("admin-lang@example.com").await;
    app.add_member(
        &boss.cookie,
        &boss.slug,
        &admin_cookie,
        "admin-lang@example.com",
        "admin",
    )
    .await;
    let member = Member {
        cookie: member_cookie,
        ..boss.clone()
    };
    let admin = Member {
        cookie: admin_cookie,
        ..boss.clone()
    };

    assert_eq!(choose(&app, &member, "en").await.status, 403);
    assert_eq!(
        app.org_page(&boss.cookie, &boss.slug)
            .await
            .summary_language,
        None
    );

    for bad in ["xx", "english", "en-US", "es'; drop table orgs; --"] {
        let reply = choose(&app, &admin, bad).await;
        assert_eq!(reply.status, 422, "{bad}: {}", reply.body);
        assert!(reply.error().field_message("language").is_some(), "{bad}");
    }

    // The database's checks list exactly the languages the app offers.
    let mut conn = db.owner_conn().await;
    let offered: std::collections::BTreeSet<String> = SummaryLanguage::ALL
        .iter()
        .map(|l| l.code().to_owned())
        .collect();
    for (constraint, extra) in [
        ("orgs_summary_language_check", None),
        ("videos_variant_check", Some("")),
        ("usage_records_variant_check", Some("")),
    ] {
        let definition: String = sqlx::query_scalar(
            "select pg_get_constraintdef(oid) from pg_constraint where conname = $1",
        )
        .bind(constraint)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let listed: std::collections::BTreeSet<String> = definition
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        let mut expected = offered.clone();
        expected.extend(extra.map(str::to_owned));
        assert_eq!(listed, expected, "{constraint}: {definition}");
    }
    // Every listed language is accepted by the database's check too.
    for &language in SummaryLanguage::ALL {
        choose(&app, &admin, language.code()).await.ok();
        assert_eq!(
            app.org_page(&boss.cookie, &boss.slug)
                .await
                .summary_language,
            Some(language)
        );
    }
    choose(&app, &boss, "hi").await.ok();
    assert_eq!(
        app.org_page(&member.cookie, &boss.slug)
            .await
            .summary_language,
        Some(SummaryLanguage::Hindi)
    );
    // Back to each video's own language.
    choose(&app, &boss, "").await.ok();
    assert_eq!(
        app.org_page(&boss.cookie, &boss.slug)
            .await
            .summary_language,
        None
    );

    // The settings page offers the choice to those who may make it.
    let page = app
        .page_html(&boss.cookie, &format!("/o/{}/settings", boss.slug))
        .await;
    assert!(page.contains("Summary language"), "{page}");
    assert!(
        page.contains("The video&#x27;s own language") || page.contains("The video's own language")
    );
}

#[tokio::test]
async fn two_orgs_choosing_english_on_two_instances_make_one_summary_and_one_variant() {
    let tube = LangTube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(300)));
    let base = llm.start().await;
    let db = TestDb::new().await;
    let vars = vars(&tube, &base);
    let apps = [
        Arc::new(instance(&db, &vars).await),
        Arc::new(instance(&db, &vars).await),
    ];
    let video = "hiRaceVid01";
    tube.captions(
        video,
        "hi",
        timedtext_xml(
            600,
            &["आज हम बाज़ार की बात करेंगे", "किसान सीधे परिवारों को बेचते हैं"],
        ),
    );
    let first = owner(&apps[0], "race1-lang@example.com", "Race one").await;
    let second = owner(&apps[1], "race2-lang@example.com", "Race two").await;
    choose(&apps[0], &first, "en").await.ok();
    choose(&apps[1], &second, "en").await.ok();

    let (a, b) = tokio::join!(
        rest(&apps[0], &first, video),
        rest(&apps[1], &second, video)
    );
    assert_eq!((a.status, b.status), (202, 202), "{} / {}", a.body, b.body);
    wait_ready(&apps[0], &first, video, Duration::from_secs(60)).await;
    wait_ready(&apps[1], &second, video, Duration::from_secs(60)).await;

    assert_eq!(
        llm.calls(),
        2,
        "one call for the Hindi summary, one for English"
    );
    let prompts: Vec<String> = llm
        .bodies()
        .iter()
        .map(|b| b["messages"][0]["content"].as_str().unwrap().to_owned())
        .collect();
    assert!(prompts[0].contains("Write in Hindi (hi), the language of the transcript."));
    assert!(prompts[1].contains(IN_ENGLISH));
    for who in [&first, &second] {
        assert_eq!(
            ledger(&db, who.org).await,
            vec![(video.to_owned(), "en".to_owned(), "succeeded".to_owned())],
            "{}: charged once",
            who.slug
        );
        assert_eq!(history(&db, who.org, video).await.len(), 1);
        assert_eq!(history(&db, who.org, video).await[0].0, "en");
    }
    assert_eq!(
        cache_rows(&db, video).await,
        vec![
            ("".into(), "ready".into(), Some("hi".into())),
            ("en".into(), "ready".into(), Some("en".into())),
        ]
    );
}

#[tokio::test]
async fn a_pasted_transcript_is_summarized_in_the_orgs_language() {
    let tube = LangTube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, &base)).await;
    let german = owner(&app, "paste-lang@example.com", "German readers").await;
    choose(&app, &german, "de").await.ok();
    let srt = "1\n00:00:01,000 --> 00:00:04,000\nWelcome to the review.\n\n2\n00:01:05,000 --> 00:01:09,000\nRevenue grew.\n";
    let reply = app
        .call(
            &german.cookie,
            "summaries/own-transcript",
            &[
                ("slug", &german.slug),
                ("video", "pasteLang01"),
                ("transcript", srt),
            ],
        )
        .await;
    assert!(reply.status < 400, "{}", reply.body);
    assert_eq!(llm.calls(), 1);
    let system = llm.bodies()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("Write in German (de), whatever the language of the transcript"),
        "{system}"
    );
}
