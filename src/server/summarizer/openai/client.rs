//! One streamed chat completion: exactly one HTTP request, with
//! async-openai's config (URL, key and headers for OpenAI and compatible
//! servers; Azure's deployment path, `api-key` and `api-version`), its request
//! and response types, and its error types.
//!
//! The request goes through our own `reqwest` call and
//! [`eventsource_stream`] (the SSE parser async-openai itself uses) rather
//! than `Chat::create_stream`, because in async-openai 0.35 (the last release
//! on reqwest 0.12) that stream runs on `reqwest-eventsource` with its
//! default, unbounded reconnect policy in a task we cannot stop: after a
//! dropped connection it sends the whole request again on its own (a second,
//! billed model call nobody waits for; `tests/api/summarizer.rs` shows it),
//! and a timed-out stream keeps its connection. It also drops the HTTP
//! status and `Retry-After`. Retries belong to [`super::OpenAiSummarizer`]'s
//! own policy, so here one attempt is one request, and dropping it closes
//! the connection.

use super::{OpenAiSettings, OpenAiSummarizer, ResponseFormat, prompts, readable::TextSink};
use crate::server::summarizer::{SummarizeError, Usage};
use async_openai::{
    config::{AzureConfig, Config, OpenAIConfig},
    error::{ApiError, OpenAIError, WrappedError},
    types::chat::{
        ChatCompletionRequestDeveloperMessage, ChatCompletionRequestMessage,
        ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
        ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionResponse,
        CreateChatCompletionStreamResponse, FinishReason, ResponseFormat as WireFormat,
        ResponseFormatJsonSchema,
    },
};
use eventsource_stream::{EventStreamError, Eventsource as _};
use futures_util::StreamExt as _;
use reqwest::{
    StatusCode,
    header::{self, HeaderMap, HeaderValue},
};
use secrecy::ExposeSecret as _;
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

/// async-openai's config for these settings: OpenAI-style (any compatible
/// server) or, with an API version, Azure OpenAI.
pub(super) fn config(settings: &OpenAiSettings) -> anyhow::Result<Box<dyn Config>> {
    let key = settings.api_key.expose_secret();
    // The crate builds its headers with `unwrap`: check the values first.
    let header_safe = |value: &str| HeaderValue::from_str(&format!("Bearer {value}")).is_ok();
    anyhow::ensure!(
        header_safe(key),
        "OPENAI_API_KEY contains characters not allowed in a header"
    );
    let base = settings.base_url.as_str().trim_end_matches('/');
    if let Some(version) = &settings.azure_api_version {
        return Ok(Box::new(
            AzureConfig::new()
                .with_api_base(base)
                .with_deployment_id(&settings.model)
                .with_api_version(version)
                .with_api_key(key),
        ));
    }
    let org = settings.org_id.clone().unwrap_or_default();
    let project = settings.project_id.clone().unwrap_or_default();
    anyhow::ensure!(
        header_safe(&org) && header_safe(&project),
        "OPENAI_ORG_ID or OPENAI_PROJECT_ID contains characters not allowed in a header"
    );
    // Every field is set, so nothing comes from the process environment.
    Ok(Box::new(
        OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key(key)
            .with_org_id(org)
            .with_project_id(project),
    ))
}

/// What one HTTP call produced.
#[derive(Debug, Default)]
pub(super) struct Completion {
    pub(super) content: String,
    /// A structured-outputs refusal instead of content.
    pub(super) refusal: String,
    pub(super) usage: Usage,
    pub(super) finish_reason: Option<FinishReason>,
    saw_chunk: bool,
}

/// An error plus the server's `Retry-After`, when it gave one.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: SummarizeError,
    pub(super) retry_after: Option<Duration>,
}

impl From<SummarizeError> for Failure {
    fn from(error: SummarizeError) -> Failure {
        Failure {
            error,
            retry_after: None,
        }
    }
}

impl OpenAiSummarizer {
    /// The config's headers, with the key marked sensitive so that no
    /// `Debug` of a request shows it.
    fn headers(&self) -> HeaderMap {
        let mut headers = self.config.headers();
        for name in [header::AUTHORIZATION.as_str(), "api-key"] {
            if let Some(value) = headers.get_mut(name) {
                value.set_sensitive(true);
            }
        }
        headers
    }

