//! Live updates (issue 11, item 4): `GET /o/{slug}/events` across app
//! processes. Two instances share one database; what a member does through
//! one reaches the streams open on the other through PostgreSQL
//! LISTEN/NOTIFY, within a second. Streams are scoped by membership,
//! bounded per member, kept open by heartbeats, and survive a database
//! restart with a `resync`.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::{
    billing::{NO_DODO, billing_vars, deliver_signed},
    faults::{Cluster, data_dir},
    helpers::{Reply, TestApp, TestDb, as_owner_in_org, seed_org, spawn_embedded},
    summaries::{Member, Tube, instance, members, rest, seed_ready, vars, video},
};

/// The Pro product `billing_vars` configures.
const PRO_PRODUCT: &str = "pdt_pro";
/// What "live" means in the issue.
const WITHIN: Duration = Duration::from_secs(1);

/// One SSE frame as sent: its fields (a comment is `:`).
#[derive(Debug, Default, Clone)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: Option<String>,
}

/// An open event stream, read frame by frame.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Opens the stream as `cookie`, or returns the refusal.
    async fn open(
        app: &TestApp,
        cookie: &str,
        slug: &str,
        last_event_id: Option<&str>,
    ) -> Result<Stream, Reply> {
        Stream::open_path(app, cookie, &format!("/o/{slug}/events"), last_event_id).await
    }

    async fn open_path(
        app: &TestApp,
        cookie: &str,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<Stream, Reply> {
        let mut request = app
            .client
            .get(app.url(path))
            .header("accept", "text/event-stream");
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        if response.status() != 200 {
            return Err(Reply::read(response).await);
        }
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Ok(Stream {
            response,
            buffer: String::new(),
        })
    }

    /// Opens it, panicking on a refusal, and reads the opening id.
    async fn opened(app: &TestApp, who: &Member) -> (Stream, String) {
        let mut stream = Stream::open(app, &who.cookie, &who.slug, None)
            .await
            .unwrap_or_else(|reply| panic!("stream refused: {reply:?}"));
        let first = stream
            .frame(Duration::from_secs(5))
            .await
            .expect("no opening frame");
        assert_eq!(first.event, None, "{first:?}");
        let id = first.id.expect("the opening frame carries an id");
        (stream, id)
    }

    /// The next frame, or `None` if none arrives within `within` (or the
    /// stream ended).
    async fn frame(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Some(parse_frame(&raw));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Reads until every one of `events` was seen (heartbeats and other
    /// events skipped); panics after `within`. Returns when the last came.
    async fn expect(&mut self, events: &[&str], within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        let mut missing: Vec<&str> = events.to_vec();
        let mut seen = Vec::new();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.frame(left).await else {
                panic!("still waiting for {missing:?} after {within:?}; saw {seen:?}");
            };
            if let Some(event) = &frame.event {
                assert!(frame.id.is_some(), "an event without an id: {frame:?}");
                assert_eq!(frame.data.as_deref(), Some(event.as_str()), "{frame:?}");
                missing.retain(|m| m != event);
            }
            seen.push(frame);
        }
        Instant::now()
    }

    /// Every frame until the server ends the stream, or `None` if it is
    /// still open after `within`.
    async fn until_closed(&mut self, within: Duration) -> Option<Vec<Frame>> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                frames.push(parse_frame(&raw));
                continue;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) => return Some(frames),
                Ok(Err(error)) => panic!("the stream broke instead of ending: {error}"),
                Err(_) => return None,
            }
        }
    }

    /// Every event that arrives within `within`.
    async fn drain(&mut self, within: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        while let Some(frame) = self
            .frame(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            frames.push(frame);
        }
        frames.into_iter().filter(|f| f.event.is_some()).collect()
    }
}

fn parse_frame(raw: &str) -> Frame {
    let mut frame = Frame::default();
    for line in raw.lines().filter(|line| !line.is_empty()) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "" => frame.comment = Some(value),
            "id" => frame.id = Some(value),
            "event" => frame.event = Some(value),
            "data" => frame.data = Some(value),
            _ => {}
        }
    }
    frame
}

