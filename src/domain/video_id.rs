//! A YouTube video id, parsed out of whatever link a member pastes.
//!
//! Only the 11-character id survives parsing; every upstream URL is built
//! from it by the server, so a pasted link can never choose which host we
//! fetch from.

use serde::{Deserialize, Serialize};
use std::fmt;
use url::{Host, Url};

/// The forms we accept, repeated in every rejection so the member knows what to paste.
pub const ACCEPTED_FORMS: &str = "Paste a video link such as https://www.youtube.com/watch?v=dQw4w9WgXcQ, https://youtu.be/dQw4w9WgXcQ or a /shorts/, /embed/ or /live/ link, or the 11-character video id itself.";

const ID_LEN: usize = 11;

/// Hosts that serve the watch page, shorts, embeds and live streams.
const YOUTUBE_HOSTS: &[&str] = &[
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "www.youtube-nocookie.com",
];
const SHORT_HOSTS: &[&str] = &["youtu.be", "www.youtu.be"];
/// Path prefixes whose next segment is the video id.
const ID_PATHS: &[&str] = &["shorts", "embed", "live", "v", "e"];
/// Path prefixes of pages that are about something other than one video.
const NON_VIDEO_PATHS: &[&str] = &[
    "channel", "c", "user", "playlist", "feed", "results", "hashtag",
];

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VideoId(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VideoIdError {
    #[error("Paste a YouTube link to summarize. {ACCEPTED_FORMS}")]
    Empty,
    #[error("That is not a link we can read. {ACCEPTED_FORMS}")]
    Malformed,
    #[error("Only http:// and https:// YouTube links can be summarized. {ACCEPTED_FORMS}")]
    UnsupportedScheme,
    #[error("That link is not on YouTube (youtube.com or youtu.be). {ACCEPTED_FORMS}")]
    NotYouTube,
    #[error(
        "That link points to a YouTube {0}, not a single video. Open the video and copy its link. {ACCEPTED_FORMS}"
    )]
    NotAVideo(&'static str),
    #[error(
        "That YouTube link has no valid video id (11 letters, digits, '-' or '_'). {ACCEPTED_FORMS}"
    )]
    InvalidId,
}

impl VideoId {
    /// Accepts a bare id or any of YouTube's link forms, and nothing else.
    pub fn parse(input: &str) -> Result<VideoId, VideoIdError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(VideoIdError::Empty);
        }
        if is_id(input) {
            return Ok(VideoId(input.to_owned()));
        }
        // Only id characters but the wrong length: a mistyped bare id, not a host.
        if input.bytes().all(is_id_byte) {
            return Err(VideoIdError::InvalidId);
        }
        let url = parse_url(input)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(VideoIdError::UnsupportedScheme);
        }
        // `youtube.com@evil.com` parses with host evil.com, but any user info
        // or explicit port is a sign of a crafted link: refuse it outright.
        if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
            return Err(VideoIdError::NotYouTube);
        }
        let host = match url.host() {
            Some(Host::Domain(host)) => host.to_ascii_lowercase(),
            _ => return Err(VideoIdError::NotYouTube),
        };
        let mut segments = url
            .path_segments()
            .map(|segments| segments.filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter();

        let candidate = if SHORT_HOSTS.contains(&host.as_str()) {
            segments.next().map(str::to_owned)
        } else if YOUTUBE_HOSTS.contains(&host.as_str()) {
            match segments.next() {
                Some("watch") => query_value(&url, "v"),
                Some(prefix) if ID_PATHS.contains(&prefix) => segments.next().map(str::to_owned),
                Some(prefix) if prefix.starts_with('@') => {
                    return Err(VideoIdError::NotAVideo("channel"));
                }
                Some(prefix) if NON_VIDEO_PATHS.contains(&prefix) => {
                    return Err(VideoIdError::NotAVideo(if prefix == "playlist" {
                        "playlist"
                    } else {
                        "page"
                    }));
                }
                _ => query_value(&url, "v"),
            }
        } else {
            return Err(VideoIdError::NotYouTube);
        };

        match candidate {
            Some(id) if is_id(&id) => Ok(VideoId(id)),
            Some(_) => Err(VideoIdError::InvalidId),
            None if query_value(&url, "list").is_some() => Err(VideoIdError::NotAVideo("playlist")),
            None => Err(VideoIdError::InvalidId),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical watch link, optionally at a moment of the video.
    pub fn watch_url(&self, at_seconds: Option<u32>) -> String {
        match at_seconds {
            Some(t) => format!("https://www.youtube.com/watch?v={}&t={t}s", self.0),
            None => format!("https://www.youtube.com/watch?v={}", self.0),
        }
    }
}

fn is_id(candidate: &str) -> bool {
    candidate.len() == ID_LEN && candidate.bytes().all(is_id_byte)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn parse_url(input: &str) -> Result<Url, VideoIdError> {
    match Url::parse(input) {
        Ok(url) => Ok(url),
        // "youtu.be/abc" or "www.youtube.com/watch?v=…" without a scheme.
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            Url::parse(&format!("https://{input}")).map_err(|_| VideoIdError::Malformed)
        }
        Err(_) => Err(VideoIdError::Malformed),
    }
}

fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for VideoId {
    type Error = VideoIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if is_id(&value) {
            Ok(VideoId(value))
        } else {
            Err(VideoIdError::InvalidId)
        }
    }
}

