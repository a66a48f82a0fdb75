//! A finished summary as members see it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyPoint {
    pub text: String,
    /// Where in the video it is said; the link jumps there.
    pub at_seconds: u32,
}

/// What the model wrote; stored as JSON in the shared cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistoryItem {
    pub video_id: String,
    pub title: Option<String>,
    pub requested_on: String,
    pub from_cache: bool,
    /// Who asked for it: a member's email, or "Former member: …" once they
    /// were removed (the org's history stays). `None` when nobody is on
    /// record (an account without an email).
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// How history names a member who is no longer in the org.
pub fn former_member_label(email: Option<&str>) -> String {
    match email {
        Some(email) => format!("Former member: {email}"),
        None => "Former member".to_owned(),
    }
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

/// The summary as Markdown, for pasting into notes, chats and docs: the
/// title (linked to the video), its channel and length, the TL;DR, then
/// the key points as a list, each starting with a `[m:ss](…&t=…s)` link
/// to the moment it is made. Every URL is built from the parsed video id;
/// the model's and YouTube's words are escaped so they stay plain text.
pub fn summary_markdown(view: &SummaryView) -> String {
    let video = super::VideoId::try_from(view.video_id.clone()).ok();
    let title = markdown_text(view.title.as_deref().unwrap_or(&view.video_id));
    let mut out = match &video {
        Some(video) => format!("# [{title}]({})\n", video.watch_url(None)),
        None => format!("# {title}\n"),
    };
    let byline: Vec<String> = [
        view.channel
            .as_deref()
            .map(markdown_text)
            .filter(|c| !c.is_empty()),
        view.duration_seconds.map(format_timestamp),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !byline.is_empty() {
        out.push_str(&format!("\n{}\n", byline.join(" · ")));
    }
    let tldr = markdown_text(&view.body.tldr);
    if !tldr.is_empty() {
        out.push_str(&format!("\n**TL;DR:** {tldr}\n"));
    }
    if !view.body.key_points.is_empty() {
        out.push_str("\n## Key points\n\n");
        for point in &view.body.key_points {
            let at = format_timestamp(point.at_seconds);
            let text = markdown_text(&point.text);
            match &video {
                Some(video) => out.push_str(&format!(
                    "- [{at}]({}) {text}\n",
                    video.watch_url(Some(point.at_seconds))
                )),
                None => out.push_str(&format!("- {at} {text}\n")),
            }
        }
    }
    out
}

/// One line of plain text that Markdown shows as written: whitespace
/// (newlines included) collapsed, and the characters that would start
/// emphasis, code, links, HTML or a heading escaped.
fn markdown_text(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    let mut out = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let escape = match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' => true,
            // Inside a word (snake_case) an underscore is not emphasis.
            '_' => {
                let word = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c| c.is_alphanumeric())
                };
                !(word(i.checked_sub(1)) && word(Some(i + 1)))
            }
            // Only at the start of the line could these begin a heading or list.
            '#' | '-' | '+' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> SummaryView {
        SummaryView {
            video_id: "dQw4w9WgXcQ".into(),
            title: Some("Rust [in] 10 *minutes*".into()),
            channel: Some("Ferris".into()),
            duration_seconds: Some(754),
            thumbnail_url: None,
            body: SummaryBody {
                tldr: "Ownership,\nexplained <briefly>.".into(),
                key_points: vec![
                    KeyPoint {
                        text: "Every value has one owner.".into(),
                        at_seconds: 5,
                    },
                    KeyPoint {
                        text: "Use snake_case and _private_ names.".into(),
                        at_seconds: 62,
                    },
                    KeyPoint {
                        text: "# not a heading".into(),
                        at_seconds: 3723,
                    },
                ],
            },
            model: "gpt-4o-mini".into(),
            prompt_version: "v3".into(),
            built_in: false,
            private: false,
        }
    }

    #[test]
    fn markdown_has_title_tldr_and_timestamped_points() {
        assert_eq!(
            summary_markdown(&view()),
            "# [Rust \\[in\\] 10 \\*minutes\\*](https://www.youtube.com/watch?v=dQw4w9WgXcQ)\n\
             \n\
             Ferris · 12:34\n\
             \n\
             **TL;DR:** Ownership, explained \\<briefly\\>.\n\
             \n\
             ## Key points\n\
             \n\
             - [0:05](https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=5s) Every value has one owner.\n\
             - [1:02](https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=62s) Use snake_case and \\_private\\_ names.\n\
             - [1:02:03](https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3723s) \\# not a heading\n"
        );
    }

    #[test]
    fn markdown_without_metadata_or_points() {
        let mut v = view();
        v.title = None;
        v.channel = None;
        v.duration_seconds = None;
        v.body.key_points.clear();
        assert_eq!(
            summary_markdown(&v),
            "# [dQw4w9WgXcQ](https://www.youtube.com/watch?v=dQw4w9WgXcQ)\n\n**TL;DR:** Ownership, explained \\<briefly\\>.\n"
        );
    }

    #[test]
    fn markdown_never_links_an_unparsed_id() {
        let mut v = view();
        v.video_id = "javascript:alert(1)".into();
        let md = summary_markdown(&v);
        assert!(!md.contains("]("), "{md}");
        assert!(md.contains("- 0:05 Every value has one owner."), "{md}");
    }

    #[test]
    fn timestamps_read_like_youtube() {
        assert_eq!(format_timestamp(0), "0:00");
        assert_eq!(format_timestamp(65), "1:05");
        assert_eq!(format_timestamp(3723), "1:02:03");
    }
}
