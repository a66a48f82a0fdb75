//! Summaries end to end (issue 4; DESIGN.md invariants 3 and 4): several
//! app instances on one database, a fake YouTube that serves the captured
//! fixtures for any video id (and counts calls per id), and the fake
//! OpenAI-compatible server of `summarizer.rs`.

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
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tldw::domain::{Dashboard, OrgId, SummaryStatus};
use tokio::{io::AsyncWriteExt, net::TcpListener};

use crate::{
    helpers::{Reply, TestApp, TestDb, as_owner_in_org, spawn_instance_with},
    summarizer::{Fake, Reply as Llm, read_request, sse_body, write_chunk},
    youtube::{API_KEY, VIDEO, fixture},
};

// ---------------------------------------------------------------------------
// A fake YouTube for any video id.

#[derive(Default)]
struct TubeCalls {
    watch: usize,
    watch_of: HashMap<String, usize>,
    player: HashMap<String, usize>,
    timedtext: HashMap<String, usize>,
}

struct TubeState {
    watch_page: String,
    ok_player: String,
    no_captions_player: String,
    transcript: String,
    no_captions: Mutex<HashSet<String>>,
    /// Ids whose watch page is YouTube's 429 (we are blocked).
    blocked: Mutex<HashSet<String>>,
    /// Ids whose player answer is not JSON (a transient failure).
    garbled: Mutex<HashSet<String>>,
    calls: Mutex<TubeCalls>,
}

/// Serves `youtube.html`, then the OK player fixture (or, for ids marked
/// with [`Tube::without_captions`], `youtube_transcripts_disabled`) with the
/// fixture's video id replaced by the one asked for, so that the caption
/// URL, and so the timedtext call, names the requested video too.
pub(crate) struct Tube {
    base_url: String,
    state: Arc<TubeState>,
}

impl Tube {
    pub(crate) async fn start() -> Tube {
        let state = Arc::new(TubeState {
            watch_page: fixture("youtube.html"),
            ok_player: fixture("youtube.innertube.json"),
            no_captions_player: fixture("youtube_transcripts_disabled.innertube.json"),
            transcript: fixture("transcript.xml"),
            no_captions: Mutex::default(),
            blocked: Mutex::default(),
            garbled: Mutex::default(),
            calls: Mutex::default(),
        });
        let app = Router::new()
            .route("/watch", get(tube_watch))
            .route("/youtubei/v1/player", post(tube_player))
            .route("/api/timedtext", get(tube_timedtext))
            .route("/oembed", get(|| async { StatusCode::NOT_FOUND }))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Tube {
            base_url: format!("http://{addr}/"),
            state,
        }
    }

    pub(crate) fn without_captions(&self, video: &str) {
        self.state
            .no_captions
            .lock()
            .unwrap()
            .insert(video.to_owned());
    }

    /// YouTube answers 429 for this id: the bot wall.
    pub(crate) fn blocked(&self, video: &str) {
        self.state.blocked.lock().unwrap().insert(video.to_owned());
    }

    /// The player answer for this id is garbage (transient).
    pub(crate) fn garbled(&self, video: &str) {
        self.state.garbled.lock().unwrap().insert(video.to_owned());
    }

    /// Every request for this id, watch page included.
    pub(crate) fn all_calls(&self, video: &str) -> usize {
        let calls = self.state.calls.lock().unwrap();
        calls.watch_of.get(video).copied().unwrap_or(0)
            + calls.player.get(video).copied().unwrap_or(0)
            + calls.timedtext.get(video).copied().unwrap_or(0)
    }

    pub(crate) fn player_calls(&self, video: &str) -> usize {
        let calls = self.state.calls.lock().unwrap();
        calls.player.get(video).copied().unwrap_or(0)
    }

    fn caption_calls(&self, video: &str) -> usize {
        let calls = self.state.calls.lock().unwrap();
        calls.timedtext.get(video).copied().unwrap_or(0)
    }

    fn watch_calls(&self) -> usize {
        self.state.calls.lock().unwrap().watch
    }
}

async fn tube_watch(State(state): State<Arc<TubeState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let video = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "v")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    {
        let mut calls = state.calls.lock().unwrap();
        calls.watch += 1;
        *calls.watch_of.entry(video.clone()).or_default() += 1;
    }
    if state.blocked.lock().unwrap().contains(&video) {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        state.watch_page.clone(),
    )
        .into_response()
}

async fn tube_player(
    State(state): State<Arc<TubeState>>,
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
    *state
        .calls
        .lock()
        .unwrap()
        .player
        .entry(video.to_owned())
        .or_default() += 1;
    if state.garbled.lock().unwrap().contains(video) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"playabilityStatus\": 12",
        )
            .into_response();
    }
    let template = if state.no_captions.lock().unwrap().contains(video) {
        &state.no_captions_player
    } else {
        &state.ok_player
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        template.replace(VIDEO, video),
    )
        .into_response()
}

