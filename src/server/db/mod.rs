//! The database: migrations, the runtime pool and the only roads to it.
//!
//! The pool is private. Code outside this module reaches tenant tables only
//! through [`TenantTx`], a transaction whose first statement pins
//! `app.org_id` (and `app.user_id`) with `set_config(…, true)`, i.e. for that
//! transaction alone. Row level security does the rest: with no org set, a
//! tenant table shows nothing.

pub mod embedded;
pub mod roles;
pub mod supervisor;
mod tenant;

use anyhow::Context;
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::time::Duration;

pub use supervisor::{Outage, ServerHealth};
pub use tenant::{SharedTx, TenantScope, TenantTx};

use crate::server::auth::cache::IdentityCache;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Applies pending migrations as the owner role. Several processes may start
/// at once: sqlx serializes them with an advisory lock.
#[tracing::instrument(skip_all)]
pub async fn migrate(owner: &PgConnectOptions) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(owner.clone())
        .await
        .context("could not connect to PostgreSQL as the migration (owner) role")?;
    let result = MIGRATOR
        .run(&pool)
        .await
        .context("could not apply migrations");
    pool.close().await;
    result
}

/// How long a request waits for a pooled connection before it is answered
/// 503 (the database is down or saturated).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// A pooled connection that died with its server (a restart): nothing ran
/// on it yet, so starting over on another connection is safe.
fn is_stale_connection(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
}

/// The database could not be reached (as opposed to a statement that
/// failed): worth a 503 and a retry, not a 500.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too many
        // connections, a database not accepting connections (55000, e.g.
        // `datallowconn` off during maintenance) and the connection
        // exception class (08): the server is going away or not there yet.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(
                code.as_ref(),
                "57P01" | "57P02" | "57P03" | "53300" | "55000"
            ) || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Why the app should not take traffic yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the database cannot be reached")]
    Unreachable,
    /// The embedded server is down; the supervisor says why.
    #[error("{0}")]
    EmbeddedDown(Outage),
    #[error("database migrations are not applied ({applied} of {expected})")]
    MigrationsPending { applied: usize, expected: usize },
}

/// The runtime pool, connected as the app role, and the short-lived
/// identity cache in front of it (see [`IdentityCache`]): the services that
/// change memberships reach it through here to forget what they changed.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    /// Statement cache off (`DATABASE_STATEMENT_CACHE=0`): every transaction
    /// starts with `DEALLOCATE ALL` (see [`Pooling`]).
    unprepared: bool,
    /// Where LISTEN connects, when not through the pool (a pooler).
    listen: Option<PgConnectOptions>,
    identity: IdentityCache,
    /// What the embedded server's supervisor knows (always up otherwise).
    health: ServerHealth,
}

impl Db {
    pub async fn connect(app: PgConnectOptions, max_connections: u32) -> anyhow::Result<Db> {
        Db::connect_with(app, max_connections, Pooling::default()).await
    }

    /// [`Db::connect`], ready for a transaction pooler when `pooling` says so.
    #[tracing::instrument(skip_all, fields(max_connections))]
    pub async fn connect_with(
        app: PgConnectOptions,
        max_connections: u32,
        pooling: Pooling,
    ) -> anyhow::Result<Db> {
        let app = if pooling.statement_cache {
            app
        } else {
            app.statement_cache_capacity(0)
        };
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // A request waits at most this long for a connection, then gets
            // a 503 with Retry-After instead of hanging.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before every use (a round trip per transaction): a
            // connection that died with the server fails at BEGIN instead,
            // and `begin` retries that once on a fresh connection.
            .test_before_acquire(false)
            .connect_with(app)
            .await
            .context("could not connect to PostgreSQL as the app role")?;
        Ok(Db {
            pool,
            unprepared: !pooling.statement_cache,
            listen: pooling.listen,
            identity: IdentityCache::new(),
            health: ServerHealth::default(),
        })
    }

    /// Where the embedded server's supervisor reports an outage.
    pub fn health(&self) -> &ServerHealth {
        &self.health
    }

    pub fn identity(&self) -> &IdentityCache {
        &self.identity
    }

    /// Opens a transaction scoped to one organization (see [`TenantTx`]).
    pub async fn tenant(&self, scope: TenantScope) -> Result<TenantTx, sqlx::Error> {
        self.known_down()?;
        let started = std::time::Instant::now();
        let tx = match TenantTx::begin(&self.pool, scope, self.unprepared).await {
            Err(error) if is_stale_connection(&error) => {
                TenantTx::begin(&self.pool, scope, self.unprepared).await
            }
            result => result,
        };
        crate::server::metrics::db_acquired(started, tx.is_ok());
        tx
    }

