//! What one summary may cost us, and how hard one org may lean on YouTube:
//! the settings behind "no free model spend" (issue 12, item 2).
//!
//! - A per-plan cap on the tokens of transcript one summary may send to the
//!   model, checked before any model call (the map-reduce makes about one
//!   call per `OPENAI_CHUNK_TOKENS` of transcript, so the cap bounds the
//!   calls too).
//! - A per-org budget of YouTube attempts per hour that refunds do not
//!   restore (counted in `rate_limits`, shared by every process).
//! - How long a transient YouTube failure of one video is cached: a ladder
//!   (1 → 5 → 30 min by default), so retrying a failing video is cheap for
//!   us and pointless for the caller.
//! - A global circuit breaker: once YouTube answers "blocked" (bot wall,
//!   429, PO token), nobody fetches for a cool-down that doubles while it
//!   keeps answering so, so one tenant cannot get the server blocked for
//!   everyone.

use std::time::Duration;

use crate::{domain::PlanId, server::config::ConfigError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendLimits {
    /// `TLDW_MAX_SUMMARY_TOKENS_FREE` / `_PRO` / `_TEAM`: the most
    /// transcript tokens (approximated as characters / 4) one summary may
    /// send to the model on each plan.
    pub max_tokens_free: u64,
    pub max_tokens_pro: u64,
    pub max_tokens_team: u64,
    /// `TLDW_YOUTUBE_ATTEMPTS_PER_ORG_HOUR`: new summaries (cache misses
    /// that reserve a unit) one org may start per hour, whatever becomes
    /// of them; 0 turns the budget off.
    pub youtube_attempts_per_org_hour: u32,
    /// `TLDW_YOUTUBE_FAILURE_TTLS`: how long a transient YouTube failure
    /// of a video is cached after the 1st, 2nd and 3rd-or-later
    /// consecutive failure, in seconds (`60,300,1800`).
    pub youtube_failure_ttls: [Duration; 3],
    /// `TLDW_YOUTUBE_BLOCKED_COOLDOWN_SECONDS` (and `_MAX_SECONDS`): how
    /// long nobody fetches from YouTube after it answered "blocked",
    /// doubling while it keeps doing so.
    pub youtube_blocked_cooldown: Duration,
    pub youtube_blocked_cooldown_max: Duration,
}

impl Default for SpendLimits {
    fn default() -> SpendLimits {
        SpendLimits {
            // About 4 hours of speech for Free (a 3-hour video is about
            // 41,000 tokens), 16 for Pro: a bound on what one summary can
            // cost, not a limit a normal video meets.
            max_tokens_free: 60_000,
            max_tokens_pro: 240_000,
            max_tokens_team: 480_000,
            youtube_attempts_per_org_hour: 30,
            youtube_failure_ttls: [
                Duration::from_secs(60),
                Duration::from_secs(300),
                Duration::from_secs(1800),
            ],
            youtube_blocked_cooldown: Duration::from_secs(60),
            youtube_blocked_cooldown_max: Duration::from_secs(1800),
        }
    }
}

impl SpendLimits {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<SpendLimits, ConfigError> {
        let defaults = SpendLimits::default();
        let number = |var: &'static str, default: u64, zero_ok: bool| match get(var) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| zero_ok || *n > 0)
                .ok_or_else(|| ConfigError {
                    var,
                    reason: format!("expected a whole number, got {v:?}"),
                }),
        };
        let secs = |var: &'static str, default: Duration| {
            number(var, default.as_secs(), false).map(Duration::from_secs)
        };
        let youtube_failure_ttls = match get("TLDW_YOUTUBE_FAILURE_TTLS") {
            None => defaults.youtube_failure_ttls,
            Some(v) => parse_ladder(&v).ok_or_else(|| ConfigError {
                var: "TLDW_YOUTUBE_FAILURE_TTLS",
                reason: format!(
                    "expected three whole numbers of seconds like 60,300,1800, got {v:?}"
                ),
            })?,
        };
        Ok(SpendLimits {
            max_tokens_free: number(
                "TLDW_MAX_SUMMARY_TOKENS_FREE",
                defaults.max_tokens_free,
                false,
            )?,
            max_tokens_pro: number(
                "TLDW_MAX_SUMMARY_TOKENS_PRO",
                defaults.max_tokens_pro,
                false,
            )?,
            max_tokens_team: number(
                "TLDW_MAX_SUMMARY_TOKENS_TEAM",
                defaults.max_tokens_team,
                false,
            )?,
            youtube_attempts_per_org_hour: number(
                "TLDW_YOUTUBE_ATTEMPTS_PER_ORG_HOUR",
                defaults.youtube_attempts_per_org_hour.into(),
                true,
            )?
            .try_into()
            .unwrap_or(u32::MAX),
            youtube_failure_ttls,
            youtube_blocked_cooldown: secs(
                "TLDW_YOUTUBE_BLOCKED_COOLDOWN_SECONDS",
                defaults.youtube_blocked_cooldown,
            )?,
            youtube_blocked_cooldown_max: secs(
                "TLDW_YOUTUBE_BLOCKED_COOLDOWN_MAX_SECONDS",
                defaults.youtube_blocked_cooldown_max,
            )?,
        })
    }

    /// The most transcript tokens one summary may use on `plan`.
    pub fn max_tokens(&self, plan: PlanId) -> u64 {
        match plan {
            PlanId::Free => self.max_tokens_free,
            PlanId::Pro => self.max_tokens_pro,
            PlanId::Team => self.max_tokens_team,
        }
    }
}