/// Two instances on one database, the built-in summarizer, a fake YouTube.
async fn two_instances(extra: &[(&str, &str)]) -> (TestApp, TestApp, Tube) {
    let db = TestDb::new().await;
    let tube = Tube::start().await;
    let vars = vars(&tube, None, extra);
    let a = instance(&db, &vars).await;
    let b = instance(&db, &vars).await;
    let (a, b) = (
        std::sync::Arc::try_unwrap(a).ok().unwrap(),
        std::sync::Arc::try_unwrap(b).ok().unwrap(),
    );
    (a, b, tube)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_summary_requested_through_b_reaches_a_stream_on_a_within_a_second() {
    let (a, b, _tube) = two_instances(&[]).await;
    let people = members(&a, "livea", 1, 1).await;
    let (member, owner) = (&people[0], &people[1]);
    let (mut stream, _) = Stream::opened(&a, owner).await;

    // A cached video: charged and put into the history in one request.
    let cached = video("livea", 1);
    seed_ready(&a.db, std::slice::from_ref(&cached)).await;
    let sent = Instant::now();
    let reply = rest(&b, member, &cached).await;
    assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
    let took = stream.expect(&["usage", "history"], WITHIN).await - sent;
    println!("cached summary through B → usage+history on A: {took:?}");

    // A video nobody has: the reservation moves the meter at once, the
    // history follows when the summary is made.
    let fresh = video("livea", 2);
    let sent = Instant::now();
    let reply = rest(&b, member, &fresh).await;
    assert!((200..=202).contains(&reply.status), "{reply:?}");
    stream.expect(&["usage"], WITHIN).await;
    let took = stream.expect(&["history"], Duration::from_secs(10)).await - sent;
    println!("fresh summary through B → history on A: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_plan_upgrade_sends_billing_and_usage() {
    let db = TestDb::new().await;
    let vars = billing_vars(NO_DODO, &[("DATABASE_MAX_CONNECTIONS", "6")]);
    let a = instance(&db, &vars).await;
    let b = instance(&db, &vars).await;
    let people = members(&a, "liveb", 1, 0).await;
    let owner = &people[0];
    let page = a.org_page(&owner.cookie, &owner.slug).await;
    let user = page.members[0].user_id;
    let checkout = uuid::Uuid::new_v4();
    as_owner_in_org(
        &db,
        owner.org,
        &format!(
            "insert into checkout_sessions (org_id, id, plan, created_by)
             values ('{}', '{checkout}', 'pro', '{}')",
            owner.org.as_uuid(),
            user.as_uuid()
        ),
    )
    .await;
    let (mut stream, _) = Stream::opened(&a, owner).await;

    let now = chrono::Utc::now();
    let body = serde_json::to_vec(&json!({
        "business_id": "bus_test",
        "type": "subscription.active",
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "payload_type": "Subscription",
            "subscription_id": format!("sub_{}", &checkout.simple().to_string()[..20]),
            "status": "active",
            "product_id": PRO_PRODUCT,
            "quantity": 1,
            "customer": { "customer_id": format!("cus_{}", &checkout.simple().to_string()[..12]), "email": "buyer@example.com", "name": "Buyer" },
            "metadata": { "tldw_checkout": checkout.to_string(), "tldw_org": owner.org.to_string() },
            "previous_billing_date": (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "next_billing_date": (now + chrono::Duration::days(29)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "cancel_at_next_billing_date": false,
            "cancelled_at": null,
            "created_at": (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "currency": "USD",
            "recurring_pre_tax_amount": 900,
            "tax_inclusive": false,
            "payment_frequency_count": 1,
            "payment_frequency_interval": "Month",
            "addons": [],
            "meters": []
        }
    }))
    .unwrap();
    let sent = Instant::now();
    let reply = deliver_signed(&b, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json::<Value>()["outcome"], "applied", "{reply:?}");
    let took = stream.expect(&["billing", "usage"], WITHIN).await - sent;
    println!("webhook upgrade through B → billing+usage on A: {took:?}");
}

#[tokio::test]
async fn another_orgs_member_gets_404_and_the_signed_out_401() {
    let (a, _b, _tube) = two_instances(&[]).await;
    let people = members(&a, "livec", 2, 0).await;
    let (ours, theirs) = (&people[0], &people[1]);
    let refused = Stream::open(&a, &theirs.cookie, &ours.slug, None)
        .await
        .err()
        .expect("another org's member got the stream");
    assert_eq!(refused.status, 404, "{refused:?}");
    assert_eq!(refused.json::<Value>()["error"]["code"], "not_found");
    let refused = Stream::open(&a, "", &ours.slug, None)
        .await
        .err()
        .expect("a visitor got the stream");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.json::<Value>()["error"]["code"], "unauthorized");
    // Its own stream is fine, and sees nothing of the other org's work.
    let (mut stream, _) = Stream::opened(&a, theirs).await;
    as_owner_in_org(
        &a.db,
        ours.org,
        &format!(
            "insert into usage_counters (org_id, period_start, period_end, used)
             values ('{}', now(), now() + interval '1 day', 1)",
            ours.org.as_uuid()
        ),
    )
    .await;
    let other = stream.drain(Duration::from_millis(700)).await;
    assert!(other.is_empty(), "{other:?}");
}

#[tokio::test]
async fn a_member_over_the_stream_limit_gets_429_until_one_closes() {
    let (a, _b, _tube) = two_instances(&[("TLDW_LIVE_MAX_STREAMS_PER_MEMBER", "2")]).await;
    let people = members(&a, "lived", 1, 1).await;
    let (member, owner) = (&people[0], &people[1]);
    let first = Stream::opened(&a, owner).await;
    let _second = Stream::opened(&a, owner).await;
    let refused = Stream::open(&a, &owner.cookie, &owner.slug, None)
        .await
        .err()
        .expect("a third stream was allowed");
    assert_eq!(refused.status, 429, "{refused:?}");
    let body: Value = refused.json();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains('2'));
    // The limit is per member: a colleague is not affected.
    let _colleague = Stream::opened(&a, member).await;
    // Closing one frees its place (the server notices the disconnect).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Stream::open(&a, &owner.cookie, &owner.slug, None).await {
            Ok(_) => break,
            Err(reply) if reply.status == 429 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(reply) => panic!("the freed place was not given back: {reply:?}"),
        }
    }
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats() {
    let (a, _b, _tube) = two_instances(&[("TLDW_LIVE_HEARTBEAT_SECONDS", "1")]).await;
    let people = members(&a, "livee", 1, 0).await;
    let (mut stream, _) = Stream::opened(&a, &people[0]).await;
    for _ in 0..2 {
        let frame = stream
            .frame(Duration::from_secs(3))
            .await
            .expect("no heartbeat within 3 s");
        assert_eq!(frame.comment.as_deref(), Some("heartbeat"), "{frame:?}");
        assert!(frame.event.is_none() && frame.id.is_none(), "{frame:?}");
    }
}

#[tokio::test]
async fn a_reconnect_resyncs_only_when_something_may_have_been_missed() {
    let (a, b, _tube) = two_instances(&[]).await;
    let people = members(&a, "livef", 1, 0).await;
    let owner = &people[0];
    let (stream, id) = Stream::opened(&a, owner).await;
    drop(stream);

    // Nothing happened since: no resync.
    let mut again = Stream::open(&a, &owner.cookie, &owner.slug, Some(&id))
        .await
        .unwrap();
    let events = {
        again.frame(Duration::from_secs(2)).await.expect("opening");
        again.drain(Duration::from_millis(500)).await
    };
    assert!(events.is_empty(), "{events:?}");
    drop(again);

    // An id from another process (or a run before a restart): resync.
    let mut elsewhere = Stream::open(&b, &owner.cookie, &owner.slug, Some(&id))
        .await
        .unwrap();
    elsewhere
        .frame(Duration::from_secs(2))
        .await
        .expect("opening");
    elsewhere.expect(&["resync"], Duration::from_secs(1)).await;

    // Something of the org happened while away: resync. A watching stream
    // on A tells when A's own listener has heard of it (B's hearing it
    // says nothing of A's: each process has its own listener).
    let (mut watching, _) = Stream::opened(&a, owner).await;
    as_owner_in_org(
        &a.db,
        owner.org,
        &format!(
            "insert into usage_counters (org_id, period_start, period_end, used)
             values ('{}', now(), now() + interval '1 day', 1)",
            owner.org.as_uuid()
        ),
    )
    .await;
    // The notification reaches A's listener after commit, asynchronously.
    watching.expect(&["usage"], WITHIN).await;
    let mut missed = Stream::open(&a, &owner.cookie, &owner.slug, Some(&id))
        .await
        .unwrap();
    missed.frame(Duration::from_secs(2)).await.expect("opening");
    missed.expect(&["resync"], Duration::from_secs(1)).await;
}

/// The triggers: SECURITY INVOKER, the payload is the org and the kind
/// and nothing more, a rolled-back change announces nothing, and a reopened
/// summary (nothing written) neither.
#[tokio::test]
async fn the_triggers_announce_committed_changes_with_only_the_org_and_the_kind() {
    let test_db = TestDb::new().await;
    let mut conn = test_db.app_conn().await;
    let definer: Vec<(String, bool)> = sqlx::query_as(
        "select p.proname::text, p.prosecdef from pg_trigger t join pg_proc p on p.oid = t.tgfoid
         where not t.tgisinternal and t.tgname::text ~ '_live$'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(definer.len(), 7, "{definer:?}");
    assert!(
        definer
            .iter()
            .all(|(name, definer)| name == "notify_org_change" && !definer)
    );

    let db = test_db.db(2).await;
    let (org, _) = seed_org(&db, "trigger-org").await;
    let mut listener = sqlx::postgres::PgListener::connect_with(
        &sqlx::PgPool::connect_with(test_db.app_options())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    listener.listen("tldw_org_events").await.unwrap();
    let insert = format!(
        "insert into usage_counters (org_id, period_start, period_end, used)
         values ('{}', now(), now() + interval '1 day', 1)",
        org.as_uuid()
    );

    let mut owner = test_db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut owner).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let nothing = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(nothing.is_err(), "a rollback announced {nothing:?}");

    as_owner_in_org(&test_db, org, &insert).await;
    let notification = tokio::time::timeout(Duration::from_secs(2), listener.recv())
        .await
        .expect("no notification after the commit")
        .unwrap();
    assert_eq!(notification.payload(), format!("{org} usage"));
}

#[tokio::test]
async fn shutdown_ends_open_streams_instead_of_waiting_for_them() {
    let (a, _b, _tube) = two_instances(&[]).await;
    let people = members(&a, "liveg", 1, 0).await;
    let (mut stream, _) = Stream::opened(&a, &people[0]).await;
    let began = Instant::now();
    a.stop().await.unwrap();
    // The grace period is 8 s; a stream must not hold shutdown that long.
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    assert!(stream.frame(Duration::from_secs(1)).await.is_none());
}

/// The app on its own embedded cluster (as a fresh install runs), a
/// stream open, then `pg_ctl restart -m fast`: the stream stays open, says
/// `resync` once the listener is back, and then delivers new events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_survives_a_database_restart_with_a_resync() {
    let dir = data_dir("live-restart");
    let tube = Tube::start().await;
    let vars = vars(&tube, None, &[]);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_embedded(&dir, &pairs).await;
    let cluster = Cluster::join(&dir).await;
    let people = members(&app, "liveh", 1, 0).await;
    let owner = &people[0];
    let (mut stream, _) = Stream::opened(&app, owner).await;

    tokio::task::block_in_place(|| cluster.restart());
    let restarted = Instant::now();
    stream.expect(&["resync"], Duration::from_secs(10)).await;
    println!("resync {:?} after the restart", restarted.elapsed());

    // New events flow again: a summary through the REST API.
    let cached = video("liveh", 1);
    let mut conn = cluster.superuser().await;
    sqlx::query(
        "insert into videos (video_id, status, title, channel, duration_seconds, summary, model,
             prompt_version, built_in, cost_micros, completed_at)
         values ($1, 'ready', 'Seeded', 'Seeded channel', 600,
                 jsonb_build_object('tldr', 'Cached.', 'key_points', jsonb_build_array()),
                 'gpt-4o-mini', 'v-test', false, 1200, now())",
    )
    .bind(&cached)
    .execute(&mut conn)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = rest(&app, owner, &cached).await;
        if reply.status == 200 || reply.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stream.expect(&["usage", "history"], WITHIN).await;
    drop(stream);
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------
// The benchmark (not a test: ignored, run by `scripts/bench-live`).

/// The built server (as scale_out.rs finds it) in a process of its own on
/// `db`, with `vars`; killed on drop.
struct Process {
    child: std::process::Child,
    app: TestApp,
}

impl Process {
    async fn start(db: &TestDb, vars: &[(String, String)]) -> Process {
        use std::os::unix::process::CommandExt;
        let bin = std::env::var_os("TLDW_SERVER_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let exe = std::env::current_exe().unwrap();
                exe.parent().unwrap().parent().unwrap().join("tldw")
            });
        assert!(
            bin.is_file(),
            "{} is missing: build it with `cargo build --bin tldw --features ssr`",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (app_url, owner_url) = crate::helpers::database_urls(db);
        let mut command = std::process::Command::new(&bin);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", app_url)
            .env("DATABASE_MIGRATION_URL", owner_url)
            .env("RUST_LOG", "warn")
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let child = command.spawn().unwrap();
        let app = TestApp::remote(format!("http://127.0.0.1:{port}"), TestDb::named(&db.name));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = app.client.get(app.url("/readyz")).send().await
                && response.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                bin.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Process { child, app }
    }

    /// Resident memory, KiB.
    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Process A is the built server in a process of its own; B is an app in
/// this one. Every sample: a member asks B for a cached summary (it lands:
/// charged and put into the history, one transaction), and the time until
/// A's stream of that org has said `usage` and `history` is measured. Then
/// A is made to hold `LIVE_BENCH_STREAMS` streams of one org, with its RSS
/// before and after, and one more summary is timed to the last of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-live runs it"]
async fn bench_streams() {
    let samples = knob("LIVE_BENCH_SAMPLES", 200);
    let streams = knob("LIVE_BENCH_STREAMS", 2000);
    let db = TestDb::new().await;
    let tube = Tube::start().await;
    let vars = vars(
        &tube,
        None,
        &[
            ("TLDW_FREE_MONTHLY_SUMMARIES", "1000000"),
            ("TLDW_LIVE_MAX_STREAMS_PER_MEMBER", "1000000"),
        ],
    );
    let a = Process::start(&db, &vars).await;
    let b = instance(&db, &vars).await;
    let people = members(&b, "bench", 1, 1).await;
    let (member, owner) = (&people[0], &people[1]);
    let videos: Vec<String> = (0..samples + 1).map(|n| video("bench", n)).collect();
    seed_ready(&db, &videos).await;
    let (mut stream, _) = Stream::opened(&a.app, owner).await;

    let (mut to_event, mut to_answer) = (Vec::new(), Vec::new());
    for video in &videos[..samples] {
        let sent = Instant::now();
        let reply = rest(&b, member, video).await;
        let answered = sent.elapsed();
        assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
        let arrived = stream
            .expect(&["usage", "history"], Duration::from_secs(5))
            .await;
        to_event.push(arrived - sent);
        to_answer.push(answered);
    }
    let idle_rss = a.rss_kib();

    // Many streams of one org on A.
    let opened = Instant::now();
    let mut held = Vec::with_capacity(streams);
    let remote = std::sync::Arc::new(TestApp::remote(
        a.app.address.clone(),
        TestDb::named(&db.name),
    ));
    for batch in (0..streams).collect::<Vec<_>>().chunks(100) {
        let opening: Vec<_> = batch
            .iter()
            .map(|_| {
                let (app, owner) = (remote.clone(), owner.clone());
                tokio::spawn(async move { Stream::opened(&app, &owner).await.0 })
            })
            .collect();
        for task in opening {
            held.push(task.await.unwrap());
        }
    }
    let open_took = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded_rss = a.rss_kib();
    let waiting: Vec<_> = held
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let at = stream.expect(&["usage"], Duration::from_secs(30)).await;
                (at, stream)
            })
        })
        .collect();
    let sent = Instant::now();
    let reply = rest(&b, member, &videos[samples]).await;
    assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
    let mut fan_out = Vec::new();
    let mut kept = Vec::new();
    for task in waiting {
        let (at, stream) = task.await.unwrap();
        fan_out.push(at - sent);
        kept.push(stream);
    }
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("\nlive updates: a summary landing through process B, seen on process A's stream");
    println!("| measure | samples | median | p95 |");
    println!("|---|---|---|---|");
    println!(
        "| request sent to B → usage+history on A's stream | {samples} | {} | {} |",
        ms(percentile(&mut to_event, 0.5)),
        ms(percentile(&mut to_event, 0.95))
    );
    println!(
        "| request sent to B → B's answer (for reference) | {samples} | {} | {} |",
        ms(percentile(&mut to_answer, 0.5)),
        ms(percentile(&mut to_answer, 0.95))
    );
    println!(
        "| one summary → `usage` on every one of {streams} streams of A | {streams} | {} | {} (max {}) |",
        ms(percentile(&mut fan_out, 0.5)),
        ms(percentile(&mut fan_out, 0.95)),
        ms(*fan_out.iter().max().unwrap()),
    );
    println!(
        "\nprocess A held {} streams (opened in {}); RSS {:.1} MiB with one stream, {:.1} MiB with {} ({:.1} KiB per stream)",
        kept.len(),
        ms(open_took),
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        kept.len() + 1,
        (loaded_rss.saturating_sub(idle_rss)) as f64 / kept.len().max(1) as f64,
    );
}

