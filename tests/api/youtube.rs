//! The YouTube client against a fake YouTube on 127.0.0.1 that serves the
//! real captured responses in tests/fixtures/youtube. Each test sets the
//! fake's knobs (which player JSON, consent wall, 429, slow, failing,
//! oversized) and reads its call counters.

use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::Value;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tldw::{
    domain::VideoId,
    server::clients::youtube::{VideoTranscript, YouTubeClient, YouTubeError, YouTubeSettings},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use url::Url;

/// The video the fixtures were recorded for.
pub(crate) const VIDEO: &str = "GJLlxj_dtq8";
/// `INNERTUBE_API_KEY` in youtube.html.
pub(crate) const API_KEY: &str = "AIzaSyAO_FJ2SlqU8Q4STEHLGCilw_Y9_11qcW8";
/// The `v` value of youtube_consent_page.html.
const CONSENT_COOKIE: &str = "CONSENT=YES+cb.20210328-17-p0.de+FX+119";

pub(crate) fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/youtube/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

/// A player fixture, edited.
fn player_json(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut json: Value = serde_json::from_str(&fixture(name)).unwrap();
    edit(&mut json);
    json.to_string()
}

fn caption_tracks(json: &mut Value) -> &mut Vec<Value> {
    json["captions"]["playerCaptionsTracklistRenderer"]["captionTracks"]
        .as_array_mut()
        .unwrap()
}

fn is_manual_en(track: &Value) -> bool {
    track["languageCode"] == "en" && track.get("kind").is_none()
}

#[derive(Clone)]
enum Watch {
    Page,
    /// The consent wall until the request carries the consent cookie.
    ConsentThenPage,
    ConsentForever,
    ConsentInvalid,
    Status(StatusCode, String),
}

#[derive(Clone)]
enum Timedtext {
    /// transcript.xml
    Fixture,
    /// One line naming the `lang` and `kind` that were asked for.
    Echo,
    Body(String),
}

#[derive(Clone)]
struct Knobs {
    watch: Watch,
    watch_delay: Duration,
    /// The first this many watch requests get a 500.
    watch_failures: usize,
    player: String,
    player_status: StatusCode,
    player_failures: usize,
    timedtext: Timedtext,
    oembed: Option<String>,
}

impl Knobs {
    fn player(name: &str) -> Knobs {
        Knobs::player_body(fixture(name))
    }

    fn player_body(player: String) -> Knobs {
        Knobs {
            watch: Watch::Page,
            watch_delay: Duration::ZERO,
            watch_failures: 0,
            player,
            player_status: StatusCode::OK,
            player_failures: 0,
            timedtext: Timedtext::Fixture,
            oembed: None,
        }
    }

    fn ok() -> Knobs {
        Knobs::player("youtube.innertube.json")
    }
}

#[derive(Default)]
struct Seen {
    watch_cookies: Vec<Option<String>>,
    player_cookies: Vec<Option<String>>,
    player_bodies: Vec<Value>,
    timedtext_queries: Vec<String>,
    timedtext_cookies: Vec<Option<String>>,
    oembed_queries: Vec<String>,
}

struct FakeState {
    knobs: Knobs,
    watch_page: String,
    watch_calls: AtomicUsize,
    player_calls: AtomicUsize,
    timedtext_calls: AtomicUsize,
    oembed_calls: AtomicUsize,
    seen: Mutex<Seen>,
}

struct FakeYouTube {
    base_url: Url,
    state: Arc<FakeState>,
}

impl FakeYouTube {
    async fn start(knobs: Knobs) -> FakeYouTube {
        let state = Arc::new(FakeState {
            knobs,
            watch_page: fixture("youtube.html"),
            watch_calls: AtomicUsize::new(0),
            player_calls: AtomicUsize::new(0),
            timedtext_calls: AtomicUsize::new(0),
            oembed_calls: AtomicUsize::new(0),
            seen: Mutex::default(),
        });
        let app = Router::new()
            .route("/watch", get(watch))
            .route("/youtubei/v1/player", post(player))
            .route("/api/timedtext", get(timedtext))
            .route("/oembed", get(oembed))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeYouTube {
            base_url: Url::parse(&format!("http://{addr}")).unwrap(),
            state,
        }
    }

    fn calls(&self) -> [usize; 4] {
        let s = &self.state;
        [
            s.watch_calls.load(Ordering::SeqCst),
            s.player_calls.load(Ordering::SeqCst),
            s.timedtext_calls.load(Ordering::SeqCst),
            s.oembed_calls.load(Ordering::SeqCst),
        ]
    }

    fn seen<T>(&self, read: impl FnOnce(&Seen) -> T) -> T {
        read(&self.state.seen.lock().unwrap())
    }

    fn settings(&self) -> YouTubeSettings {
        YouTubeSettings {
            base_url: self.base_url.clone(),
            proxy: None,
            timeout: Duration::from_secs(5),
            max_body_bytes: 4 * 1024 * 1024,
            languages: vec!["en".to_owned()],
            retry_base_delay: Duration::from_millis(10),
        }
    }

    async fn fetch(&self) -> Result<VideoTranscript, YouTubeError> {
        self.fetch_with(self.settings()).await
    }

    async fn fetch_langs(&self, languages: &[&str]) -> Result<VideoTranscript, YouTubeError> {
        let mut settings = self.settings();
        settings.languages = languages.iter().map(|l| l.to_string()).collect();
        self.fetch_with(settings).await
    }

    async fn fetch_with(&self, settings: YouTubeSettings) -> Result<VideoTranscript, YouTubeError> {
        fetch(settings).await
    }
}

async fn fetch(settings: YouTubeSettings) -> Result<VideoTranscript, YouTubeError> {
    let client = YouTubeClient::new(settings).unwrap();
    client.fetch(&VideoId::parse(VIDEO).unwrap()).await
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)
        .map(|value| value.to_str().unwrap().to_owned())
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn watch(
    State(state): State<Arc<FakeState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let call = state.watch_calls.fetch_add(1, Ordering::SeqCst);
    let cookie = cookie(&headers);
    state
        .seen
        .lock()
        .unwrap()
        .watch_cookies
        .push(cookie.clone());
    if query.as_deref() != Some(&format!("v={VIDEO}")) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let knobs = &state.knobs;
    tokio::time::sleep(knobs.watch_delay).await;
    if call < knobs.watch_failures {
        return html(StatusCode::INTERNAL_SERVER_ERROR, "oops".into());
    }
    let consented = cookie.is_some_and(|c| c.split("; ").any(|c| c == CONSENT_COOKIE));
    match &knobs.watch {
        Watch::Page => html(StatusCode::OK, state.watch_page.clone()),
        Watch::ConsentThenPage if consented => html(StatusCode::OK, state.watch_page.clone()),
        Watch::ConsentThenPage | Watch::ConsentForever => {
            html(StatusCode::OK, fixture("youtube_consent_page.html"))
        }
        Watch::ConsentInvalid => html(StatusCode::OK, fixture("youtube_consent_page_invalid.html")),
        Watch::Status(status, body) => html(*status, body.clone()),
    }
}

async fn player(
    State(state): State<Arc<FakeState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = state.player_calls.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    {
        let mut seen = state.seen.lock().unwrap();
        seen.player_cookies.push(cookie(&headers));
        seen.player_bodies.push(request.clone());
    }
    // Like YouTube, refuse a request without the page's key.
    if query.as_deref() != Some(&format!("key={API_KEY}")) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if request["videoId"] != VIDEO || request["context"]["client"]["clientName"] != "ANDROID" {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let knobs = &state.knobs;
    if call < knobs.player_failures {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        knobs.player_status,
        [(header::CONTENT_TYPE, "application/json")],
        knobs.player.clone(),
    )
        .into_response()
}

async fn timedtext(
    State(state): State<Arc<FakeState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    state.timedtext_calls.fetch_add(1, Ordering::SeqCst);
    let query = query.unwrap_or_default();
    {
        let mut seen = state.seen.lock().unwrap();
        seen.timedtext_queries.push(query.clone());
        seen.timedtext_cookies.push(cookie(&headers));
    }
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let body = match &state.knobs.timedtext {
        Timedtext::Fixture => fixture("transcript.xml"),
        Timedtext::Echo => format!(
            r#"<?xml version="1.0" encoding="utf-8" ?><transcript><text start="1" dur="2">lang={} kind={}</text></transcript>"#,
            param("lang").unwrap_or_default(),
            param("kind").unwrap_or_else(|| "manual".into()),
        ),
        Timedtext::Body(body) => body.clone(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

async fn oembed(State(state): State<Arc<FakeState>>, RawQuery(query): RawQuery) -> Response {
    state.oembed_calls.fetch_add(1, Ordering::SeqCst);
    state
        .seen
        .lock()
        .unwrap()
        .oembed_queries
        .push(query.unwrap_or_default());
    match &state.knobs.oembed {
        Some(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---------------------------------------------------------------- success

#[tokio::test]
async fn fetches_the_fixture_transcript_and_metadata() {
    let fake = FakeYouTube::start(Knobs::ok()).await;
    let transcript = fake.fetch().await.unwrap();

    let segments: Vec<_> = transcript
        .segments
        .iter()
        .map(|s| (s.start_ms, s.duration_ms, s.text.as_str()))
        .collect();
    assert_eq!(
        segments,
        [
            (0, 1540, "Hey, this is just a test"),
            // `&lt;i>not&lt;/i>`: unescaped, then the tags are stripped.
            (1540, 4160, "this is not the original transcript"),
            // The empty <text start="5"> is skipped.
            (5700, 3239, "just something shorter, I made up for testing"),
        ]
    );
    assert_eq!(transcript.language, "en");
    assert!(!transcript.auto_generated);

    let metadata = &transcript.metadata;
    assert_eq!(metadata.title, "Surface Go Review - It’s Awesome");
    assert_eq!(metadata.channel, "Dave2D");
    assert_eq!(metadata.duration_seconds, Some(316));
    assert_eq!(
        metadata.thumbnail_url,
        "https://i.ytimg.com/vi/GJLlxj_dtq8/sddefault.jpg"
    );

    // One of each; oEmbed is not needed when the player has the details.
    assert_eq!(fake.calls(), [1, 1, 1, 0]);
    let body = fake.seen(|s| s.player_bodies[0].clone());
    assert_eq!(
        body,
        serde_json::json!({
            "context": {"client": {"clientName": "ANDROID", "clientVersion": "20.10.38"}},
            "videoId": VIDEO,
        })
    );
}

#[tokio::test]
async fn caption_urls_are_rerooted_on_the_base_url_without_fmt() {
    // The fixture's baseUrls are on www.youtube.com: the request reaching
    // the fake at all shows the host was replaced.
    let fake = FakeYouTube::start(Knobs::ok()).await;
    fake.fetch().await.unwrap();
    let query = fake.seen(|s| s.timedtext_queries[0].clone());
    assert!(query.starts_with("v=GJLlxj_dtq8&ei="), "{query}");
    assert!(query.contains("&sparams=ip,ipbits,expire,v,ei,caps,opi,xoaf&signature=1F9610ACAAC990A6B62DB23D030E97121C9E8F97.7F4A2E6D1C6E7ADFFEF8588DA0091AEFE24B64F7&"), "{query}");
    assert!(query.ends_with("&lang=en"), "{query}");
    assert!(!query.contains("fmt="), "{query}");

    // A baseUrl naming some other host still goes to the base URL.
    let evil = player_json("youtube.innertube.json", |json| {
        for track in caption_tracks(json) {
            let url = track["baseUrl"]
                .as_str()
                .unwrap()
                .replace("https://www.youtube.com/", "https://evil.example.com/");
            track["baseUrl"] = url.into();
        }
    });
    let fake = FakeYouTube::start(Knobs::player_body(evil)).await;
    assert_eq!(fake.fetch().await.unwrap().segments.len(), 3);
    assert_eq!(fake.calls(), [1, 1, 1, 0]);

    // One that is not a timedtext URL is refused without a request.
    let odd = player_json("youtube.innertube.json", |json| {
        for track in caption_tracks(json) {
            track["baseUrl"] = "https://www.youtube.com/redirect?q=http://169.254.169.254/".into();
        }
    });
    let fake = FakeYouTube::start(Knobs::player_body(odd)).await;
    assert!(matches!(
        fake.fetch().await,
        Err(YouTubeError::Unparsable(_))
    ));
    assert_eq!(fake.calls(), [1, 1, 0, 0]);
}

#[tokio::test]
async fn double_escaped_entities_are_unescaped() {
    let mut knobs = Knobs::ok();
    knobs.timedtext = Timedtext::Body(
        r#"<?xml version="1.0" encoding="utf-8" ?><transcript>
<text start="0.5" dur="1">don&amp;#39;t &amp;quot;panic&amp;quot; &amp;amp; carry on</text>
<text start="2" dur="1">   </text>
<text start="3" dur="1">&lt;font color=&quot;#E5E5E5&quot;&gt;caf&amp;eacute;&lt;/font&gt;
au lait</text>
<text start="4" dur="1">1 &lt; 2 &amp;gt; 0</text>
</transcript>"#
            .into(),
    );
    let fake = FakeYouTube::start(knobs).await;
    let texts: Vec<String> = fake
        .fetch()
        .await
        .unwrap()
        .segments
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        texts,
        ["don't \"panic\" & carry on", "café au lait", "1 < 2 > 0"]
    );
}

#[tokio::test]
async fn json3_caption_bodies_are_read() {
    let mut knobs = Knobs::ok();
    knobs.timedtext = Timedtext::Body(
        r#"{"wireMagic":"pb3","pens":[{}],"events":[
            {"tStartMs":0,"dDurationMs":316000,"id":1,"wpWinPosId":1,"wsWinStyleId":1},
            {"tStartMs":120,"dDurationMs":2880,"wWinId":1,"segs":[{"utf8":"hey"},{"utf8":" guys","tOffsetMs":360,"acAsrConf":0}]},
            {"tStartMs":1500,"dDurationMs":1500,"wWinId":1,"aAppend":1,"segs":[{"utf8":"\n"}]},
            {"tStartMs":3000,"dDurationMs":2500,"wWinId":1,"segs":[{"utf8":"Dave here"}]}
        ]}"#
            .into(),
    );
    let fake = FakeYouTube::start(knobs).await;
    let segments: Vec<_> = fake
        .fetch()
        .await
        .unwrap()
        .segments
        .into_iter()
        .map(|s| (s.start_ms, s.duration_ms, s.text))
        .collect();
    assert_eq!(
        segments,
        [
            (120, 2880, "hey guys".to_owned()),
            (3000, 2500, "Dave here".to_owned())
        ]
    );
}

#[tokio::test]
async fn metadata_falls_back_to_oembed() {
    let mut knobs = Knobs::player_body(player_json("youtube.innertube.json", |json| {
        json.as_object_mut().unwrap().remove("videoDetails");
    }));
    knobs.oembed = Some(
        serde_json::json!({
            "title": "Surface Go Review - It’s Awesome",
            "author_name": "Dave2D",
            "author_url": "https://www.youtube.com/@Dave2D",
            "type": "video",
            "thumbnail_url": "https://i.ytimg.com/vi/GJLlxj_dtq8/hqdefault.jpg",
            "provider_name": "YouTube",
            "version": "1.0",
        })
        .to_string(),
    );
    let fake = FakeYouTube::start(knobs).await;
    let metadata = fake.fetch().await.unwrap().metadata;
    assert_eq!(metadata.title, "Surface Go Review - It’s Awesome");
    assert_eq!(metadata.channel, "Dave2D");
    assert_eq!(metadata.duration_seconds, None);
    assert_eq!(
        metadata.thumbnail_url,
        "https://i.ytimg.com/vi/GJLlxj_dtq8/hqdefault.jpg"
    );
    assert_eq!(fake.calls(), [1, 1, 1, 1]);
    let query = fake.seen(|s| s.oembed_queries[0].clone());
    assert_eq!(
        query,
        "url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3DGJLlxj_dtq8&format=json"
    );
}

// ---------------------------------------------------------------- languages

#[tokio::test]
async fn manual_captions_win_over_auto_generated() {
    let mut knobs = Knobs::ok();
    knobs.timedtext = Timedtext::Echo;
    let fake = FakeYouTube::start(knobs).await;
    let transcript = fake.fetch_langs(&["en"]).await.unwrap();
    assert_eq!(transcript.segments[0].text, "lang=en kind=manual");
    assert!(!transcript.auto_generated);

    // Without the manual English track, the auto-generated one is used.
    let mut knobs = Knobs::player_body(player_json("youtube.innertube.json", |json| {
        caption_tracks(json).retain(|t| !is_manual_en(t));
    }));
    knobs.timedtext = Timedtext::Echo;
    let fake = FakeYouTube::start(knobs).await;
    let transcript = fake.fetch_langs(&["en"]).await.unwrap();
    assert_eq!(transcript.segments[0].text, "lang=en kind=asr");
    assert_eq!(transcript.language, "en");
    assert!(transcript.auto_generated);
}

#[tokio::test]
async fn preferences_are_walked_in_order_with_region_prefix_matching() {
    let mut knobs = Knobs::ok();
    knobs.timedtext = Timedtext::Echo;
    let fake = FakeYouTube::start(knobs).await;

    let transcript = fake.fetch_langs(&["fr", "de", "en"]).await.unwrap();
    assert_eq!(transcript.segments[0].text, "lang=de kind=manual");
    assert_eq!(transcript.language, "de");

    // en-US asked, only en offered.
    let transcript = fake.fetch_langs(&["en-US"]).await.unwrap();
    assert_eq!(transcript.segments[0].text, "lang=en kind=manual");
    assert_eq!(transcript.language, "en");

    // Nothing matches: the first manual track (Chinese, in this video).
    let transcript = fake.fetch_langs(&["fr"]).await.unwrap();
    assert_eq!(transcript.language, "zh");
    assert!(!transcript.auto_generated);

    // en asked, en-US offered: the manual en-US beats the exact asr en.
    let mut knobs = Knobs::player_body(player_json("youtube.innertube.json", |json| {
        for track in caption_tracks(json).iter_mut().filter(|t| is_manual_en(t)) {
            track["languageCode"] = "en-US".into();
        }
    }));
    knobs.timedtext = Timedtext::Echo;
    let fake = FakeYouTube::start(knobs).await;
    let transcript = fake.fetch_langs(&["en"]).await.unwrap();
    assert_eq!(transcript.language, "en-US");
    assert!(!transcript.auto_generated);
    assert_eq!(transcript.segments[0].text, "lang=en kind=manual");
}

#[tokio::test]
async fn dutch_preference_on_an_english_only_video() {
    let mut knobs = Knobs::player("youtube_ww1_nl_en.innertube.json");
    knobs.timedtext = Timedtext::Echo;
    let fake = FakeYouTube::start(knobs).await;

    // No Dutch track (only a translation target): English, manual.
    let transcript = fake.fetch_langs(&["nl", "en"]).await.unwrap();
    assert_eq!(transcript.language, "en");
    assert!(!transcript.auto_generated);
    assert_eq!(transcript.segments[0].text, "lang=en kind=manual");
    assert_eq!(
        transcript.metadata.title,
        "The Tide Is Turning - Russian Civil War Fall 1919 I THE GREAT WAR 1919"
    );
    assert_eq!(transcript.metadata.duration_seconds, Some(1509));

    let mut knobs = Knobs::player_body(player_json("youtube_ww1_nl_en.innertube.json", |json| {
        caption_tracks(json).retain(|t| !is_manual_en(t));
    }));
    knobs.timedtext = Timedtext::Echo;
    let fake = FakeYouTube::start(knobs).await;
    let transcript = fake.fetch_langs(&["nl", "en"]).await.unwrap();
    assert!(transcript.auto_generated);
    assert_eq!(transcript.segments[0].text, "lang=en kind=asr");
}

// ---------------------------------------------------------------- consent

#[tokio::test]
async fn consent_wall_is_passed_with_the_consent_cookie() {
    let mut knobs = Knobs::ok();
    knobs.watch = Watch::ConsentThenPage;
    let fake = FakeYouTube::start(knobs).await;
    let transcript = fake.fetch().await.unwrap();
    assert_eq!(transcript.segments.len(), 3);
    assert_eq!(fake.calls(), [2, 1, 1, 0]);
    let consent = Some(CONSENT_COOKIE.to_owned());
    fake.seen(|s| {
        assert_eq!(s.watch_cookies, [None, consent.clone()]);
        assert_eq!(s.player_cookies, std::slice::from_ref(&consent));
        assert_eq!(s.timedtext_cookies, std::slice::from_ref(&consent));
    });
}

#[tokio::test]
async fn consent_wall_without_a_value_is_a_typed_error() {
    let mut knobs = Knobs::ok();
    knobs.watch = Watch::ConsentInvalid;
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::ConsentFailed));
    assert_eq!(fake.calls(), [1, 0, 0, 0]);
}

#[tokio::test]
async fn consent_wall_that_stays_is_a_typed_error_after_one_retry() {
    let mut knobs = Knobs::ok();
    knobs.watch = Watch::ConsentForever;
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::ConsentFailed));
    assert_eq!(fake.calls(), [2, 0, 0, 0]);
}

// ---------------------------------------------------------------- typed failures

#[tokio::test]
async fn each_player_fixture_maps_to_its_typed_error() {
    type Expect = fn(&YouTubeError) -> bool;
    let cases: [(&str, Expect); 7] = [
        ("youtube_transcripts_disabled.innertube.json", |e| {
            *e == YouTubeError::NoCaptions
        }),
        ("youtube_transcripts_disabled2.innertube.json", |e| {
            *e == YouTubeError::NoCaptions
        }),
        ("youtube_po_token_required.innertube.json", |e| {
            *e == YouTubeError::PoTokenRequired
        }),
        ("youtube_request_blocked.innertube.json", |e| {
            *e == YouTubeError::Blocked
        }),
        ("youtube_age_restricted.innertube.json", |e| {
            *e == YouTubeError::AgeRestricted
        }),
        ("youtube_unplayable.innertube.json", |e| {
            matches!(e, YouTubeError::Unplayable(reason)
                if reason.contains("Custom Reason") && reason.contains("Sub Reason 1") && reason.contains("Sub Reason 2"))
        }),
        ("youtube_video_unavailable.innertube.json", |e| {
            *e == YouTubeError::Unavailable
        }),
    ];
    for (name, expected) in cases {
        let fake = FakeYouTube::start(Knobs::player(name)).await;
        let result = fake.fetch().await;
        match &result {
            Err(error) => assert!(expected(error), "{name}: got {error:?}"),
            Ok(_) => panic!("{name}: fetched a transcript"),
        }
        // None of them may fetch a caption track.
        assert_eq!(fake.calls(), [1, 1, 0, 0], "{name}");
    }
}

#[tokio::test]
async fn the_other_client_fixture_still_works() {
    let fake = FakeYouTube::start(Knobs::player("youtube_altered_user_agent.innertube.json")).await;
    let transcript = fake.fetch().await.unwrap();
    assert_eq!(transcript.segments.len(), 3);
    assert_eq!(
        transcript.metadata.thumbnail_url,
        "https://i.ytimg.com/vi_webp/GJLlxj_dtq8/sddefault.webp"
    );
}

#[tokio::test]
async fn http_429_is_blocked_and_not_retried() {
    let mut knobs = Knobs::ok();
    knobs.watch = Watch::Status(
        StatusCode::TOO_MANY_REQUESTS,
        fixture("youtube_too_many_requests.html"),
    );
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::Blocked));
    assert_eq!(fake.calls(), [1, 0, 0, 0]);

    let mut knobs = Knobs::ok();
    knobs.player_status = StatusCode::TOO_MANY_REQUESTS;
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::Blocked));
    assert_eq!(fake.calls(), [1, 1, 0, 0]);
}