async fn tube_timedtext(
    State(state): State<Arc<TubeState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let video = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "v")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    *state
        .calls
        .lock()
        .unwrap()
        .timedtext
        .entry(video)
        .or_default() += 1;
    (
        [(header::CONTENT_TYPE, "text/xml")],
        state.transcript.clone(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Apps, members and calls.

/// Settings for every instance: the fake YouTube, the fake LLM (or the
/// built-in summarizer with `None`), the production pool size, and `more`.
pub(crate) fn vars(tube: &Tube, llm: Option<&str>, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vec![
        ("TLDW_YOUTUBE_BASE_URL".to_owned(), tube.base_url.clone()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "10".to_owned()),
    ];
    // These tests send many requests per member; the throttle has its own
    // test, which sets it.
    if !more
        .iter()
        .any(|(k, _)| *k == "TLDW_SUMMARY_REQUESTS_PER_MINUTE")
    {
        vars.push(("TLDW_SUMMARY_REQUESTS_PER_MINUTE".into(), "0".into()));
    }
    if let Some(base) = llm {
        vars.push(("OPENAI_API_KEY".into(), "sk-test-key".into()));
        vars.push(("OPENAI_BASE_URL".into(), base.to_owned()));
    }
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

pub(crate) async fn instance(db: &TestDb, vars: &[(String, String)]) -> Arc<TestApp> {
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Arc::new(spawn_instance_with(db, &pairs).await)
}

async fn instances(db: &TestDb, vars: &[(String, String)], n: usize) -> Vec<Arc<TestApp>> {
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(instance(db, vars).await);
    }
    apps
}

/// Someone signed in, and the org they act for.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) cookie: String,
    pub(crate) slug: String,
    pub(crate) org: OrgId,
}

/// `orgs` orgs, each with an owner and `extra` more members (sign-up is
/// limited to 10 per address per hour, so at most 10 people per test).
pub(crate) async fn members(app: &TestApp, tag: &str, orgs: usize, extra: usize) -> Vec<Member> {
    let mut members = Vec::new();
    for o in 0..orgs {
        let owner_email = format!("owner{o}-{tag}@example.com");
        let owner = app.sign_up(&owner_email).await;
        let slug = app.create_org(&owner, &format!("{tag} org {o}")).await;
        let org = app.org_page(&owner, &slug).await.org.id;
        for m in 0..extra {
            let email = format!("member{o}-{m}-{tag}@example.com");
            let cookie = app.sign_up(&email).await;
            app.add_member(&owner, &slug, &cookie, &email, "member")
                .await;
            members.push(Member {
                cookie,
                slug: slug.clone(),
                org,
            });
        }
        members.push(Member {
            cookie: owner,
            slug,
            org,
        });
    }
    members
}

fn link(video: &str) -> String {
    format!("https://www.youtube.com/watch?v={video}&feature=share")
}

/// An 11-character id that no other test uses.
pub(crate) fn video(tag: &str, n: usize) -> String {
    let id = format!("{tag}{n:0>width$}", width = 11 - tag.len());
    assert_eq!(id.len(), 11, "{id}");
    id
}

/// The dashboard's form: the `summaries/request` server function.
async fn request(app: &TestApp, who: &Member, video: &str) -> Reply {
    app.call(
        &who.cookie,
        "summaries/request",
        &[("slug", &who.slug), ("link", &link(video))],
    )
    .await
}

/// `POST /api/v1/orgs/{slug}/summaries`, as an API client with the
/// member's session cookie sends it (same origin).
pub(crate) async fn rest(app: &TestApp, who: &Member, video: &str) -> Reply {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/orgs/{}/summaries", who.slug)))
        .header("origin", &app.address)
        .header("cookie", &who.cookie)
        .json(&json!({ "url": format!("https://youtu.be/{video}?si=abc") }))
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

pub(crate) async fn status(app: &TestApp, who: &Member, video: &str) -> SummaryStatus {
    app.call(
        &who.cookie,
        "summaries/status",
        &[("slug", &who.slug), ("video", video)],
    )
    .await
    .ok()
    .json()
}

async fn dashboard(app: &TestApp, who: &Member) -> Dashboard {
    app.call(&who.cookie, "summaries/dashboard", &[("slug", &who.slug)])
        .await
        .ok()
        .json()
}

/// Polls the status until `done` says so; panics with the last status
/// after `within`.
async fn wait_for(
    app: &TestApp,
    who: &Member,
    video: &str,
    within: Duration,
    done: impl Fn(&SummaryStatus) -> bool,
) -> SummaryStatus {
    let started = Instant::now();
    loop {
        let status = status(app, who, video).await;
        if done(&status) {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "{video} for {}: still {status:?} after {within:?}",
            who.slug
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn is_ready(status: &SummaryStatus) -> bool {
    matches!(status, SummaryStatus::Ready { .. })
}

fn is_failed(status: &SummaryStatus) -> bool {
    matches!(status, SummaryStatus::Failed { .. })
}

fn tldr(status: &SummaryStatus) -> String {
    match status {
        SummaryStatus::Ready { view, .. } => view.body.tldr.clone(),
        other => panic!("not ready: {other:?}"),
    }
}

/// Waits until `check` holds, polling every 50 ms; panics after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The org's usage ledger, `(video_id, status)` oldest first, read as the
/// owner role inside a transaction scoped to the org (FORCE RLS binds the
/// owner too).
pub(crate) async fn ledger(db: &TestDb, org: OrgId) -> Vec<(String, String)> {
    let mut conn = db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows = sqlx::query_as(
        "select video_id, status from usage_records where org_id = $1 order by created_at, id",
    )
    .bind(org.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

pub(crate) fn count(rows: &[(String, String)], status: &str) -> usize {
    rows.iter().filter(|(_, s)| s == status).count()
}

/// Statuses and how many of each, for messages.
pub(crate) fn tally(statuses: impl IntoIterator<Item = u16>) -> Vec<(u16, usize)> {
    let mut tally: Vec<(u16, usize)> = Vec::new();
    for status in statuses {
        match tally.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => tally.push((status, 1)),
        }
    }
    tally.sort_unstable();
    tally
}

// ---------------------------------------------------------------------------
// Invariant 4: one LLM call per video.

#[tokio::test]
async fn fifty_concurrent_requests_on_three_instances_make_one_llm_call() {
    fifty_requests_on_three_instances_make_one_llm_call(&TestDb::new().await, &[]).await;
}

/// The test above on `db`, with `via` added to each instance's settings
/// (e.g. `DATABASE_URL` through a pooler).
pub(crate) async fn fifty_requests_on_three_instances_make_one_llm_call(
    db: &TestDb,
    via: &[(String, String)],
) {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(400)));
    let base = llm.start().await;
    let mut settings = vars(&tube, Some(&base), &[]);
    settings.extend_from_slice(via);
    let apps = instances(db, &settings, 3).await;
    // 4 orgs with 2 people each: 8 requesters.
    let people = members(&apps[0], "flight", 4, 1).await;
    let video = video("flight", 1);

    let requests = (0..50).map(|i| {
        let app = apps[i % 3].clone();
        let who = people[i % people.len()].clone();
        let video = video.clone();
        tokio::spawn(async move { request(&app, &who, &video).await })
    });
    for reply in futures_join(requests).await {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let location = reply.location().unwrap();
        assert!(location.ends_with(&format!("/v/{video}")), "{location}");
    }

    let mut tldrs = HashSet::new();
    for (i, who) in people.iter().enumerate() {
        let ready = wait_for(&apps[i % 3], who, &video, Duration::from_secs(30), is_ready).await;
        tldrs.insert(tldr(&ready));
    }
    assert_eq!(tldrs.len(), 1, "{tldrs:?}");
    // Nobody is still working on it: give stragglers a moment, then count.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(llm.calls(), 1, "LLM calls for 1 video and 50 requests");
    assert_eq!(tube.player_calls(&video), 1, "transcript fetches");
    assert_eq!(tube.caption_calls(&video), 1, "caption downloads");
    assert_eq!(tube.watch_calls(), 1, "watch pages");
}

/// `join_all` without the futures crate: awaits each handle in order.
pub(crate) async fn futures_join<T: Send + 'static>(
    handles: impl IntoIterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let handles: Vec<_> = handles.into_iter().collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn concurrent_requests_from_one_org_for_one_video_charge_it_once() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(300)));
    let base = llm.start().await;
    let db = TestDb::new().await;
    let apps = instances(&db, &vars(&tube, Some(&base), &[]), 2).await;
    let people = members(&apps[0], "once", 1, 1).await;
    let video = video("once", 1);

    let requests = (0..20).map(|i| {
        let app = apps[i % 2].clone();
        let who = people[i % 2].clone();
        let video = video.clone();
        tokio::spawn(async move { rest(&app, &who, &video).await.status })
    });
    let statuses = futures_join(requests).await;
    // 202 while it is being made; 200 with the summary for a request that
    // arrives after it is ready (a slow machine can get there).
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 200),
        "{:?}",
        tally(statuses)
    );
    wait_for(
        &apps[0],
        &people[0],
        &video,
        Duration::from_secs(30),
        is_ready,
    )
    .await;
    eventually("every unit settled", Duration::from_secs(10), || async {
        count(&ledger(&db, people[0].org).await, "reserved") == 0
    })
    .await;
    // Charged once. On a starved machine a request can fail before its
    // work starts (a pool timeout) and refund its unit; a later request
    // then reserves again. Any such extra unit must be refunded.
    let rows = ledger(&db, people[0].org).await;
    assert_eq!(count(&rows, "succeeded"), 1, "{rows:?}");
    assert_eq!(count(&rows, "refunded"), rows.len() - 1, "{rows:?}");
    assert_eq!(dashboard(&apps[1], &people[1]).await.quota.used, 1);
    assert_eq!(llm.calls(), 1);
}

/// An app instance in a runtime of its own on its own thread, so that it
/// can be killed like a crashed process: every task it runs is dropped at
/// once, mid-call, without any cleanup code of ours running.
struct Doomed {
    address: String,
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

async fn spawn_doomed(db: &TestDb, vars: Vec<(String, String)>) -> Doomed {
    let name = db.name.clone();
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let (kill, killed) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let app = runtime.block_on(spawn_instance_with(&TestDb::named(&name), &pairs));
        address_tx.send(app.address.clone()).unwrap();
        let _ = killed.recv();
        runtime.shutdown_background();
        drop(app);
    });
    Doomed {
        address: address_rx.await.unwrap(),
        kill,
        thread,
    }
}