    /// The request for one stage, as reference/openai.md describes it.
    pub(super) fn request(
        &self,
        instructions: String,
        input: String,
    ) -> CreateChatCompletionRequest {
        let settings = &self.settings;
        let openai = settings.is_openai();
        let instructions: ChatCompletionRequestMessage = if openai {
            ChatCompletionRequestDeveloperMessage {
                content: instructions.into(),
                name: None,
            }
            .into()
        } else {
            ChatCompletionRequestSystemMessage {
                content: instructions.into(),
                name: None,
            }
            .into()
        };
        let input = ChatCompletionRequestUserMessage {
            content: input.into(),
            name: None,
        }
        .into();
        let response_format = match settings.response_format {
            ResponseFormat::JsonSchema => Some(WireFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: "video_summary".into(),
                    schema: Some(prompts::summary_schema()),
                    strict: Some(true),
                },
            }),
            ResponseFormat::JsonObject => Some(WireFormat::JsonObject),
            ResponseFormat::None => None,
        };
        #[allow(deprecated)] // max_tokens: see below
        CreateChatCompletionRequest {
            model: settings.model.clone(),
            messages: vec![instructions, input],
            stream: Some(true),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            max_completion_tokens: Some(settings.max_completion_tokens),
            // Ollama and older servers only know the deprecated name;
            // OpenAI's reasoning models reject it, so only elsewhere.
            max_tokens: (!openai).then_some(settings.max_completion_tokens),
            response_format,
            ..Default::default()
        }
    }

    /// One HTTP request: the status, then the SSE stream (or a plain JSON
    /// completion from servers that do not stream).
    pub(super) async fn attempt(
        &self,
        request: &CreateChatCompletionRequest,
        sink: &mut TextSink<'_>,
    ) -> Result<Completion, Failure> {
        let span = tracing::Span::current();
        let started = Instant::now();
        let deadline = started + self.settings.max_call_duration;
        let wait = || {
            self.settings
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()))
        };
        let timed_out = |_| Failure::from(SummarizeError::Timeout);

        let send = self
            .http
            .post(self.config.url("/chat/completions"))
            .query(&self.config.query())
            .headers(self.headers())
            .header(header::ACCEPT, "text/event-stream, application/json")
            .json(request)
            .send();
        let mut response = tokio::time::timeout(wait(), send)
            .await
            .map_err(timed_out)?
            .map_err(|e| classify(None, OpenAIError::Reqwest(e)))?;
        let status = response.status();
        span.record("status", status.as_u16());
        if let Some(id) = header_text(response.headers(), "x-request-id") {
            span.record("request_id", id);
        }

        let result = async {
            if !status.is_success() {
                let retry_after = retry_after(response.headers());
                let body = read_capped(&mut response, 64 * 1024, &wait).await?;
                let error = api_error_from_body(&body);
                return Err(Failure {
                    error: api_error(Some(status), &error),
                    retry_after,
                });
            }
            let is_sse = header_text(response.headers(), header::CONTENT_TYPE.as_str())
                .is_none_or(|ct| ct.contains("event-stream"));
            if !is_sse {
                let body =
                    read_capped(&mut response, self.settings.max_response_bytes, &wait).await?;
                let completion = parse_completion(&body)?;
                sink.push(&completion.content);
                sink.finish();
                return Ok(completion);
            }
            self.read_stream(response, sink, &wait).await
        }
        .await;
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        crate::server::metrics::model_call(&request.model, result.is_ok());
        match &result {
            Ok(c) => tracing::info!(
                prompt_tokens = c.usage.prompt_tokens,
                completion_tokens = c.usage.completion_tokens,
                finish_reason = ?c.finish_reason,
                "LLM call done"
            ),
            Err(f) => tracing::info!(error = %f.error, "LLM call failed"),
        }
        result
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        sink: &mut TextSink<'_>,
        wait: &impl Fn() -> Duration,
    ) -> Result<Completion, Failure> {
        let cap = self.settings.max_response_bytes;
        let too_large = AtomicBool::new(false);
        let mut received = 0usize;
        let events = response
            .bytes_stream()
            .take_while(|piece| {
                if let Ok(bytes) = piece {
                    received += bytes.len();
                }
                let within = received <= cap;
                too_large.fetch_or(!within, Ordering::Relaxed);
                std::future::ready(within)
            })
            .eventsource();
        let mut events = std::pin::pin!(events);
        let mut completion = Completion::default();
        let mut done = false;
        while let Some(event) = tokio::time::timeout(wait(), events.next())
            .await
            .map_err(|_| Failure::from(SummarizeError::Timeout))?
        {
            let data = match event {
                Ok(event) => event.data,
                Err(EventStreamError::Transport(e)) => {
                    return Err(classify(None, OpenAIError::Reqwest(e)).into());
                }
                Err(e) => {
                    return Err(
                        SummarizeError::BadResponse(format!("not an event stream: {e}")).into(),
                    );
                }
            };
            let data = data.trim();
            if data == "[DONE]" {
                // Anything after it is ignored.
                done = true;
                break;
            }
            if !data.is_empty() {
                completion.saw_chunk = true;
                take_chunk(data, &mut completion, sink)?;
            }
        }
        if too_large.load(Ordering::Relaxed) {
            return Err(
                SummarizeError::BadResponse(format!("the answer is over {cap} bytes")).into(),
            );
        }
        if done || completion.finish_reason.is_some() {
            // Some servers end without [DONE]; the answer is complete.
            sink.finish();
            Ok(completion)
        } else if !completion.saw_chunk {
            Err(SummarizeError::BadResponse("no server-sent events in the answer".into()).into())
        } else {
            Err(SummarizeError::Upstream("the stream ended before it was finished".into()).into())
        }
    }
}

