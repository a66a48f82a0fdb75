//! YouTube transcripts and metadata, over the same innertube flow as
//! youtube-transcript-api (see reference/youtube-transcripts.md):
//!
//! 1. GET `/watch?v=<id>`, getting past the EU consent wall with the
//!    `CONSENT=YES+…` cookie if it shows up;
//! 2. read `INNERTUBE_API_KEY` from the page;
//! 3. POST `/youtubei/v1/player?key=…` as the ANDROID client;
//! 4. map `playabilityStatus` onto [`YouTubeError`];
//! 5. choose a caption track and GET it as timedtext XML (json3 is read too).
//!
//! Every URL is built from the configured base URL and the video id alone.
//! Caption URLs come back from YouTube with YouTube's host in them; only
//! their path and query are kept, re-rooted on the base URL, so tests talk to
//! the fake and production talks to YouTube (or `TLDW_YOUTUBE_BASE_URL`).
//!
//! None of this is an official API, and YouTube changes it often.

mod page;
mod player;
mod transcript;

use anyhow::Context;
use rand::Rng;
use reqwest::{StatusCode, header};
use serde::{Deserialize, Serialize};
use std::{fmt, time::Duration};
use url::Url;

use crate::domain::VideoId;
use player::{PlayerResponse, Track, VideoDetails};

pub const DEFAULT_BASE_URL: &str = "https://www.youtube.com";
/// Transient failures (5xx, timeouts, connection errors) are retried this
/// many times, so a request is sent at most three times.
pub const MAX_RETRIES: u32 = 2;
/// The innertube client youtube-transcript-api adopted in June 2025; with
/// the WEB client caption URLs increasingly need a PO token.
const INNERTUBE_CLIENT_NAME: &str = "ANDROID";
const INNERTUBE_CLIENT_VERSION: &str = "20.10.38";
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36";
const ACCEPT_LANGUAGE: &str = "en-US";
const MAX_REDIRECTS: usize = 5;

/// How to reach YouTube.
#[derive(Clone)]
pub struct YouTubeSettings {
    /// Watch page, player, timedtext and oEmbed all live under it.
    /// `TLDW_YOUTUBE_BASE_URL`; https://www.youtube.com by default.
    pub base_url: Url,
    /// Every request goes through it when set (`TLDW_YOUTUBE_PROXY`); the
    /// environment's proxy variables are ignored either way.
    pub proxy: Option<Url>,
    /// For each request, from connecting until the body is read.
    pub timeout: Duration,
    /// A response body longer than this is abandoned (a watch page is ~1 MB).
    pub max_body_bytes: usize,
    /// Caption languages in order of preference, e.g. `["en"]`
    /// (`TLDW_YOUTUBE_LANGUAGES`, comma-separated).
    pub languages: Vec<String>,
    /// The first retry waits about this long, the second about twice as long
    /// (both jittered).
    pub retry_base_delay: Duration,
}

impl Default for YouTubeSettings {
    fn default() -> Self {
        YouTubeSettings {
            base_url: Url::parse(DEFAULT_BASE_URL).expect("the default base URL is valid"),
            proxy: None,
            timeout: Duration::from_secs(15),
            max_body_bytes: 8 * 1024 * 1024,
            languages: vec!["en".to_owned()],
            retry_base_delay: Duration::from_millis(300),
        }
    }
}

impl YouTubeSettings {
    /// The defaults, overridden by `TLDW_YOUTUBE_BASE_URL`,
    /// `TLDW_YOUTUBE_PROXY` and `TLDW_YOUTUBE_LANGUAGES`.
    pub fn from_env() -> anyhow::Result<YouTubeSettings> {
        YouTubeSettings::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`YouTubeSettings::from_env`], reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<YouTubeSettings> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let mut settings = YouTubeSettings::default();
        if let Some(raw) = set("TLDW_YOUTUBE_BASE_URL") {
            settings.base_url =
                Url::parse(raw.trim()).context("TLDW_YOUTUBE_BASE_URL is not a valid URL")?;
        }
        if let Some(raw) = set("TLDW_YOUTUBE_PROXY") {
            // The URL may hold credentials: the error never repeats it.
            settings.proxy =
                Some(Url::parse(raw.trim()).context("TLDW_YOUTUBE_PROXY is not a valid URL")?);
        }
        if let Some(raw) = set("TLDW_YOUTUBE_LANGUAGES") {
            let languages: Vec<String> = raw
                .split(',')
                .map(str::trim)
                .filter(|code| !code.is_empty())
                .map(str::to_owned)
                .collect();
            if !languages.is_empty() {
                settings.languages = languages;
            }
        }
        Ok(settings)
    }
}

