//! Scale-out (issue 16, part 5): three real app processes (the built
//! `tldw` binary) behind nginx, round-robin, on one database. Through the
//! proxy: one model call per video whatever the number of orgs asking, the
//! quota exact, a webhook storm applied once, and a process killed with
//! SIGKILL mid-call loses nothing.
//!
//! The binary must be built first (`scripts/test` does:
//! `cargo build --bin tldw --features ssr`), and nginx installed
//! (`scripts/test` installs it when missing).

use sqlx::Connection;
use std::{
    collections::{BTreeMap, HashSet},
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tldw::domain::{OrgId, SummaryStatus};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::{
    billing::{NO_DODO, billing_vars, check_storm, send_all, storm},
    helpers::{Reply, TestApp, TestDb, database_urls, superuser_conn},
    summaries::{
        Member, STREAMED_ANSWER, Tube, counts, futures_join, is_ready, ledger, members, rest,
        seed_ready, tally, vars, video,
    },
    summarizer::{Fake, Reply as Llm, sse_body},
};

const PROCESSES: usize = 3;

// ---------------------------------------------------------------------------
// Three processes and a proxy.

/// The app processes, nginx in front of them, and a `TestApp` whose address
/// is the proxy's. Dropping it kills every process and removes its folder.
struct Farm {
    proxy: TestApp,
    apps: Vec<Option<Child>>,
    /// Each app's own address (`127.0.0.1:port`), as nginx's access log
    /// names it.
    upstreams: Vec<String>,
    nginx: Child,
    dir: PathBuf,
}

impl Farm {
    /// Starts the processes on `db`, process `i` with `vars(i)`.
    async fn start(db: &TestDb, vars: impl Fn(usize) -> Vec<(String, String)>) -> Farm {
        let bin = server_bin();
        let nginx_bin = nginx_bin();
        let dir = std::env::temp_dir().join(format!(
            "tldw-farm-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (app_url, owner_url) = database_urls(db);

        let mut apps = Vec::new();
        let mut ready = Vec::new();
        for i in 0..PROCESSES {
            let mut command = Command::new(&bin);
            command
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOST", "127.0.0.1")
                .env("PORT", "0")
                .env("DATABASE_URL", &app_url)
                .env("DATABASE_MIGRATION_URL", &owner_url)
                .env("RUST_LOG", "info");
            for (name, value) in vars(i) {
                command.env(name, value);
            }
            let mut child = command
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join(format!("app{i}.err"))).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
            ready.push(log_until_ready(
                child.stdout.take().unwrap(),
                dir.join(format!("app{i}.log")),
            ));
            apps.push(Some(child));
        }
        let mut upstreams = Vec::new();
        for (i, rx) in ready.into_iter().enumerate() {
            let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(90)))
                .await
                .unwrap()
                .unwrap_or_else(|_| {
                    panic!(
                        "app process {i} never said it was ready; its log:\n{}",
                        read(&dir.join(format!("app{i}.err")))
                    )
                });
            upstreams.push(url.trim_start_matches("http://").to_owned());
        }

        let port = free_port();
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(&dir, port, &upstreams)).unwrap();
        let nginx = Command::new(&nginx_bin)
            .process_group(0)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("nginx.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", nginx_bin.display()));
        let mut pids: Vec<u32> = apps.iter().flatten().map(Child::id).collect();
        pids.push(nginx.id());
        kill_when_this_process_exits(&pids);
        let mut farm = Farm {
            proxy: TestApp::remote(format!("http://127.0.0.1:{port}"), TestDb::named(&db.name)),
            apps,
            upstreams,
            nginx,
            dir,
        };
        farm.wait_for_proxy().await;
        farm
    }

    /// Until the proxy answers `/readyz` through each app.
    async fn wait_for_proxy(&mut self) {
        let started = Instant::now();
        let mut ok = 0;
        while ok < PROCESSES {
            if let Ok(Some(status)) = self.nginx.try_wait() {
                panic!(
                    "nginx exited ({status}): {}{}",
                    read(&self.dir.join("nginx.err")),
                    read(&self.dir.join("nginx-error.log"))
                );
            }
            match self
                .proxy
                .client
                .get(self.proxy.url("/readyz"))
                .send()
                .await
            {
                Ok(response) if response.status() == 200 => ok += 1,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the proxy did not answer: {}",
                read(&self.dir.join("nginx-error.log"))
            );
        }
    }

    /// SIGKILL: no shutdown code of the app runs.
    fn kill(&mut self, i: usize) {
        let mut child = self.apps[i].take().expect("already killed");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// How many webhook deliveries each app process got, and the POSTs
    /// nginx replayed: sent to another app after one had received bytes of
    /// it. (A POST to a dead app whose connection was refused reached
    /// nobody; passing it on is no replay.)
    fn access_log(&self) -> (BTreeMap<String, usize>, Vec<String>) {
        let mut per_upstream = BTreeMap::new();
        let mut replayed = Vec::new();
        for line in read(&self.dir.join("access.log")).lines() {
            let mut fields = line.split('|');
            let (Some(request), Some(upstream), Some(sent)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let attempts: Vec<&str> = sent.split(", ").collect();
            let reached_one_before_the_last = attempts
                .iter()
                .take(attempts.len().saturating_sub(1))
                .any(|bytes| bytes.trim() != "0");
            if request.starts_with("POST") && reached_one_before_the_last {
                replayed.push(line.to_owned());
            }
            if request.contains("/webhooks/dodo") {
                *per_upstream.entry(upstream.trim().to_owned()).or_default() += 1;
            }
        }
        (per_upstream, replayed)
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        for child in self.apps.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The whole group: killing nginx's master alone leaves its workers.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.nginx.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.nginx.wait();
        if std::thread::panicking() {
            eprintln!("scale-out logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Drop runs on a failed test but not when the test binary itself is
/// killed: a watchdog shell (not our child) then kills every process group
/// the farm started (nginx's workers too).
fn kill_when_this_process_exits(pids: &[u32]) {
    let me = std::process::id();
    let groups: String = pids.iter().map(|p| format!(" -{p}")).collect();
    let script =
        format!("while [ -d /proc/{me} ]; do sleep 1; done; kill -9 --{groups} 2>/dev/null");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("( {script} ) &"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .expect("could not start the farm watchdog");
    assert!(status.success());
}

/// The built server, next to this test binary (`target/debug/deps/..`).
fn server_bin() -> PathBuf {
    let bin = std::env::var_os("TLDW_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("tldw")
        });
    assert!(
        bin.is_file(),
        "{} is missing: the scale-out tests run the built server; build it first \
         with `cargo build --bin tldw --features ssr` (scripts/test does)",
        bin.display()
    );
    bin
}

fn nginx_bin() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect(
            "nginx is missing: the scale-out tests run it as their proxy; \
             install it with `apt-get install nginx` (scripts/test does)",
        )
}

/// Copies the app's stdout to `log` on a thread of its own (a full pipe
/// would block the app) and sends the URL from its "ready" line.
fn log_until_ready(
    stdout: std::process::ChildStdout,
    log: PathBuf,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(log).unwrap();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("tldw is ready at ") {
                let _ = tx.send(url.trim().to_owned());
            }
            let _ = writeln!(file, "{line}");
        }
    });
    rx
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Round-robin over the apps. Without `non_idempotent` in
/// `proxy_next_upstream`, nginx never passes a POST on to another app once
/// it has sent any of it (it answers 502 instead, so nothing runs twice);
/// only a connection that was never made is tried on the next app.
fn nginx_conf(dir: &Path, port: u16, upstreams: &[String]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("    server {u} max_fails=1 fail_timeout=30s;\n"))
        .collect();
    format!(
        "worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format upstreams '$request_method $uri|$upstream_addr|$upstream_bytes_sent';
  access_log {dir}/access.log upstreams;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream tldw {{
{servers}    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 2m;
    location / {{
      proxy_pass http://tldw;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 2;
      proxy_read_timeout 120s;
      proxy_buffering off;
    }}
  }}
}}
"
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// No unit left reserved anywhere, and for each org its counter, its
/// ledger (rows not refunded) and its history agree; returns them.
async fn settled(db: &TestDb, orgs: &[OrgId]) -> Vec<(i32, i64, i64)> {
    let started = Instant::now();
    loop {
        let mut conn = superuser_conn(db).await;
        let reserved: i64 =
            sqlx::query_scalar("select count(*) from usage_records where status = 'reserved'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        if reserved == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{reserved} units still reserved after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut all = Vec::new();
    for org in orgs {
        let (used, ledger_rows, history) = counts(db, *org).await;
        assert_eq!(
            (used as i64, ledger_rows),
            (history, history),
            "org {org}: counter, ledger, history; ledger {:?}",
            ledger(db, *org).await
        );
        all.push((used, ledger_rows, history));
    }
    all
}

fn orgs(people: &[Member]) -> Vec<OrgId> {
    let mut orgs: Vec<OrgId> = Vec::new();
    for who in people {
        if !orgs.contains(&who.org) {
            orgs.push(who.org);
        }
    }
    orgs
}

/// A server function through the proxy; a 502 means the request reached
/// a dead app and was not run (nginx replays no POST), so it is sent again.
async fn call(app: &TestApp, who: &Member, endpoint: &str, form: &[(&str, &str)]) -> Reply {
    for _ in 0..10 {
        let reply = app.call(&who.cookie, endpoint, form).await;
        if reply.status != 502 {
            return reply;
        }
    }
    panic!("{endpoint}: 502 ten times in a row");
}

async fn status(app: &TestApp, who: &Member, video: &str) -> SummaryStatus {
    call(
        app,
        who,
        "summaries/status",
        &[("slug", &who.slug), ("video", video)],
    )
    .await
    .ok()
    .json()
}

async fn wait_ready(app: &TestApp, who: &Member, video: &str, within: Duration) {
    let started = Instant::now();
    loop {
        let status = status(app, who, video).await;
        if is_ready(&status) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{video} for {}: still {status:?} after {within:?}",
            who.slug
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// (a) Summaries: one model call per video, each org charged once per video.

#[tokio::test]
async fn thirty_requests_for_five_videos_from_three_orgs_on_three_processes_make_five_model_calls()
{
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Slow(Duration::from_millis(400)));
    let base = llm.start().await;
    let db = TestDb::new().await;
    let env = vars(&tube, Some(&base), &[]);
    let farm = Farm::start(&db, |_| env.clone()).await;
    let proxy = Arc::new(TestApp::remote(
        farm.proxy.address.clone(),
        TestDb::named(&db.name),
    ));
    // 3 orgs with 2 people each; 30 requests: every person asks for every
    // video once, so every org asks for every video twice.
    let people = members(&proxy, "farm", 3, 1).await;
    let videos: Vec<String> = (0..5).map(|n| video("farm", n)).collect();

    let requests = (0..30).map(|i| {
        let proxy = proxy.clone();
        let who = people[i % people.len()].clone();
        let video = videos[i % videos.len()].clone();
        tokio::spawn(async move { rest(&proxy, &who, &video).await })
    });
    let replies = futures_join(requests).await;
    assert!(
        replies.iter().all(|r| r.status == 202 || r.status == 200),
        "{:?} {replies:?}",
        tally(replies.iter().map(|r| r.status))
    );
    for who in &people {
        for video in &videos {
            wait_ready(&proxy, who, video, Duration::from_secs(60)).await;
        }
    }
    let counts = settled(&db, &orgs(&people)).await;
    assert_eq!(
        counts,
        vec![(5, 5, 5); 3],
        "each org charged once per video"
    );
    for org in orgs(&people) {
        let rows = ledger(&db, org).await;
        let charged: HashSet<&str> = rows
            .iter()
            .filter(|(_, s)| s == "succeeded")
            .map(|(v, _)| v.as_str())
            .collect();
        assert_eq!(charged.len(), 5, "{rows:?}");
    }
    assert_eq!(llm.calls(), 5, "model calls for 5 videos and 30 requests");
    for video in &videos {
        assert_eq!(tube.player_calls(video), 1, "transcript fetches of {video}");
    }
    assert!(farm.access_log().1.is_empty(), "{:?}", farm.access_log().1);
}

// ---------------------------------------------------------------------------
// (b) Quota: exactly the limit, across processes.

#[tokio::test]
async fn forty_cached_requests_on_three_processes_against_a_limit_of_ten_give_exactly_ten() {
    let tube = Tube::start().await;
    let llm = Fake::new([], Llm::Echo);
    let base = llm.start().await;
    let db = TestDb::new().await;
    let videos: Vec<String> = (0..40).map(|n| video("cap", n)).collect();
    seed_ready(&db, &videos).await;
    let env = vars(&tube, Some(&base), &[("TLDW_FREE_MONTHLY_SUMMARIES", "10")]);
    let farm = Farm::start(&db, |_| env.clone()).await;
    let proxy = Arc::new(TestApp::remote(
        farm.proxy.address.clone(),
        TestDb::named(&db.name),
    ));
    let people = members(&proxy, "cap", 1, 2).await;

    let requests = videos.iter().enumerate().map(|(i, video)| {
        let proxy = proxy.clone();
        let who = people[i % people.len()].clone();
        let video = video.clone();
        tokio::spawn(async move { rest(&proxy, &who, &video).await })
    });
    let replies = futures_join(requests).await;
    assert_eq!(
        tally(replies.iter().map(|r| r.status)),
        [(200, 10), (429, 30)],
        "{replies:?}"
    );
    for reply in replies.iter().filter(|r| r.status == 429) {
        let body: serde_json::Value = reply.json();
        assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    }
    assert_eq!(settled(&db, &orgs(&people)).await, [(10, 10, 10)]);
    assert_eq!(llm.calls(), 0, "every video was cached");
}

// ---------------------------------------------------------------------------
// (c) A webhook storm spread over the processes: each effect once.

#[tokio::test]
async fn a_webhook_storm_over_three_processes_applies_each_event_once() {
    let db = TestDb::new().await;
    let env = billing_vars(NO_DODO, &[("DATABASE_MAX_CONNECTIONS", "12")]);
    let farm = Farm::start(&db, |_| env.clone()).await;
    let proxy = Arc::new(TestApp::remote(
        farm.proxy.address.clone(),
        TestDb::named(&db.name),
    ));
    let seed = crate::billing::seed();
    println!("scale-out storm seed {seed} (BILLING_STORM_SEED to replay)");
    let storm = storm(&db, 10, 600, 200, seed).await;
    let sent = send_all(&[proxy], &storm.sends, 32).await;
    let counts = check_storm(&db, &storm, &sent).await;
    println!("scale-out storm outcomes (seed {seed}): {counts:?}");

    let (per_upstream, replayed) = farm.access_log();
    assert!(replayed.is_empty(), "replayed by the proxy: {replayed:?}");
    for upstream in &farm.upstreams {
        let got = per_upstream.get(upstream).copied().unwrap_or(0);
        assert!(
            got >= 100,
            "{upstream} got {got} of {} deliveries: {per_upstream:?}",
            storm.sends.len()
        );
    }
}

// ---------------------------------------------------------------------------
// (d) SIGKILL of the process that is streaming a summary.

/// An OpenAI-compatible server that streams its answer one SSE event at a
/// time: `first` apart for the first call, 20 ms apart after. Each process
/// gets its own base path (`/p<i>/v1`), so the paths it records say which
/// process made each call.
async fn tagged_streaming_llm(first: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let paths = seen.clone();
            tokio::spawn(async move {
                let path = read_request_path(&mut socket).await;
                let per_event = {
                    let mut paths = paths.lock().unwrap();
                    paths.push(path);
                    if paths.len() == 1 {
                        first
                    } else {
                        Duration::from_millis(20)
                    }
                };
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                // The killed process's end goes away mid-stream: stop there.
                for event in sse_body(STREAMED_ANSWER).split_inclusive("\n\n") {
                    tokio::time::sleep(per_event).await;
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    (base, paths)
}

/// Reads a request whole and returns its path.
async fn read_request_path(socket: &mut tokio::net::TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if n == 0 || seen.len() >= end + 4 + length {
                return text.split(' ').nth(1).unwrap_or("").to_owned();
            }
        } else if n == 0 {
            return String::new();
        }
    }
}

fn process_of(path: &str) -> usize {
    path.strip_prefix("/p")
        .and_then(|rest| rest.split('/').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("unexpected model path {path}"))
}

#[tokio::test]
async fn a_process_killed_mid_stream_loses_nothing() {
    let tube = Tube::start().await;
    // The first call streams for about a minute: it is still streaming
    // when its process is killed.
    let (base, paths) = tagged_streaming_llm(Duration::from_secs(2)).await;
    let db = TestDb::new().await;
    let farm_vars = |i: usize| {
        vars(
            &tube,
            Some(&format!("{base}/p{i}/v1")),
            &[("TLDW_SUMMARY_LEASE_SECONDS", "2")],
        )
    };
    let mut farm = Farm::start(&db, farm_vars).await;
    let proxy = TestApp::remote(farm.proxy.address.clone(), TestDb::named(&db.name));
    let people = members(&proxy, "sigkill", 3, 0).await;
    let (a, b, c) = (&people[0], &people[1], &people[2]);
    let video = video("sigkill", 1);

    let reply = rest(&proxy, a, &video).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let started = Instant::now();
    while paths.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the model never got the call"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doomed = process_of(&paths.lock().unwrap()[0]);
    // B joins while the call streams, and waits for it.
    let reply = rest(&proxy, b, &video).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // Let some text stream (the worker has written partial output).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        paths.lock().unwrap().len(),
        1,
        "{:?}",
        paths.lock().unwrap()
    );
    farm.kill(doomed);

    // C asks after the crash (a 502 from the dead process is not run, and
    // is sent again).
    let reply = {
        let mut reply = rest(&proxy, c, &video).await;
        for _ in 0..10 {
            if reply.status != 502 {
                break;
            }
            reply = rest(&proxy, c, &video).await;
        }
        reply
    };
    assert!(reply.status == 202 || reply.status == 200, "{}", reply.body);
    for who in [a, b, c] {
        wait_ready(&proxy, who, &video, Duration::from_secs(60)).await;
    }
    let calls = paths.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one call per attempt: {calls:?}");
    assert_ne!(
        process_of(&calls[1]),
        doomed,
        "taken over by a live process: {calls:?}"
    );
    let counts = settled(&db, &orgs(&people)).await;
    assert_eq!(counts, vec![(1, 1, 1); 3], "each org charged once");
    assert!(farm.access_log().1.is_empty(), "{:?}", farm.access_log().1);
}