/// The cap as a request carries it down to the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenCap {
    pub plan: PlanId,
    pub max_tokens: u64,
}

impl TokenCap {
    /// `None` when `tokens` fits; otherwise the message that names the cap.
    pub fn refuse(self, tokens: u64) -> Option<String> {
        (tokens > self.max_tokens).then(|| {
            format!(
                "This transcript is about {} tokens, over the {} plan's cap of {} tokens per summary \
                 (about {} of speech). Upgrade for longer videos, or summarize a shorter part by \
                 pasting it.",
                thousands(tokens),
                self.plan.as_str().to_uppercase_first(),
                thousands(self.max_tokens),
                speech_time(self.max_tokens),
            )
        })
    }
}

trait UppercaseFirst {
    fn to_uppercase_first(&self) -> String;
}

impl UppercaseFirst for str {
    fn to_uppercase_first(&self) -> String {
        let mut chars = self.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }
}

/// `40000` → `40,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Speech runs at about 250 transcript tokens a minute, timestamps included.
fn speech_time(tokens: u64) -> String {
    let minutes = tokens / 250;
    match minutes {
        0..90 => format!("{} minutes", minutes.max(1)),
        m => format!("{:.1} hours", m as f64 / 60.0),
    }
}

fn parse_ladder(value: &str) -> Option<[Duration; 3]> {
    let steps: Vec<u64> = value
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    match steps.as_slice() {
        [a, b, c] => Some([a, b, c].map(|s| Duration::from_secs(*s))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_give_free_less_than_pro() {
        let limits = SpendLimits::from_lookup(&lookup(&[])).unwrap();
        assert_eq!(limits, SpendLimits::default());
        assert!(limits.max_tokens(PlanId::Free) < limits.max_tokens(PlanId::Pro));
        assert!(limits.max_tokens(PlanId::Pro) <= limits.max_tokens(PlanId::Team));
        assert_eq!(
            limits.youtube_failure_ttls.map(|d| d.as_secs()),
            [60, 300, 1800]
        );
    }

    #[test]
    fn settings_come_from_the_environment_and_bad_ones_name_the_variable() {
        let limits = SpendLimits::from_lookup(&lookup(&[
            ("TLDW_MAX_SUMMARY_TOKENS_FREE", "500"),
            ("TLDW_YOUTUBE_ATTEMPTS_PER_ORG_HOUR", "0"),
            ("TLDW_YOUTUBE_FAILURE_TTLS", "1, 2,3"),
        ]))
        .unwrap();
        assert_eq!(limits.max_tokens(PlanId::Free), 500);
        assert_eq!(limits.youtube_attempts_per_org_hour, 0);
        assert_eq!(limits.youtube_failure_ttls.map(|d| d.as_secs()), [1, 2, 3]);
        for (var, value) in [
            ("TLDW_MAX_SUMMARY_TOKENS_PRO", "0"),
            ("TLDW_YOUTUBE_FAILURE_TTLS", "1,2"),
            ("TLDW_YOUTUBE_BLOCKED_COOLDOWN_SECONDS", "soon"),
        ] {
            let error = SpendLimits::from_lookup(&lookup(&[(var, value)])).unwrap_err();
            assert_eq!(error.var, var);
        }
    }

    #[test]
    fn the_refusal_names_the_plan_and_its_cap() {
        let cap = TokenCap {
            plan: PlanId::Free,
            max_tokens: 40_000,
        };
        assert_eq!(cap.refuse(40_000), None);
        let message = cap.refuse(52_345).unwrap();
        assert!(message.contains("52,345 tokens"), "{message}");
        assert!(
            message.contains("Free plan's cap of 40,000 tokens"),
            "{message}"
        );
        assert!(message.contains("2.7 hours"), "{message}");
    }
}
