//! Builds the application from settings, binds its port and runs it until a
//! shutdown signal, then stops what it started.

use anyhow::Context;
use axum::{Router, http::Request, routing::get};
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use sqlx::postgres::PgConnectOptions;
use std::{
    future::Future,
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, OnceLock},
    time::Duration,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    timeout::RequestBodyTimeoutLayer,
    trace::TraceLayer,
};

use super::{
    auth::{clerk_link::ClerkAuth, identity::Authenticator},
    clients::{mailer::Mailer, youtube::YouTubeClient},
    config::{AuthSettings, DatabaseSettings, Settings},
    db::{
        self, Db,
        embedded::{EmbeddedOptions, EmbeddedPostgres},
        roles,
        supervisor::Supervisor,
    },
    http::{AppState, WebSettings, api, assets, csrf, events, health, security_headers, serve},
    live::Hub,
    services::{billing::Billing, summaries::SummaryEngine, waiter::VideoWaiter},
    summarizer, webhooks,
};
use crate::app::{App, shell};

/// The one database the embedded cluster serves.
const EMBEDDED_DATABASE: &str = "tldw";
/// Larger bodies are refused with 413 before any handler reads them.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Site settings that ship inside the binary; `LEPTOS_*` variables override them.
const LEPTOS_TOML: &str = include_str!("../../Leptos.toml");

pub struct Application {
    listener: TcpListener,
    router: Router,
    db: Db,
    summaries: SummaryEngine,
    live: Hub,
    embedded: Option<Embedded>,
    /// `/metrics` on `METRICS_ADDR`, when set.
    metrics: Option<super::metrics::MetricsServer>,
}

/// The embedded cluster and the task that restarts it if it dies.
struct Embedded {
    pg: Arc<EmbeddedPostgres>,
    supervisor: Supervisor,
}

/// The database as settings describe it: the embedded cluster started (or
/// joined) when none is configured, and connection options for both roles.
pub(crate) async fn open_database(
    settings: &Settings,
) -> anyhow::Result<(
    PgConnectOptions,
    PgConnectOptions,
    u32,
    Option<EmbeddedPostgres>,
)> {
    Ok(match &settings.database {
        DatabaseSettings::Embedded {
            data_dir,
            pg_bin_dir,
            max_connections,
        } => {
            let options = EmbeddedOptions {
                data_dir: data_dir.clone(),
                bin_dir: pg_bin_dir.clone(),
                durable: true,
                max_connections: *max_connections,
            };
            let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&options))
                .await
                .context("the embedded PostgreSQL launcher panicked")??;
            roles::ensure_roles_and_database(&pg, EMBEDDED_DATABASE).await?;
            (
                pg.app_options(EMBEDDED_DATABASE),
                pg.owner_options(EMBEDDED_DATABASE),
                *max_connections,
                Some(pg),
            )
        }
        DatabaseSettings::External {
            app_url,
            migration_url,
            max_connections,
            statement_cache,
            ..
        } => {
            use secrecy::ExposeSecret;
            let app = PgConnectOptions::from_str(app_url.expose_secret())
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            // Behind a transaction pooler: no statement outlives its
            // transaction (see `db::Pooling`).
            let app = if *statement_cache {
                app
            } else {
                app.statement_cache_capacity(0)
            };
            let owner = PgConnectOptions::from_str(migration_url.expose_secret())
                .context("DATABASE_MIGRATION_URL is not a valid PostgreSQL URL")?;
            (app, owner, *max_connections, None)
        }
    })
}

/// How the app's pool meets an external database: see [`db::Pooling`].
pub(crate) fn pooling(settings: &Settings) -> anyhow::Result<db::Pooling> {
    let DatabaseSettings::External {
        statement_cache,
        listen_url,
        ..
    } = &settings.database
    else {
        return Ok(db::Pooling::default());
    };
    use secrecy::ExposeSecret;
    let listen = listen_url
        .as_ref()
        .map(|url| PgConnectOptions::from_str(url.expose_secret()))
        .transpose()
        .context("DATABASE_LISTEN_URL is not a valid PostgreSQL URL")?;
    Ok(db::Pooling {
        statement_cache: *statement_cache,
        listen,
    })
}

