//! Summaries from any OpenAI-compatible chat completions endpoint (OpenAI,
//! Ollama, vLLM…), following reference/openai.md:
//!
//! - `POST {base}/chat/completions` with `stream: true` and
//!   `stream_options.include_usage`, so text reaches the UI as it is written
//!   and the final chunk carries the token usage;
//! - `max_completion_tokens` (plus `max_tokens` for non-OpenAI servers that
//!   only know the old name);
//! - a JSON answer `{"tldr", "key_points": [{"text", "at_seconds"}]}`
//!   requested with `response_format`, but found tolerantly (the first JSON
//!   object in the text) for servers that ignore it;
//! - bounded retries with full-jitter exponential backoff on 429 rate limits,
//!   5xx, timeouts and dropped connections, never on `insufficient_quota`
//!   or other 4xx;
//! - map-reduce: a transcript over the token budget is cut into chunks, each
//!   chunk becomes timestamped notes, and the notes are combined into the
//!   summary, so a 3-hour video is summarised whole.
//!
//! Each HTTP call has its own tracing span with the `x-request-id` the
//! provider returned. The API key is only ever inside a sensitive header.

use super::{
    BoxFuture, KeyPoint, PROMPT_VERSION, Progress, ProgressFn, SummarizeError, Summarizer, Summary,
    TranscriptLine, Usage,
    chunking::{Chunk, approx_tokens, chunk_transcript, group_by_budget},
    format_timestamp,
};
use crate::server::config::ConfigError;
use rand::Rng as _;
use reqwest::{
    StatusCode,
    header::{self, HeaderMap, HeaderValue},
};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tracing::{Instrument as _, field};
use url::Url;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// How the JSON answer is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `response_format: json_schema` with a strict schema (OpenAI, recent
    /// Ollama and vLLM).
    JsonSchema,
    /// `response_format: json_object`.
    JsonObject,
    /// Nothing: rely on the prompt (servers that reject the field).
    None,
}

#[derive(Clone, Debug)]
pub struct OpenAiSettings {
    /// `OPENAI_API_KEY`. Any non-empty value for servers without keys.
    pub api_key: SecretString,
    /// `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub base_url: Url,
    /// `OPENAI_MODEL`, default `gpt-4o-mini`.
    pub model: String,
    /// `OPENAI_TIMEOUT_SECS`: the longest wait for the response to start and
    /// for each further piece of a streaming answer.
    pub timeout: Duration,
    /// The longest one call may take in all, streaming included.
    pub max_call_duration: Duration,
    /// `OPENAI_MAX_COMPLETION_TOKENS`: the output cap of each call.
    pub max_completion_tokens: u32,
    /// `OPENAI_MAX_RETRIES`: retries after the first attempt of each call.
    pub max_retries: u32,
    /// Backoff before retry n is uniform in `0..=min(max, base·2ⁿ)`.
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    /// `OPENAI_CHUNK_TOKENS`: transcript (and notes) per call, in
    /// approximate tokens (chars / 4). Longer transcripts are map-reduced.
    pub chunk_tokens: usize,
    /// `OPENAI_RESPONSE_FORMAT`: `json_schema` (default), `json_object`, `none`.
    pub response_format: ResponseFormat,
    /// Cap on the bytes of one response.
    pub max_response_bytes: usize,
}

impl OpenAiSettings {
    /// Defaults for everything but the key.
    pub fn new(api_key: SecretString) -> OpenAiSettings {
        OpenAiSettings {
            api_key,
            base_url: Url::parse(DEFAULT_BASE_URL).expect("a valid default URL"),
            model: DEFAULT_MODEL.to_owned(),
            timeout: Duration::from_secs(60),
            max_call_duration: Duration::from_secs(300),
            max_completion_tokens: 1500,
            max_retries: 3,
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(20),
            chunk_tokens: 12_000,
            response_format: ResponseFormat::JsonSchema,
            max_response_bytes: 2 * 1024 * 1024,
        }
    }

