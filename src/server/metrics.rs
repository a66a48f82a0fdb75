//! Prometheus metrics, served as text at `/metrics` on a listener of its own
//! (`METRICS_ADDR`), never on the public port. Unset, no recorder is
//! installed and every recording below is a no-op.
//!
//! Every name lives here, so the dashboard (`docs/grafana-dashboard.json`)
//! and the code agree:
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `tldw_http_request_duration_seconds` | histogram | `route`, `method`, `status` | every HTTP request; `route` is axum's matched route (`fallback` for assets and 404s), `status` the class (`2xx`…`5xx`) |
//! | `tldw_db_up` | gauge | | 1 while a periodic probe reaches the database, else 0 |
//! | `tldw_db_pool_connections` | gauge | `state` (`idle`, `in_use`) | the runtime pool's open connections |
//! | `tldw_db_pool_max_connections` | gauge | | the pool's ceiling |
//! | `tldw_db_acquire_seconds` | histogram | `result` (`ok`, `error`) | time to get a pooled connection and open a transaction on it (`db.tenant`, `db.shared`); a full pool or a dead server shows here first |
//! | `tldw_db_restarts_total` | counter | | times the supervisor started the embedded PostgreSQL again after it died or was left stopped |
//! | `tldw_summary_requests_total` | counter | | summary requests from members allowed to summarize |
//! | `tldw_summaries_total` | counter | `outcome` (`cached`, `fresh`, `failed`) | how requests ended: served from the shared cache (or the org's history), made (or waited for) for this request, or failed and charged nothing |
//! | `tldw_summaries_made_total` | counter | `summarizer` (`model`, `built_in`) | summaries written (one per cache row, not per request) |
//! | `tldw_model_calls_total` | counter | `model`, `result` (`ok`, `error`) | HTTP calls to the OpenAI-compatible endpoint, retries included |
//! | `tldw_model_tokens_total` | counter | `model`, `kind` (`prompt`, `completion`) | tokens billed for the summaries made |
//! | `tldw_model_cost_usd_micros_total` | counter | `model` | their cost at `TLDW_MODEL_PRICES`, in millionths of a dollar |
//! | `tldw_rate_limited_total` | counter | `kind` (`quota`, `throttle`, `auth`) | requests answered 429: the month's quota, the per-minute summary throttle, the sign-in and sign-up limiter |
//! | `tldw_webhooks_total` | counter | `outcome` | Dodo webhook deliveries by outcome (`applied`, `duplicate`, `stale`, …) or error code (`forbidden`, `bad_request`, `unavailable`) |
//! | `tldw_sse_streams` | gauge | | org event streams (`/o/{slug}/events`) open on this process |

use anyhow::Context;
use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::{
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};
use tokio::net::TcpListener;

use super::db::Db;

pub const HTTP_REQUEST_DURATION: &str = "tldw_http_request_duration_seconds";
pub const DB_UP: &str = "tldw_db_up";
pub const DB_POOL_CONNECTIONS: &str = "tldw_db_pool_connections";
pub const DB_POOL_MAX: &str = "tldw_db_pool_max_connections";
pub const DB_ACQUIRE: &str = "tldw_db_acquire_seconds";
pub const DB_RESTARTS: &str = "tldw_db_restarts_total";
pub const SUMMARY_REQUESTS: &str = "tldw_summary_requests_total";
pub const SUMMARIES: &str = "tldw_summaries_total";
pub const SUMMARIES_MADE: &str = "tldw_summaries_made_total";
pub const MODEL_CALLS: &str = "tldw_model_calls_total";
pub const MODEL_TOKENS: &str = "tldw_model_tokens_total";
pub const MODEL_COST: &str = "tldw_model_cost_usd_micros_total";
pub const RATE_LIMITED: &str = "tldw_rate_limited_total";
pub const WEBHOOKS: &str = "tldw_webhooks_total";
pub const SSE_STREAMS: &str = "tldw_sse_streams";

