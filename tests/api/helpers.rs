//! The test harness: one private PostgreSQL cluster per test process, a
//! migrated template database in it, and a fresh clone per test.

use sqlx::{Connection, Executor, PgConnection, postgres::PgConnectOptions};
use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
};
use tldw::server::{
    config::Settings,
    db::{
        self,
        embedded::{EmbeddedOptions, EmbeddedPostgres},
        roles,
    },
    startup::Application,
    telemetry,
};
use tokio::{sync::oneshot, task::JoinHandle};
use uuid::Uuid;

const TEMPLATE: &str = "tldw_template";

pub struct TestCluster {
    pub pg: EmbeddedPostgres,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        // Runs on its own thread: tests call this from inside a runtime.
        std::thread::spawn(start_cluster)
            .join()
            .expect("starting the test cluster panicked")
    })
}

fn start_cluster() -> TestCluster {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init(tldw::server::config::LogFormat::Text);
    }
    let data_dir = std::env::temp_dir().join(format!("tldw-test-{}", std::process::id()));
    let pg = EmbeddedPostgres::start(&EmbeddedOptions {
        data_dir: data_dir.clone(),
        bin_dir: None,
        durable: false,
        max_connections: 300,
    })
    .expect("could not start the test PostgreSQL cluster");
    stop_when_this_process_exits(&pg, data_dir);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        roles::ensure_roles_and_database(&pg, TEMPLATE)
            .await
            .unwrap();
        db::migrate(&pg.owner_options(TEMPLATE)).await.unwrap();
    });
    TestCluster { pg }
}

/// Statics are never dropped, so a watchdog shell stops the cluster (and
/// removes its folder) once the test process is gone, however it ended.
fn stop_when_this_process_exits(pg: &EmbeddedPostgres, data_dir: PathBuf) {
    let pid = std::process::id();
    let pidfile = pg.pgdata().join("postmaster.pid");
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 0.5; done; \
         kill -QUIT $(head -n 1 '{pidfile}') 2>/dev/null; sleep 1; rm -rf '{dir}'",
        pidfile = pidfile.display(),
        dir = data_dir.display()
    );
    // The outer shell backgrounds the loop and exits at once, so the
    // watchdog outlives us without being our child.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("( {script} ) &"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .expect("could not start the cluster watchdog");
    assert!(status.success());
}

/// A database of its own, cloned from the migrated template.
pub struct TestDb {
    pub name: String,
    /// The cluster it lives in: the shared test cluster unless a test
    /// brought its own (one it may restart or crash).
    pg: Option<&'static EmbeddedPostgres>,
}

impl TestDb {
    /// An existing database of the shared test cluster.
    pub fn named(name: &str) -> TestDb {
        TestDb {
            name: name.to_owned(),
            pg: None,
        }
    }

    /// An existing database of another cluster.
    pub fn on(pg: &'static EmbeddedPostgres, name: &str) -> TestDb {
        TestDb {
            name: name.to_owned(),
            pg: Some(pg),
        }
    }

    fn pg(&self) -> &EmbeddedPostgres {
        self.pg.unwrap_or(&cluster().pg)
    }

    pub async fn new() -> TestDb {
        TestDb::create(TEMPLATE).await
    }

    /// A database with no schema at all, for testing migrations themselves.
    pub async fn empty() -> TestDb {
        TestDb::create("template0").await
    }

    async fn create(template: &str) -> TestDb {
        let cluster = cluster();
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&cluster.pg.superuser_options("postgres"))
            .await
            .unwrap();
        let sql = format!(
            "create database {} template {template} owner tldw_owner",
            roles::quote_ident(&name)
        );
        // Concurrent clones of one template can collide; they succeed on retry.
        let mut attempts = 0;
        loop {
            match admin.execute(sqlx::AssertSqlSafe(sql.clone())).await {
                Ok(_) => break,
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("retrying database clone: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(error) => panic!("could not clone the template: {error}"),
            }
        }
        admin.close().await.unwrap();
        TestDb::named(&name)
    }