    /// `None` without `OPENAI_API_KEY` (the built-in summarizer is used).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OpenAiSettings>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get("OPENAI_API_KEY") else {
            return Ok(None);
        };
        let mut settings = OpenAiSettings::new(SecretString::from(key));
        if let Some(v) = get("OPENAI_BASE_URL") {
            settings.base_url = Url::parse(&v)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| ConfigError {
                    var: "OPENAI_BASE_URL",
                    reason: format!(
                        "expected an http(s) URL ending in /v1, such as https://api.openai.com/v1 or http://localhost:11434/v1, got {v:?}"
                    ),
                })?;
        }
        if let Some(v) = get("OPENAI_MODEL") {
            settings.model = v;
        }
        let number = |var: &'static str, range: std::ops::RangeInclusive<u64>| {
            get(var)
                .map(|v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| range.contains(n))
                        .ok_or_else(|| ConfigError {
                            var,
                            reason: format!(
                                "expected a number from {} to {}, got {v:?}",
                                range.start(),
                                range.end()
                            ),
                        })
                })
                .transpose()
        };
        if let Some(n) = number("OPENAI_TIMEOUT_SECS", 1..=3600)? {
            settings.timeout = Duration::from_secs(n);
            settings.max_call_duration = settings.max_call_duration.max(settings.timeout * 5);
        }
        if let Some(n) = number("OPENAI_MAX_COMPLETION_TOKENS", 64..=100_000)? {
            settings.max_completion_tokens = n as u32;
        }
        if let Some(n) = number("OPENAI_MAX_RETRIES", 0..=10)? {
            settings.max_retries = n as u32;
        }
        if let Some(n) = number("OPENAI_CHUNK_TOKENS", 500..=1_000_000)? {
            settings.chunk_tokens = n as usize;
        }
        if let Some(v) = get("OPENAI_RESPONSE_FORMAT") {
            settings.response_format = match v.as_str() {
                "json_schema" => ResponseFormat::JsonSchema,
                "json_object" => ResponseFormat::JsonObject,
                "none" => ResponseFormat::None,
                _ => {
                    return Err(ConfigError {
                        var: "OPENAI_RESPONSE_FORMAT",
                        reason: format!("expected json_schema, json_object or none, got {v:?}"),
                    });
                }
            };
        }
        Ok(Some(settings))
    }

    /// OpenAI itself (or Azure OpenAI), as opposed to a compatible server.
    fn is_openai(&self) -> bool {
        self.base_url.host_str().is_some_and(|h| {
            h == "openai.com" || h.ends_with(".openai.com") || h.ends_with(".openai.azure.com")
        })
    }
}

pub struct OpenAiSummarizer {
    settings: OpenAiSettings,
    http: reqwest::Client,
    endpoint: Url,
    authorization: HeaderValue,
}

impl std::fmt::Debug for OpenAiSummarizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSummarizer")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.settings.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiSummarizer {
    pub fn new(settings: OpenAiSettings) -> anyhow::Result<OpenAiSummarizer> {
        let endpoint = Url::parse(&format!(
            "{}/chat/completions",
            settings.base_url.as_str().trim_end_matches('/')
        ))?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", settings.api_key.expose_secret()))
                .map_err(|_| {
                    anyhow::anyhow!("OPENAI_API_KEY contains characters not allowed in a header")
                })?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("tldw/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // Never carry the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(OpenAiSummarizer {
            settings,
            http,
            endpoint,
            authorization,
        })
    }

    pub fn settings(&self) -> &OpenAiSettings {
        &self.settings
    }
}

impl Summarizer for OpenAiSummarizer {
    fn name(&self) -> String {
        self.settings.model.clone()
    }

    fn built_in(&self) -> bool {
        false
    }

    fn summarize<'a>(
        &'a self,
        title: &'a str,
        transcript: &'a [TranscriptLine],
        progress: &'a ProgressFn,
    ) -> BoxFuture<'a, Result<Summary, SummarizeError>> {
        Box::pin(self.run(title, transcript, progress))
    }
}

/// One part of the answer before it becomes a summary or a note.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Draft {
    tldr: String,
    key_points: Vec<KeyPoint>,
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    /// The whole transcript in one call.
    Single,
    /// Notes on one chunk.
    Map,
    /// Notes on notes, when the notes themselves are over the budget.
    Condense,
    /// The summary from all the notes.
    Reduce,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Single => "single",
            Stage::Map => "map",
            Stage::Condense => "condense",
            Stage::Reduce => "reduce",
        }
    }
}

impl OpenAiSummarizer {
    async fn run(
        &self,
        title: &str,
        transcript: &[TranscriptLine],
        progress: &ProgressFn,
    ) -> Result<Summary, SummarizeError> {
        let chunks = chunk_transcript(transcript, self.settings.chunk_tokens);
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            return Err(SummarizeError::EmptyTranscript);
        };
        let (start, end) = (first.first_second, last.last_second);
        let mut usage = Usage::default();

        if let [only] = chunks.as_slice() {
            progress(Progress::Chunk { done: 0, total: 1 });
            let draft = self
                .call(
                    Stage::Single,
                    single_prompt(title, only),
                    (start, end),
                    &mut usage,
                    Some(progress),
                )
                .await?;
            progress(Progress::Chunk { done: 1, total: 1 });
            return Ok(self.finish(draft, usage));
        }

