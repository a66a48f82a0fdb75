//! A private PostgreSQL cluster made with the system's own binaries, so the
//! app runs with no database configured.
//!
//! Layout of the data folder (default `.tldw/`):
//! - `pgdata/`            the cluster; also holds the unix socket (no TCP port)
//! - `credentials.json`   generated role passwords, readable only by us
//!
//! PostgreSQL refuses to run as root, so when we are root the cluster belongs
//! to an unprivileged OS user (`postgres` unless `TLDW_PG_OS_USER` says
//! otherwise) and every PostgreSQL command runs as that user.

use anyhow::{Context, bail};
use rand::{Rng, distr::Alphanumeric};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use std::{
    fs,
    io::Write,
    os::unix::{
        fs::{OpenOptionsExt, PermissionsExt},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Command, Output},
};

use super::roles::{APP_ROLE, OWNER_ROLE, SUPERUSER};

const PORT: u16 = 5432;
/// How long the first start may take (a fresh cluster, or crash recovery
/// after an unclean stop).
const START_TIMEOUT_SECONDS: u32 = 60;
/// How long a restart by the supervisor waits for "ready". Shorter than a
/// first start so shutdown is never held up for long; if recovery takes
/// longer, the server keeps starting and the next probe sees it running.
const RESTART_TIMEOUT_SECONDS: u32 = 10;
/// Linux limits a unix socket path to 107 bytes.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    pub data_dir: PathBuf,
    pub bin_dir: Option<PathBuf>,
    /// `false` trades crash safety for speed (fsync off): test clusters only.
    pub durable: bool,
    pub max_connections: u32,
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    superuser: String,
    owner: String,
    app: String,
}

/// A running cluster. Stop it with [`EmbeddedPostgres::stop`]; it is left
/// running if this process dies, and the next start reuses it.
pub struct EmbeddedPostgres {
    pgdata: PathBuf,
    bin_dir: PathBuf,
    os_user: Option<OsUser>,
    started_here: bool,
    superuser_password: SecretString,
    owner_password: SecretString,
    app_password: SecretString,
}

