//! Database faults under load (issue 16, part 1): the app runs on its own
//! embedded cluster, as a fresh install does, while 8 clients loop over
//! cached summaries through the REST API; the cluster is then restarted
//! (`pg_ctl restart -m fast`) or its postmaster killed with SIGKILL.
//! Every answer must be 200/202/503 (a 503 with `Retry-After` and the
//! `unavailable` envelope), the service back within 5 s, and afterwards
//! counters = ledger = history with no reservation left open.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tldw::server::db::embedded::{EmbeddedOptions, EmbeddedPostgres};

use crate::{
    billing::{NO_DODO, billing_vars, check_storm_effects, seed, send_until_acknowledged, storm},
    helpers::{Reply, TestApp, TestDb, spawn_embedded},
    summaries::{Member, Tube, members, rest, tally, vars},
};

const CLIENTS: usize = 8;
const VIDEOS: usize = 3000;
/// The service must answer 200 again within this long after the fault.
const RECOVERY_LIMIT: Duration = Duration::from_secs(5);
/// Load before the fault, and after it (past the recovery limit, so that
/// "stays up once back" is checked too).
const LOAD_BEFORE: Duration = Duration::from_millis(1500);
const LOAD_AFTER: Duration = Duration::from_millis(6500);
const LEASE_SECONDS: &str = "2";

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `pg_ctl restart -m fast`, as an operator would.
    Restart,
    /// SIGKILL of the postmaster: a crash, with its pid file left behind.
    Kill,
}

