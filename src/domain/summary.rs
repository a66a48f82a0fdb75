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