/// One `data:` payload: a `chat.completion.chunk`, or an `error` object
/// when the stream fails after it started.
fn take_chunk(
    data: &str,
    completion: &mut Completion,
    sink: &mut TextSink<'_>,
) -> Result<(), Failure> {
    let chunk: CreateChatCompletionStreamResponse = match serde_json::from_str(data) {
        Ok(chunk) => chunk,
        Err(e) => {
            return Err(match serde_json::from_str::<WrappedError>(data) {
                Ok(wrapped) => api_error(None, &wrapped.error),
                Err(_) => classify(None, OpenAIError::JSONDeserialize(e, data.to_owned())),
            }
            .into());
        }
    };
    if let Some(usage) = chunk.usage {
        completion.usage = Usage {
            prompt_tokens: usage.prompt_tokens.into(),
            completion_tokens: usage.completion_tokens.into(),
        };
    }
    for choice in chunk.choices.iter().filter(|c| c.index == 0) {
        if let Some(text) = &choice.delta.content {
            completion.content.push_str(text);
            sink.push(text);
        }
        if let Some(refusal) = &choice.delta.refusal {
            completion.refusal.push_str(refusal);
        }
        if choice.finish_reason.is_some() {
            completion.finish_reason = choice.finish_reason;
        }
    }
    Ok(())
}

/// A non-streamed `chat.completion` body.
fn parse_completion(body: &str) -> Result<Completion, Failure> {
    let response: CreateChatCompletionResponse = match serde_json::from_str(body) {
        Ok(response) => response,
        Err(e) => {
            return Err(match serde_json::from_str::<WrappedError>(body) {
                Ok(wrapped) => api_error(None, &wrapped.error),
                Err(_) => classify(None, OpenAIError::JSONDeserialize(e, body.to_owned())),
            }
            .into());
        }
    };
    let choice = response.choices.into_iter().next();
    Ok(Completion {
        usage: response
            .usage
            .map(|u| Usage {
                prompt_tokens: u.prompt_tokens.into(),
                completion_tokens: u.completion_tokens.into(),
            })
            .unwrap_or_default(),
        finish_reason: choice.as_ref().and_then(|c| c.finish_reason),
        refusal: choice
            .as_ref()
            .and_then(|c| c.message.refusal.clone())
            .unwrap_or_default(),
        content: choice.and_then(|c| c.message.content).unwrap_or_default(),
        saw_chunk: true,
    })
}

