//! Keeps the embedded PostgreSQL running.
//!
//! A background task polls the postmaster (its `postmaster.pid` and the
//! process table, every [`POLL`]). When it died (a crash, an OOM kill, a
//! `kill -9`), the task starts it again with `pg_ctl start`: PostgreSQL runs
//! crash recovery and replaces the stale pid file itself. Failed starts are
//! retried with a capped backoff, forever: a data folder that cannot start
//! (damaged, disk full) keeps being tried, is named in the log at ERROR, and
//! is reported through [`ServerHealth`] so `/readyz` can say why. Requests
//! meanwhile get 503 from the pool (see [`super::is_unavailable`]).
//!
//! Only the embedded cluster is supervised. An external database
//! (`DATABASE_URL`) is someone else's to restart; the pool reconnects to it.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{sync::watch, task::JoinHandle};

use super::embedded::{EmbeddedPostgres, PostmasterState};

/// How often the postmaster is looked at.
pub const POLL: Duration = Duration::from_millis(250);
/// First wait after a failed start; doubles up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A cleanly stopped server (no pid file) is left alone this long: an
/// operator's `pg_ctl restart` starts it again itself within moments, and
/// starting it under their feet would only make one of the two fail.
const STOPPED_GRACE: Duration = Duration::from_secs(1);

/// What is known about the embedded server, shared with the readiness probe.
/// Always "up" for an external database.
#[derive(Clone, Default)]
pub struct ServerHealth(Arc<Mutex<Option<Outage>>>);

impl ServerHealth {
    /// The current outage, if the supervisor knows of one.
    pub fn outage(&self) -> Option<Outage> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, outage: Option<Outage>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = outage;
    }
}

/// The embedded server is down and being restarted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// Failed starts so far (0 while the first one runs).
    pub failed_starts: u32,
    pub cause: OutageCause,
}