    pub fn app_options(&self) -> PgConnectOptions {
        self.pg().app_options(&self.name)
    }

    pub fn owner_options(&self) -> PgConnectOptions {
        self.pg().owner_options(&self.name)
    }

    pub async fn app_conn(&self) -> PgConnection {
        PgConnection::connect_with(&self.app_options())
            .await
            .unwrap()
    }

    pub async fn owner_conn(&self) -> PgConnection {
        PgConnection::connect_with(&self.owner_options())
            .await
            .unwrap()
    }

    /// The runtime pool, as the app builds it, with `max` connections.
    pub async fn db(&self, max: u32) -> db::Db {
        db::Db::connect(self.app_options(), max).await.unwrap()
    }
}

/// The whole application on port 0 against its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    /// `/metrics` on its own listener, when `METRICS_ADDR` was set.
    pub metrics_url: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Another app process's worth of server on an existing database (the
/// returned app's `db` field names that same database).
pub async fn spawn_instance(db: &TestDb) -> TestApp {
    spawn_instance_with(db, &[]).await
}

impl TestApp {
    /// A server that runs elsewhere (another process, or a proxy in front
    /// of several) on `db`: the same helpers, but nothing to `stop`.
    pub fn remote(address: String, db: TestDb) -> TestApp {
        TestApp {
            address,
            db,
            client: test_client(),
            metrics_url: None,
            shutdown: None,
            server: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A page's HTML as the signed-in `cookie` gets it.
    pub async fn page_html(&self, cookie: &str, path: &str) -> String {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends the shutdown signal and waits for the server to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Shutdown is bounded (8 s grace, 2 s pool close); past that it hangs.
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.server.take().unwrap(),
        )
        .await
        .expect("the app did not stop within 30 s")
        .unwrap()
    }
}

// ---- issue 3: apps with settings, accounts, and calls to server functions ----

/// A password the strength rule accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// `spawn_app`, with extra settings (`CLERK_ISSUER`, `TLDW_TRUSTED_PROXIES`…).
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new().await;
    let instance = spawn_instance_with(&db, extra).await;
    TestApp { db, ..instance }
}

/// A server function's answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: status {} body {}", self.status, self.body))
    }

    /// The error a failed server function sent.
    pub fn error(&self) -> tldw::error::AppError {
        self.json()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where a successful server function sends the browser.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// Panics with the body unless the call succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Reply {
        assert_eq!(self.status, 200, "expected success, got {}", self.body);
        self
    }

    /// The `tldw_session=…` pair from `Set-Cookie`, to send back as `Cookie`.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with("tldw_session=") && pair.len() > "tldw_session=".len())
            .map(str::to_owned)
    }
}