impl Doomed {
    /// The summary request server function, sent to this instance.
    async fn request(&self, who: &Member, video: &str) -> Reply {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/api/summaries/request", self.address))
            .header("origin", &self.address)
            .header("accept", "application/json")
            .header("cookie", &who.cookie)
            .form(&[("slug", who.slug.as_str()), ("link", &link(video))])
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    async fn kill(self) {
        self.kill.send(()).unwrap();
        tokio::task::spawn_blocking(move || self.thread.join().unwrap())
            .await
            .unwrap();
    }
}

/// Org A's request runs on an instance that dies while the model works; org
/// B asked meanwhile on another instance and is waiting. Returns the live
/// instance, the people (A's owner first, then B's, then C's), the video,
/// the fakes and when the crash happened.
struct Crash {
    db: TestDb,
    app: Arc<TestApp>,
    people: Vec<Member>,
    video: String,
    tube: Tube,
    llm: Arc<Fake>,
    requested_at: Instant,
    killed_at: Instant,
}

async fn crash_mid_call(tag: &str) -> Crash {
    let tube = Tube::start().await;
    // The first call never answers in time; any later one answers at once.
    let llm = Fake::new([Llm::Slow(Duration::from_secs(60))], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let vars = vars(&tube, Some(&base), &[("TLDW_SUMMARY_LEASE_SECONDS", "2")]);
    let doomed = spawn_doomed(&db, vars.clone()).await;
    let app = instance(&db, &vars).await;
    let people = members(&app, tag, 3, 0).await;
    let video = video(tag, 1);

    let requested_at = Instant::now();
    let reply = doomed.request(&people[0], &video).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    eventually(
        "the model got the call",
        Duration::from_secs(10),
        || async { llm.calls() == 1 },
    )
    .await;
    // B joins while A's worker is mid-call: B waits for it.
    assert_eq!(rest(&app, &people[1], &video).await.status, 202);
    let waiting = status(&app, &people[1], &video).await;
    assert!(
        matches!(waiting, SummaryStatus::Working { .. }),
        "{waiting:?}"
    );
    doomed.kill().await;
    Crash {
        db,
        app,
        people,
        video,
        tube,
        llm,
        requested_at,
        killed_at: Instant::now(),
    }
}

#[tokio::test]
async fn a_crashed_claimants_lease_expires_and_the_work_is_taken_over() {
    let crash = crash_mid_call("crash").await;
    let (app, video) = (&crash.app, &crash.video);
    let (a, b, c) = (&crash.people[0], &crash.people[1], &crash.people[2]);

    let ready = wait_for(app, b, video, Duration::from_secs(30), is_ready).await;
    let took = crash.killed_at.elapsed();
    assert_eq!(tldr(&ready), "Covers 0s to 5s.");
    // Not before the 2 s lease (renewed until the crash) ran out.
    assert!(
        took >= Duration::from_millis(1000),
        "taken over after {took:?}"
    );
    assert!(crash.llm.calls() <= 2, "{} LLM calls", crash.llm.calls());
    assert_eq!(crash.llm.calls(), 2);
    assert_eq!(crash.tube.player_calls(video), 2, "one fetch per attempt");

    // Later requests are served from the cache (200, in the request), with
    // no new call.
    assert_eq!(rest(app, c, video).await.status, 200);
    let ready = wait_for(app, c, video, Duration::from_secs(5), is_ready).await;
    assert!(matches!(
        ready,
        SummaryStatus::Ready {
            from_cache: true,
            ..
        }
    ));
    assert_eq!(crash.llm.calls(), 2);
    assert_eq!(dashboard(app, b).await.quota.used, 1);
    let c_used = dashboard(app, c).await.quota.used;
    assert_eq!(
        c_used,
        1,
        "org C's ledger: {:?}",
        ledger(&crash.db, c.org).await
    );

    // What became of the crashed request's unit (reported, not asserted:
    // nothing is left to settle it).
    let rows = ledger(&crash.db, a.org).await;
    let used = dashboard(app, a).await.quota.used;
    let a_status = status(app, a, video).await;
    eprintln!(
        "crashed request: ledger {rows:?}, used {used}, status {a_status:?}, after takeover in {took:?}"
    );
}

#[tokio::test]
async fn the_crashed_requests_org_still_gets_its_summary() {
    let crash = crash_mid_call("orphan").await;
    let (app, video, a, b) = (&crash.app, &crash.video, &crash.people[0], &crash.people[1]);
    wait_for(app, b, video, Duration::from_secs(30), is_ready).await;

    eprintln!(
        "DEBUG before: {:?} {:?}",
        ledger(&crash.db, a.org).await,
        status(app, a, video).await
    );
    // A asks again on a live instance, once its reservation is older than
    // the lease (2 s): an abandoned one is settled then.
    tokio::time::sleep_until((crash.requested_at + Duration::from_millis(2500)).into()).await;
    let reply = rest(app, a, video).await;
    eprintln!(
        "DEBUG after: {:?} {:?}",
        ledger(&crash.db, a.org).await,
        status(app, a, video).await
    );
    // The video is ready by now: 200 with the summary.
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(app, a, video, Duration::from_secs(10), is_ready).await;
    assert_eq!(crash.llm.calls(), 2);
    let rows = ledger(&crash.db, a.org).await;
    assert_eq!(count(&rows, "reserved"), 0, "{rows:?}");
    assert_eq!(dashboard(app, a).await.quota.used, 1, "{rows:?}");
}

#[tokio::test]
async fn the_crashed_requests_page_settles_without_a_new_request() {
    let crash = crash_mid_call("stuck").await;
    let (app, video, a, b) = (&crash.app, &crash.video, &crash.people[0], &crash.people[1]);
    wait_for(app, b, video, Duration::from_secs(30), is_ready).await;
    // The page polls; well past the 2 s lease it should show the summary.
    let ready = wait_for(app, a, video, Duration::from_secs(10), is_ready).await;
    assert!(matches!(ready, SummaryStatus::Ready { .. }));
    assert_eq!(crash.llm.calls(), 2);
}

#[tokio::test]
async fn a_video_without_captions_is_fetched_once_and_charges_nobody() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let apps = instances(&db, &vars(&tube, Some(&base), &[]), 2).await;
    let people = members(&apps[0], "nocap", 5, 0).await;
    let video = video("nocap", 1);
    tube.without_captions(&video);

    let requests = (0..100).map(|i| {
        let app = apps[i % 2].clone();
        let who = people[i % people.len()].clone();
        let video = video.clone();
        tokio::spawn(async move { rest(&app, &who, &video).await })
    });
    let replies = futures_join(requests).await;
    for reply in &replies {
        // Accepted (and refunded later), or refused from the negative cache.
        match reply.status {
            202 => {}
            409 => {
                let body: Value = reply.json();
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains("no captions"), "{message}");
            }
            _ => panic!("{}: {}", reply.status, reply.body),
        }
    }
    eprintln!(
        "no-captions video: {:?}",
        tally(replies.iter().map(|r| r.status))
    );

    for (i, who) in people.iter().enumerate() {
        let failed = wait_for(
            &apps[i % 2],
            who,
            &video,
            Duration::from_secs(30),
            is_failed,
        )
        .await;
        let SummaryStatus::Failed { message } = failed else {
            unreachable!()
        };
        assert!(message.contains("no captions"), "{message}");
        assert!(message.contains("paste"), "{message}");
    }
    for who in &people {
        eventually("every unit settled", Duration::from_secs(10), || async {
            count(&ledger(&db, who.org).await, "reserved") == 0
        })
        .await;
        assert_eq!(dashboard(&apps[0], who).await.quota.used, 0, "{}", who.slug);
        let rows = ledger(&db, who.org).await;
        assert_eq!(count(&rows, "succeeded"), 0, "{rows:?}");
    }
    assert_eq!(tube.player_calls(&video), 1, "player calls within the TTL");
    assert_eq!(tube.caption_calls(&video), 0);
    assert_eq!(llm.calls(), 0);

    // A second request a little later still answers from the cache.
    let reply = rest(&apps[1], &people[0], &video).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(tube.player_calls(&video), 1);
}

#[tokio::test]
async fn a_cached_permanent_failure_is_retried_after_its_ttl() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(&tube, None, &[("TLDW_NEGATIVE_CACHE_SECONDS", "3")]),
    )
    .await;
    let people = members(&app, "ttl", 1, 0).await;
    let video = video("ttl", 1);
    tube.without_captions(&video);

    assert_eq!(rest(&app, &people[0], &video).await.status, 202);
    wait_for(&app, &people[0], &video, Duration::from_secs(10), is_failed).await;
    let failed_at = Instant::now();
    // Until the refund commits, asking again joins the open request.
    eventually("refunded", Duration::from_secs(10), || async {
        count(&ledger(&db, people[0].org).await, "refunded") == 1
    })
    .await;
    assert_eq!(rest(&app, &people[0], &video).await.status, 409);
    assert_eq!(tube.player_calls(&video), 1);

    tokio::time::sleep_until((failed_at + Duration::from_millis(3500)).into()).await;
    assert_eq!(rest(&app, &people[0], &video).await.status, 202);
    eventually("a second attempt", Duration::from_secs(10), || async {
        tube.player_calls(&video) == 2
    })
    .await;
    wait_for(&app, &people[0], &video, Duration::from_secs(10), is_failed).await;
    eventually("refunded", Duration::from_secs(10), || async {
        count(&ledger(&db, people[0].org).await, "refunded") == 2
    })
    .await;
    assert_eq!(dashboard(&app, &people[0]).await.quota.used, 0);
}