impl From<VideoId> for String {
    fn from(id: VideoId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "dQw4w9WgXcQ";

    #[test]
    fn accepts_every_real_link_form() {
        let accepted = [
            "dQw4w9WgXcQ",
            "  dQw4w9WgXcQ\n",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=42s",
            "https://www.youtube.com/watch?list=PL123&index=2&v=dQw4w9WgXcQ",
            "http://youtube.com/watch?v=dQw4w9WgXcQ",
            "https://m.youtube.com/watch?v=dQw4w9WgXcQ&pp=ygUE",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ&si=abc",
            "www.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube.com/watch?v=dQw4w9WgXcQ",
            "https://WWW.YouTube.com/watch?v=dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=Abc_123&t=17",
            "youtu.be/dQw4w9WgXcQ",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://youtube.com/shorts/dQw4w9WgXcQ?feature=share",
            "https://www.youtube.com/embed/dQw4w9WgXcQ?start=10",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ?si=x",
            "https://www.youtube.com/v/dQw4w9WgXcQ",
            "https://www.youtube.com/e/dQw4w9WgXcQ",
            "https://www.youtube.com/watch/?v=dQw4w9WgXcQ",
        ];
        for link in accepted {
            assert_eq!(
                VideoId::parse(link).map(|id| id.0),
                Ok(ID.to_owned()),
                "{link}"
            );
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let rejected = [
            ("", VideoIdError::Empty),
            ("   ", VideoIdError::Empty),
            (
                "https://www.youtube.com/@somechannel",
                VideoIdError::NotAVideo("channel"),
            ),
            (
                "https://www.youtube.com/channel/UC123",
                VideoIdError::NotAVideo("page"),
            ),
            (
                "https://www.youtube.com/playlist?list=PL123",
                VideoIdError::NotAVideo("playlist"),
            ),
            (
                "https://www.youtube.com/watch?list=PL123",
                VideoIdError::NotAVideo("playlist"),
            ),
            (
                "https://youtube.com.evil.com/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://youtube.com@evil.com/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://user:pw@youtube.com/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://youtube.com:8080/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://evil.com/youtube.com/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://evilyoutube.com/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://127.0.0.1/watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "https://youtube.com./watch?v=dQw4w9WgXcQ",
                VideoIdError::NotYouTube,
            ),
            (
                "ftp://youtube.com/watch?v=dQw4w9WgXcQ",
                VideoIdError::UnsupportedScheme,
            ),
            ("javascript:alert(1)", VideoIdError::UnsupportedScheme),
            ("file:///etc/passwd", VideoIdError::UnsupportedScheme),
            (
                "https://www.youtube.com/watch?v=short",
                VideoIdError::InvalidId,
            ),
            (
                "https://www.youtube.com/watch?v=dQw4w9WgXcQQ",
                VideoIdError::InvalidId,
            ),
            (
                "https://www.youtube.com/watch?v=dQw4w9WgX%3CQ",
                VideoIdError::InvalidId,
            ),
            ("https://youtu.be/", VideoIdError::InvalidId),
            ("dQw4w9WgXc", VideoIdError::InvalidId),
            ("http://[::1", VideoIdError::Malformed),
        ];
        for (link, expected) in rejected {
            let error = VideoId::parse(link).unwrap_err();
            assert_eq!(error, expected, "{link}");
            assert!(error.to_string().contains("youtu.be"), "{link}: {error}");
        }
    }

    #[test]
    fn builds_watch_links_itself() {
        let id = VideoId::parse(ID).unwrap();
        assert_eq!(
            id.watch_url(None),
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
        );
        assert_eq!(
            id.watch_url(Some(75)),
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=75s"
        );
    }

    #[test]
    fn deserializing_checks_the_id() {
        assert!(serde_json::from_str::<VideoId>("\"dQw4w9WgXcQ\"").is_ok());
        assert!(serde_json::from_str::<VideoId>("\"../../etc\"").is_err());
    }

    fn id_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{11}"
    }

    fn param_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("(si|t|feature|list|index|pp)", "[A-Za-z0-9]{0,8}"), 0..4)
    }

    proptest! {
        #[test]
        fn watch_links_with_any_params_in_any_order(
            id in id_strategy(),
            params in param_strategy(),
            position in 0usize..5,
            host in prop::sample::select(vec!["www.youtube.com", "youtube.com", "m.youtube.com", "music.youtube.com"]),
        ) {
            let mut pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.insert(position.min(pairs.len()), format!("v={id}"));
            let link = format!("https://{host}/watch?{}", pairs.join("&"));
            prop_assert_eq!(VideoId::parse(&link).map(|v| v.0), Ok(id));
        }

        #[test]
        fn path_links_with_any_params(
            id in id_strategy(),
            params in param_strategy(),
            form in prop::sample::select(vec!["youtu.be/", "www.youtube.com/shorts/", "www.youtube.com/embed/", "www.youtube.com/live/", "www.youtube-nocookie.com/embed/"]),
        ) {
            let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let link = format!("https://{form}{id}?{}", query.join("&"));
            prop_assert_eq!(VideoId::parse(&link).map(|v| v.0), Ok(id));
        }

        #[test]
        fn look_alike_hosts_are_refused(id in id_strategy(), evil in "[a-z]{1,10}\\.(com|net|io)") {
            for link in [
                format!("https://youtube.com.{evil}/watch?v={id}"),
                format!("https://youtube.com@{evil}/watch?v={id}"),
                format!("https://{evil}/watch?v={id}"),
                format!("https://{evil}/youtu.be/{id}"),
                format!("https://youtu.be.{evil}/{id}"),
            ] {
                prop_assert!(VideoId::parse(&link).is_err(), "accepted {}", link);
            }
        }

        #[test]
        fn never_panics_and_only_yields_valid_ids(input in ".{0,120}") {
            if let Ok(id) = VideoId::parse(&input) {
                prop_assert!(is_id(id.as_str()));
            }
        }
    }
}