/// Why the server is not back yet, in words an operator can act on. Never
/// the server's own text (that goes to the log only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutageCause {
    /// It stopped and a start is under way.
    Restarting,
    /// Processes of the dead server still hold its shared memory.
    OldProcessesExiting,
    /// The disk holding the data folder is full.
    DiskFull,
    /// The data folder is missing, damaged or not accessible.
    DataFolderBroken,
    /// `pg_ctl start` failed for another reason.
    StartFailed,
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.cause {
            OutageCause::Restarting => "it stopped and tldw is restarting it",
            OutageCause::OldProcessesExiting => {
                "it stopped and tldw is restarting it once its old processes have exited"
            }
            OutageCause::DiskFull => "it stopped and cannot start again: the disk is full",
            OutageCause::DataFolderBroken => {
                "it stopped and cannot start again: its data folder is damaged, missing or not accessible"
            }
            OutageCause::StartFailed => "it stopped and cannot start again",
        };
        write!(f, "the embedded database is down: {why}")?;
        if self.failed_starts > 0 {
            write!(
                f,
                " ({} failed start{}, still trying; see the server log)",
                self.failed_starts,
                if self.failed_starts == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// Reads what went wrong from `pg_ctl start`'s error (which carries the end
/// of the server log).
fn classify(error: &str) -> OutageCause {
    let error = error.to_ascii_lowercase();
    if error.contains("no space left on device") || error.contains("disk quota exceeded") {
        OutageCause::DiskFull
    } else if error.contains("pre-existing shared memory block")
        || error.contains("is another postmaster")
        || error.contains("lock file")
    {
        OutageCause::OldProcessesExiting
    } else if error.contains("pg_version")
        || error.contains("not a database cluster directory")
        || error.contains("data directory")
        || error.contains("could not open file")
        || error.contains("could not locate a valid checkpoint record")
        || error.contains("permission denied")
        || error.contains("no such file or directory")
    {
        OutageCause::DataFolderBroken
    } else {
        OutageCause::StartFailed
    }
}

/// The running supervisor; [`Supervisor::stop`] it before stopping
/// PostgreSQL, or shutdown would look like a crash to it.
pub struct Supervisor {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervisor {
    pub fn start(pg: Arc<EmbeddedPostgres>, health: ServerHealth) -> Supervisor {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(supervise(pg, health, stopped));
        Supervisor { stop, task }
    }

    /// Stops watching; waits for a start in progress to finish (bounded by
    /// pg_ctl's own timeout).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the PostgreSQL supervisor panicked");
        }
    }
}

async fn supervise(
    pg: Arc<EmbeddedPostgres>,
    health: ServerHealth,
    mut stopped: watch::Receiver<bool>,
) {
    let mut stopped_since: Option<Instant> = None;
    loop {
        if pause(&mut stopped, POLL).await {
            return;
        }
        let state = pg.postmaster_state();
        let down_since = Instant::now();
        match state {
            PostmasterState::Running => {
                stopped_since = None;
                continue;
            }
            PostmasterState::Crashed { pid } => {
                tracing::warn!(
                    pid,
                    pgdata = %pg.pgdata().display(),
                    "the embedded PostgreSQL died (its postmaster is gone, its pid file left behind); restarting it, with crash recovery"
                );
            }
            PostmasterState::Stopped => {
                let since = *stopped_since.get_or_insert(down_since);
                if since.elapsed() < STOPPED_GRACE {
                    continue;
                }
                tracing::warn!(
                    pgdata = %pg.pgdata().display(),
                    "the embedded PostgreSQL was stopped from outside tldw and nobody started it again; starting it"
                );
            }
        }
        stopped_since = None;
        if restart(&pg, &health, &mut stopped).await {
            tracing::info!(
                after = ?down_since.elapsed(),
                "the embedded PostgreSQL is back"
            );
        }
    }
}

/// Starts the server until it runs (true) or we are told to stop (false).
async fn restart(
    pg: &Arc<EmbeddedPostgres>,
    health: &ServerHealth,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = BACKOFF_FIRST;
    let mut failed_starts = 0;
    health.set(Some(Outage {
        failed_starts,
        cause: OutageCause::Restarting,
    }));
    loop {
        let started = {
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || {
                pg.reap_dead_postgres();
                pg.restart()
            })
            .await
        };
        let error = match started {
            Ok(Ok(())) => {
                health.set(None);
                crate::server::metrics::db_restarted();
                return true;
            }
            // Someone else (an operator, another tldw on this folder) may
            // have started it meanwhile; then our start failed for nothing.
            Ok(Err(_)) | Err(_) if pg.postmaster_state() == PostmasterState::Running => {
                health.set(None);
                return true;
            }
            Ok(Err(error)) => format!("{error:#}"),
            Err(panic) => format!("pg_ctl start panicked: {panic}"),
        };
        failed_starts += 1;
        let cause = classify(&error);
        health.set(Some(Outage {
            failed_starts,
            cause,
        }));
        if cause == OutageCause::OldProcessesExiting {
            tracing::warn!(failed_starts, retry_in = ?backoff, %error, "the embedded PostgreSQL could not start yet; retrying");
        } else {
            tracing::error!(
                failed_starts,
                retry_in = ?backoff,
                %error,
                "the embedded PostgreSQL cannot start; tldw answers 503 until it does, and keeps trying"
            );
        }
        if pause(stopped, backoff).await {
            return false;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Sleeps `duration`; true if told to stop meanwhile.
async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = stopped.wait_for(|stop| *stop) => true,
        () = tokio::time::sleep(duration) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_are_named_in_words_an_operator_can_act_on() {
        let cases = [
            (
                "pg_ctl start failed: FATAL:  could not write lock file \"postmaster.pid\": No space left on device",
                OutageCause::DiskFull,
            ),
            (
                "FATAL:  pre-existing shared memory block (key 5432001, ID 3) is still in use",
                OutageCause::OldProcessesExiting,
            ),
            (
                "FATAL:  \"/x/pgdata\" is not a valid data directory\nDETAIL:  File \"/x/pgdata/PG_VERSION\" is missing.",
                OutageCause::DataFolderBroken,
            ),
            (
                "pg_ctl start failed (exit status: 1): ",
                OutageCause::StartFailed,
            ),
        ];
        for (error, cause) in cases {
            assert_eq!(classify(error), cause, "{error}");
        }
    }

    #[test]
    fn an_outage_says_what_is_wrong_without_server_text() {
        let outage = Outage {
            failed_starts: 3,
            cause: OutageCause::DataFolderBroken,
        };
        let words = outage.to_string();
        assert!(words.contains("data folder is damaged"), "{words}");
        assert!(words.contains("3 failed starts"), "{words}");
        let restarting = Outage {
            failed_starts: 0,
            cause: OutageCause::Restarting,
        }
        .to_string();
        assert!(restarting.contains("restarting it"), "{restarting}");
        assert!(!restarting.contains("failed"), "{restarting}");
    }
}