// ---------------------------------------------------------------------------
// Invariant 3: quotas are exact under concurrency.

#[tokio::test]
async fn sixty_concurrent_requests_from_two_instances_get_exactly_the_limit() {
    sixty_requests_from_two_instances_get_exactly_the_limit(&TestDb::new().await, &[]).await;
}

/// The test above on `db`, with `via` added to each instance's settings.
pub(crate) async fn sixty_requests_from_two_instances_get_exactly_the_limit(
    db: &TestDb,
    via: &[(String, String)],
) {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let mut settings = vars(&tube, Some(&base), &[("TLDW_FREE_MONTHLY_SUMMARIES", "10")]);
    settings.extend_from_slice(via);
    let apps = instances(db, &settings, 2).await;
    let people = members(&apps[0], "quota", 1, 1).await;

    let requests = (0..60).map(|i| {
        let app = apps[i % 2].clone();
        let who = people[i % 2].clone();
        tokio::spawn(async move {
            let video = video("quota", i);
            (video.clone(), rest(&app, &who, &video).await)
        })
    });
    let replies = futures_join(requests).await;
    let statuses = tally(replies.iter().map(|(_, r)| r.status));
    assert_eq!(statuses, [(202, 10), (429, 50)], "{replies:?}");

    let mut accepted = Vec::new();
    for (video, reply) in &replies {
        if reply.status == 202 {
            let body: Value = reply.json();
            assert_eq!(body["video_id"], video.as_str());
            accepted.push(video.clone());
            continue;
        }
        let body: Value = reply.json();
        assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
        // The full 429 shape (Retry-After, used, limit, resets_at) is
        // checked by `quota_exhaustion_says_when_to_come_back`.
    }

    for video in &accepted {
        wait_for(
            &apps[0],
            &people[0],
            video,
            Duration::from_secs(30),
            is_ready,
        )
        .await;
    }
    let org = people[0].org;
    eventually("every unit settled", Duration::from_secs(10), || async {
        count(&ledger(db, org).await, "reserved") == 0
    })
    .await;
    let board = dashboard(&apps[1], &people[1]).await;
    assert_eq!((board.quota.used, board.quota.limit), (10, 10));
    assert_eq!(board.items.len(), 10);
    let rows = ledger(db, org).await;
    assert_eq!(rows.len(), 10, "{rows:?}");
    assert_eq!(count(&rows, "succeeded"), 10, "{rows:?}");
    let mut charged: Vec<String> = rows.into_iter().map(|(v, _)| v).collect();
    charged.sort();
    accepted.sort();
    assert_eq!(charged, accepted);
    assert_eq!(llm.calls(), 10, "LLM calls for 10 unique videos");
}

/// A REST 429 as invariant 3 asks: `Retry-After` and a JSON body with the
/// error code, a message, used, limit and resets_at.
#[track_caller]
fn assert_quota_exceeded(reply: &Reply, used: i32, limit: i32) {
    assert_eq!(reply.status, 429, "{}", reply.body);
    let retry_after: u64 = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {reply:?}"))
        .parse()
        .unwrap();
    assert!((1..=31 * 24 * 3600).contains(&retry_after), "{retry_after}");
    let body: Value = reply.json();
    let body = &body["error"];
    assert_eq!(body["code"], "quota_exceeded", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["used"], used, "{body}");
    assert_eq!(body["limit"], limit, "{body}");
    let resets_at = body["resets_at"]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .unwrap_or_else(|| panic!("no RFC 3339 resets_at: {body}"));
    let now = chrono::Utc::now();
    assert!(resets_at > now, "{body}");
    assert!(resets_at <= now + chrono::Duration::days(31), "{body}");
    // Retry-After points at the reset, give or take the clock.
    let until = (resets_at.with_timezone(&chrono::Utc) - now).num_seconds();
    assert!(
        retry_after.abs_diff(until as u64) <= 5,
        "{retry_after} vs {until}"
    );
}

#[tokio::test]
async fn quota_exhaustion_says_when_to_come_back() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let apps = instances(
        &db,
        &vars(&tube, None, &[("TLDW_FREE_MONTHLY_SUMMARIES", "1")]),
        1,
    )
    .await;
    let people = members(&apps[0], "full", 1, 0).await;
    assert_eq!(
        rest(&apps[0], &people[0], &video("full", 1)).await.status,
        202
    );
    let refused = rest(&apps[0], &people[0], &video("full", 2)).await;
    assert_quota_exceeded(&refused, 1, 1);
}

#[tokio::test]
async fn a_failed_llm_call_is_refunded_once_and_a_retry_charges_once() {
    let tube = Tube::start().await;
    // One request that meets two 500s (a try and its retry), one that meets
    // two timeouts, then a healthy model.
    let llm = Fake::new(
        [
            Llm::ServerError,
            Llm::ServerError,
            Llm::Slow(Duration::from_secs(4)),
            Llm::Slow(Duration::from_secs(4)),
        ],
        Llm::Echo,
    );
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(
            &tube,
            Some(&base),
            &[
                ("OPENAI_MAX_RETRIES", "1"),
                ("OPENAI_TIMEOUT_SECS", "1"),
                // Retried at once below: no cool-down.
                ("TLDW_FAILURE_COOLDOWN_SECONDS", "0"),
            ],
        ),
    )
    .await;
    let people = members(&app, "refund", 1, 0).await;
    let who = &people[0];
    let (erroring, slow) = (video("refund", 1), video("refund", 2));

    for (video, calls) in [(&erroring, 2), (&slow, 4)] {
        assert_eq!(rest(&app, who, video).await.status, 202);
        eventually("the unit refunded", Duration::from_secs(20), || async {
            ledger(&db, who.org).await.last().map(|(_, s)| s.as_str()) == Some("refunded")
        })
        .await;
        assert_eq!(llm.calls(), calls, "{video}");
        assert_eq!(dashboard(&app, who).await.quota.used, 0, "{video}");
        // Not in the history, so asking again is a new request.
        let status = status(&app, who, video).await;
        assert!(!is_ready(&status), "{status:?}");
    }
    let rows = ledger(&db, who.org).await;
    assert_eq!(
        rows,
        [
            (erroring.clone(), "refunded".to_owned()),
            (slow.clone(), "refunded".to_owned())
        ]
    );

    // The model is back: asking again works and charges exactly one unit each.
    for (n, video) in [&erroring, &slow].into_iter().enumerate() {
        assert_eq!(rest(&app, who, video).await.status, 202);
        wait_for(&app, who, video, Duration::from_secs(20), is_ready).await;
        eventually("settled", Duration::from_secs(10), || async {
            count(&ledger(&db, who.org).await, "reserved") == 0
        })
        .await;
        assert_eq!(dashboard(&app, who).await.quota.used, n as i32 + 1);
    }
    let rows = ledger(&db, who.org).await;
    assert_eq!(count(&rows, "refunded"), 2, "{rows:?}");
    assert_eq!(count(&rows, "succeeded"), 2, "{rows:?}");
    assert_eq!(llm.calls(), 6);
}

#[tokio::test]
async fn a_failed_llm_call_shows_failed_with_a_message() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::ServerError);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(&tube, Some(&base), &[("OPENAI_MAX_RETRIES", "0")]),
    )
    .await;
    let people = members(&app, "failmsg", 1, 0).await;
    let video = video("failmsg", 1);
    assert_eq!(rest(&app, &people[0], &video).await.status, 202);
    let failed = wait_for(&app, &people[0], &video, Duration::from_secs(20), |s| {
        !matches!(s, SummaryStatus::Working { .. })
    })
    .await;
    let SummaryStatus::Failed { message } = &failed else {
        panic!("expected Failed, got {failed:?}");
    };
    assert!(message.contains("try again"), "{message}");
}

