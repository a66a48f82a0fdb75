//! The `/youtubei/v1/player` response: playability, caption tracks and
//! video details. Only the fields we use are read; the rest is ignored.

use serde::Deserialize;

use super::YouTubeError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlayerResponse {
    playability_status: Option<PlayabilityStatus>,
    captions: Option<Captions>,
    pub(super) video_details: Option<VideoDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlayabilityStatus {
    status: Option<String>,
    reason: Option<String>,
    error_screen: Option<ErrorScreen>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorScreen {
    player_error_message_renderer: Option<PlayerErrorMessage>,
}

#[derive(Debug, Deserialize)]
struct PlayerErrorMessage {
    reason: Option<Text>,
    subreason: Option<Text>,
}

/// YouTube's formatted text: either `simpleText` or a list of `runs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Text {
    simple_text: Option<String>,
    #[serde(default)]
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
struct Run {
    #[serde(default)]
    text: String,
}

impl Text {
    fn plain(&self) -> String {
        match &self.simple_text {
            Some(text) => text.trim().to_owned(),
            None => self
                .runs
                .iter()
                .map(|run| run.text.trim())
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Captions {
    player_captions_tracklist_renderer: Option<Tracklist>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tracklist {
    #[serde(default)]
    caption_tracks: Vec<RawTrack>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrack {
    base_url: Option<String>,
    language_code: Option<String>,
    kind: Option<String>,
    vss_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VideoDetails {
    pub(super) title: Option<String>,
    pub(super) author: Option<String>,
    length_seconds: Option<String>,
    thumbnail: Option<Thumbnails>,
}

#[derive(Debug, Deserialize)]
struct Thumbnails {
    #[serde(default)]
    thumbnails: Vec<Thumbnail>,
}

#[derive(Debug, Deserialize)]
struct Thumbnail {
    url: String,
    #[serde(default)]
    width: u32,
}

impl VideoDetails {
    /// `lengthSeconds` is a string; live streams say "0", which is no duration.
    pub(super) fn duration_seconds(&self) -> Option<u32> {
        self.length_seconds
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&seconds: &u32| seconds > 0)
    }

    /// The widest thumbnail, if any.
    pub(super) fn thumbnail_url(&self) -> Option<&str> {
        self.thumbnail
            .as_ref()?
            .thumbnails
            .iter()
            .max_by_key(|thumbnail| thumbnail.width)
            .map(|thumbnail| thumbnail.url.as_str())
    }
}

/// One caption track the video offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Track {
    pub(super) base_url: String,
    pub(super) language_code: String,
    pub(super) auto_generated: bool,
}

impl Track {
    /// `&exp=xpe` (and yt-dlp adds `xpv`): the track needs a PO token, and
    /// fetching it without one returns an empty body.
    pub(super) fn requires_po_token(&self) -> bool {
        self.base_url
            .split(['?', '&'])
            .any(|pair| pair == "exp=xpe" || pair == "exp=xpv")
    }
}

impl PlayerResponse {
    pub(super) fn parse(body: &[u8]) -> Result<PlayerResponse, YouTubeError> {
        serde_json::from_slice(body)
            .map_err(|error| YouTubeError::Unparsable(format!("the player response: {error}")))
    }

    /// Maps `playabilityStatus` onto our errors; `Ok` when the video plays.
    pub(super) fn check_playability(&self) -> Result<(), YouTubeError> {
        let Some(playability) = &self.playability_status else {
            return Err(YouTubeError::Unparsable(
                "the player response has no playabilityStatus".into(),
            ));
        };
        let status = playability.status.as_deref().unwrap_or_default();
        let message = playability
            .error_screen
            .as_ref()
            .and_then(|screen| screen.player_error_message_renderer.as_ref());
        let reason = playability
            .reason
            .clone()
            .filter(|reason| !reason.trim().is_empty())
            .or_else(|| message.and_then(|m| m.reason.as_ref()).map(Text::plain))
            .unwrap_or_default();
        // YouTube writes "you’re" with a curly apostrophe; accept both.
        let plain_reason = reason.replace('’', "'").to_lowercase();

        match status {
            "OK" => Ok(()),
            "LOGIN_REQUIRED" if plain_reason.contains("confirm you're not a bot") => {
                Err(YouTubeError::Blocked)
            }
            "LOGIN_REQUIRED"
                if plain_reason.contains("inappropriate for some users")
                    || plain_reason.contains("confirm your age") =>
            {
                Err(YouTubeError::AgeRestricted)
            }
            "AGE_CHECK_REQUIRED" | "AGE_VERIFICATION_REQUIRED" => Err(YouTubeError::AgeRestricted),
            "ERROR" if plain_reason.contains("unavailable") || plain_reason.is_empty() => {
                Err(YouTubeError::Unavailable)
            }
            "" => Err(YouTubeError::Unparsable(
                "the player response has no playability status".into(),
            )),
            other => {
                let subreason = message
                    .and_then(|m| m.subreason.as_ref())
                    .map(Text::plain)
                    .filter(|s| !s.is_empty());
                let reason = match (reason.trim(), subreason) {
                    ("", None) => format!("YouTube reports the video as {other}"),
                    ("", Some(sub)) => sub,
                    (reason, None) => reason.to_owned(),
                    (reason, Some(sub)) => format!("{reason}: {sub}"),
                };
                Err(YouTubeError::Unplayable(reason))
            }
        }
    }

    /// The video's caption tracks; `NoCaptions` when it has none.
    pub(super) fn caption_tracks(&self) -> Result<Vec<Track>, YouTubeError> {
        let raw = self
            .captions
            .as_ref()
            .and_then(|captions| captions.player_captions_tracklist_renderer.as_ref())
            .map(|list| list.caption_tracks.as_slice())
            .unwrap_or_default();
        if raw.is_empty() {
            return Err(YouTubeError::NoCaptions);
        }
        let tracks: Vec<Track> = raw
            .iter()
            .filter_map(|track| {
                Some(Track {
                    base_url: track.base_url.clone().filter(|url| !url.is_empty())?,
                    language_code: track
                        .language_code
                        .clone()
                        .filter(|code| !code.is_empty())?,
                    auto_generated: track.kind.as_deref() == Some("asr")
                        || track
                            .vss_id
                            .as_deref()
                            .is_some_and(|id| id.starts_with("a.")),
                })
            })
            .collect();
        if tracks.is_empty() {
            return Err(YouTubeError::Unparsable(
                "no caption track has both a baseUrl and a languageCode".into(),
            ));
        }
        Ok(tracks)
    }
}

/// Picks the track to summarize. For each preferred language in order: a
/// manual track in exactly that language, then a manual one in the same base
/// language (`en` ↔ `en-US`), then the same two for auto-generated tracks.
/// With no match at all: the first manual track, else the first track.
pub(super) fn choose_track<'a>(tracks: &'a [Track], preferences: &[String]) -> Option<&'a Track> {
    for preference in preferences {
        for auto_generated in [false, true] {
            let of_kind = || {
                tracks
                    .iter()
                    .filter(move |t| t.auto_generated == auto_generated)
            };
            if let Some(track) = of_kind()
                .find(|t| t.language_code.eq_ignore_ascii_case(preference))
                .or_else(|| of_kind().find(|t| same_base_language(&t.language_code, preference)))
            {
                return Some(track);
            }
        }
    }
    tracks
        .iter()
        .find(|t| !t.auto_generated)
        .or_else(|| tracks.first())
}

fn same_base_language(a: &str, b: &str) -> bool {
    fn base(code: &str) -> &str {
        code.split(['-', '_']).next().unwrap_or(code)
    }
    !base(a).is_empty() && base(a).eq_ignore_ascii_case(base(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(code: &str, auto_generated: bool) -> Track {
        Track {
            base_url: format!("https://www.youtube.com/api/timedtext?lang={code}"),
            language_code: code.to_owned(),
            auto_generated,
        }
    }

    fn pick(tracks: &[Track], preferences: &[&str]) -> (String, bool) {
        let preferences: Vec<String> = preferences.iter().map(|p| p.to_string()).collect();
        let chosen = choose_track(tracks, &preferences).unwrap();
        (chosen.language_code.clone(), chosen.auto_generated)
    }

    #[test]
    fn manual_before_auto_generated_and_exact_before_region() {
        let tracks = [
            track("de", false),
            track("en", true),
            track("en-GB", false),
            track("en-US", false),
        ];
        assert_eq!(pick(&tracks, &["en-US"]), ("en-US".into(), false));
        assert_eq!(pick(&tracks, &["en"]), ("en-GB".into(), false));
        assert_eq!(pick(&tracks, &["EN-us"]), ("en-US".into(), false));
        assert_eq!(pick(&tracks, &["fr", "de"]), ("de".into(), false));
        assert_eq!(pick(&[track("en", true)], &["en-US"]), ("en".into(), true));
        assert_eq!(
            pick(&[track("en", true), track("en-US", true)], &["en-US"]),
            ("en-US".into(), true)
        );
    }

    #[test]
    fn falls_back_to_the_first_manual_then_the_first_track() {
        let tracks = [track("ja", true), track("ko", false), track("es", false)];
        assert_eq!(pick(&tracks, &["fr"]), ("ko".into(), false));
        assert_eq!(pick(&tracks, &[]), ("ko".into(), false));
        assert_eq!(pick(&[track("ja", true)], &["fr"]), ("ja".into(), true));
        assert!(choose_track(&[], &["en".to_owned()]).is_none());
    }

    #[test]
    fn po_token_marker_is_a_whole_parameter() {
        let mut t = track("en", false);
        t.base_url = "https://www.youtube.com/api/timedtext?v=x&exp=xpe&lang=en".into();
        assert!(t.requires_po_token());
        t.base_url = "https://www.youtube.com/api/timedtext?v=x&exp=xpexyz&lang=en".into();
        assert!(!t.requires_po_token());
        t.base_url = "https://www.youtube.com/api/timedtext?v=x&sparams=exp=xpe2".into();
        assert!(!t.requires_po_token());
    }
}