impl TestApp {
    /// A POST to a server function as our own page's script sends it: same
    /// origin, asking for JSON.
    pub fn post(&self, endpoint: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(&format!("/api/{endpoint}")))
            .header("origin", &self.address)
            .header("accept", "application/json")
    }

    /// Calls a server function with `cookie` (a `name=value` pair, or "").
    pub async fn call(&self, cookie: &str, endpoint: &str, form: &[(&str, &str)]) -> Reply {
        let mut request = self.post(endpoint).form(form);
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// Signs up, marks the address verified (as its emailed link would),
    /// and returns the session cookie.
    pub async fn sign_up(&self, email: &str) -> String {
        let cookie = self.sign_up_unverified(email).await;
        let mut conn = self.db.owner_conn().await;
        sqlx::query("update accounts set email_verified_at = now() where email = $1")
            .bind(email.trim().to_lowercase())
            .execute(&mut conn)
            .await
            .unwrap();
        cookie
    }

    /// Signs up and returns the session cookie; the address stays unproved.
    pub async fn sign_up_unverified(&self, email: &str) -> String {
        let reply = self
            .call(
                "",
                "auth/sign-up",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        reply.ok();
        reply
            .session_cookie()
            .expect("sign-up set no session cookie")
    }

    /// Signs in (a new session) and returns its cookie.
    pub async fn sign_in(&self, email: &str) -> String {
        let reply = self
            .call(
                "",
                "auth/sign-in",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        reply.ok();
        reply
            .session_cookie()
            .expect("sign-in set no session cookie")
    }

    pub async fn whoami(&self, cookie: &str) -> Option<tldw::domain::Viewer> {
        let reply = self.call(cookie, "auth/whoami", &[]).await;
        reply.ok().json()
    }

    pub async fn get_org(&self, cookie: &str, slug: &str) -> Reply {
        self.call(cookie, "orgs/page", &[("slug", slug)]).await
    }

    /// The org page as a member sees it; panics unless allowed.
    pub async fn org_page(&self, cookie: &str, slug: &str) -> tldw::domain::OrgPage {
        self.get_org(cookie, slug).await.ok().json()
    }

    /// Creates an org and returns its slug.
    pub async fn create_org(&self, cookie: &str, name: &str) -> String {
        let reply = self.call(cookie, "orgs/create", &[("name", name)]).await;
        let location = reply.ok().location().expect("no redirect after create");
        location
            .strip_prefix("/o/")
            .and_then(|rest| rest.strip_suffix("/settings"))
            .unwrap_or_else(|| panic!("unexpected redirect {location}"))
            .to_owned()
    }

    /// Invites `email` and returns the link's token.
    pub async fn invite(&self, cookie: &str, slug: &str, email: &str, role: &str) -> String {
        let reply = self
            .call(
                cookie,
                "invitations/create",
                &[("slug", slug), ("email", email), ("role", role)],
            )
            .await;
        invite_token(reply.ok())
    }

    /// Invites `email` with `role` (admin or member) and accepts as `cookie`.
    pub async fn add_member(
        &self,
        owner: &str,
        slug: &str,
        cookie: &str,
        email: &str,
        role: &str,
    ) -> tldw::domain::UserId {
        let token = self.invite(owner, slug, email, role).await;
        self.call(cookie, "invitations/accept", &[("token", &token)])
            .await
            .ok();
        member_id(&self.org_page(owner, slug).await, email)
    }
}

/// The token in an invitation's redirect (`…?invite=<token>#invitations`).
pub fn invite_token(reply: &Reply) -> String {
    let location = reply.location().expect("no redirect after inviting");
    let token = location
        .split_once("invite=")
        .map(|(_, rest)| rest.split(['#', '&']).next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("no invite= in {location}"));
    token.to_owned()
}

/// The member id of `email` on an org page.
pub fn member_id(page: &tldw::domain::OrgPage, email: &str) -> tldw::domain::UserId {
    page.members
        .iter()
        .find(|m| m.email.as_deref() == Some(email))
        .unwrap_or_else(|| panic!("{email} is not a member: {page:?}"))
        .user_id
}

/// Runs `sql` as the owner role inside a transaction scoped to `org`
/// (FORCE RLS binds the owner too).
pub async fn as_owner_in_org(db: &TestDb, org: tldw::domain::OrgId, sql: &str) -> u64 {
    let mut conn = db.owner_conn().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("select set_config('app.org_id', $1, true)")
        .bind(org.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    done.rows_affected()
}

/// An org with one owner, made straight in the database (no HTTP), for
/// service-level tests.
pub async fn seed_org(db: &db::Db, slug: &str) -> (tldw::domain::OrgId, tldw::domain::UserId) {
    use tldw::{
        domain::{OrgId, UserId},
        server::db::TenantScope,
    };
    let (org, user, account) = (OrgId::random(), UserId::random(), Uuid::new_v4());
    let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
    for (sql, binds) in [
        (
            "insert into accounts (id, email) values ($1, $2 || '@seed.test')",
            0,
        ),
        ("insert into orgs (id, slug, name) values ($1, $2, $2)", 1),
        (
            "insert into users (org_id, id, account_id, role) values ($1, $2, $3, 'owner')",
            2,
        ),
    ] {
        let query = sqlx::query(sql);
        let query = match binds {
            0 => query.bind(account).bind(slug),
            1 => query.bind(org.as_uuid()).bind(slug),
            _ => query.bind(org.as_uuid()).bind(user.as_uuid()).bind(account),
        };
        query.execute(tx.conn()).await.unwrap();
    }
    tx.commit().await.unwrap();
    (org, user)
}

// ---- issue 4: more app processes on one database, with settings ----

/// `spawn_instance` with extra settings (`TLDW_YOUTUBE_BASE_URL`,
/// `OPENAI_BASE_URL`…); an extra named `DATABASE_MAX_CONNECTIONS` wins.
pub async fn spawn_instance_with(db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let app_url = cluster().pg.url(roles::APP_ROLE, &db.name);
    let owner_url = cluster().pg.url(roles::OWNER_ROLE, &db.name);
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = Settings::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(k, _)| k == name) {
            return Some(value.clone());
        }
        match name {
            "PORT" => Some("0".into()),
            "DATABASE_URL" => Some(secrecy::ExposeSecret::expose_secret(&app_url).to_owned()),
            "DATABASE_MIGRATION_URL" => {
                Some(secrecy::ExposeSecret::expose_secret(&owner_url).to_owned())
            }
            "DATABASE_MAX_CONNECTIONS" => Some("4".into()),
            _ => None,
        }
    })
    .unwrap();
    serve(settings, &db.name).await
}