        // Map: notes on each chunk, in order.
        let mut total = chunks.len() as u32 + 1;
        let mut done = 0;
        progress(Progress::Chunk { done, total });
        let mut notes = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let draft = self
                .call(
                    Stage::Map,
                    map_prompt(title, i, chunks.len(), chunk),
                    (chunk.first_second, chunk.last_second),
                    &mut usage,
                    None,
                )
                .await?;
            notes.push(render_note(
                &format!("Part {} of {}", i + 1, chunks.len()),
                (chunk.first_second, chunk.last_second),
                &draft,
            ));
            done += 1;
            progress(Progress::Chunk { done, total });
        }

        // Condense while the notes do not fit one call.
        while notes.len() > 1
            && notes.iter().map(|n| approx_tokens(n) + 1).sum::<usize>()
                > self.settings.chunk_tokens
        {
            let mut groups = group_by_budget(&notes, self.settings.chunk_tokens);
            if groups.len() == notes.len() {
                groups = notes.chunks(2).map(<[String]>::to_vec).collect();
            }
            total += groups.len() as u32;
            progress(Progress::Chunk { done, total });
            let mut condensed = Vec::with_capacity(groups.len());
            for group in &groups {
                let range = (
                    note_start(&group[0]).unwrap_or(start),
                    note_end(group.last().unwrap_or(&group[0])).unwrap_or(end),
                );
                let draft = self
                    .call(
                        Stage::Condense,
                        condense_prompt(title, group),
                        range,
                        &mut usage,
                        None,
                    )
                    .await?;
                condensed.push(render_note("Section", range, &draft));
                done += 1;
                progress(Progress::Chunk { done, total });
            }
            notes = condensed;
        }

        // Reduce, streamed to the reader.
        let draft = self
            .call(
                Stage::Reduce,
                reduce_prompt(title, end, &notes),
                (start, end),
                &mut usage,
                Some(progress),
            )
            .await?;
        done += 1;
        progress(Progress::Chunk { done, total });
        Ok(self.finish(draft, usage))
    }

    fn finish(&self, draft: Draft, usage: Usage) -> Summary {
        Summary {
            tldr: draft.tldr,
            key_points: draft.key_points,
            model: self.settings.model.clone(),
            prompt_version: PROMPT_VERSION.to_owned(),
            usage,
            built_in: false,
        }
    }

    /// One logical model call with its retries, parsed into a draft whose
    /// timestamps lie in `range`. `stream_to` receives the readable text.
    async fn call(
        &self,
        stage: Stage,
        (instructions, input): (String, String),
        range: (u32, u32),
        usage: &mut Usage,
        stream_to: Option<&ProgressFn>,
    ) -> Result<Draft, SummarizeError> {
        let body = self.request_body(instructions, input);
        let mut attempt = 0u32;
        loop {
            let mut sink = TextSink {
                progress: stream_to,
                readable: ReadableText::default(),
                emitted: false,
            };
            let span = tracing::info_span!(
                "llm_call",
                stage = stage.as_str(),
                attempt,
                model = %self.settings.model,
                status = field::Empty,
                request_id = field::Empty,
                elapsed_ms = field::Empty,
            );
            let outcome = self
                .attempt(&body, &mut sink)
                .instrument(span.clone())
                .await;
            // Usage is billed even when the answer turns out unusable.
            let parsed = outcome.and_then(|completion| {
                usage.add(completion.usage);
                let _entered = span.enter();
                parse_draft(&completion.content, range).map_err(|error| {
                    let error = match (error, completion.finish_reason.as_deref()) {
                        (SummarizeError::BadResponse(reason), Some("length")) => {
                            SummarizeError::BadResponse(format!(
                                "{reason}; the answer was cut off at max_completion_tokens ({}), raise OPENAI_MAX_COMPLETION_TOKENS",
                                self.settings.max_completion_tokens
                            ))
                        }
                        (error, _) => error,
                    };
                    tracing::warn!(%error, "unusable answer from the model");
                    Failure::from(error)
                })
            });
            match parsed {
                Ok(draft) => return Ok(draft),
                Err(failure) => {
                    if !failure.error.is_transient() || attempt >= self.settings.max_retries {
                        tracing::warn!(
                            stage = stage.as_str(),
                            attempts = attempt + 1,
                            error = %failure.error,
                            "LLM call failed"
                        );
                        return Err(failure.error);
                    }
                    let delay = self.backoff(attempt, failure.retry_after);
                    tracing::info!(
                        stage = stage.as_str(),
                        attempt,
                        error = %failure.error,
                        delay_ms = delay.as_millis() as u64,
                        "retrying LLM call"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    if sink.emitted
                        && let Some(progress) = stream_to
                    {
                        progress(Progress::Restart { attempt });
                    }
                }
            }
        }
    }

    /// Full jitter: uniform in `0..=min(max, base·2ⁿ)`, but at least what
    /// the server asked for with `Retry-After` (itself capped at `max`).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let cap = self
            .settings
            .retry_base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.settings.retry_max_delay);
        let jittered = Duration::from_micros(
            rand::rng().random_range(0..=u64::try_from(cap.as_micros()).unwrap_or(u64::MAX)),
        );
        match retry_after {
            Some(wait) => jittered.max(wait.min(self.settings.retry_max_delay)),
            None => jittered,
        }
    }

    fn request_body(&self, instructions: String, input: String) -> Value {
        let openai = self.settings.is_openai();
        let mut body = json!({
            "model": self.settings.model,
            "messages": [
                {"role": if openai { "developer" } else { "system" }, "content": instructions},
                {"role": "user", "content": input},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": self.settings.max_completion_tokens,
        });
        if !openai {
            // Ollama and older servers only know the deprecated name;
            // OpenAI's reasoning models reject it, so only elsewhere.
            body["max_tokens"] = json!(self.settings.max_completion_tokens);
        }
        match self.settings.response_format {
            ResponseFormat::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": "video_summary", "strict": true, "schema": summary_schema()},
                });
            }
            ResponseFormat::JsonObject => {
                body["response_format"] = json!({"type": "json_object"});
            }
            ResponseFormat::None => {}
        }
        body
    }

    /// One HTTP request: status, then the SSE stream (or a plain JSON body
    /// from servers that do not stream).
    async fn attempt(&self, body: &Value, sink: &mut TextSink<'_>) -> Result<Completion, Failure> {
        let span = tracing::Span::current();
        let started = Instant::now();
        let deadline = started + self.settings.max_call_duration;
        let wait = |deadline: Instant| {
            self.settings
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()))
        };

        let send = self
            .http
            .post(self.endpoint.clone())
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "text/event-stream, application/json")
            .json(body)
            .send();
        let mut response = tokio::time::timeout(wait(deadline), send)
            .await
            .map_err(|_| Failure::from(SummarizeError::Timeout))?
            .map_err(reqwest_failure)?;

        let status = response.status();
        span.record("status", status.as_u16());
        if let Some(id) = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
        let result = async {
            if !status.is_success() {
                let retry_after = retry_after(response.headers());
                let text = read_capped(&mut response, 64 * 1024, deadline, &wait).await?;
                let mut failure = classify_status(status, &text);
                failure.retry_after = retry_after;
                return Err(failure);
            }
            let is_sse = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|ct| ct.contains("event-stream"));
            if is_sse {
                self.read_stream(&mut response, sink, deadline, &wait).await
            } else {
                let text = read_capped(
                    &mut response,
                    self.settings.max_response_bytes,
                    deadline,
                    &wait,
                )
                .await?;
                let completion = parse_completion(&text)?;
                sink.push(&completion.content);
                Ok(completion)
            }
        }
        .await;
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        match &result {
            Ok(c) => tracing::info!(
                prompt_tokens = c.usage.prompt_tokens,
                completion_tokens = c.usage.completion_tokens,
                finish_reason = c.finish_reason.as_deref().unwrap_or(""),
                "LLM call done"
            ),
            Err(f) => tracing::info!(error = %f.error, "LLM call failed"),
        }
        result
    }

    async fn read_stream(
        &self,
        response: &mut reqwest::Response,
        sink: &mut TextSink<'_>,
        deadline: Instant,
        wait: &impl Fn(Instant) -> Duration,
    ) -> Result<Completion, Failure> {
        let mut parser = SseParser::default();
        let mut completion = Completion::default();
        let mut received = 0usize;
        let mut events = Vec::new();
        let mut finished = false;
        while !finished {
            let piece = tokio::time::timeout(wait(deadline), response.chunk())
                .await
                .map_err(|_| Failure::from(SummarizeError::Timeout))?
                .map_err(reqwest_failure)?;
            match piece {
                Some(bytes) => {
                    received += bytes.len();
                    if received > self.settings.max_response_bytes {
                        return Err(SummarizeError::BadResponse(format!(
                            "the answer is over {} bytes",
                            self.settings.max_response_bytes
                        ))
                        .into());
                    }
                    parser.push(&bytes, &mut events)?;
                }
                None => {
                    parser.finish(&mut events);
                    finished = true;
                }
            }
            for data in events.drain(..) {
                if handle_event(&data, &mut completion, sink)? {
                    // [DONE]: anything after it is ignored.
                    return Ok(completion);
                }
            }
        }
        if completion.finish_reason.is_some() {
            // Some servers end without [DONE]; the answer is complete.
            Ok(completion)
        } else if completion.content.is_empty() && !completion.saw_chunk {
            Err(SummarizeError::BadResponse("no server-sent events in the answer".into()).into())
        } else {
            Err(SummarizeError::Upstream("the stream ended before it was finished".into()).into())
        }
    }
}