/// async-openai's error, with the HTTP status when there was one, as one
/// of ours.
fn classify(status: Option<StatusCode>, error: OpenAIError) -> SummarizeError {
    match error {
        OpenAIError::ApiError(error) => api_error(status, &error),
        OpenAIError::Reqwest(e) if e.is_timeout() => SummarizeError::Timeout,
        OpenAIError::Reqwest(e) if e.is_connect() => {
            SummarizeError::Upstream(format!("could not connect: {}", e.without_url()))
        }
        OpenAIError::Reqwest(e) if e.is_body() || e.is_decode() => {
            SummarizeError::Upstream(format!("the connection broke: {}", e.without_url()))
        }
        OpenAIError::Reqwest(e) => SummarizeError::Upstream(e.without_url().to_string()),
        OpenAIError::JSONDeserialize(e, content) => SummarizeError::BadResponse(format!(
            "not a chat completion ({e}): {}",
            shorten(content.trim(), 120)
        )),
        other => SummarizeError::Upstream(other.to_string()),
    }
}

/// Retried or not, by reference/openai.md: `insufficient_quota` never (even
/// on a 429), other 429s and 5xx yes, other 4xx no. `status` is `None` for
/// an error inside a stream that had started.
fn api_error(status: Option<StatusCode>, error: &ApiError) -> SummarizeError {
    let kind = error.r#type.as_deref().unwrap_or_default();
    let code = error.code.as_deref().unwrap_or_default();
    let message = shorten(&error.message, 300);
    if kind == "insufficient_quota" || code == "insufficient_quota" {
        SummarizeError::QuotaExhausted
    } else if status == Some(StatusCode::TOO_MANY_REQUESTS)
        || matches!(code, "rate_limit_exceeded" | "slow_down")
        || kind == "rate_limit_error"
    {
        SummarizeError::RateLimited
    } else if status == Some(StatusCode::REQUEST_TIMEOUT) {
        SummarizeError::Timeout
    } else {
        match status {
            None => SummarizeError::Upstream(format!("error in the stream: {message}")),
            Some(s) if s.is_server_error() => {
                SummarizeError::Upstream(format!("HTTP {}: {message}", s.as_u16()))
            }
            Some(s) => SummarizeError::Rejected {
                status: s.as_u16(),
                message,
            },
        }
    }
}

/// `{"error": {…}}` as OpenAI sends it, or whatever else came (another
/// server's shape, an HTML page) as the message.
fn api_error_from_body(body: &str) -> ApiError {
    serde_json::from_str::<WrappedError>(body)
        .map(|w| w.error)
        .unwrap_or_else(|_| ApiError {
            message: shorten(body.trim(), 300),
            r#type: None,
            param: None,
            code: None,
        })
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// `retry-after-ms` or `retry-after` (seconds), as OpenAI sends them.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = |name: &str| header_text(headers, name)?.trim().parse::<f64>().ok();
    if let Some(ms) = value("retry-after-ms").filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    value("retry-after")
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
}

async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
    wait: &impl Fn() -> Duration,
) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    while let Some(piece) = tokio::time::timeout(wait(), response.chunk())
        .await
        .map_err(|_| Failure::from(SummarizeError::Timeout))?
        .map_err(|e| classify(None, OpenAIError::Reqwest(e)))?
    {
        let room = cap.saturating_sub(bytes.len());
        bytes.extend_from_slice(&piece[..piece.len().min(room)]);
        if bytes.len() >= cap {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_error(status: u16, body: &str) -> SummarizeError {
        api_error(
            Some(StatusCode::from_u16(status).unwrap()),
            &api_error_from_body(body),
        )
    }

    #[test]
    fn errors_are_classified() {
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let rate = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(body_error(429, quota), SummarizeError::QuotaExhausted);
        assert_eq!(body_error(429, rate), SummarizeError::RateLimited);
        assert!(matches!(
            body_error(502, "<html>"),
            SummarizeError::Upstream(_)
        ));
        assert!(matches!(
            body_error(401, "{}"),
            SummarizeError::Rejected { status: 401, .. }
        ));
        // vLLM's own shape still keeps its status and message.
        let vllm = r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
        assert!(matches!(
            body_error(404, vllm),
            SummarizeError::Rejected { status: 404, message } if message.contains("does not exist")
        ));
        // Inside a stream there is no status.
        let in_stream = ApiError {
            message: "overloaded".into(),
            r#type: Some("server_error".into()),
            param: None,
            code: None,
        };
        assert!(matches!(
            api_error(None, &in_stream),
            SummarizeError::Upstream(_)
        ));
    }

    #[test]
    fn retry_after_headers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
    }
}