/// One answer, timed from the start of the load.
#[derive(Debug)]
struct Answer {
    sent: Duration,
    done: Duration,
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// The app's embedded cluster, reached from the test: a second handle on
/// the same folder (it joins the running cluster, and never stops it).
/// Dropping it kills whatever still runs there and removes the folder, so
/// a failed test leaves nothing behind.
pub(crate) struct Cluster {
    /// Leaked: a [`TestDb`] on this cluster needs it for the whole test.
    pg: &'static EmbeddedPostgres,
    dir: PathBuf,
}

impl Cluster {
    pub(crate) async fn join(dir: &Path) -> Cluster {
        let options = EmbeddedOptions {
            data_dir: dir.to_owned(),
            bin_dir: None,
            // As the app starts it, so the settings file stays the same.
            durable: true,
            max_connections: 10,
        };
        let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&options))
            .await
            .unwrap()
            .unwrap();
        Cluster {
            pg: Box::leak(Box::new(pg)),
            dir: dir.to_owned(),
        }
    }

    pub(crate) async fn superuser(&self) -> PgConnection {
        PgConnection::connect_with(&self.pg.superuser_options("tldw"))
            .await
            .unwrap()
    }

    fn postmaster_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pg.pgdata().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn kill_postmaster(&self) {
        let pid = self.postmaster_pid().expect("no postmaster.pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }

    /// `pg_ctl restart -m fast` as the cluster's OS user, with the server's
    /// output to its log (an inherited stdout would outlive pg_ctl).
    pub(crate) fn restart(&self) {
        let mut command = Command::new(self.pg.bin_dir().join("pg_ctl"));
        command
            .arg("restart")
            .arg("-D")
            .arg(self.pg.pgdata())
            .arg("-l")
            .arg(self.pg.pgdata().join("server.log"))
            .args(["-m", "fast", "-w", "-t", "30", "-s"])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .current_dir("/");
        if let Some(user) = self.pg.os_user() {
            command.uid(user.uid).gid(user.gid);
        }
        let status = command.status().unwrap();
        assert!(status.success(), "pg_ctl restart: {status}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn data_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "tldw-{tag}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
}

/// `VIDEOS` ready summaries in the shared cache, in one statement.
async fn seed_videos(conn: &mut PgConnection, tag: &str) -> Vec<String> {
    sqlx::query(
        "insert into videos (video_id, status, title, channel, duration_seconds, summary, model,
             prompt_version, built_in, cost_micros, completed_at)
         select $1 || lpad(n::text, 11 - length($1), '0'), 'ready', 'Seeded ' || n, 'Seeded channel',
                600, jsonb_build_object('tldr', 'Cached summary ' || n,
                    'key_points', jsonb_build_array(jsonb_build_object('text', 'A point', 'at_seconds', 12))),
                'gpt-4o-mini', 'v-test', false, 1200, now()
         from generate_series(0, $2 - 1) n",
    )
    .bind(tag)
    .bind(VIDEOS as i32)
    .execute(&mut *conn)
    .await
    .unwrap();
    (0..VIDEOS)
        .map(|n| format!("{tag}{n:0>width$}", width = 11 - tag.len()))
        .collect()
}

/// Per org: `(used, succeeded ledger rows, history rows, open reservations)`
/// in the org's current period (the database clock decides it).
async fn consistency(conn: &mut PgConnection) -> Vec<(i64, i64, i64, i64)> {
    sqlx::query_as(
        "select coalesce((select sum(c.used) from usage_counters c
                          where c.org_id = o.id and c.period_start = p.period_start), 0)::int8,
                (select count(*) from usage_records r
                 where r.org_id = o.id and r.period_start = p.period_start and r.status = 'succeeded'),
                (select count(*) from user_summaries s
                 where s.org_id = o.id and s.created_at >= p.period_start and s.created_at < p.period_end),
                (select count(*) from usage_records r where r.org_id = o.id and r.status = 'reserved')
         from orgs o cross join lateral org_entitlement(o.id) p
         order by o.slug",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn open_reservations(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("select count(*) from usage_records where status = 'reserved'")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// One client: asks for the videos in turn (a new one charges a unit, a
/// reopened one is free) until told to stop.
async fn client(
    app: Arc<TestApp>,
    who: Member,
    videos: Arc<Vec<String>>,
    offset: usize,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut n = offset;
    while !stop.load(Ordering::Relaxed) {
        let sent = start.elapsed();
        let reply = rest(&app, &who, &videos[n % videos.len()]).await;
        answers.push(Answer {
            sent,
            done: start.elapsed(),
            status: reply.status,
            retry_after: reply.header("retry-after").map(str::to_owned),
            body: reply.body,
        });
        n += 1;
    }
    answers
}

/// `/readyz` every 100 ms until told to stop.
async fn readiness_poller(app: Arc<TestApp>, start: Instant, stop: Arc<AtomicBool>) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = start.elapsed();
        let reply = Reply::read(app.get("/readyz").await).await;
        answers.push(Answer {
            sent,
            done: start.elapsed(),
            status: reply.status,
            retry_after: reply.header("retry-after").map(str::to_owned),
            body: reply.body,
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answers
}

fn log_if_asked() {
    if std::env::var_os("TEST_LOG").is_some() {
        tldw::server::telemetry::init(tldw::server::config::LogFormat::Text);
    }
}

async fn readyz(app: &TestApp) -> (u16, String) {
    let reply = Reply::read(app.get("/readyz").await).await;
    (reply.status, reply.body)
}

/// `tldw_db_restarts_total` from the app's `/metrics` (0 before the first).
async fn db_restarts(app: &TestApp) -> f64 {
    let url = app.metrics_url.as_deref().expect("METRICS_ADDR was set");
    let text = app
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("tldw_db_restarts_total "))
        .map(|value| value.trim().parse::<f64>().expect(value))
        .sum()
}

fn assert_unavailable_envelope(answer: &Answer) {
    assert!(
        answer.retry_after.is_some(),
        "a 503 without Retry-After: {answer:?}"
    );
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("a 503 that is not JSON ({e}): {answer:?}"));
    assert_eq!(body["error"]["code"], "unavailable", "{answer:?}");
    assert!(body["error"]["message"].is_string(), "{answer:?}");
}

async fn fault_under_load(fault: Fault, tag: &str) {
    log_if_asked();
    let dir = data_dir(tag);
    let tube = Tube::start().await;
    let vars = vars(
        &tube,
        None,
        &[
            ("TLDW_SUMMARY_LEASE_SECONDS", LEASE_SECONDS),
            ("TLDW_FREE_MONTHLY_SUMMARIES", "100000"),
            ("METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = Arc::new(spawn_embedded(&dir, &pairs).await);
    let restarts_before = db_restarts(&app).await;
    let cluster = Cluster::join(&dir).await;
    let mut conn = cluster.superuser().await;
    let people = members(&app, tag, CLIENTS, 0).await;
    let videos = Arc::new(seed_videos(&mut conn, tag).await);
    conn.close().await.unwrap();

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, who)| {
            tokio::spawn(client(
                app.clone(),
                who.clone(),
                videos.clone(),
                i * VIDEOS / CLIENTS,
                start,
                stop.clone(),
            ))
        })
        .collect();
    let poller = tokio::spawn(readiness_poller(app.clone(), start, stop.clone()));

    tokio::time::sleep(LOAD_BEFORE).await;
    let fault_at = start.elapsed();
    let fault_took = {
        let began = Instant::now();
        let pg = &cluster;
        match fault {
            // Blocking, but only this test's thread: the app and the
            // clients run on the runtime's other workers.
            Fault::Restart => tokio::task::block_in_place(|| pg.restart()),
            Fault::Kill => pg.kill_postmaster(),
        }
        began.elapsed()
    };
    tokio::time::sleep(LOAD_AFTER).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }
    let readiness = poller.await.unwrap();
    let restarts = db_restarts(&app).await - restarts_before;

    // Only 200/202/503, never a 500; every 503 says when to come back.
    let statuses = tally(answers.iter().map(|a| a.status));
    println!(
        "{fault:?}: {} requests, statuses {statuses:?}",
        answers.len()
    );
    let unexpected: Vec<&Answer> = answers
        .iter()
        .filter(|a| !matches!(a.status, 200 | 202 | 503))
        .collect();
    assert!(unexpected.is_empty(), "{statuses:?}: {unexpected:?}");
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    for answer in &failed {
        assert_unavailable_envelope(answer);
    }
    let slowest_503 = failed.iter().map(|a| a.done - a.sent).max();

    // Back within the limit: the first 200 to a request sent once the
    // database was seen down (a 503 to a client or from /readyz; requests
    // may also just wait in the pool and never fail), or none needed if it
    // never was. And the longest stretch with no 200 answered, from the
    // fault on, as the clients lived it.
    let down_seen = failed
        .iter()
        .copied()
        .chain(readiness.iter().filter(|a| a.status == 503))
        .map(|a| a.done)
        .filter(|done| *done >= fault_at)
        .min();
    let back_after = match down_seen {
        None => Duration::ZERO,
        Some(down_seen) => {
            answers
                .iter()
                .filter(|a| a.status == 200 && a.sent >= down_seen)
                .map(|a| a.done)
                .min()
                .expect("never answered 200 again")
                - fault_at
        }
    };
    let mut served: Vec<Duration> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.done)
        .collect();
    served.sort_unstable();
    let longest_gap = served
        .windows(2)
        .filter(|w| w[1] >= fault_at)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let late_failures = failed
        .iter()
        .filter(|a| a.sent > fault_at + RECOVERY_LIMIT)
        .count();
    let ready_statuses = tally(readiness.iter().map(|a| a.status));
    let mut ready_down: Vec<&str> = readiness
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.body.as_str())
        .collect();
    ready_down.dedup();
    let slowest_readyz = readiness.iter().map(|a| a.done - a.sent).max();
    println!(
        "{fault:?}: fault took {fault_took:?}; {} requests answered 503 (slowest {slowest_503:?}); \
         first 200 after it was seen down {back_after:?} after the fault; longest time with no 200 {longest_gap:?}; \
         503s sent past {RECOVERY_LIMIT:?}: {late_failures}",
        failed.len()
    );
    println!(
        "{fault:?}: /readyz {ready_statuses:?}, slowest {slowest_readyz:?}; while down it said {ready_down:?}"
    );
    assert!(
        back_after <= RECOVERY_LIMIT,
        "back only {back_after:?} after the fault"
    );
    assert!(
        longest_gap <= RECOVERY_LIMIT,
        "no 200 for {longest_gap:?} after the fault"
    );
    assert_eq!(late_failures, 0, "503s after the service was back");
    for answer in &readiness {
        assert!(matches!(answer.status, 200 | 503), "{answer:?}");
        assert!(
            answer.done - answer.sent <= Duration::from_millis(2500),
            "{answer:?}"
        );
    }
    assert_eq!(
        readiness.last().map(|a| a.status),
        Some(200),
        "/readyz did not come back"
    );
    // Only a crash is the supervisor's to restart (an operator's restart
    // starts the server again itself). The recorder is shared with the
    // other tests of this process, so "at least one".
    println!("{fault:?}: tldw_db_restarts_total moved by {restarts}");
    if matches!(fault, Fault::Kill) {
        assert!(restarts >= 1.0, "the restart was not counted");
    }

    // After the lease and a sweep, nothing is left reserved, and for each
    // org the counter, the ledger and the history agree.
    let mut conn = cluster.superuser().await;
    let settled = Instant::now();
    while open_reservations(&mut conn).await > 0 {
        assert!(
            settled.elapsed() < Duration::from_secs(20),
            "reservations still open 20 s after the load"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = consistency(&mut conn).await;
    conn.close().await.unwrap();
    let totals = rows.iter().fold((0, 0, 0, 0), |t, r| {
        (t.0 + r.0, t.1 + r.1, t.2 + r.2, t.3 + r.3)
    });
    println!(
        "{fault:?}: consistency over {} orgs: used {}, succeeded ledger rows {}, history rows {}, open reservations {} (settled {:?} after the load)",
        rows.len(),
        totals.0,
        totals.1,
        totals.2,
        totals.3,
        settled.elapsed()
    );
    // Every member also has a personal org; only the clients' orgs spent.
    assert_eq!(rows.iter().filter(|r| r.0 > 0).count(), CLIENTS, "{rows:?}");
    for (used, succeeded, history, open) in &rows {
        assert_eq!((used, open), (succeeded, &0), "{rows:?}");
        assert_eq!(succeeded, history, "{rows:?}");
    }
    assert!(totals.0 > 0, "nothing was charged: the load did nothing");

    Arc::into_inner(app)
        .expect("the app is still shared")
        .stop()
        .await
        .unwrap();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fast_restart_under_load_answers_only_503_and_recovers_consistently() {
    fault_under_load(Fault::Restart, "frst").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_postmaster_is_restarted_under_load_and_recovers_consistently() {
    fault_under_load(Fault::Kill, "fkil").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_that_cannot_start_is_named_in_readyz_and_answers_503_until_repaired() {
    log_if_asked();
    let dir = data_dir("fbrk");
    let tube = Tube::start().await;
    let vars = vars(&tube, None, &[]);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_embedded(&dir, &pairs).await;
    let cluster = Cluster::join(&dir).await;
    let who = members(&app, "fbrk", 1, 0).await.remove(0);
    let mut conn = cluster.superuser().await;
    let videos = seed_videos(&mut conn, "fbrk").await;
    conn.close().await.unwrap();
    assert_eq!(rest(&app, &who, &videos[0]).await.status, 200);

    // A crash that leaves the data folder unable to start: its control
    // file is gone.
    let control = cluster.pg.pgdata().join("global/pg_control");
    let hidden = cluster.pg.pgdata().join("global/pg_control.hidden");
    std::fs::rename(&control, &hidden).unwrap();
    cluster.kill_postmaster();

    let crashed = Instant::now();
    let said = loop {
        let (status, body) = readyz(&app).await;
        if status == 503 && body.contains("data folder is damaged") {
            break body;
        }
        assert!(
            crashed.elapsed() < Duration::from_secs(15),
            "/readyz never named the cause; last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("broken data folder: /readyz said {said}");
    let body: Value = serde_json::from_str(&said).unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(said.contains("still trying"), "{said}");

    // Requests keep getting a 503 that says when to retry, never a 500.
    for video in &videos[1..4] {
        let sent = Instant::now();
        let reply = rest(&app, &who, video).await;
        let answer = Answer {
            sent: Duration::ZERO,
            done: sent.elapsed(),
            status: reply.status,
            retry_after: reply.header("retry-after").map(str::to_owned),
            body: reply.body,
        };
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_unavailable_envelope(&answer);
        assert!(answer.done <= Duration::from_millis(2500), "{answer:?}");
    }
    // Pages too: the friendly 503 page, as fast (the dashboard loads twice).
    for path in ["/app".to_owned(), format!("/o/{}", who.slug)] {
        let sent = Instant::now();
        let response = app
            .client
            .get(app.url(&path))
            .header("cookie", &who.cookie)
            .send()
            .await
            .unwrap();
        let took = sent.elapsed();
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let html = response.text().await.unwrap();
        println!("broken data folder: {path} answered {status} in {took:?}");
        assert_eq!(status, 503, "{path}: {html}");
        assert!(retry_after, "{path}: no Retry-After");
        assert!(html.contains("database is not answering"), "{path}: {html}");
        assert!(took <= Duration::from_millis(2500), "{path} took {took:?}");
    }

    // Repaired: the supervisor's next try (at most 5 s apart) brings it back.
    std::fs::rename(&hidden, &control).unwrap();
    let repaired = Instant::now();
    loop {
        let (status, body) = readyz(&app).await;
        if status == 200 {
            break;
        }
        assert!(
            repaired.elapsed() < Duration::from_secs(10),
            "not back 10 s after the repair: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "broken data folder: ready again {:?} after the repair",
        repaired.elapsed()
    );
    let served = rest(&app, &who, &videos[1]).await;
    assert_eq!(served.status, 200, "{}", served.body);

    app.stop().await.unwrap();
    drop(cluster);
}

/// Dodo's webhooks while the database restarts or crashes: a storm of
/// shuffled, duplicated subscription events is sent as Dodo would, each
/// attempt that is not acknowledged sent again, and the fault strikes in
/// the middle of it. Refused attempts may only be 503s; afterwards every
/// event has exactly one ledger row and one billing event (nothing lost,
/// nothing applied twice) and each org is at its newest event's state.
async fn webhooks_through_a_fault(fault: Fault, tag: &str) {
    log_if_asked();
    let dir = data_dir(tag);
    let vars = billing_vars(NO_DODO, &[("DATABASE_MAX_CONNECTIONS", "8")]);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = Arc::new(spawn_embedded(&dir, &pairs).await);
    let cluster = Cluster::join(&dir).await;
    let db = TestDb::on(cluster.pg, "tldw");
    let seed = seed();
    println!("{fault:?}: webhook storm seed {seed} (BILLING_STORM_SEED to replay)");
    let storm = storm(&db, 10, 1_500, 500, seed).await;

    let start = Instant::now();
    let (sender, sends) = (app.clone(), storm.sends.clone());
    let sending = tokio::spawn(async move {
        send_until_acknowledged(
            sender,
            &sends,
            4,
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fault_at = start.elapsed();
    match fault {
        Fault::Restart => tokio::task::block_in_place(|| cluster.restart()),
        Fault::Kill => cluster.kill_postmaster(),
    }
    let retried = sending.await.unwrap();
    let took = start.elapsed();

    let refused: Vec<&(u16, String)> = retried.iter().flat_map(|r| &r.refused).collect();
    let statuses = tally(refused.iter().map(|(status, _)| *status));
    let retried_events = retried.iter().filter(|r| !r.refused.is_empty()).count();
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for r in &retried {
        *outcomes.entry(r.acknowledged.outcome.as_str()).or_default() += 1;
    }
    let before = retried.iter().filter(|r| r.at < fault_at).count();
    println!(
        "{fault:?}: {} deliveries ({} unique) in {took:?}, {before} acknowledged before the fault; \
         {} attempts refused {statuses:?}, {retried_events} deliveries needed a retry; outcomes {outcomes:?}",
        storm.sends.len(),
        storm.unique,
        refused.len()
    );
    // The fault struck mid-storm, not before or after it.
    assert!(
        before > 0 && before < retried.len(),
        "{before} of {}",
        retried.len()
    );
    let unexpected: Vec<_> = refused
        .iter()
        .filter(|(status, _)| *status != 503)
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    // A retried event whose first attempt committed just before the fault
    // is acknowledged as a duplicate; either way it counts once below.
    check_storm_effects(&db, &storm).await;

    Arc::into_inner(app)
        .expect("the app is still shared")
        .stop()
        .await
        .unwrap();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_during_a_fast_restart_are_neither_lost_nor_applied_twice() {
    webhooks_through_a_fault(Fault::Restart, "wrst").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_during_a_crash_are_neither_lost_nor_applied_twice() {
    webhooks_through_a_fault(Fault::Kill, "wkil").await;
}