/// The JSON schema of a summary (and of notes).
fn summary_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "tldr": {"type": "string"},
            "key_points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "at_seconds": {"type": "integer"},
                    },
                    "required": ["text", "at_seconds"],
                    "additionalProperties": false,
                },
            },
        },
        "required": ["tldr", "key_points"],
        "additionalProperties": false,
    })
}

const SHAPE: &str = r#"Reply with only a JSON object of this shape, nothing else: {"tldr": "...", "key_points": [{"text": "...", "at_seconds": 123}]}."#;

fn single_prompt(title: &str, chunk: &Chunk) -> (String, String) {
    (
        format!(
            "You summarize YouTube videos from their transcripts for busy readers. \
             Each transcript line starts with its start time in seconds, like [754s]. {SHAPE} \
             \"tldr\": one to three sentences on what the video is about and its main takeaway. \
             \"key_points\": the 5 to 8 most important points, in the order they occur, spread over \
             the whole video, each a self-contained sentence, with \"at_seconds\" set to the start \
             time in seconds of the line where the point is made. Write in the language of the \
             transcript. Use only what the transcript says."
        ),
        format!("Title: {title}\n\nTranscript:\n{}", chunk.text),
    )
}

fn map_prompt(title: &str, index: usize, count: usize, chunk: &Chunk) -> (String, String) {
    (
        format!(
            "You take notes on one part of a long YouTube video, from its transcript. \
             Each transcript line starts with its start time in seconds, like [754s]. {SHAPE} \
             \"tldr\": one or two sentences on what this part covers. \"key_points\": the 3 to 6 \
             most important points of this part, in order, each a self-contained sentence, with \
             \"at_seconds\" set to the start time in seconds of the line where the point is made. \
             Write in the language of the transcript. Use only what the transcript says."
        ),
        format!(
            "Title: {title}\nPart {} of {count}, from {} to {}.\n\nTranscript:\n{}",
            index + 1,
            format_timestamp(chunk.first_second),
            format_timestamp(chunk.last_second),
            chunk.text
        ),
    )
}

