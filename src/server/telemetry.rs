//! Logs: human-readable by default, one JSON object per line with
//! `LOG_FORMAT=json`. `RUST_LOG` picks the levels.

use super::config::LogFormat;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

const DEFAULT_FILTER: &str = "info,tldw=info,sqlx=warn,tower_http=info";

/// Installs the global subscriber. Safe to call more than once (tests): later
/// calls leave the first subscriber in place.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
    // Already initialised (a second app in the same test process): keep it.
    drop(result);
}