#[tokio::test]
async fn one_orgs_exhausted_quota_does_not_touch_another_and_reopening_is_free() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(&tube, Some(&base), &[("TLDW_FREE_MONTHLY_SUMMARIES", "2")]),
    )
    .await;
    let people = members(&app, "apart", 2, 0).await;
    let (a, b) = (&people[0], &people[1]);
    let v: Vec<String> = (0..4).map(|n| video("apart", n)).collect();

    for video in &v[..2] {
        assert_eq!(rest(&app, a, video).await.status, 202);
        wait_for(&app, a, video, Duration::from_secs(20), is_ready).await;
    }
    // A is out: by REST and by the dashboard's form alike.
    let refused = rest(&app, a, &v[2]).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let refused = request(&app, a, &v[3]).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert!(
        matches!(
            refused.error(),
            tldw::error::AppError::QuotaExceeded {
                used: 2,
                limit: 2,
                ..
            }
        ),
        "{}",
        refused.body
    );
    assert_eq!(status(&app, a, &v[2]).await, SummaryStatus::NotRequested);

    // B is untouched, even for the videos A was refused and A's own.
    // (v[2] is made now: 202; v[0] is in the cache already: 200.)
    for (video, expected) in [(&v[2], 202), (&v[0], 200)] {
        assert_eq!(rest(&app, b, video).await.status, expected);
        wait_for(&app, b, video, Duration::from_secs(20), is_ready).await;
    }
    assert_eq!(dashboard(&app, b).await.quota.used, 2);

    // Reopening what A already has is free, by either road.
    assert_eq!(rest(&app, a, &v[0]).await.status, 200);
    let reopened = request(&app, a, &v[1]).await;
    assert_eq!(reopened.status, 200, "{}", reopened.body);
    assert_eq!(
        reopened.location(),
        Some(format!("/o/{}/v/{}", a.slug, v[1]).as_str())
    );
    assert!(is_ready(&status(&app, a, &v[1]).await));
    let board = dashboard(&app, a).await;
    assert_eq!((board.quota.used, board.items.len()), (2, 2));
    let rows = ledger(&db, a.org).await;
    assert_eq!(count(&rows, "succeeded"), 2, "{rows:?}");
    assert_eq!(rows.len(), 2, "{rows:?}");
    // 3 unique videos, 3 calls.
    assert_eq!(llm.calls(), 3);
}

// ---------------------------------------------------------------------------
// The built-in summarizer and the shared cache.

#[tokio::test]
async fn the_built_in_summarizer_fills_the_cache_for_every_org() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, None, &[])).await;
    let people = members(&app, "builtin", 2, 0).await;
    let (a, b) = (&people[0], &people[1]);
    let video = video("builtin", 1);

    assert_eq!(request(&app, a, &video).await.status, 200);
    let ready = wait_for(&app, a, &video, Duration::from_secs(20), is_ready).await;
    let SummaryStatus::Ready { view, from_cache } = ready else {
        unreachable!()
    };
    assert!(view.built_in);
    assert_eq!(view.model, "tldw-extractive");
    assert!(!from_cache);
    assert_eq!(
        view.title.as_deref(),
        Some("Surface Go Review - It’s Awesome")
    );
    assert!(!view.body.tldr.is_empty());
    assert!(dashboard(&app, a).await.built_in_summarizer);
    assert_eq!(tube.player_calls(&video), 1);

    let started = Instant::now();
    assert_eq!(request(&app, b, &video).await.status, 200);
    let ready = wait_for(&app, b, &video, Duration::from_secs(5), is_ready).await;
    let took = started.elapsed();
    let SummaryStatus::Ready {
        view: cached,
        from_cache,
    } = ready
    else {
        unreachable!()
    };
    assert!(from_cache);
    assert_eq!(cached, view);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(tube.player_calls(&video), 1, "no new transcript fetch");
    assert_eq!(tube.caption_calls(&video), 1);
    let board = dashboard(&app, b).await;
    assert_eq!(board.items.len(), 1);
    assert!(board.items[0].from_cache);
}

// ---------------------------------------------------------------------------
// Numbers for the issue's note (not a timed test).

pub(crate) const STREAMED_ANSWER: &str = r#"{"tldr":"A short review of the Surface Go: small, light and good enough for everyday work.","key_points":[{"text":"The hardware feels premium for the price.","at_seconds":0},{"text":"Performance is fine for light tasks.","at_seconds":1},{"text":"Battery life is the weak spot.","at_seconds":5}]}"#;

/// An OpenAI-compatible server that streams each SSE event `per_event`
/// apart (7 characters of content per event).
async fn slow_streaming_llm(per_event: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                for event in sse_body(STREAMED_ANSWER).split_inclusive("\n\n") {
                    tokio::time::sleep(per_event).await;
                    write_chunk(&mut socket, event).await;
                }
                socket.write_all(b"0\r\n\r\n").await.unwrap();
            });
        }
    });
    base
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[tokio::test]
#[ignore = "a report, not a test: run with --ignored --nocapture"]
async fn summary_latency_report() {
    let tube = Tube::start().await;
    let base = slow_streaming_llm(Duration::from_millis(50)).await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, Some(&base), &[])).await;
    let people = members(&app, "latency", 1, 0).await;
    let who = &people[0];
    let video = video("latency", 1);

    let started = Instant::now();
    assert_eq!(request(&app, who, &video).await.status, 200);
    let accepted = started.elapsed();
    let first = wait_for(&app, who, &video, Duration::from_secs(30), |s| {
        matches!(s, SummaryStatus::Working { partial: Some(text), .. } if !text.is_empty())
            || is_ready(s)
    })
    .await;
    let first_text = started.elapsed();
    assert!(!is_ready(&first), "no partial text was ever shown");
    wait_for(&app, who, &video, Duration::from_secs(30), is_ready).await;
    let done = started.elapsed();

    let mut statuses = Vec::new();
    let mut reopens = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        assert!(is_ready(&status(&app, who, &video).await));
        statuses.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(request(&app, who, &video).await.status, 200);
        reopens.push(t.elapsed());
    }
    let rows = [
        ("request accepted (redirect)", accepted),
        ("first streamed text in status", first_text),
        ("summary ready", done),
        (
            "cached: status of a Ready video, median of 30",
            median(statuses),
        ),
        ("cached: reopen from history, median of 30", median(reopens)),
    ];
    println!("summary latency over the local fakes (the LLM streams one SSE event per 50 ms):");
    for (label, took) in rows {
        println!("  {label:<48} {took:>10.1?}");
    }
}

// ---------------------------------------------------------------------------
// Issue 15: a cached summary is served in one transaction, with every
// invariant of the lease path intact.