#[derive(Clone, Debug)]
pub struct OsUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, then starts it unless it is already
    /// running (another tldw on the same data folder). Blocking.
    #[tracing::instrument(skip_all, fields(data_dir = %options.data_dir.display()))]
    pub fn start(options: &EmbeddedOptions) -> anyhow::Result<EmbeddedPostgres> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let os_user = os_user_for_postgres()?;

        fs::create_dir_all(&options.data_dir).with_context(|| {
            format!(
                "could not create the data folder {}",
                options.data_dir.display()
            )
        })?;
        let data_dir = options
            .data_dir
            .canonicalize()
            .with_context(|| format!("could not resolve {}", options.data_dir.display()))?;
        if os_user.is_some() {
            // The postgres user must be able to pass through (not list) our folder.
            fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o711))?;
        }
        let pgdata = data_dir.join("pgdata");
        let socket_path = pgdata.join(format!(".s.PGSQL.{PORT}"));
        if socket_path.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the data folder path {} is too long for PostgreSQL's socket; set TLDW_DATA_DIR to a shorter path",
                data_dir.display()
            );
        }

        let credentials = load_or_create_credentials(&data_dir.join("credentials.json"))?;
        let mut pg = EmbeddedPostgres {
            pgdata,
            bin_dir,
            os_user,
            started_here: false,
            superuser_password: credentials.superuser.into(),
            owner_password: credentials.owner.into(),
            app_password: credentials.app.into(),
        };

        if !pg.pgdata.join("PG_VERSION").exists() {
            pg.init(&data_dir)?;
        }
        pg.write_settings(options)?;
        if pg.is_running()? {
            tracing::info!("reusing the embedded PostgreSQL that is already running");
        } else {
            pg.start_server(START_TIMEOUT_SECONDS)?;
            pg.started_here = true;
        }
        Ok(pg)
    }

    /// Stops the cluster if this process started it. Blocking.
    #[tracing::instrument(skip_all)]
    pub fn stop(&self) -> anyhow::Result<()> {
        if !self.started_here {
            return Ok(());
        }
        let output = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "fast", "-w", "-t", "10", "-s"])
            .output()
            .context("could not run pg_ctl stop")?;
        check(&output, "pg_ctl stop")?;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// The OS user PostgreSQL runs as, when it is not us.
    pub fn os_user(&self) -> Option<&OsUser> {
        self.os_user.as_ref()
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn superuser_options(&self, database: &str) -> PgConnectOptions {
        self.options(SUPERUSER, &self.superuser_password, database)
    }

    pub fn owner_options(&self, database: &str) -> PgConnectOptions {
        self.options(OWNER_ROLE, &self.owner_password, database)
    }

    pub fn app_options(&self, database: &str) -> PgConnectOptions {
        self.options(APP_ROLE, &self.app_password, database)
    }

    pub(crate) fn owner_password(&self) -> &SecretString {
        &self.owner_password
    }

    pub(crate) fn app_password(&self) -> &SecretString {
        &self.app_password
    }

    /// A `postgres://` URL for `role` (one of the three roles above), for
    /// handing the cluster to something that takes URLs.
    pub fn url(&self, role: &str, database: &str) -> SecretString {
        let password = match role {
            SUPERUSER => &self.superuser_password,
            OWNER_ROLE => &self.owner_password,
            _ => &self.app_password,
        };
        let socket_dir =
            url::form_urlencoded::byte_serialize(self.pgdata.as_os_str().as_encoded_bytes())
                .collect::<String>();
        format!(
            "postgres://{role}:{}@localhost:{PORT}/{database}?host={socket_dir}",
            password.expose_secret()
        )
        .into()
    }

    fn options(&self, role: &str, password: &SecretString, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.pgdata)
            .port(PORT)
            .username(role)
            .password(password.expose_secret())
            .database(database)
            .application_name("tldw")
    }

    fn init(&self, data_dir: &Path) -> anyhow::Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "creating the embedded PostgreSQL cluster");
        // A half-made cluster from an interrupted first run: start over.
        if self.pgdata.exists() {
            fs::remove_dir_all(&self.pgdata)
                .with_context(|| format!("could not clear {}", self.pgdata.display()))?;
        }
        fs::create_dir_all(&self.pgdata)?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))?;
        self.give_to_postgres(&self.pgdata)?;

        let pwfile = data_dir.join(".initdb-password");
        write_private(&pwfile, self.superuser_password.expose_secret())?;
        self.give_to_postgres(&pwfile)?;
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-U")
            .arg(SUPERUSER)
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ])
            .output()
            .context("could not run initdb");
        let _ = fs::remove_file(&pwfile);
        check(&output?, "initdb")?;

        let conf = self.pgdata.join("postgresql.conf");
        let mut file = fs::OpenOptions::new().append(true).open(&conf)?;
        writeln!(
            file,
            "\n# Settings written by tldw at every start.\ninclude_if_exists = 'tldw.conf'"
        )?;
        Ok(())
    }

    fn write_settings(&self, options: &EmbeddedOptions) -> anyhow::Result<()> {
        let socket_dir = self.pgdata.display().to_string().replace('\'', "''");
        let mut settings = format!(
            "listen_addresses = ''\nunix_socket_directories = '{socket_dir}'\nport = {PORT}\nmax_connections = {}\nlogging_collector = off\n",
            options.max_connections.max(20) + 10
        );
        if !options.durable {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        } else if self.major_version().is_some_and(|v| v >= 14) {
            // Crash recovery first fsyncs every file of the cluster, one by
            // one: seconds, measured here (3.2 s of a 4.6 s restart after a
            // SIGKILL). One syncfs() of the file system does the same job.
            settings.push_str("recovery_init_sync_method = syncfs\n");
        }
        let path = self.pgdata.join("tldw.conf");
        fs::write(&path, settings)
            .with_context(|| format!("could not write {}", path.display()))?;
        self.give_to_postgres(&path)
    }

    /// Whether the postmaster is alive, read from `postmaster.pid` and the
    /// process table (no subprocess, so it is cheap to poll).
    pub fn postmaster_state(&self) -> PostmasterState {
        let pidfile = self.pgdata.join("postmaster.pid");
        let text = match fs::read_to_string(&pidfile) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return PostmasterState::Stopped;
            }
            // Unreadable: nothing we can act on, and not a sign of death.
            Err(_) => return PostmasterState::Running,
        };
        // A file being written right now may not have its pid line yet.
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return PostmasterState::Running;
        };
        if process_is_alive(pid) {
            PostmasterState::Running
        } else {
            PostmasterState::Crashed { pid }
        }
    }

    /// Starts the server again after it died (the supervisor's road).
    /// PostgreSQL runs crash recovery and replaces a stale `postmaster.pid`
    /// whose process is gone. Blocking.
    #[tracing::instrument(skip_all)]
    pub fn restart(&self) -> anyhow::Result<()> {
        self.start_server(RESTART_TIMEOUT_SECONDS)
    }

    /// The cluster's PostgreSQL major version (`PG_VERSION`), for settings
    /// older servers would refuse.
    fn major_version(&self) -> Option<u32> {
        fs::read_to_string(self.pgdata.join("PG_VERSION"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn is_running(&self) -> anyhow::Result<bool> {
        let output = self
            .command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.pgdata)
            .output()
            .context("could not run pg_ctl status")?;
        // 0: running, 3: not running, 4: no usable data folder.
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => check(&output, "pg_ctl status").map(|()| false),
        }
    }

    /// Reaps PostgreSQL processes that died as our children (see
    /// [`adopt_orphans`]). A dead postmaster nobody reaped is a zombie, and
    /// PostgreSQL takes a zombie named in `postmaster.pid` for a live
    /// server: the restart would be refused until its parent reaps it.
    pub fn reap_dead_postgres(&self) {
        use nix::{
            sys::wait::{WaitPidFlag, waitpid},
            unistd::Pid,
        };
        let me = std::process::id().to_string();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid …"
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let Some((pid, comm)) = head.split_once(" (") else {
                continue;
            };
            let mut fields = rest.split_whitespace();
            let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else {
                continue;
            };
            // Only PostgreSQL's own processes: never a child whose status
            // someone else waits for (pg_ctl, initdb).
            if state == "Z"
                && ppid == me
                && comm == "postgres"
                && let Ok(pid) = pid.trim().parse::<i32>()
            {
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            }
        }
    }

    fn start_server(&self, timeout_seconds: u32) -> anyhow::Result<()> {
        adopt_orphans();
        let log = self.pgdata.join("server.log");
        let output = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", &timeout_seconds.to_string(), "-s"])
            // Own process group: a Ctrl-C meant for tldw must not also hit
            // PostgreSQL while in-flight requests are still finishing.
            .process_group(0)
            .output()
            .context("could not run pg_ctl start")?;
        if let Err(error) = check(&output, "pg_ctl start") {
            let tail = fs::read_to_string(&log)
                .map(|text| {
                    text.lines()
                        .rev()
                        .take(10)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            return Err(error.context(format!(
                "PostgreSQL did not start; the end of {}:\n{tail}",
                log.display()
            )));
        }
        tracing::info!(pgdata = %self.pgdata.display(), "embedded PostgreSQL started");
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command.env("LC_ALL", "C").env_remove("PGDATA");
        if let Some(user) = &self.os_user {
            command.uid(user.uid).gid(user.gid);
            // Its own cwd: ours may not be readable by the postgres user.
            command.current_dir("/");
        }
        command
    }

    fn give_to_postgres(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(user) = &self.os_user {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).with_context(|| {
                format!(
                    "could not give {} to the {} user",
                    path.display(),
                    user.name
                )
            })?;
        }
        Ok(())
    }
}