fn condense_prompt(title: &str, notes: &[String]) -> (String, String) {
    (
        format!(
            "You condense notes taken on consecutive parts of a long YouTube video. Each point \
             starts with the time in seconds where it is made, like [754s]. {SHAPE} \"tldr\": one \
             or two sentences on what these parts cover. \"key_points\": the 4 to 8 most important \
             points, in time order, spread over all of these parts, with \"at_seconds\" copied \
             from the point it comes from. Write in the language of the notes."
        ),
        format!("Title: {title}\n\nNotes:\n{}", notes.join("\n\n")),
    )
}

fn reduce_prompt(title: &str, end: u32, notes: &[String]) -> (String, String) {
    (
        format!(
            "You write the summary of a long YouTube video for busy readers, from notes taken on \
             its consecutive parts. Each point starts with the time in seconds where it is made, \
             like [754s]. {SHAPE} \"tldr\": one to three sentences on what the whole video is \
             about and its main takeaway. \"key_points\": the 5 to 8 most important points of the \
             whole video, in time order, spread from its beginning to its end rather than taken \
             from the first parts only, each a self-contained sentence, with \"at_seconds\" copied \
             from the point it comes from. Write in the language of the notes."
        ),
        format!(
            "Title: {title}\nLength: {}\n\nNotes:\n{}",
            format_timestamp(end),
            notes.join("\n\n")
        ),
    )
}

/// Notes handed to the next stage: a header with the time range, the
/// part's TL;DR, then `[123s] point` lines.
fn render_note(label: &str, (from, to): (u32, u32), draft: &Draft) -> String {
    let mut note = format!(
        "{label} ({} to {}, [{from}s] to [{to}s]):\nSummary: {}",
        format_timestamp(from),
        format_timestamp(to),
        draft.tldr
    );
    for point in &draft.key_points {
        note.push_str(&format!("\n[{}s] {}", point.at_seconds, point.text));
    }
    note
}

/// The `[123s]` markers in the header of a rendered note.
fn note_times(note: &str) -> Vec<u32> {
    let header = note.lines().next().unwrap_or("");
    header
        .split('[')
        .skip(1)
        .filter_map(|s| s.split_once("s]").and_then(|(n, _)| n.parse().ok()))
        .collect()
}

fn note_start(note: &str) -> Option<u32> {
    note_times(note).first().copied()
}

fn note_end(note: &str) -> Option<u32> {
    note_times(note).last().copied()
}

/// What one HTTP call produced.
#[derive(Debug, Default)]
struct Completion {
    content: String,
    usage: Usage,
    finish_reason: Option<String>,
    saw_chunk: bool,
}

/// An error plus the server's `Retry-After`, when it gave one.
#[derive(Debug)]
struct Failure {
    error: SummarizeError,
    retry_after: Option<Duration>,
}

impl From<SummarizeError> for Failure {
    fn from(error: SummarizeError) -> Failure {
        Failure {
            error,
            retry_after: None,
        }
    }
}

fn reqwest_failure(error: reqwest::Error) -> Failure {
    let error = if error.is_timeout() {
        SummarizeError::Timeout
    } else if error.is_connect() {
        SummarizeError::Upstream(format!("could not connect: {}", error.without_url()))
    } else if error.is_body() || error.is_decode() {
        SummarizeError::Upstream(format!("the connection broke: {}", error.without_url()))
    } else {
        SummarizeError::Upstream(error.without_url().to_string())
    };
    error.into()
}