/// Puts `videos` into the shared cache as ready summaries, as a finished
/// worker would have left them.
pub(crate) async fn seed_ready(db: &TestDb, videos: &[String]) {
    let mut conn = db.owner_conn().await;
    for video in videos {
        sqlx::query(
            "insert into videos (video_id, status, title, channel, duration_seconds, summary, model,
                 prompt_version, built_in, cost_micros, completed_at)
             values ($1, 'ready', $2, 'Seeded channel', 600, $3, 'gpt-4o-mini', 'v-test', false, 1200, now())",
        )
        .bind(video)
        .bind(format!("Seeded {video}"))
        .bind(json!({
            "tldr": format!("Cached summary of {video}."),
            "key_points": [{"text": "First point", "at_seconds": 12}, {"text": "Second point", "at_seconds": 95}],
        }))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// `(used, ledger rows not refunded, history rows)` for one org, read as
/// the owner inside the org's scope.
pub(crate) async fn counts(db: &TestDb, org: OrgId) -> (i32, i64, i64) {
    let mut conn = db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let row = sqlx::query_as(
        "select coalesce((select sum(used)::int from usage_counters where org_id = $1), 0),
                (select count(*) from usage_records where org_id = $1 and status <> 'refunded'),
                (select count(*) from user_summaries where org_id = $1)",
    )
    .bind(org.as_uuid())
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    row
}

#[tokio::test]
async fn two_hundred_concurrent_cache_hits_from_ten_orgs_on_two_instances_charge_each_pair_once() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(300)));
    let base = llm.start().await;
    let db = TestDb::new().await;
    let apps = instances(&db, &vars(&tube, Some(&base), &[]), 2).await;
    let people = members(&apps[0], "hot", 10, 0).await;
    let videos: Vec<String> = (0..50).map(|n| video("hot", n)).collect();
    seed_ready(&db, &videos).await;

    // Each org asks for 10 of the 50 videos, each twice at once: once
    // through each instance.
    let pair = |i: usize| {
        let org = i % 10;
        (org, (org * 5 + (i / 10) % 10) % 50)
    };
    let requests = (0..200).map(|i| {
        let app = apps[i / 100].clone();
        let (org, v) = pair(i);
        let who = people[org].clone();
        let video = videos[v].clone();
        tokio::spawn(async move { (org, video.clone(), rest(&app, &who, &video).await) })
    });
    let replies = futures_join(requests).await;
    let statuses: Vec<u16> = replies.iter().map(|(_, _, r)| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{:?}", tally(statuses));
    for (_, video, reply) in &replies {
        let body: Value = reply.json();
        assert_eq!(body["video_id"], video.as_str(), "{body}");
        assert_eq!(body["status"], "ready", "{body}");
        assert_eq!(body["from_cache"], true, "{body}");
        assert_eq!(
            body["summary"]["tldr"],
            format!("Cached summary of {video}."),
            "{body}"
        );
    }

    // Settled before the answer went out: no reservation is left open and
    // nothing is waiting to be settled in the background.
    let mut total_used = 0;
    for (o, who) in people.iter().enumerate() {
        let rows = ledger(&db, who.org).await;
        assert_eq!(rows.len(), 10, "org {o}: {rows:?}");
        assert_eq!(count(&rows, "succeeded"), 10, "org {o}: {rows:?}");
        let mut charged: Vec<&String> = rows.iter().map(|(v, _)| v).collect();
        charged.sort();
        charged.dedup();
        let mut asked: Vec<&String> = (0..200)
            .filter(|i| pair(*i).0 == o)
            .map(|i| &videos[pair(i).1])
            .collect();
        asked.sort();
        asked.dedup();
        assert_eq!(charged, asked, "org {o}: one unit per video it asked for");
        let (used, ledger_rows, history) = counts(&db, who.org).await;
        assert_eq!((used, ledger_rows, history), (10, 10, 10), "org {o}");
        total_used += used;
    }
    assert_eq!(total_used, 100);
    // Nothing was fetched or summarized: every answer came from the cache.
    assert_eq!(llm.calls(), 0);
    assert_eq!(tube.player_calls(&videos[0]), 0);
}

#[tokio::test]
async fn a_cache_hit_is_settled_in_the_request_and_reopening_it_is_free() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let apps = instances(
        &db,
        &vars(&tube, None, &[("TLDW_FREE_MONTHLY_SUMMARIES", "1")]),
        1,
    )
    .await;
    let people = members(&apps[0], "hit", 1, 0).await;
    let who = &people[0];
    let (first, second) = (video("hit", 1), video("hit", 2));
    seed_ready(&db, &[first.clone(), second.clone()]).await;

    let served = rest(&apps[0], who, &first).await;
    assert_eq!(served.status, 200, "{}", served.body);
    // The unit is spent and the history written by the time we hear back.
    assert_eq!(
        ledger(&db, who.org).await,
        vec![(first.clone(), "succeeded".to_owned())]
    );
    assert_eq!(counts(&db, who.org).await, (1, 1, 1));

    // Over the limit: 429 with the numbers, and nothing written.
    let refused = rest(&apps[0], who, &second).await;
    assert_quota_exceeded(&refused, 1, 1);
    assert_eq!(counts(&db, who.org).await, (1, 1, 1));
    assert!(matches!(
        status(&apps[0], who, &second).await,
        SummaryStatus::NotRequested
    ));

    // Reopening what the org already has is free, even with the quota gone,
    // through the API (POST and GET) and the page.
    let again = rest(&apps[0], who, &first).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let got = apps[0]
        .client
        .get(apps[0].url(&format!("/api/v1/orgs/{}/summaries/{first}", who.slug)))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap();
    let got = Reply::read(got).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        got.json::<Value>()["summary"],
        again.json::<Value>()["summary"]
    );
    assert!(is_ready(&status(&apps[0], who, &first).await));
    assert_eq!(counts(&db, who.org).await, (1, 1, 1));

    // A video this org never asked for is 404 on the GET.
    let missing = apps[0]
        .client
        .get(apps[0].url(&format!("/api/v1/orgs/{}/summaries/{second}", who.slug)))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_video_being_made_answers_202_with_where_to_poll() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(400)));
    let base = llm.start().await;
    let db = TestDb::new().await;
    let apps = instances(&db, &vars(&tube, Some(&base), &[]), 1).await;
    let people = members(&apps[0], "poll", 1, 0).await;
    let who = &people[0];
    let video = video("poll", 1);

    let accepted = rest(&apps[0], who, &video).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let location = format!("/api/v1/orgs/{}/summaries/{video}", who.slug);
    assert_eq!(accepted.header("location"), Some(location.as_str()));
    assert!(accepted.header("retry-after").is_some());
    wait_for(&apps[0], who, &video, Duration::from_secs(30), is_ready).await;
    let done = Reply::read(
        apps[0]
            .client
            .get(apps[0].url(&location))
            .header("cookie", &who.cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json::<Value>()["from_cache"], false);
    assert_eq!(llm.calls(), 1);
}

#[tokio::test]
async fn the_sweeper_settles_an_abandoned_reservation_without_any_request_from_its_org() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let apps = instances(
        &db,
        &vars(&tube, None, &[("TLDW_SUMMARY_LEASE_SECONDS", "1")]),
        1,
    )
    .await;
    let people = members(&apps[0], "sweep", 2, 0).await;
    let (gone, made) = (video("sweep", 1), video("sweep", 2));
    seed_ready(&db, std::slice::from_ref(&made)).await;
    // Two units reserved by requests that died with their process: one for
    // a video nobody made (refund), one for a video that got made (spend).
    for (who, video) in [(&people[0], &gone), (&people[1], &made)] {
        as_owner_in_org(
            &db,
            who.org,
            &format!(
                "with c as (
                     insert into usage_counters (org_id, period_start, period_end, used)
                     select '{org}', period_start, period_end, 1 from org_entitlement('{org}')
                     returning period_start)
                 insert into usage_records (org_id, id, user_id, video_id, period_start, created_at)
                 select '{org}', gen_random_uuid(), (select id from users where org_id = '{org}' limit 1),
                        '{video}', period_start, now() - interval '10 seconds' from c",
                org = who.org,
            ),
        )
        .await;
    }
    eventually(
        "both reservations settled",
        Duration::from_secs(10),
        || async {
            count(&ledger(&db, people[0].org).await, "reserved") == 0
                && count(&ledger(&db, people[1].org).await, "reserved") == 0
        },
    )
    .await;
    assert_eq!(
        ledger(&db, people[0].org).await,
        vec![(gone, "refunded".to_owned())]
    );
    assert_eq!(counts(&db, people[0].org).await, (0, 0, 0));
    assert_eq!(counts(&db, people[1].org).await, (1, 1, 1));
}

// ---------------------------------------------------------------------------
// Issue 10: a failed attempt is shared, not repeated; a per-member throttle.