/// Request latency buckets, in seconds: the cached-summary path answers in
/// milliseconds, a page render in tens of them, a stuck database in 2 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How often the database is probed and the pool gauges refreshed.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// The process's one recorder. Installed once (a recorder is global), by the
/// first app that asks for metrics; later apps in the same process (tests)
/// share it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

fn handle() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_DURATION.into()), LATENCY_BUCKETS)
        .context("invalid latency buckets")?
        .set_buckets_for_metric(Matcher::Full(DB_ACQUIRE.into()), LATENCY_BUCKETS)
        .context("invalid acquire buckets")?
        .build_recorder();
    let handle = recorder.handle();
    // Two apps starting at once: the loser's recorder is dropped and both
    // use the winner's, which is the one `metrics` records into.
    if HANDLE.set(handle).is_ok() {
        metrics::set_global_recorder(recorder)
            .map_err(|_| anyhow::anyhow!("another metrics recorder is already installed"))?;
    }
    HANDLE
        .get()
        .context("the metrics recorder was not installed")
}

/// Whether anything is recorded at all (a cheap check before building
/// labels on the request path).
fn enabled() -> bool {
    HANDLE.get().is_some()
}

/// The `/metrics` listener, bound at build time so its address is known.
pub struct MetricsServer {
    listener: TcpListener,
    handle: &'static PrometheusHandle,
}

impl MetricsServer {
    /// Installs the recorder and binds `address`.
    pub async fn bind(address: SocketAddr) -> anyhow::Result<MetricsServer> {
        let handle = handle()?;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("could not listen on METRICS_ADDR {address}"))?;
        Ok(MetricsServer { listener, handle })
    }

    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(address) => format!("http://{address}/metrics"),
            Err(_) => "http://(unknown address)/metrics".into(),
        }
    }

    /// Serves `/metrics` and probes the database in the background until
    /// the returned guard is dropped.
    pub fn spawn(self, db: Db) -> Running {
        let MetricsServer { listener, handle } = self;
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state((handle, db.clone()));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the metrics listener failed");
            }
        });
        let probe = tokio::spawn(async move {
            let mut every = tokio::time::interval(PROBE_INTERVAL);
            loop {
                every.tick().await;
                probe_database(&db).await;
                handle.run_upkeep();
            }
        });
        Running {
            tasks: [server.abort_handle(), probe.abort_handle()],
        }
    }
}