/// The app as a fresh install runs it: no `DATABASE_URL`, so it starts (or
/// joins) its own embedded cluster in `data_dir`, database `tldw`. The
/// returned `db` names that database but not the cluster: reach it through
/// an `EmbeddedPostgres` on the same folder, not `TestDb`'s helpers.
pub async fn spawn_embedded(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> TestApp {
    let data_dir = data_dir.display().to_string();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = Settings::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(k, _)| k == name) {
            return Some(value.clone());
        }
        match name {
            "PORT" => Some("0".into()),
            "TLDW_DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        }
    })
    .unwrap();
    let joining = match &settings.database {
        tldw::server::config::DatabaseSettings::Embedded {
            data_dir,
            pg_bin_dir,
            max_connections,
        } => EmbeddedOptions {
            data_dir: data_dir.clone(),
            bin_dir: pg_bin_dir.clone(),
            durable: true,
            max_connections: *max_connections,
        },
        _ => unreachable!("spawn_embedded sets TLDW_DATA_DIR"),
    };
    let mut app = serve(settings, "tldw").await;
    // The app's database is in its own cluster: a second handle on it
    // (joined, never stopped; leaked, as the shared cluster's is static).
    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&joining))
        .await
        .unwrap()
        .unwrap();
    app.db = TestDb::on(Box::leak(Box::new(pg)), "tldw");
    app
}

async fn serve(settings: Settings, db_name: &str) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("the app did not build");
    let address = app.url();
    let metrics_url = app.metrics_url();
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        db: TestDb::named(db_name),
        client: test_client(),
        metrics_url,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A request that never ends fails its test instead of hanging the run.
fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

// ---- billing: settings for commands that open the test database ----

/// The test database's `DATABASE_URL` (app role) and
/// `DATABASE_MIGRATION_URL` (owner role), as `spawn_instance_with` sets them.
pub fn database_urls(db: &TestDb) -> (String, String) {
    let app_url = cluster().pg.url(roles::APP_ROLE, &db.name);
    let owner_url = cluster().pg.url(roles::OWNER_ROLE, &db.name);
    (
        secrecy::ExposeSecret::expose_secret(&app_url).to_owned(),
        secrecy::ExposeSecret::expose_secret(&owner_url).to_owned(),
    )
}

/// Settings for `db` as an external database, with `extra` on top (what an
/// operator command such as `tldw plan set` would read).
pub fn settings_for(db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    let (app_url, owner_url) = database_urls(db);
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(k, _)| k == name) {
            return Some(value.clone());
        }
        match name {
            "PORT" => Some("0".into()),
            "DATABASE_URL" => Some(app_url.clone()),
            "DATABASE_MIGRATION_URL" => Some(owner_url.clone()),
            "DATABASE_MAX_CONNECTIONS" => Some("4".into()),
            _ => None,
        }
    })
    .unwrap()
}