#[tokio::test]
async fn recaptcha_page_is_blocked_even_with_200() {
    let mut knobs = Knobs::ok();
    knobs.watch = Watch::Status(StatusCode::OK, fixture("youtube_too_many_requests.html"));
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::Blocked));
    assert_eq!(fake.calls(), [1, 0, 0, 0]);
}

#[tokio::test]
async fn empty_caption_body_means_a_po_token_is_needed() {
    let mut knobs = Knobs::ok();
    knobs.timedtext = Timedtext::Body(String::new());
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::PoTokenRequired));
    assert_eq!(fake.calls(), [1, 1, 1, 0]);
}

#[tokio::test]
async fn a_track_with_only_empty_lines_has_no_captions() {
    let mut knobs = Knobs::ok();
    knobs.timedtext = Timedtext::Body(
        r#"<?xml version="1.0" encoding="utf-8" ?><transcript><text start="5" dur="0.5"></text></transcript>"#.into(),
    );
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await, Err(YouTubeError::NoCaptions));
}

#[tokio::test]
async fn garbage_is_unparsable() {
    // A watch page without an API key.
    let mut knobs = Knobs::ok();
    knobs.watch = Watch::Status(StatusCode::OK, "<html><body>hello</body></html>".into());
    let fake = FakeYouTube::start(knobs).await;
    assert!(matches!(
        fake.fetch().await,
        Err(YouTubeError::Unparsable(_))
    ));
    assert_eq!(fake.calls(), [1, 0, 0, 0]);

    // A player response that is not JSON, or JSON of the wrong shape.
    for body in [
        "<html>not json</html>",
        "[1,2,3]",
        r#"{"playabilityStatus":{"status":7}}"#,
        "{}",
    ] {
        let fake = FakeYouTube::start(Knobs::player_body(body.into())).await;
        let result = fake.fetch().await;
        assert!(
            matches!(result, Err(YouTubeError::Unparsable(_))),
            "{body}: {result:?}"
        );
    }

    // A caption body in no known format, and broken XML.
    for body in [
        "\u{0}\u{1}binary",
        "<transcript><text start=\"oops\">x</text></transcript>",
    ] {
        let mut knobs = Knobs::ok();
        knobs.timedtext = Timedtext::Body(body.into());
        let fake = FakeYouTube::start(knobs).await;
        let result = fake.fetch().await;
        assert!(
            matches!(result, Err(YouTubeError::Unparsable(_))),
            "{body:?}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------- retries, timeouts, size

#[tokio::test]
async fn a_500_is_retried_and_then_succeeds() {
    let mut knobs = Knobs::ok();
    knobs.watch_failures = 1;
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await.unwrap().segments.len(), 3);
    assert_eq!(fake.calls(), [2, 1, 1, 0]);

    let mut knobs = Knobs::ok();
    knobs.player_failures = 2;
    let fake = FakeYouTube::start(knobs).await;
    assert_eq!(fake.fetch().await.unwrap().segments.len(), 3);
    assert_eq!(fake.calls(), [1, 3, 1, 0]);
}

#[tokio::test]
async fn retries_are_bounded() {
    let mut knobs = Knobs::ok();
    knobs.player_failures = usize::MAX;
    let fake = FakeYouTube::start(knobs).await;
    let result = fake.fetch().await;
    assert!(
        matches!(&result, Err(YouTubeError::Network(m)) if m.contains("HTTP 500")),
        "{result:?}"
    );
    assert_eq!(fake.calls(), [1, 3, 0, 0]);
}

#[tokio::test]
async fn timeouts_are_network_errors_after_bounded_attempts() {
    let mut knobs = Knobs::ok();
    knobs.watch_delay = Duration::from_secs(3);
    let fake = FakeYouTube::start(knobs).await;
    let mut settings = fake.settings();
    settings.timeout = Duration::from_millis(200);
    let started = Instant::now();
    let result = fake.fetch_with(settings).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(&result, Err(YouTubeError::Network(m)) if m.contains("timed out")),
        "{result:?}"
    );
    assert_eq!(fake.calls()[0], 3);
    // Three 200 ms attempts plus short backoffs, well before the 3 s reply.
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
}

#[tokio::test]
async fn an_oversized_declared_body_is_refused() {
    let padding = "x".repeat(3 * 1024 * 1024);
    let knobs = Knobs::player_body(player_json("youtube.innertube.json", |json| {
        json["padding"] = padding.into();
    }));
    let fake = FakeYouTube::start(knobs).await;
    let mut settings = fake.settings();
    settings.max_body_bytes = 2 * 1024 * 1024;
    assert_eq!(
        fake.fetch_with(settings).await,
        Err(YouTubeError::TooLarge {
            limit: 2 * 1024 * 1024
        })
    );
    // Not retried: the next answer would be just as large.
    assert_eq!(fake.calls(), [1, 1, 0, 0]);
}

/// A server that answers every request with an endless body (no
/// Content-Length) and reports how many bytes it managed to write.
async fn endless_server() -> (Url, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client hung up before sending a request");
            request.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        let mut written = 0;
        while socket.write_all(&chunk).await.is_ok() {
            written += chunk.len();
            // Never more than 1 GiB: the client should stop long before.
            if written >= 1 << 30 {
                break;
            }
        }
        written
    });
    (url, handle)
}