    /// Opens a transaction for the shared tables (the `videos` cache). It
    /// carries no org, so tenant tables are invisible from it.
    pub async fn shared(&self) -> Result<SharedTx, sqlx::Error> {
        self.known_down()?;
        let started = std::time::Instant::now();
        let tx = match SharedTx::begin(&self.pool, self.unprepared).await {
            Err(error) if is_stale_connection(&error) => {
                SharedTx::begin(&self.pool, self.unprepared).await
            }
            result => result,
        };
        crate::server::metrics::db_acquired(started, tx.is_ok());
        tx
    }

    /// While the supervisor knows the embedded server is down, a request
    /// gets its 503 at once instead of after the pool's wait (a page that
    /// loads twice would otherwise wait twice).
    fn known_down(&self) -> Result<(), sqlx::Error> {
        match self.health.outage() {
            Some(_) => Err(sqlx::Error::PoolTimedOut),
            None => Ok(()),
        }
    }

    /// Reachable, and every migration this binary knows is applied.
    /// Answers within [`ACQUIRE_TIMEOUT`]: at once when the supervisor
    /// knows the embedded server is down, and a server that accepts
    /// connections but does not answer counts as unreachable.
    #[tracing::instrument(skip_all)]
    pub async fn readiness(&self) -> Result<(), NotReady> {
        if let Some(outage) = self.health.outage() {
            return Err(NotReady::EmbeddedDown(outage));
        }
        let applied = tokio::time::timeout(ACQUIRE_TIMEOUT, async {
            // An idle connection may have died with a restarted server:
            // that says nothing about the server now, so try a fresh one.
            match self.applied_migrations().await {
                Err(error) if is_stale_connection(&error) => self.applied_migrations().await,
                result => result,
            }
        })
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
        .map_err(|error| {
            tracing::warn!(error = %error, "readiness check failed");
            NotReady::Unreachable
        })?;
        let expected: Vec<i64> = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .collect();
        let missing = expected.iter().filter(|v| !applied.contains(v)).count();
        if missing > 0 {
            return Err(NotReady::MigrationsPending {
                applied: expected.len() - missing,
                expected: expected.len(),
            });
        }
        Ok(())
    }

    /// A simple query (one message, no prepared statement): outside a
    /// transaction a pooler may hand each message to another server.
    async fn applied_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        use sqlx::Row;
        sqlx::raw_sql("select version from _sqlx_migrations where success")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect()
    }

    /// A dedicated LISTEN connection (for notifications across processes).
    /// LISTEN belongs to a session, which a transaction pooler does not
    /// keep, so with [`Pooling::listen`] it connects there directly, on a
    /// pool of its own that only reconnects it.
    pub async fn listener(&self) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
        match &self.listen {
            None => sqlx::postgres::PgListener::connect_with(&self.pool).await,
            Some(options) => {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options.clone())
                    .await?;
                sqlx::postgres::PgListener::connect_with(&pool).await
            }
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool's connections right now (for the metrics gauges).
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }
}

/// How the app's connections reach PostgreSQL: straight (the default), or
/// through a transaction pooler such as PgBouncer 1.18, which gives each
/// transaction whichever server connection is free and keeps no session.
#[derive(Clone, Debug)]
pub struct Pooling {
    /// `DATABASE_STATEMENT_CACHE`. Off, sqlx keeps no statement across
    /// transactions (capacity 0). sqlx 0.9 still *names* each statement
    /// (`sqlx_s_N`, counted per client connection) and never closes it, so
    /// on a shared server another client's `sqlx_s_1` would collide with
    /// ours: every transaction therefore begins with `DEALLOCATE ALL`, in
    /// the same round trip as `BEGIN`. Inside a transaction the pooler
    /// keeps one server, so Parse and Bind meet.
    pub statement_cache: bool,
    /// `DATABASE_LISTEN_URL`: a direct connection for LISTEN.
    pub listen: Option<PgConnectOptions>,
}

impl Default for Pooling {
    fn default() -> Pooling {
        Pooling {
            statement_cache: true,
            listen: None,
        }
    }
}

/// See [`Db::pool_stats`].
#[derive(Clone, Copy, Debug)]
pub struct PoolStats {
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}