/// A superuser connection to `db`: sees every tenant's rows (RLS does not
/// bind a superuser), for assertions across orgs.
pub async fn superuser_conn(db: &TestDb) -> PgConnection {
    PgConnection::connect_with(&db.pg().superuser_options(&db.name))
        .await
        .unwrap()
}

// ---- issue 16: a real PgBouncer in transaction mode ----

/// Debian's PgBouncer (1.18: no prepared statements across transactions)
/// in transaction mode, on a free 127.0.0.1 port, in front of the test
/// cluster's unix socket. Stopped (and its folder removed) on drop.
pub struct PgBouncer {
    child: std::process::Child,
    dir: PathBuf,
    pub port: u16,
}

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

impl PgBouncer {
    /// `pool_size`: server connections per database and role.
    pub async fn start(pool_size: u32) -> PgBouncer {
        let pg = &cluster().pg;
        let dir = std::env::temp_dir().join(format!("tldw-pgbouncer-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // PgBouncer refuses to run as root, like PostgreSQL: it runs as the
        // cluster's OS user, which must read its files.
        if let Some(user) = pg.os_user() {
            std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let password = role_password(roles::APP_ROLE);
        let files = [
            (
                "pgbouncer.ini",
                format!(
                    "[databases]\n\
                     * = host={socket} port=5432\n\
                     [pgbouncer]\n\
                     listen_addr = 127.0.0.1\n\
                     listen_port = {port}\n\
                     unix_socket_dir =\n\
                     pool_mode = transaction\n\
                     auth_type = scram-sha-256\n\
                     auth_file = {dir}/users.txt\n\
                     max_client_conn = 1000\n\
                     default_pool_size = {pool_size}\n\
                     ignore_startup_parameters = extra_float_digits,options\n\
                     logfile = {dir}/pgbouncer.log\n",
                    socket = pg.pgdata().display(),
                    dir = dir.display(),
                ),
            ),
            (
                "users.txt",
                format!("\"{}\" \"{password}\"\n", roles::APP_ROLE),
            ),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            if let Some(user) = pg.os_user() {
                std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
            }
        }
        let mut command = Command::new(PGBOUNCER);
        command
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(user) = pg.os_user() {
            command.uid(user.uid).gid(user.gid);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("could not start {PGBOUNCER} (scripts/test installs it): {e}")
        });
        let bouncer = PgBouncer { child, dir, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "PgBouncer did not listen on {port}: {}",
                bouncer.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        bouncer
    }

    /// The app role's URL for `db`, through this PgBouncer.
    pub fn app_url(&self, db: &TestDb) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            roles::APP_ROLE,
            role_password(roles::APP_ROLE),
            self.port,
            db.name
        )
    }

    pub fn app_options(&self, db: &TestDb) -> PgConnectOptions {
        self.app_url(db).parse().unwrap()
    }

    /// Settings for an app instance on `db` through this PgBouncer, as an
    /// operator would write them: the app role pooled, without a
    /// statement cache; LISTEN straight to PostgreSQL (migrations already
    /// are, through `DATABASE_MIGRATION_URL`).
    pub fn settings(&self, db: &TestDb) -> Vec<(String, String)> {
        let (direct, _) = database_urls(db);
        vec![
            ("DATABASE_URL".into(), self.app_url(db)),
            ("DATABASE_STATEMENT_CACHE".into(), "0".into()),
            ("DATABASE_LISTEN_URL".into(), direct),
        ]
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A role's password in the test cluster (alphanumeric, so the URL holds
/// it as it is).
fn role_password(role: &str) -> String {
    let url = cluster().pg.url(role, "postgres");
    url::Url::parse(secrecy::ExposeSecret::expose_secret(&url))
        .unwrap()
        .password()
        .unwrap()
        .to_owned()
}