impl fmt::Debug for YouTubeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YouTubeSettings")
            .field("base_url", &self.base_url.as_str())
            .field("proxy", &self.proxy.as_ref().map(redacted))
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("languages", &self.languages)
            .field("retry_base_delay", &self.retry_base_delay)
            .finish()
    }
}

/// A proxy URL with any user name and password masked.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    if !url.username().is_empty() {
        let _ = url.set_username("***");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// A video's captions, as one list of timed lines, with what we know about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoTranscript {
    pub metadata: VideoMetadata,
    /// The caption track's language code, e.g. `en` or `en-US`.
    pub language: String,
    /// True for YouTube's speech recognition (`kind: asr`) captions.
    pub auto_generated: bool,
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoMetadata {
    pub title: String,
    pub channel: String,
    /// None for live streams and when YouTube does not say.
    pub duration_seconds: Option<u32>,
    /// Always on i.ytimg.com.
    pub thumbnail_url: String,
}

/// One caption line. Neighbouring lines may overlap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start_ms: u64,
    pub duration_ms: u64,
    pub text: String,
}

/// Why a transcript could not be fetched. `Display` is for logs;
/// [`YouTubeError::user_message`] is what a member reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum YouTubeError {
    #[error("the video has no captions")]
    NoCaptions,
    #[error("YouTube blocked the request (HTTP 429, reCAPTCHA or bot check)")]
    Blocked,
    #[error("the caption track needs a PO token")]
    PoTokenRequired,
    #[error("the video is age-restricted")]
    AgeRestricted,
    #[error("the video is unavailable")]
    Unavailable,
    #[error("the video is unplayable: {0}")]
    Unplayable(String),
    #[error("could not read YouTube's response: {0}")]
    Unparsable(String),
    #[error("YouTube's response was larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("YouTube's consent wall could not be passed")]
    ConsentFailed,
    #[error("YouTube answered HTTP {0}")]
    HttpStatus(u16),
    #[error("could not reach YouTube: {0}")]
    Network(String),
}

impl YouTubeError {
    /// True when asking again will give the same answer: the video itself
    /// has no transcript for us (cache that, with a TTL). Blocks, network
    /// trouble, PO tokens and responses we could not read say nothing
    /// lasting about the video.
    pub fn is_permanent(&self) -> bool {
        match self {
            YouTubeError::NoCaptions
            | YouTubeError::Unavailable
            | YouTubeError::AgeRestricted
            | YouTubeError::Unplayable(_) => true,
            YouTubeError::Blocked
            | YouTubeError::PoTokenRequired
            | YouTubeError::Unparsable(_)
            | YouTubeError::TooLarge { .. }
            | YouTubeError::ConsentFailed
            | YouTubeError::HttpStatus(_)
            | YouTubeError::Network(_) => false,
        }
    }