/// Stops the metrics listener and the probe when dropped.
pub struct Running {
    tasks: [tokio::task::AbortHandle; 2],
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn scrape(State((handle, db)): State<(&'static PrometheusHandle, Db)>) -> Response {
    pool_gauges(&db);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// `tldw_db_up` from the readiness query (one indexed read), bounded so a
/// hung server reads as down.
async fn probe_database(db: &Db) {
    let up = matches!(
        tokio::time::timeout(Duration::from_secs(2), db.readiness()).await,
        Ok(Ok(()) | Err(super::db::NotReady::MigrationsPending { .. }))
    );
    metrics::gauge!(DB_UP).set(if up { 1.0 } else { 0.0 });
    pool_gauges(db);
}

fn pool_gauges(db: &Db) {
    let stats = db.pool_stats();
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(stats.idle as f64);
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use")
        .set(stats.open.saturating_sub(stats.idle as u32) as f64);
    metrics::gauge!(DB_POOL_MAX).set(stats.max as f64);
}

/// Middleware: latency by matched route, method and status class.
pub async fn track_http(request: Request, next: Next) -> Response {
    if !enabled() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "fallback".to_owned());
    let method: &'static str = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

/// How long opening a transaction took, successful or not.
pub fn db_acquired(started: Instant, ok: bool) {
    if !enabled() {
        return;
    }
    let result = if ok { "ok" } else { "error" };
    metrics::histogram!(DB_ACQUIRE, "result" => result).record(started.elapsed().as_secs_f64());
}

/// The supervisor started the embedded PostgreSQL again.
pub fn db_restarted() {
    metrics::counter!(DB_RESTARTS).increment(1);
}

/// How a summary request ended (see `tldw_summaries_total`).
#[derive(Clone, Copy, Debug)]
pub enum SummaryOutcome {
    Cached,
    Fresh,
    Failed,
}

pub fn summary_requested() {
    metrics::counter!(SUMMARY_REQUESTS).increment(1);
}

pub fn summary_outcome(outcome: SummaryOutcome) {
    let outcome = match outcome {
        SummaryOutcome::Cached => "cached",
        SummaryOutcome::Fresh => "fresh",
        SummaryOutcome::Failed => "failed",
    };
    metrics::counter!(SUMMARIES, "outcome" => outcome).increment(1);
}

/// A summary was written: by which summarizer, its tokens and its cost.
pub fn summary_made(model: &str, built_in: bool, prompt: u64, completion: u64, cost_micros: u64) {
    let summarizer = if built_in { "built_in" } else { "model" };
    metrics::counter!(SUMMARIES_MADE, "summarizer" => summarizer).increment(1);
    if !built_in {
        let model = model.to_owned();
        metrics::counter!(MODEL_TOKENS, "model" => model.clone(), "kind" => "prompt")
            .increment(prompt);
        metrics::counter!(MODEL_TOKENS, "model" => model.clone(), "kind" => "completion")
            .increment(completion);
        metrics::counter!(MODEL_COST, "model" => model).increment(cost_micros);
    }
}

/// One HTTP call to the model endpoint.
pub fn model_call(model: &str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(MODEL_CALLS, "model" => model.to_owned(), "result" => result).increment(1);
}

/// Why a request was answered 429.
#[derive(Clone, Copy, Debug)]
pub enum Limited {
    Quota,
    Throttle,
    Auth,
}

pub fn rate_limited(kind: Limited) {
    let kind = match kind {
        Limited::Quota => "quota",
        Limited::Throttle => "throttle",
        Limited::Auth => "auth",
    };
    metrics::counter!(RATE_LIMITED, "kind" => kind).increment(1);
}

/// A webhook delivery's outcome or error code (both from closed sets).
pub fn webhook(outcome: &'static str) {
    metrics::counter!(WEBHOOKS, "outcome" => outcome).increment(1);
}

/// An org event stream opened, or closed.
pub fn sse_stream_opened() {
    metrics::gauge!(SSE_STREAMS).increment(1.0);
}

pub fn sse_stream_closed() {
    metrics::gauge!(SSE_STREAMS).decrement(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &[
        HTTP_REQUEST_DURATION,
        DB_UP,
        DB_POOL_CONNECTIONS,
        DB_POOL_MAX,
        DB_ACQUIRE,
        DB_RESTARTS,
        SUMMARY_REQUESTS,
        SUMMARIES,
        SUMMARIES_MADE,
        MODEL_CALLS,
        MODEL_TOKENS,
        MODEL_COST,
        RATE_LIMITED,
        WEBHOOKS,
        SSE_STREAMS,
    ];

    /// The dashboard and the module doc name only metrics that exist, and
    /// the dashboard shows every one of them.
    #[test]
    fn the_dashboard_and_the_doc_use_the_real_names() {
        let dashboard = include_str!("../../docs/grafana-dashboard.json");
        serde_json::from_str::<serde_json::Value>(dashboard).expect("valid JSON");
        let doc = include_str!("metrics.rs");
        let doc = &doc[..doc.find("use anyhow").unwrap()];
        for (what, text) in [("dashboard", dashboard), ("doc", doc)] {
            let mut rest = text;
            while let Some(at) = rest.find("tldw_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|base| ALL.contains(base))
                    .unwrap_or(&name);
                assert!(
                    ALL.contains(&base),
                    "the {what} names {name}, which is not recorded"
                );
            }
        }
        for name in ALL {
            assert!(
                dashboard.contains(name),
                "the dashboard does not show {name}"
            );
            assert!(doc.contains(name), "the module doc does not list {name}");
        }
    }
}