/// `tldw plan set --org <slug> --plan <plan>`: an operator sets an org's
/// plan by hand (billing off). Connects as the owner role, the only one
/// allowed to look an org up by slug across tenants.
pub async fn set_plan(
    settings: &Settings,
    slug: &str,
    plan: crate::domain::PlanId,
) -> anyhow::Result<()> {
    let (_, owner_options, _, embedded) = open_database(settings).await?;
    let result = async {
        db::migrate(&owner_options).await?;
        let owner = Db::connect(owner_options, 2).await?;
        let result = super::services::billing::Billing::set_plan_manually(&owner, slug, plan).await;
        owner.close().await;
        result
    }
    .await;
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .context("stopping PostgreSQL panicked")??;
    }
    result
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        require_public_url(&settings)?;
        let (app_options, owner_options, max_connections, embedded) =
            open_database(&settings).await?;
        db::migrate(&owner_options).await?;
        let db = Db::connect_with(app_options, max_connections, pooling(&settings)?).await?;
        // Only the embedded cluster is ours to restart; an external
        // database is reconnected to by the pool, nothing more.
        let embedded = embedded.map(|pg| {
            let pg = Arc::new(pg);
            Embedded {
                supervisor: Supervisor::start(pg.clone(), db.health().clone()),
                pg,
            }
        });

        let address = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(address).await.with_context(|| {
            format!("could not listen on {address}; is something else using it? Set PORT (or HOST) to choose another")
        })?;
        let mut leptos_options = leptos::config::get_config_from_str(LEPTOS_TOML)
            .context("Leptos.toml (or a LEPTOS_* variable) is invalid")?;
        assets::prepare_site(&mut leptos_options, settings.site_root.as_deref())?;
        leptos_options.site_addr = listener.local_addr()?;

        let auth = match &settings.auth {
            AuthSettings::Builtin => Authenticator::Builtin,
            AuthSettings::Clerk(clerk) => Authenticator::Clerk(ClerkAuth::new((**clerk).clone())?),
        };
        let web = WebSettings {
            secure_cookies: settings
                .public_url
                .as_ref()
                .is_some_and(|u| u.scheme() == "https"),
            public_origin: settings
                .public_url
                .as_ref()
                .map(|u| u.origin().ascii_serialization()),
            trusted_proxies: settings.trusted_proxies.clone(),
            cors_origins: settings.cors_origins.clone(),
            orgs_per_day: settings.orgs_per_day,
            sign_ups_per_hour: settings.sign_ups_per_hour,
        };
        // The process's one LISTEN connection: org events and video_ready.
        let live = Hub::start(&db, settings.live.clone()).await?;
        let summaries = SummaryEngine::new(
            db.clone(),
            YouTubeClient::new(settings.summaries.youtube.clone())?,
            summarizer::from_settings(settings.summaries.openai.clone())?,
            VideoWaiter::on(live.video_ready()),
            settings.summaries.clone(),
            settings.billing.plans.clone(),
        );
        summaries.start_sweeper();
        let metrics = match settings.metrics_addr {
            Some(address) => Some(super::metrics::MetricsServer::bind(address).await?),
            None => None,
        };
        let router = router(AppState {
            leptos_options,
            db: db.clone(),
            auth,
            mailer: Mailer::new(settings.smtp_url.as_ref(), &settings.smtp_from)?,
            summaries: summaries.clone(),
            billing: Billing::new(
                db.clone(),
                settings.billing.plans.clone(),
                settings.billing.dodo.clone(),
            )?,
            web: Arc::new(web),
            live: live.clone(),
        });
        Ok(Application {
            listener,
            router,
            db,
            summaries,
            live,
            embedded,
            metrics,
        })
    }

    /// `http://127.0.0.1:9100/metrics`, when `METRICS_ADDR` is set.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics.as_ref().map(|m| m.url())
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(address) => format!("http://{address}"),
            Err(_) => "http://(unknown address)".into(),
        }
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then
    /// closes the pool and stops the embedded database if we started it.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            db,
            summaries,
            live,
            embedded,
            metrics,
        } = self;
        let metrics = metrics.map(|m| m.spawn(db.clone()));
        // Graceful shutdown waits for in-flight requests, but not forever: a
        // stuck client must not keep the process (and the database) up.
        let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
        let streams = live.clone();
        let signal = async move {
            shutdown.await;
            // Event streams never end by themselves: end them, or graceful
            // shutdown would wait for them its whole grace.
            streams.stop();
            let _ = stopping_tx.send(true);
        };
        let server = super::http::serve::serve(listener, router, signal);
        let deadline = async move {
            if stopping_rx.wait_for(|stopping| *stopping).await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = tokio::select! {
            result = server => result.context("the HTTP server failed"),
            () = deadline => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        tracing::info!("HTTP server stopped; closing the database");
        drop(metrics);
        summaries.stop();
        live.stop();
        // Closing waits for every connection to come back; a stuck one must
        // not keep the process (and the embedded database) up past 10 s.
        if tokio::time::timeout(Duration::from_secs(2), db.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still busy after 2 s; closing anyway");
        }
        if let Some(Embedded { pg, supervisor }) = embedded {
            // First, or stopping it would look like a crash to restart.
            supervisor.stop().await;
            tokio::task::spawn_blocking(move || pg.stop())
                .await
                .context("stopping PostgreSQL panicked")??;
        }
        served
    }
}