async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
    deadline: Instant,
    wait: &impl Fn(Instant) -> Duration,
) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    while let Some(piece) = tokio::time::timeout(wait(deadline), response.chunk())
        .await
        .map_err(|_| Failure::from(SummarizeError::Timeout))?
        .map_err(reqwest_failure)?
    {
        let room = cap.saturating_sub(bytes.len());
        bytes.extend_from_slice(&piece[..piece.len().min(room)]);
        if bytes.len() >= cap {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    if let Some(ms) = value("retry-after-ms").filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    value("retry-after")
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

/// `{"error": {"message", "type", "code"}}`, or whatever else came.
fn error_fields(error: &Value) -> (String, String, String) {
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let message = match error {
        Value::String(s) => s.clone(),
        _ => text("message"),
    };
    (text("type"), text("code"), shorten(&message, 300))
}

fn classify_status(status: StatusCode, body: &str) -> Failure {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let (kind, code, mut message) = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .map(error_fields)
        .unwrap_or_default();
    if message.is_empty() {
        message = shorten(body.trim(), 300);
    }
    let error = if kind == "insufficient_quota" || code == "insufficient_quota" {
        SummarizeError::QuotaExhausted
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        SummarizeError::RateLimited
    } else if status == StatusCode::REQUEST_TIMEOUT {
        SummarizeError::Timeout
    } else if status.is_server_error() {
        SummarizeError::Upstream(format!("HTTP {}: {message}", status.as_u16()))
    } else {
        SummarizeError::Rejected {
            status: status.as_u16(),
            message,
        }
    };
    error.into()
}

/// An `error` object inside a stream that had already started.
fn classify_stream_error(error: &Value) -> SummarizeError {
    let (kind, code, message) = error_fields(error);
    if kind == "insufficient_quota" || code == "insufficient_quota" {
        SummarizeError::QuotaExhausted
    } else if code == "rate_limit_exceeded" || kind == "rate_limit_error" || code == "slow_down" {
        SummarizeError::RateLimited
    } else {
        SummarizeError::Upstream(format!("error in the stream: {message}"))
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Handles one SSE `data:` payload. `Ok(true)` at `[DONE]`.
fn handle_event(
    data: &str,
    completion: &mut Completion,
    sink: &mut TextSink<'_>,
) -> Result<bool, Failure> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(true);
    }
    if data.is_empty() {
        return Ok(false);
    }
    let chunk: Value = serde_json::from_str(data).map_err(|e| {
        SummarizeError::BadResponse(format!(
            "a stream event is not JSON ({e}): {}",
            shorten(data, 120)
        ))
    })?;
    if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
        return Err(classify_stream_error(error).into());
    }
    completion.saw_chunk = true;
    if let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) {
        if let Some(text) = choice
            .get("delta")
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
        {
            completion.content.push_str(text);
            sink.push(text);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            completion.finish_reason = Some(reason.to_owned());
        }
    }
    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
        completion.usage = parse_usage(usage);
    }
    Ok(false)
}

fn parse_usage(usage: &Value) -> Usage {
    let n = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
    }
}

/// A non-streamed `chat.completion` body.
fn parse_completion(body: &str) -> Result<Completion, Failure> {
    let value: Value = serde_json::from_str(body).map_err(|_| {
        SummarizeError::BadResponse(format!(
            "expected server-sent events or a JSON completion, got: {}",
            shorten(body.trim(), 120)
        ))
    })?;
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        return Err(classify_stream_error(error).into());
    }
    let choice = value.get("choices").and_then(|c| c.get(0));
    let content = choice
        .and_then(|c| c.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            SummarizeError::BadResponse("the completion has no message content".into())
        })?;
    Ok(Completion {
        content: content.to_owned(),
        usage: value.get("usage").map(parse_usage).unwrap_or_default(),
        finish_reason: choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        saw_chunk: true,
    })
}

/// The first JSON object in `text` that looks like a summary: models and
/// servers that ignore `response_format` wrap it in prose or code fences.
fn find_summary_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    for (at, _) in text.match_indices('{').take(20) {
        let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(object))) = values.next()
            && (object.contains_key("tldr") || object.contains_key("key_points"))
        {
            return Some(object);
        }
    }
    None
}

/// `123`, `123.4`, `"123"`, `"123s"`, `"2:03"`, `"1:02:03"`.
fn parse_seconds(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        Value::String(s) => {
            let s = s.trim().trim_start_matches('[').trim_end_matches(']');
            let s = s.strip_suffix('s').unwrap_or(s);
            if s.contains(':') {
                s.split(':').try_fold(0u32, |acc, part| {
                    let part: u32 = part.trim().parse().ok()?;
                    acc.checked_mul(60)?.checked_add(part)
                })
            } else {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| *f >= 0.0)
                    .map(|f| f as u32)
            }
        }
        _ => None,
    }
}