#[tokio::test]
async fn a_failing_model_is_called_once_per_attempt_whatever_the_number_of_waiting_orgs() {
    let tube = Tube::start().await;
    // The model answers 500 to every call (after the warm-up below).
    let llm = Fake::new([Llm::Echo], Llm::ServerError);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let apps = instances(
        &db,
        &vars(
            &tube,
            Some(&base),
            &[
                ("OPENAI_MAX_RETRIES", "1"),
                ("TLDW_FAILURE_COOLDOWN_SECONDS", "3"),
            ],
        ),
        3,
    )
    .await;
    let people = members(&apps[0], "herd", 6, 0).await;
    // A warm-up video takes the one good answer, so that every instance
    // has made its connections before the herd arrives.
    let warm = video("herd", 9);
    let video = video("herd", 1);
    assert_eq!(rest(&apps[0], &people[0], &warm).await.status, 202);
    wait_for(
        &apps[0],
        &people[0],
        &warm,
        Duration::from_secs(20),
        is_ready,
    )
    .await;
    let calls_before = llm.calls();

    let requests = (0..6).map(|i| {
        let app = apps[i % 3].clone();
        let who = people[i].clone();
        let video = video.clone();
        tokio::spawn(async move { rest(&app, &who, &video).await.status })
    });
    // 202 while waiting on the attempt; 409 (the failure, at once) for a
    // request that arrives after it failed.
    let statuses = futures_join(requests).await;
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 409),
        "{:?}",
        tally(statuses)
    );
    for who in &people {
        let failed = wait_for(&apps[0], who, &video, Duration::from_secs(20), is_failed).await;
        let SummaryStatus::Failed { message } = failed else {
            unreachable!()
        };
        assert!(message.contains("AI service"), "{message}");
        assert!(message.contains("Nothing was charged"), "{message}");
    }
    // One attempt: a call and its one retry, for six waiting orgs.
    let attempt_calls = llm.calls() - calls_before;
    assert!(
        attempt_calls <= 2,
        "{attempt_calls} model calls for one attempt"
    );
    eprintln!("model calls for one video with 6 waiting orgs under failure: {attempt_calls}");
    for who in &people {
        eventually("refunded", Duration::from_secs(10), || async {
            count(&ledger(&db, who.org).await, "reserved") == 0
        })
        .await;
        let rows = ledger(&db, who.org).await;
        // Reserved and refunded once, or (a 409) never reserved at all.
        let mine: Vec<_> = rows.iter().filter(|(v, _)| *v == video).collect();
        assert!(mine.len() <= 1, "{rows:?}");
        assert!(mine.iter().all(|(_, s)| s == "refunded"), "{rows:?}");
    }

    // During the cool-down a new request is answered at once, charges
    // nothing and calls nobody.
    let during = rest(&apps[1], &people[2], &video).await;
    assert_eq!(during.status, 409, "{}", during.body);
    assert!(
        during.body.contains("Nothing was charged"),
        "{}",
        during.body
    );
    assert_eq!(llm.calls() - calls_before, attempt_calls);
    assert_eq!(count(&ledger(&db, people[2].org).await, "reserved"), 0);

    // After it, the next request may try again: one new attempt.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(rest(&apps[2], &people[3], &video).await.status, 202);
    wait_for(
        &apps[2],
        &people[3],
        &video,
        Duration::from_secs(20),
        is_failed,
    )
    .await;
    assert!(
        llm.calls() - calls_before > attempt_calls,
        "no new attempt after the cool-down"
    );
}

#[tokio::test]
async fn the_per_member_throttle_is_exact_across_two_instances() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let apps = instances(
        &db,
        &vars(&tube, None, &[("TLDW_SUMMARY_REQUESTS_PER_MINUTE", "5")]),
        2,
    )
    .await;
    let people = members(&apps[0], "throttle", 1, 1).await;
    let videos: Vec<String> = (0..8).map(|n| video("throttle", n)).collect();
    seed_ready(&db, &videos).await;

    let requests = (0..8).map(|i| {
        let app = apps[i % 2].clone();
        let who = people[0].clone();
        let video = videos[i].clone();
        tokio::spawn(async move { rest(&app, &who, &video).await })
    });
    let replies = futures_join(requests).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        tally(statuses.clone()),
        vec![(200, 5), (429, 3)],
        "{statuses:?}"
    );
    for refused in replies.iter().filter(|r| r.status == 429) {
        let body: Value = refused.json();
        // Told apart from the monthly quota by its code and its words.
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("5 a minute"), "{message}");
        assert!(!message.contains("quota"), "{message}");
        let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    // Refused requests charged nothing; the other member is not throttled.
    assert_eq!(counts(&db, people[0].org).await, (5, 5, 5));
    assert_eq!(rest(&apps[1], &people[1], &videos[7]).await.status, 200);
}

#[tokio::test]
async fn the_history_lists_newest_first_in_keyset_pages_with_a_title_filter() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let apps = instances(
        &db,
        &vars(&tube, None, &[("TLDW_FREE_MONTHLY_SUMMARIES", "100")]),
        1,
    )
    .await;
    let people = members(&apps[0], "list", 2, 0).await;
    let (who, other) = (&people[0], &people[1]);
    let videos: Vec<String> = (0..25).map(|n| video("list", n)).collect();
    seed_ready(&db, &videos).await;
    for video in &videos {
        assert_eq!(rest(&apps[0], who, video).await.status, 200);
    }
    let list = |who: &Member, query: &str| {
        let app = apps[0].clone();
        let (cookie, url) = (
            who.cookie.clone(),
            format!("/api/v1/orgs/{}/summaries{query}", who.slug),
        );
        async move {
            let response = app
                .client
                .get(app.url(&url))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            Reply::read(response).await
        }
    };

    // Three pages of 10, 10 and 5, newest first, each video once.
    let mut seen = Vec::new();
    let mut query = "?limit=10".to_owned();
    for expected in [10, 10, 5] {
        let page = list(who, &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let body: Value = page.json();
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), expected, "{body}");
        seen.extend(
            items
                .iter()
                .map(|i| i["video_id"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=10&cursor={cursor}"),
            None => assert_eq!(expected, 5, "the last page has no cursor"),
        }
    }
    let expected: Vec<String> = videos.iter().rev().cloned().collect();
    assert_eq!(seen, expected, "newest first, no repeats, none missing");

    // A title filter (a plain substring).
    let filtered: Value = list(who, &format!("?q=Seeded%20{}", videos[7]))
        .await
        .json();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered["items"][0]["video_id"], videos[7].as_str());

    // Bad input is a 422 naming the field; another org sees only its own.
    for (query, field) in [
        ("?cursor=nonsense", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
    ] {
        let refused = list(who, query).await;
        assert_eq!(refused.status, 422, "{query}: {}", refused.body);
        assert!(
            refused.json::<Value>()["error"]["fields"][field].is_string(),
            "{query}: {}",
            refused.body
        );
    }
    let empty: Value = list(other, "").await.json();
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["next_cursor"], Value::Null);
}

// ---------------------------------------------------------------------------
// No free model spend, and no free YouTube hammering (issue 12, item 2;
// security review findings 2, 13 and 18g).

/// An answer the model bills for (the fake reports 123 + 45 tokens per
/// call) that holds no summary: what a prompt injection at the end of a
/// transcript can make it write.
pub(crate) fn empty_answer() -> Llm {
    Llm::Content(r#"{"tldr": "", "key_points": []}"#.into())
}

#[tokio::test]
async fn a_model_failure_after_billed_tokens_is_charged_once_not_refunded() {
    let tube = Tube::start().await;
    let llm = Fake::new([], empty_answer());
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, Some(&base), &[])).await;
    let people = members(&app, "billed", 2, 0).await;
    let (payer, other) = (&people[0], &people[1]);
    let video = video("billed", 1);

    assert_eq!(rest(&app, payer, &video).await.status, 202);
    let failed = wait_for(&app, payer, &video, Duration::from_secs(20), is_failed).await;
    let SummaryStatus::Failed { message } = failed else {
        unreachable!()
    };
    assert!(message.contains("used one of your summaries"), "{message}");
    assert!(!message.contains("Nothing was charged"), "{message}");
    eventually("the unit settled", Duration::from_secs(10), || async {
        count(&ledger(&db, payer.org).await, "reserved") == 0
    })
    .await;
    // Charged, not refunded: the model's tokens were paid for.
    assert_eq!(
        ledger(&db, payer.org).await,
        [(video.clone(), "charged".into())]
    );
    assert_eq!(dashboard(&app, payer).await.quota.used, 1);
    let billed: Option<i64> = {
        let mut conn = db.owner_conn().await;
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        sqlx::query("select set_config('app.org_id', $1, true)")
            .bind(payer.org.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        let billed = sqlx::query_scalar("select billed_tokens from usage_records")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        billed
    };
    assert_eq!(billed, Some(168), "the tokens the attempt cost");
    assert_eq!(llm.calls(), 1);

    // The failure is cached: asking again during the cool-down, from this
    // org or another, is answered at once, calls nobody and charges nobody.
    for who in [payer, other] {
        let again = rest(&app, who, &video).await;
        assert_eq!(again.status, 409, "{}", again.body);
    }
    assert_eq!(llm.calls(), 1, "a retry loop reached the model");
    assert_eq!(ledger(&db, payer.org).await.len(), 1);
    assert!(ledger(&db, other.org).await.is_empty());
    assert_eq!(dashboard(&app, other).await.quota.used, 0);
}