    /// What happened and what the member can do, in plain words.
    pub fn user_message(&self) -> String {
        const PASTE: &str = "You can paste or upload the transcript yourself (.txt, .srt or .vtt) and we'll summarize that.";
        match self {
            YouTubeError::NoCaptions => format!(
                "This video has no captions on YouTube, so there is no transcript to summarize. {PASTE}"
            ),
            YouTubeError::Blocked => format!(
                "YouTube is refusing our requests for now (rate limit or bot check). Try again in a few minutes. {PASTE}"
            ),
            YouTubeError::PoTokenRequired => format!(
                "YouTube wants extra proof that a real player is asking before it hands over this video's captions, which we can't give automatically. Try again later. {PASTE}"
            ),
            YouTubeError::AgeRestricted => format!(
                "This video is age-restricted: YouTube only shows its captions to signed-in viewers. {PASTE}"
            ),
            YouTubeError::Unavailable => "This video is unavailable on YouTube: it may have been removed, made private, or the link may be mistyped. Check the link and try again.".to_owned(),
            YouTubeError::Unplayable(reason) => format!(
                "YouTube won't play this video for us (YouTube says: \"{reason}\"). If you can watch it, {}",
                lowercase_first(PASTE)
            ),
            YouTubeError::Unparsable(_) | YouTubeError::TooLarge { .. } => format!(
                "We couldn't read YouTube's answer; YouTube may have changed something on its side. Try again later. {PASTE}"
            ),
            YouTubeError::ConsentFailed => format!(
                "YouTube asked for cookie consent and we couldn't get past it. Try again later. {PASTE}"
            ),
            YouTubeError::HttpStatus(status) => format!(
                "YouTube answered with an unexpected error (HTTP {status}). Try again in a few minutes. {PASTE}"
            ),
            YouTubeError::Network(_) => {
                "We couldn't reach YouTube just now. Please try again in a minute.".to_owned()
            }
        }
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Talks to YouTube. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct YouTubeClient {
    http: reqwest::Client,
    settings: YouTubeSettings,
}

impl fmt::Debug for YouTubeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YouTubeClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A response that came back in full and within the size cap.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Reply {
    fn success(self) -> Result<Reply, YouTubeError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(YouTubeError::HttpStatus(self.status.as_u16()))
        }
    }
}

/// State carried between the requests of one fetch: the consent cookie.
#[derive(Default)]
struct Session {
    cookie: Option<String>,
}

#[derive(Deserialize)]
struct OEmbed {
    title: String,
    author_name: String,
    thumbnail_url: Option<String>,
}

impl YouTubeClient {
    pub fn new(settings: YouTubeSettings) -> anyhow::Result<YouTubeClient> {
        let base = &settings.base_url;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https") && base.host_str().is_some(),
            "the YouTube base URL must be an http:// or https:// URL with a host"
        );
        anyhow::ensure!(
            !settings.timeout.is_zero(),
            "the YouTube timeout must be positive"
        );
        anyhow::ensure!(
            settings.max_body_bytes > 0,
            "the YouTube body size cap must be positive"
        );