/// What the triggers cost the summary hot path, as SQL: `serve_ready_summary`
/// charging a cached video (three rows written, so three trigger calls and
/// two NOTIFYs at commit), in tenant transactions as the app makes them,
/// sequentially and from 8 connections at once, with the triggers enabled
/// and disabled in alternating rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-live runs it"]
async fn bench_triggers() {
    use tldw::server::db::TenantScope;
    let calls = knob("LIVE_BENCH_CALLS", 2000);
    let test_db = TestDb::new().await;
    let db = test_db.db(10).await;
    let mut owner = test_db.owner_conn().await;
    sqlx::query(
        "insert into videos (video_id, status, title, summary, model, prompt_version, built_in, completed_at)
         select 'trg' || lpad(n::text, 8, '0'), 'ready', 'Seeded ' || n,
                jsonb_build_object('tldr', 'Cached.', 'key_points', jsonb_build_array()),
                'gpt-4o-mini', 'v-test', false, now()
         from generate_series(1, $1) n",
    )
    .bind((calls * 8) as i32)
    .execute(&mut owner)
    .await
    .unwrap();
    let tables = [
        "usage_counters",
        "usage_records",
        "user_summaries",
        "own_transcript_summaries",
        "subscriptions",
        "payments",
        "billing_events",
    ];
    let mut next_org = 0;
    let limits = r#"{"free": 100000000, "pro": 100000000, "team": 100000000}"#;
    let mut results: Vec<(bool, usize, Duration, usize)> = Vec::new();
    for round in 0..4 {
        let enabled = round % 2 == 0;
        for table in tables {
            let verb = if enabled { "enable" } else { "disable" };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "alter table {table} {verb} trigger {table}_live"
            )))
            .execute(&mut owner)
            .await
            .unwrap();
        }
        for concurrency in [1usize, 8] {
            let per_task = calls / concurrency / 2;
            let started = Instant::now();
            let mut tasks = Vec::new();
            for t in 0..concurrency {
                next_org += 1;
                let (org, user) =
                    seed_org(&db, &format!("trg{round}-{concurrency}-{t}-{next_org}")).await;
                let db = db.clone();
                let first = (next_org - 1) * per_task;
                tasks.push(tokio::spawn(async move {
                    for n in 0..per_task {
                        let video = format!("trg{:08}", (first + n) % (calls * 8) + 1);
                        let mut tx = db.tenant(TenantScope::member(org, user)).await.unwrap();
                        let outcome: String = sqlx::query_scalar(
                            "select outcome from serve_ready_summary($1, $2, $3, $4::jsonb, 0, '')",
                        )
                        .bind(org.as_uuid())
                        .bind(user.as_uuid())
                        .bind(&video)
                        .bind(limits)
                        .fetch_one(tx.conn())
                        .await
                        .unwrap();
                        assert_eq!(outcome, "charged");
                        tx.commit().await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            results.push((
                enabled,
                concurrency,
                started.elapsed(),
                per_task * concurrency,
            ));
        }
    }
    println!("\ntrigger cost on the charged cache hit (serve_ready_summary + commit)");
    println!("| triggers | connections | calls | per call (mean) | calls/s |");
    println!("|---|---|---|---|---|");
    for concurrency in [1usize, 8] {
        for enabled in [true, false] {
            let (took, n) = results
                .iter()
                .filter(|r| r.0 == enabled && r.1 == concurrency)
                .fold((Duration::ZERO, 0), |(t, c), r| (t + r.2, c + r.3));
            println!(
                "| {} | {concurrency} | {n} | {:.3} ms | {:.0} |",
                if enabled { "on" } else { "off" },
                took.as_secs_f64() * 1000.0 * concurrency as f64 / n as f64,
                n as f64 / took.as_secs_f64()
            );
        }
    }
}

/// A stream does not outlive its access: removing the member, or signing
/// the session out, ends it at the next check (every heartbeat interval),
/// while the owner's stream goes on.
#[tokio::test]
async fn a_removed_member_or_a_signed_out_session_loses_the_stream() {
    let (a, _b, _tube) = two_instances(&[("TLDW_LIVE_HEARTBEAT_SECONDS", "1")]).await;
    let people = members(&a, "liveg", 1, 2).await;
    let (removed, signed_out, owner) = (&people[0], &people[1], &people[2]);
    let (mut removed_stream, _) = Stream::opened(&a, removed).await;
    let (mut signed_out_stream, _) = Stream::opened(&a, signed_out).await;
    let (mut owner_stream, _) = Stream::opened(&a, owner).await;

    let removed_id = crate::helpers::member_id(
        &a.org_page(&owner.cookie, &owner.slug).await,
        "member0-0-liveg@example.com",
    );
    a.call(
        &owner.cookie,
        "orgs/remove-member",
        &[("slug", &owner.slug), ("user_id", &removed_id.to_string())],
    )
    .await
    .ok();
    a.call(&signed_out.cookie, "auth/sign-out", &[]).await.ok();

    for (who, stream) in [
        ("the removed member", &mut removed_stream),
        ("the signed-out session", &mut signed_out_stream),
    ] {
        let frames = stream.until_closed(Duration::from_secs(5)).await;
        let frames = frames.unwrap_or_else(|| panic!("{who}'s stream was still open after 5 s"));
        assert!(
            frames.iter().all(|f| f.event.is_none()),
            "{who} heard about the org after losing access: {frames:?}"
        );
    }
    // The owner's stream is still open and still hears heartbeats.
    let frame = owner_stream
        .frame(Duration::from_secs(3))
        .await
        .expect("the owner's stream ended too");
    assert_eq!(frame.comment.as_deref(), Some("heartbeat"), "{frame:?}");
}

/// Where the org page's render began, as it tells its stream.
async fn live_since(app: &TestApp, who: &Member) -> String {
    let html = app
        .page_html(&who.cookie, &format!("/o/{}", who.slug))
        .await;
    let (_, rest) = html
        .split_once("data-live-since=\"")
        .unwrap_or_else(|| panic!("the org shell carries where its render began: {html}"));
    rest.split('"').next().unwrap().to_owned()
}

/// A page's first stream, opened where its render began; the opening
/// frame is read.
async fn open_since(app: &TestApp, who: &Member, since: &str) -> Stream {
    let path = format!("/o/{}/events?since={since}", who.slug);
    let mut stream = Stream::open_path(app, &who.cookie, &path, None)
        .await
        .unwrap_or_else(|reply| panic!("stream refused: {reply:?}"));
    let opening = stream
        .frame(Duration::from_secs(5))
        .await
        .expect("no opening frame");
    assert_eq!(opening.event, None, "{opening:?}");
    stream
}

/// A page's first stream opens where the page's render began (`?since=`):
/// if nothing of the org changed in between it starts quietly; a change in
/// between (a summary served after the render) is a `resync` first thing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_between_the_page_and_its_stream_is_announced() {
    let (a, b, _tube) = two_instances(&[]).await;
    let people = members(&a, "liveh", 1, 1).await;
    let (member, owner) = (&people[0], &people[1]);

    // Setting up the org (its subscription row) notified too: let that
    // land before the first render, or it would rightly count as missed.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Nothing in between: no resync.
    let since = live_since(&a, owner).await;
    let mut quiet = open_since(&a, owner, &since).await;
    let frames = quiet.drain(Duration::from_millis(500)).await;
    assert!(
        frames.is_empty(),
        "a resync with nothing missed: {frames:?}"
    );

    // A summary served through B after A rendered the page, and seen by A's
    // hub (through a watching stream) before the page's stream opens.
    let since = live_since(&a, owner).await;
    let (mut watching, _) = Stream::opened(&a, owner).await;
    let cached = video("liveh", 1);
    seed_ready(&a.db, std::slice::from_ref(&cached)).await;
    let reply = rest(&b, member, &cached).await;
    assert!(reply.status == 200 || reply.status == 201, "{reply:?}");
    watching.expect(&["usage"], WITHIN).await;
    let mut late = open_since(&a, owner, &since).await;
    let first = late
        .frame(Duration::from_secs(2))
        .await
        .expect("no resync for a change the page missed");
    assert_eq!(first.event.as_deref(), Some("resync"), "{first:?}");
}