/// The draft in a model's answer, with timestamps clamped into `range`,
/// points in time order and duplicates removed.
fn parse_draft(content: &str, (from, to): (u32, u32)) -> Result<Draft, SummarizeError> {
    let object = find_summary_object(content).ok_or_else(|| {
        SummarizeError::BadResponse(format!(
            "no JSON summary in the answer: {}",
            shorten(content.trim(), 120)
        ))
    })?;
    let tldr = object
        .get("tldr")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut key_points: Vec<KeyPoint> = Vec::new();
    let mut previous = from;
    for item in object
        .get("key_points")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (text, at) = match item {
            Value::String(s) => (s.as_str(), None),
            Value::Object(o) => (
                o.get("text")
                    .or_else(|| o.get("point"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                ["at_seconds", "seconds", "timestamp", "time", "start"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(parse_seconds)),
            ),
            _ => ("", None),
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let at = at.unwrap_or(previous).clamp(from, to.max(from));
        previous = at;
        if key_points.iter().any(|p| p.text == text) {
            continue;
        }
        key_points.push(KeyPoint {
            text: text.to_owned(),
            at_seconds: at,
        });
    }
    key_points.sort_by_key(|p| p.at_seconds);
    key_points.truncate(12);
    if tldr.is_empty() {
        return Err(SummarizeError::BadResponse(
            "the answer has no \"tldr\"".into(),
        ));
    }
    Ok(Draft { tldr, key_points })
}

/// Server-sent events: `data:` lines joined until a blank line. Comments
/// (`:`) and other fields are skipped.
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    data: String,
    has_data: bool,
}

const MAX_SSE_LINE: usize = 1024 * 1024;

impl SseParser {
    fn push(&mut self, bytes: &[u8], events: &mut Vec<String>) -> Result<(), Failure> {
        self.buffer.extend_from_slice(bytes);
        // Only new bytes can end a line, so a long line arriving in small
        // pieces is not rescanned each time.
        if bytes.contains(&b'\n') {
            let mut start = 0;
            while let Some(offset) = self.buffer[start..].iter().position(|&b| b == b'\n') {
                let end = start + offset;
                let line = String::from_utf8_lossy(&self.buffer[start..end]).into_owned();
                self.line(line.strip_suffix('\r').unwrap_or(&line), events);
                start = end + 1;
            }
            self.buffer.drain(..start);
        }
        if self.buffer.len() > MAX_SSE_LINE {
            return Err(SummarizeError::BadResponse("a stream line is too long".into()).into());
        }
        Ok(())
    }

    fn finish(&mut self, events: &mut Vec<String>) {
        if !self.buffer.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned();
            self.line(line.strip_suffix('\r').unwrap_or(&line), events);
        }
        self.line("", events);
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if self.has_data {
                events.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            self.has_data = true;
        }
    }
}

/// Forwards the readable part of the streamed JSON to the progress callback.
struct TextSink<'a> {
    progress: Option<&'a ProgressFn>,
    readable: ReadableText,
    emitted: bool,
}

impl TextSink<'_> {
    fn push(&mut self, delta: &str) {
        let Some(progress) = self.progress else {
            return;
        };
        let text = self.readable.push(delta);
        if !text.is_empty() {
            self.emitted = true;
            progress(Progress::Text(text));
        }
    }
}

/// Turns the JSON answer, as it streams in, into what a reader wants to
/// see: the `tldr` string, then each key point's `text` on a new line
/// starting with `• `. A tiny incremental JSON lexer; anything before the
/// first `{` (prose, code fences) is skipped.
#[derive(Default)]
struct ReadableText {
    started: bool,
    finished: bool,
    /// Open containers: `{` or `[`.
    stack: Vec<char>,
    expect_key: bool,
    in_string: bool,
    string_is_key: bool,
    emitting: bool,
    key: String,
    last_key: String,
    /// `Some("")` after a backslash, `Some("uXX")` inside `\uXXXX`.
    escape: Option<String>,
    high_surrogate: Option<u32>,
    wrote_anything: bool,
}

impl ReadableText {
    fn push(&mut self, delta: &str) -> String {
        let mut out = String::new();
        for c in delta.chars() {
            self.step(c, &mut out);
        }
        out
    }

    fn step(&mut self, c: char, out: &mut String) {
        if self.finished {
            return;
        }
        if !self.started {
            if c == '{' {
                self.started = true;
                self.stack.push('{');
                self.expect_key = true;
            }
            return;
        }
        if self.in_string {
            if let Some(escape) = &mut self.escape {
                if escape.is_empty() {
                    if c == 'u' {
                        escape.push('u');
                        return;
                    }
                    self.escape = None;
                    let decoded = match c {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' | 'f' => ' ',
                        other => other,
                    };
                    self.string_char(decoded, out);
                } else {
                    escape.push(c);
                    if escape.len() == 5 {
                        let unit = u32::from_str_radix(&escape[1..], 16).unwrap_or(0xFFFD);
                        self.escape = None;
                        self.code_unit(unit, out);
                    }
                }
                return;
            }
            match c {
                '\\' => self.escape = Some(String::new()),
                '"' => {
                    self.in_string = false;
                    if self.string_is_key {
                        self.last_key = std::mem::take(&mut self.key);
                    }
                    self.emitting = false;
                }
                _ => self.string_char(c, out),
            }
            return;
        }
        match c {
            '"' => {
                self.in_string = true;
                self.string_is_key = self.stack.last() == Some(&'{') && self.expect_key;
                self.key.clear();
                if !self.string_is_key && self.stack.last() == Some(&'{') {
                    let depth = self.stack.len();
                    if depth == 1 && self.last_key == "tldr" {
                        self.emitting = true;
                        if self.wrote_anything {
                            out.push_str("\n\n");
                        }
                    } else if depth > 1 && self.last_key == "text" {
                        self.emitting = true;
                        if self.wrote_anything {
                            out.push('\n');
                        }
                        out.push_str("• ");
                    }
                    self.wrote_anything |= self.emitting;
                }
            }
            '{' => {
                self.stack.push('{');
                self.expect_key = true;
            }
            '[' => {
                self.stack.push('[');
                self.expect_key = false;
            }
            '}' | ']' => {
                self.stack.pop();
                self.expect_key = false;
                if self.stack.is_empty() {
                    self.finished = true;
                }
            }
            ':' => self.expect_key = false,
            ',' => self.expect_key = self.stack.last() == Some(&'{'),
            _ => {}
        }
    }