#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_cap() {
    let (base_url, server) = endless_server().await;
    let settings = YouTubeSettings {
        base_url,
        proxy: None,
        timeout: Duration::from_secs(10),
        max_body_bytes: 256 * 1024,
        languages: vec!["en".into()],
        retry_base_delay: Duration::from_millis(10),
    };
    assert_eq!(
        fetch(settings).await,
        Err(YouTubeError::TooLarge { limit: 256 * 1024 })
    );
    // The client hung up, so the server's writes failed: it did not read on.
    let written = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server is still writing: the client kept reading")
        .unwrap();
    assert!(written < 64 * 1024 * 1024, "{written} bytes written");
}

// ---------------------------------------------------------------- configuration

#[tokio::test]
async fn the_proxy_carries_every_request() {
    // The base host does not resolve: only the proxy (the fake, which routes
    // absolute-form requests by path) can answer.
    let fake = FakeYouTube::start(Knobs::ok()).await;
    let mut settings = fake.settings();
    settings.base_url = Url::parse("http://youtube.invalid").unwrap();
    settings.proxy = Some(fake.base_url.clone());
    assert_eq!(fetch(settings).await.unwrap().segments.len(), 3);
    assert_eq!(fake.calls(), [1, 1, 1, 0]);
}

#[test]
fn settings_come_from_the_environment() {
    let settings = YouTubeSettings::from_vars(|name| match name {
        "TLDW_YOUTUBE_BASE_URL" => Some("http://127.0.0.1:4010/".into()),
        "TLDW_YOUTUBE_PROXY" => Some("http://user:hunter2@proxy.example:3128".into()),
        "TLDW_YOUTUBE_LANGUAGES" => Some(" de, en-US ,".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(settings.base_url.as_str(), "http://127.0.0.1:4010/");
    assert_eq!(settings.languages, ["de", "en-US"]);
    assert_eq!(settings.proxy.as_ref().unwrap().password(), Some("hunter2"));
    let debug = format!("{settings:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("user:"),
        "{debug}"
    );

    let defaults = YouTubeSettings::from_vars(|_| None).unwrap();
    assert_eq!(defaults.base_url.as_str(), "https://www.youtube.com/");
    assert_eq!(defaults.proxy, None);
    assert_eq!(defaults.languages, ["en"]);

    let error = YouTubeSettings::from_vars(|name| {
        (name == "TLDW_YOUTUBE_PROXY").then(|| "::not a url hunter2".into())
    })
    .unwrap_err();
    assert!(!format!("{error:#}").contains("hunter2"));

    for base in [
        "file:///etc/passwd",
        "ftp://youtube.com/",
        "data:text/plain,x",
    ] {
        let settings = YouTubeSettings {
            base_url: Url::parse(base).unwrap(),
            ..YouTubeSettings::default()
        };
        assert!(YouTubeClient::new(settings).is_err(), "{base}");
    }
}

#[test]
fn permanent_errors_are_the_ones_about_the_video() {
    let permanent = [
        YouTubeError::NoCaptions,
        YouTubeError::Unavailable,
        YouTubeError::AgeRestricted,
        YouTubeError::Unplayable("Private video".into()),
    ];
    let transient = [
        YouTubeError::Blocked,
        YouTubeError::PoTokenRequired,
        YouTubeError::Network("timed out".into()),
        YouTubeError::Unparsable("internal detail".into()),
        YouTubeError::TooLarge { limit: 1 },
        YouTubeError::ConsentFailed,
        YouTubeError::HttpStatus(403),
    ];
    for error in &permanent {
        assert!(error.is_permanent(), "{error:?}");
    }
    for error in &transient {
        assert!(!error.is_permanent(), "{error:?}");
    }
    for error in permanent.iter().chain(&transient) {
        let message = error.user_message();
        assert!(message.len() > 30, "{error:?}: {message}");
        assert!(!message.contains("internal detail"), "{message}");
    }
    // Where YouTube has no transcript for us, the member is told they can
    // bring their own.
    for error in [
        YouTubeError::NoCaptions,
        YouTubeError::Blocked,
        YouTubeError::PoTokenRequired,
        YouTubeError::AgeRestricted,
    ] {
        assert!(error.user_message().contains("paste"), "{error:?}");
    }
    assert!(
        YouTubeError::Unplayable("Private video".into())
            .user_message()
            .contains("Private video")
    );
}