        // Redirects may only stay on the base host or go to YouTube's own
        // hosts (the consent wall lives on consent.youtube.com).
        let base_host = base.host_str().unwrap_or_default().to_ascii_lowercase();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let url = attempt.url();
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let allowed = host == base_host
                || (url.scheme() == "https"
                    && (host == "youtube.com" || host.ends_with(".youtube.com")));
            if attempt.previous().len() > MAX_REDIRECTS || !allowed {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });

        let builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(USER_AGENT)
            .redirect(redirects);
        let builder = match &settings.proxy {
            Some(proxy) => builder.proxy(
                reqwest::Proxy::all(proxy.as_str())
                    .context("TLDW_YOUTUBE_PROXY is not a usable proxy URL")?,
            ),
            None => builder.no_proxy(),
        };
        let http = builder
            .build()
            .context("could not build the YouTube HTTP client")?;
        Ok(YouTubeClient { http, settings })
    }

    pub fn settings(&self) -> &YouTubeSettings {
        &self.settings
    }

    /// The video's captions in the preferred language, and its metadata.
    #[tracing::instrument(name = "youtube.fetch", skip_all, fields(video_id = %video))]
    pub async fn fetch(&self, video: &VideoId) -> Result<VideoTranscript, YouTubeError> {
        let result = self.fetch_inner(video).await;
        match &result {
            Ok(transcript) => tracing::info!(
                language = %transcript.language,
                auto_generated = transcript.auto_generated,
                segments = transcript.segments.len(),
                "transcript fetched"
            ),
            Err(error) => tracing::warn!(
                %error,
                permanent = error.is_permanent(),
                "transcript fetch failed"
            ),
        }
        result
    }

    async fn fetch_inner(&self, video: &VideoId) -> Result<VideoTranscript, YouTubeError> {
        let mut session = Session::default();
        let api_key = {
            let html = self.watch_page(video, &mut session).await?;
            page::api_key(&html)
                .ok_or_else(|| {
                    YouTubeError::Unparsable("the watch page has no INNERTUBE_API_KEY".into())
                })?
                .to_owned()
        };
        let player = self.player(video, &api_key, &session).await?;
        player.check_playability()?;
        let tracks = player.caption_tracks()?;
        let track = player::choose_track(&tracks, &self.settings.languages)
            .ok_or(YouTubeError::NoCaptions)?;
        tracing::debug!(
            language = %track.language_code,
            auto_generated = track.auto_generated,
            "caption track chosen"
        );
        if track.requires_po_token() {
            return Err(YouTubeError::PoTokenRequired);
        }
        let segments = self.captions(track, &session).await?;
        let metadata = self
            .metadata(video, player.video_details.as_ref(), &session)
            .await?;
        Ok(VideoTranscript {
            metadata,
            language: track.language_code.clone(),
            auto_generated: track.auto_generated,
            segments,
        })
    }

    /// The watch page's HTML, past the consent wall.
    async fn watch_page(
        &self,
        video: &VideoId,
        session: &mut Session,
    ) -> Result<String, YouTubeError> {
        let url = self.endpoint("/watch", &[("v", video.as_str())]);
        let mut html = self.get_watch_page(&url, session).await?;
        if page::is_consent_wall(&html) {
            let value = page::consent_value(&html).ok_or(YouTubeError::ConsentFailed)?;
            session.cookie = Some(format!("CONSENT=YES+{value}"));
            html = self.get_watch_page(&url, session).await?;
            if page::is_consent_wall(&html) {
                return Err(YouTubeError::ConsentFailed);
            }
        }
        Ok(html)
    }

    async fn get_watch_page(&self, url: &Url, session: &Session) -> Result<String, YouTubeError> {
        let reply = self
            .send("watch", || {
                self.request(self.http.get(url.clone()), session)
            })
            .await?;
        let html = String::from_utf8_lossy(&reply.body).into_owned();
        if page::is_recaptcha(&html) {
            return Err(YouTubeError::Blocked);
        }
        reply.success()?;
        Ok(html)
    }

    async fn player(
        &self,
        video: &VideoId,
        api_key: &str,
        session: &Session,
    ) -> Result<PlayerResponse, YouTubeError> {
        let url = self.endpoint("/youtubei/v1/player", &[("key", api_key)]);
        let body = serde_json::json!({
            "context": {
                "client": {
                    "clientName": INNERTUBE_CLIENT_NAME,
                    "clientVersion": INNERTUBE_CLIENT_VERSION,
                }
            },
            "videoId": video.as_str(),
        });
        let reply = self
            .send("player", || {
                self.request(self.http.post(url.clone()), session)
                    .json(&body)
            })
            .await?
            .success()?;
        PlayerResponse::parse(&reply.body)
    }

    async fn captions(
        &self,
        track: &Track,
        session: &Session,
    ) -> Result<Vec<Segment>, YouTubeError> {
        let url = self.timedtext_url(&track.base_url)?;
        let reply = self
            .send("timedtext", || {
                self.request(self.http.get(url.clone()), session)
            })
            .await?
            .success()?;
        // What an unsatisfied PO-token requirement looks like on the wire.
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Err(YouTubeError::PoTokenRequired);
        }
        let segments = transcript::parse(&reply.body)?;
        if segments.is_empty() {
            return Err(YouTubeError::NoCaptions);
        }
        Ok(segments)
    }

    /// Title, channel, duration and thumbnail from the player's
    /// `videoDetails`; oEmbed fills in the title and channel if it lacks them.
    async fn metadata(
        &self,
        video: &VideoId,
        details: Option<&VideoDetails>,
        session: &Session,
    ) -> Result<VideoMetadata, YouTubeError> {
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        let title = details.and_then(|d| non_empty(&d.title));
        let channel = details.and_then(|d| non_empty(&d.author));
        let duration_seconds = details.and_then(VideoDetails::duration_seconds);
        let thumbnail = details
            .and_then(VideoDetails::thumbnail_url)
            .and_then(youtube_thumbnail);

        let (title, channel, thumbnail) = match (title, channel) {
            (Some(title), Some(channel)) => (title, channel, thumbnail),
            (title, channel) => {
                let oembed = self.oembed(video, session).await?;
                (
                    title.unwrap_or(oembed.title),
                    channel.unwrap_or(oembed.author_name),
                    thumbnail
                        .or_else(|| oembed.thumbnail_url.as_deref().and_then(youtube_thumbnail)),
                )
            }
        };
        Ok(VideoMetadata {
            title,
            channel,
            duration_seconds,
            thumbnail_url: thumbnail.unwrap_or_else(|| {
                format!("https://i.ytimg.com/vi/{}/hqdefault.jpg", video.as_str())
            }),
        })
    }

    async fn oembed(&self, video: &VideoId, session: &Session) -> Result<OEmbed, YouTubeError> {
        let watch_url = video.watch_url(None);
        let url = self.endpoint("/oembed", &[("url", &watch_url), ("format", "json")]);
        let reply = self
            .send("oembed", || {
                self.request(self.http.get(url.clone()), session)
            })
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => return Err(YouTubeError::Unavailable),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(YouTubeError::Unplayable(
                    "the video is private or cannot be embedded".into(),
                ));
            }
            _ => {}
        }
        let reply = reply.success()?;
        serde_json::from_slice(&reply.body)
            .map_err(|error| YouTubeError::Unparsable(format!("the oEmbed response: {error}")))
    }

    /// `path` under the base URL (which may itself have a path), with `query`.
    fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.settings.base_url.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url.set_fragment(None);
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// A caption `baseUrl` from the player, re-rooted on the base URL: its
    /// host is dropped, its signed query kept byte for byte, minus `fmt` so
    /// that YouTube answers with classic timedtext XML.
    fn timedtext_url(&self, base_url: &str) -> Result<Url, YouTubeError> {
        let upstream = Url::parse(base_url)
            .or_else(|_| self.settings.base_url.join(base_url))
            .map_err(|_| YouTubeError::Unparsable("a caption baseUrl is not a URL".into()))?;
        if upstream.path() != "/api/timedtext" {
            return Err(YouTubeError::Unparsable(
                "a caption baseUrl does not point at /api/timedtext".into(),
            ));
        }
        let query: Vec<&str> = upstream
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty() && *pair != "fmt" && !pair.starts_with("fmt="))
            .collect();
        let mut url = self.endpoint("/api/timedtext", &[]);
        url.set_query(Some(&query.join("&")));
        Ok(url)
    }

    fn request(
        &self,
        builder: reqwest::RequestBuilder,
        session: &Session,
    ) -> reqwest::RequestBuilder {
        let builder = builder.header(header::ACCEPT_LANGUAGE, ACCEPT_LANGUAGE);
        match &session.cookie {
            Some(cookie) => builder.header(header::COOKIE, cookie),
            None => builder,
        }
    }

    /// Sends a request, retrying transient failures (5xx, timeouts,
    /// connection errors) at most [`MAX_RETRIES`] times with jittered
    /// backoff. 429 is `Blocked` and is not retried: hammering a rate limit
    /// only extends it.
    async fn send(
        &self,
        step: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, YouTubeError> {
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(step, attempt, request()).await;
            let transient = match &outcome {
                Ok(reply) if reply.status.is_server_error() => {
                    Some(format!("HTTP {}", reply.status.as_u16()))
                }
                Err(YouTubeError::Network(reason)) => Some(reason.clone()),
                _ => None,
            };
            match transient {
                Some(reason) if attempt <= MAX_RETRIES => {
                    let delay = self.backoff(attempt);
                    tracing::warn!(
                        step,
                        attempt,
                        %reason,
                        retry_in_ms = delay.as_millis() as u64,
                        "YouTube request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Some(reason) => {
                    return Err(YouTubeError::Network(format!(
                        "{step}: {reason} ({attempt} attempts)"
                    )));
                }
                None => {
                    let reply = outcome?;
                    if reply.status == StatusCode::TOO_MANY_REQUESTS {
                        return Err(YouTubeError::Blocked);
                    }
                    return Ok(reply);
                }
            }
        }
    }

    /// One request, its body read chunk by chunk and abandoned past the cap.
    #[tracing::instrument(
        name = "youtube.request",
        skip(self, request),
        fields(status = tracing::field::Empty, bytes = tracing::field::Empty)
    )]
    async fn attempt(
        &self,
        step: &'static str,
        attempt: u32,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, YouTubeError> {
        let limit = self.settings.max_body_bytes;
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let span = tracing::Span::current();
        span.record("status", status.as_u16());
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(YouTubeError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > limit {
                return Err(YouTubeError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        span.record("bytes", body.len());
        Ok(Reply { status, body })
    }

    /// Half to all of `base × 2^(attempt-1)`, at random.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .settings
            .retry_base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(10));
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

fn transport_error(error: reqwest::Error) -> YouTubeError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    YouTubeError::Network(format!("{kind}: {}", error.without_url()))
}

/// Thumbnails are shown in pages, so only YouTube's image host is trusted.
fn youtube_thumbnail(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    (parsed.scheme() == "https" && (host == "ytimg.com" || host.ends_with(".ytimg.com")))
        .then(|| parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> YouTubeClient {
        YouTubeClient::new(YouTubeSettings {
            base_url: Url::parse(base).unwrap(),
            ..YouTubeSettings::default()
        })
        .unwrap()
    }

    #[test]
    fn timedtext_urls_keep_the_signed_query_but_not_the_host_or_fmt() {
        let client = client("http://127.0.0.1:9/prefix/");
        let url = client
            .timedtext_url("https://evil.example/api/timedtext?v=abc&sparams=ip,ipbits&signature=1A.2B&lang=en&fmt=srv3")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/api/timedtext?v=abc&sparams=ip,ipbits&signature=1A.2B&lang=en"
        );
        assert!(
            client
                .timedtext_url("https://evil.example/other?x=1")
                .is_err()
        );
        assert_eq!(
            client
                .timedtext_url("/api/timedtext?fmt=json3&lang=de")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/prefix/api/timedtext?lang=de"
        );
    }

    #[test]
    fn endpoints_are_built_from_the_base_and_encoded_values() {
        let client = client("https://www.youtube.com");
        assert_eq!(
            client
                .endpoint(
                    "/oembed",
                    &[
                        ("url", "https://www.youtube.com/watch?v=a&b"),
                        ("format", "json")
                    ]
                )
                .as_str(),
            "https://www.youtube.com/oembed?url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3Da%26b&format=json"
        );
    }

    #[test]
    fn thumbnails_must_be_on_ytimg() {
        assert!(youtube_thumbnail("https://i.ytimg.com/vi/x/hqdefault.jpg").is_some());
        assert!(youtube_thumbnail("http://i.ytimg.com/vi/x/hqdefault.jpg").is_none());
        assert!(youtube_thumbnail("https://ytimg.com.evil.example/x.jpg").is_none());
        assert!(youtube_thumbnail("//s.ytimg.com/x.png").is_none());
    }

    #[test]
    fn backoff_is_jittered_and_grows() {
        let client = client("https://www.youtube.com");
        for _ in 0..50 {
            let first = client.backoff(1);
            let second = client.backoff(2);
            assert!(first >= Duration::from_millis(150) && first <= Duration::from_millis(300));
            assert!(second >= Duration::from_millis(300) && second <= Duration::from_millis(600));
        }
    }
}