    fn string_char(&mut self, c: char, out: &mut String) {
        if self.string_is_key {
            self.key.push(c);
        } else if self.emitting {
            out.push(c);
        }
    }

    fn code_unit(&mut self, unit: u32, out: &mut String) {
        let c = match (self.high_surrogate.take(), unit) {
            (None, 0xD800..=0xDBFF) => {
                self.high_surrogate = Some(unit);
                return;
            }
            (Some(high), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))
            }
            (_, unit) => char::from_u32(unit),
        };
        self.string_char(c.unwrap_or('\u{FFFD}'), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_follows_the_json_in_any_split() {
        let answer = "Sure! ```json\n{\"tldr\": \"Rust \\\"rocks\\\" \\u00e9\\ud83d\\ude00.\", \"key_points\": [{\"text\": \"First\\npoint\", \"at_seconds\": 5}, {\"at_seconds\": 9, \"text\": \"Second\"}]}\n```";
        let expected = "Rust \"rocks\" é😀.\n• First\npoint\n• Second";
        for size in 1..=7 {
            let mut readable = ReadableText::default();
            let chars: Vec<char> = answer.chars().collect();
            let out: String = chars
                .chunks(size)
                .map(|c| readable.push(&c.iter().collect::<String>()))
                .collect();
            assert_eq!(out, expected, "split every {size} chars");
        }
    }

    #[test]
    fn sse_events_are_split_across_reads() {
        let stream = b"data: {\"a\":1}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\nevent: x\ndata: [DONE]\n\n";
        for size in 1..=9 {
            let mut parser = SseParser::default();
            let mut events = Vec::new();
            for piece in stream.chunks(size) {
                parser.push(piece, &mut events).unwrap();
            }
            parser.finish(&mut events);
            assert_eq!(events, ["{\"a\":1}", "one\ntwo", "[DONE]"]);
        }
    }

    #[test]
    fn drafts_are_found_in_prose_and_cleaned() {
        let answer = r#"Here you go: {"tldr": " About Rust. ", "key_points": [
            {"text": "late", "at_seconds": 90}, {"text": "early", "at_seconds": "0:10"},
            {"text": "early", "at_seconds": 11}, {"text": "beyond", "at_seconds": 99999},
            {"text": " ", "at_seconds": 1}]} trailing"#;
        let draft = parse_draft(answer, (5, 100)).unwrap();
        assert_eq!(draft.tldr, "About Rust.");
        let points: Vec<(&str, u32)> = draft
            .key_points
            .iter()
            .map(|p| (p.text.as_str(), p.at_seconds))
            .collect();
        assert_eq!(points, [("early", 10), ("late", 90), ("beyond", 100)]);
        assert!(matches!(
            parse_draft("no json here", (0, 1)),
            Err(SummarizeError::BadResponse(_))
        ));
    }

    #[test]
    fn errors_are_classified() {
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let rate = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, quota).error,
            SummarizeError::QuotaExhausted
        );
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, rate).error,
            SummarizeError::RateLimited
        );
        assert!(matches!(
            classify_status(StatusCode::BAD_GATEWAY, "<html>").error,
            SummarizeError::Upstream(_)
        ));
        assert!(matches!(
            classify_status(StatusCode::UNAUTHORIZED, "{}").error,
            SummarizeError::Rejected { status: 401, .. }
        ));
    }

    #[test]
    fn settings_come_from_the_environment() {
        assert!(OpenAiSettings::from_lookup(|_| None).unwrap().is_none());
        let settings = OpenAiSettings::from_lookup(|name| match name {
            "OPENAI_API_KEY" => Some("sk-test".into()),
            "OPENAI_BASE_URL" => Some("http://localhost:11434/v1".into()),
            "OPENAI_MODEL" => Some("llama3.2:1b".into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        assert_eq!(settings.model, "llama3.2:1b");
        assert!(!settings.is_openai());
        assert!(!format!("{settings:?}").contains("sk-test"));
        let bad = OpenAiSettings::from_lookup(|name| match name {
            "OPENAI_API_KEY" => Some("k".into()),
            "OPENAI_MAX_RETRIES" => Some("lots".into()),
            _ => None,
        });
        assert_eq!(bad.unwrap_err().var, "OPENAI_MAX_RETRIES");
    }
}