/// The app's page routes, generated once per process.
///
/// Leptos generates them by running the app with resource loading
/// suppressed through a process-wide flag (`SuppressResourceLoad` in
/// leptos_server 0.8.8): a page render whose resource is first polled while
/// any thread is generating hangs forever (leptos-rs/leptos#4773). Once per
/// process, before any router exists, nothing can be rendering yet; a second
/// `Application::build` in the same process (several instances in the
/// tests) would otherwise stall the first one's pages.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn router(state: AppState) -> Router {
    let routes = page_routes();
    let request_id_header = axum::http::HeaderName::from_static("x-request-id");
    let layers = ServiceBuilder::new()
        // Our id, never the client's: a client could otherwise forge
        // correlation ids in our logs (security review 18b).
        .layer(axum::middleware::map_request(drop_client_request_id))
        .layer(SetRequestIdLayer::new(
            request_id_header.clone(),
            MakeRequestUuid,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .extensions()
                    .get::<RequestId>()
                    .and_then(|id| id.header_value().to_str().ok())
                    .unwrap_or("-");
                // DEBUG, not INFO: a span per request is measurable on the
                // cached-summary path. `RUST_LOG=tower_http=debug,tldw=debug`
                // brings it (method, path, request id) back.
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %redact_path(request.uri().path()),
                    request_id = %request_id,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id_header))
        .layer(axum::middleware::from_fn(serve::timeouts))
        .layer(RequestBodyTimeoutLayer::new(serve::BODY_TIMEOUT))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/o/{slug}/events", get(events::org_events))
        .merge(api::router(&state))
        .route(
            "/webhooks/dodo",
            axum::routing::post(webhooks::dodo).layer(axum::extract::DefaultBodyLimit::max(
                webhooks::MAX_WEBHOOK_BODY,
            )),
        )
        .route(
            "/webhooks/clerk",
            axum::routing::post(webhooks::clerk).layer(axum::extract::DefaultBodyLimit::max(
                webhooks::MAX_WEBHOOK_BODY,
            )),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || {
                    provide_context(state.clone());
                    security_headers::provide_page_policy();
                }
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(assets::static_or_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::protect,
        ))
        .layer(assets::response_layers())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers::add,
        ))
        .layer(layers)
        .layer(axum::middleware::from_fn(api::json_errors))
        .layer(axum::middleware::from_fn(super::metrics::track_http))
        .with_state(state)
}

/// Mail and payments put links to us in front of other people: those links
/// must come from configuration, never from a request's `Host` (security
/// review finding 9), so PUBLIC_URL is required once either is on.
fn require_public_url(settings: &Settings) -> anyhow::Result<()> {
    if settings.public_url.is_some() {
        return Ok(());
    }
    if settings.smtp_url.is_some() {
        anyhow::bail!(
            "SMTP_URL is set but PUBLIC_URL is not: set PUBLIC_URL (e.g. https://tldw.example.com) so that mailed links point at this site"
        );
    }
    // Dodo's return URL still falls back to the request's origin: only the
    // admin who pays sees it, and the billing tests serve on port 0 with no
    // URL known in advance. Said loudly instead.
    if settings.billing.dodo.is_some() {
        tracing::warn!(
            "Dodo billing is configured but PUBLIC_URL is not: set PUBLIC_URL so that checkout returns to this site's configured address"
        );
    }
    Ok(())
}

async fn drop_client_request_id(
    mut request: Request<axum::body::Body>,
) -> Request<axum::body::Body> {
    request.headers_mut().remove("x-request-id");
    request
}

/// The path as logs may show it: an invitation link's path is its secret
/// (`/invite/<token>`), so the token is cut (security review 18c).
pub fn redact_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/invite/") {
        Some(token) if !token.is_empty() => "/invite/[redacted]".into(),
        _ => path.into(),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// How long in-flight requests get after a shutdown signal. With the database
/// stop after it, the whole shutdown stays under 10 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn invitation_tokens_never_reach_the_request_span() {
        assert_eq!(
            redact_path("/invite/0a1b2c.SeCrEt-_x"),
            "/invite/[redacted]"
        );
        assert_eq!(redact_path("/invite/"), "/invite/");
        assert_eq!(redact_path("/o/acme/settings"), "/o/acme/settings");
    }
}