/// What `postmaster.pid` and the process table say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostmasterState {
    Running,
    /// The pid file is there but its process is gone: killed or crashed.
    Crashed {
        pid: i32,
    },
    /// No pid file: stopped cleanly (by an operator, or mid `pg_ctl restart`).
    Stopped,
}

/// pg_ctl starts the postmaster and exits, so the postmaster is an orphan.
/// Adopting it (a child subreaper, Linux) lets the supervisor reap it the
/// moment it dies, whatever our parent or the container's pid 1 does about
/// zombies; otherwise a crashed postmaster blocks its own restart until
/// someone else reaps it.
fn adopt_orphans() {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!(%error, "could not become a child subreaper");
    }
}

/// `kill(pid, 0)` succeeds on a zombie too, so its state in /proc decides.
fn process_is_alive(pid: i32) -> bool {
    use nix::{errno::Errno, sys::signal::kill, unistd::Pid};
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S …": the state follows the last ')'.
        Ok(stat) => !stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

/// `TLDW_PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
fn find_bin_dir(configured: Option<&Path>) -> anyhow::Result<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = configured {
        if complete(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "TLDW_PG_BIN_DIR={} does not contain initdb, pg_ctl and postgres; point it at PostgreSQL's bin folder \
             (e.g. /usr/lib/postgresql/15/bin) or install PostgreSQL with `sudo apt-get install postgresql`",
            dir.display()
        );
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| complete(dir))
    {
        return Ok(dir);
    }
    bail!(
        "PostgreSQL's server programs (initdb, pg_ctl, postgres) were not found in /usr/lib/postgresql/*/bin or on PATH. \
         Install them with `sudo apt-get install postgresql` (Debian/Ubuntu), point TLDW_PG_BIN_DIR at their folder, \
         or use an existing server by setting DATABASE_URL and DATABASE_MIGRATION_URL."
    )
}

/// PostgreSQL will not run as root; pick the unprivileged user it runs as.
fn os_user_for_postgres() -> anyhow::Result<Option<OsUser>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let name = std::env::var("TLDW_PG_OS_USER").unwrap_or_else(|_| "postgres".into());
    let user = nix::unistd::User::from_name(&name)
        .with_context(|| format!("could not look up the OS user {name}"))?
        .with_context(|| {
            format!(
                "tldw runs as root, and PostgreSQL refuses to; it runs the database as the OS user \
                 {name:?}, which does not exist. Create it (`useradd --system {name}`), set TLDW_PG_OS_USER \
                 to another unprivileged user, or run tldw as a normal user."
            )
        })?;
    if user.uid.is_root() {
        bail!("TLDW_PG_OS_USER must name an unprivileged user, not {name:?}");
    }
    Ok(Some(OsUser {
        name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }))
}

fn load_or_create_credentials(path: &Path) -> anyhow::Result<Credentials> {
    if let Ok(text) = fs::read_to_string(path) {
        return serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; remove the data folder to start afresh",
                path.display()
            )
        });
    }
    let credentials = Credentials {
        superuser: random_password(),
        owner: random_password(),
        app: random_password(),
    };
    write_private(path, &serde_json::to_string_pretty(&credentials)?)?;
    Ok(credentials)
}

fn random_password() -> String {
    // Alphanumeric only: these are spliced into CREATE ROLE … PASSWORD '…'.
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

fn check(output: &Output, what: &str) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    )
}