#[tokio::test]
async fn a_transcript_over_the_plans_token_cap_is_refused_before_any_model_call() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(
            &tube,
            Some(&base),
            &[
                ("TLDW_MAX_SUMMARY_TOKENS_FREE", "10"),
                ("TLDW_MAX_SUMMARY_TOKENS_PRO", "1000000"),
            ],
        ),
    )
    .await;
    let people = members(&app, "capped", 2, 0).await;
    let (free, pro) = (&people[0], &people[1]);
    as_owner_in_org(
        &db,
        pro.org,
        &format!(
            "insert into subscriptions (org_id, plan, source, status, dodo_subscription_id,
                 period_start, period_end)
             values ('{}', 'pro', 'dodo', 'active', 'sub_capped',
                 date_trunc('second', now()) - interval '1 day',
                 date_trunc('second', now()) + interval '29 days')",
            pro.org.as_uuid()
        ),
    )
    .await;
    let video = video("capped", 1);

    assert_eq!(rest(&app, free, &video).await.status, 202);
    let failed = wait_for(&app, free, &video, Duration::from_secs(20), is_failed).await;
    let SummaryStatus::Failed { message } = failed else {
        unreachable!()
    };
    assert!(
        message.contains("over the Free plan's cap of 10 tokens per summary"),
        "{message}"
    );
    assert_eq!(
        llm.calls(),
        0,
        "the model was called for a capped transcript"
    );
    eventually("refunded", Duration::from_secs(10), || async {
        ledger(&db, free.org).await == [(video.clone(), "refunded".to_owned())]
    })
    .await;

    // The same video is within the Pro cap: it is made, for the Pro org.
    assert_eq!(rest(&app, pro, &video).await.status, 202);
    wait_for(&app, pro, &video, Duration::from_secs(20), is_ready).await;
    assert_eq!(llm.calls(), 1);
}

#[tokio::test]
async fn the_youtube_attempt_budget_is_per_org_and_refunds_do_not_restore_it() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(&tube, None, &[("TLDW_YOUTUBE_ATTEMPTS_PER_ORG_HOUR", "3")]),
    )
    .await;
    let people = members(&app, "budget", 2, 0).await;
    let (looper, bystander) = (&people[0], &people[1]);
    let videos: Vec<String> = (1..=5).map(|n| video("budget", n)).collect();
    for v in &videos {
        tube.without_captions(v);
    }

    // Three attempts fail (no captions), are refunded, and use the budget.
    for v in &videos[..3] {
        assert_eq!(rest(&app, looper, v).await.status, 202);
        wait_for(&app, looper, v, Duration::from_secs(20), is_failed).await;
    }
    eventually("refunded", Duration::from_secs(10), || async {
        count(&ledger(&db, looper.org).await, "refunded") == 3
    })
    .await;
    assert_eq!(dashboard(&app, looper).await.quota.used, 0);

    // The fourth is refused before YouTube is asked, with when to retry.
    let refused = rest(&app, looper, &videos[3]).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(tube.all_calls(&videos[3]), 0);
    assert_eq!(
        ledger(&db, looper.org).await.len(),
        3,
        "no unit for a refusal"
    );

    // Another org has its own budget.
    assert_eq!(rest(&app, bystander, &videos[4]).await.status, 202);
    wait_for(
        &app,
        bystander,
        &videos[4],
        Duration::from_secs(20),
        is_failed,
    )
    .await;
}

#[tokio::test]
async fn youtube_blocking_us_pauses_fetching_for_every_org_until_the_cool_down_ends() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(
            &tube,
            None,
            &[("TLDW_YOUTUBE_BLOCKED_COOLDOWN_SECONDS", "2")],
        ),
    )
    .await;
    let people = members(&app, "breaker", 2, 0).await;
    let (tenant, bystander) = (&people[0], &people[1]);
    let (walled, healthy) = (video("breaker", 1), video("breaker", 2));
    tube.blocked(&walled);

    assert_eq!(rest(&app, tenant, &walled).await.status, 202);
    wait_for(&app, tenant, &walled, Duration::from_secs(20), is_failed).await;
    assert!(tube.all_calls(&walled) >= 1);

    // Another org, another video: YouTube is not asked while it blocks us.
    assert_eq!(rest(&app, bystander, &healthy).await.status, 202);
    let paused = wait_for(
        &app,
        bystander,
        &healthy,
        Duration::from_secs(20),
        is_failed,
    )
    .await;
    let SummaryStatus::Failed { message } = paused else {
        unreachable!()
    };
    assert!(
        message.contains("YouTube is refusing our requests"),
        "{message}"
    );
    assert!(message.contains("Nothing was charged"), "{message}");
    assert_eq!(
        tube.all_calls(&healthy),
        0,
        "fetched while the breaker was open"
    );
    eventually("refunded", Duration::from_secs(10), || async {
        ledger(&db, bystander.org).await == [(healthy.clone(), "refunded".to_owned())]
    })
    .await;

    // After the cool-down the next fetch goes through, and closes it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(rest(&app, bystander, &healthy).await.status, 202);
    wait_for(&app, bystander, &healthy, Duration::from_secs(20), is_ready).await;
    assert!(tube.all_calls(&healthy) >= 1);
}

/// Seconds until the `''` row of `video` may be claimed again.
async fn retry_in(db: &TestDb, video: &str) -> f64 {
    let mut conn = db.app_conn().await;
    sqlx::query_scalar(
        "select coalesce(extract(epoch from retry_after - now())::float8, 0)
         from videos where video_id = $1 and variant = '' and status = 'failed'",
    )
    .bind(video)
    .fetch_optional(&mut conn)
    .await
    .unwrap()
    .unwrap_or(0.0)
}

#[tokio::test]
async fn a_transient_youtube_failure_is_cached_for_one_then_five_then_thirty_minutes() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, None, &[])).await;
    let people = members(&app, "ladder", 1, 0).await;
    let who = &people[0];
    let video = video("ladder", 1);
    tube.garbled(&video);

    for (attempt, minutes) in [1.0, 5.0, 30.0].into_iter().enumerate() {
        assert_eq!(
            rest(&app, who, &video).await.status,
            202,
            "attempt {attempt}"
        );
        let expected = minutes * 60.0;
        eventually(
            &format!("cached for {minutes} min"),
            Duration::from_secs(20),
            || async { retry_in(&db, &video).await > expected - 30.0 },
        )
        .await;
        let left = retry_in(&db, &video).await;
        assert!(left <= expected, "attempt {attempt}: {left} s");
        // Meanwhile it is answered from the cache, without YouTube.
        let calls = tube.all_calls(&video);
        assert_eq!(rest(&app, who, &video).await.status, 409);
        assert_eq!(tube.all_calls(&video), calls);
        // Time passes.
        let mut conn = db.owner_conn().await;
        sqlx::query("update videos set retry_after = now() where video_id = $1")
            .bind(&video)
            .execute(&mut conn)
            .await
            .unwrap();
        eventually("settled", Duration::from_secs(10), || async {
            count(&ledger(&db, who.org).await, "reserved") == 0
        })
        .await;
    }
}
