//! Live updates (the org event streams).
//!
//! - `TLDW_LIVE_HEARTBEAT_SECONDS`: how often an idle stream sends a comment
//!   so proxies keep it open (15);
//! - `TLDW_LIVE_MAX_STREAMS_PER_MEMBER`: open streams one member may hold on
//!   one process (8); one more is 429.

use std::time::Duration;

use super::{ConfigError, seconds, whole_number};

#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub heartbeat: Duration,
    pub max_streams_per_member: usize,
}

impl Default for LiveSettings {
    fn default() -> LiveSettings {
        LiveSettings {
            heartbeat: Duration::from_secs(15),
            max_streams_per_member: 8,
        }
    }
}

pub(super) fn live_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<LiveSettings, ConfigError> {
    let defaults = LiveSettings::default();
    let max = whole_number(
        get,
        "TLDW_LIVE_MAX_STREAMS_PER_MEMBER",
        defaults.max_streams_per_member as u64,
    )?;
    if max == 0 {
        return Err(ConfigError {
            var: "TLDW_LIVE_MAX_STREAMS_PER_MEMBER",
            reason: "expected at least 1 (a dashboard needs one stream)".into(),
        });
    }
    Ok(LiveSettings {
        heartbeat: seconds(
            get,
            "TLDW_LIVE_HEARTBEAT_SECONDS",
            defaults.heartbeat.as_secs(),
        )?,
        max_streams_per_member: usize::try_from(max).unwrap_or(usize::MAX),
    })
}
