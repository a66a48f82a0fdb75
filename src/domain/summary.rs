//! A finished summary as members see it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPoint {
    pub text: String,
    /// Where in the video it is said; the link jumps there.
    pub at_seconds: u32,
}

/// What the model wrote; stored as JSON in the shared cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryBody {
    pub tldr: String,
    pub key_points: Vec<KeyPoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryView {
    pub video_id: String,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub duration_seconds: Option<u32>,
    pub thumbnail_url: Option<String>,
    pub body: SummaryBody,
    pub model: String,
    pub prompt_version: String,
    /// Made by the built-in extractive summarizer, not a language model.
    pub built_in: bool,
    /// Made from a transcript a member pasted: the org's own content, never
    /// in the shared cache.
    #[serde(default)]
    pub private: bool,
}

/// Where a video stands for one org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SummaryStatus {
    Ready {
        view: Box<SummaryView>,
        from_cache: bool,
    },
    /// `stage`: fetching_transcript, summarizing or done.
    Working {
        stage: String,
        partial: Option<String>,
    },
    Failed {
        message: String,
    },
    /// Not in this org's history and not being made for it.
    NotRequested,
}

/// The quota meter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    pub plan: super::PlanId,
    pub used: i32,
    pub limit: i32,
    pub resets_on: String,
    pub resets_in_days: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub video_id: String,
    pub title: Option<String>,
    pub requested_on: String,
    pub from_cache: bool,
}

/// Everything the org dashboard shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub quota: QuotaView,
    pub items: Vec<HistoryItem>,
    /// Cursor for the next page (older items), if there is one.
    pub next_cursor: Option<String>,
    /// This period's AI spend for summaries made freshly for this org, and
    /// what cached summaries saved it, in millionths of a dollar.
    pub spend_micros: i64,
    pub saved_micros: i64,
    pub built_in_summarizer: bool,
}

/// "$0.0123".
pub fn format_dollars(micros: i64) -> String {
    format!("${:.4}", micros as f64 / 1_000_000.0)
}

/// "1:02:03" or "4:05".
pub fn format_timestamp(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_like_youtube() {
        assert_eq!(format_timestamp(0), "0:00");
        assert_eq!(format_timestamp(65), "1:05");
        assert_eq!(format_timestamp(3723), "1:02:03");
    }
}
