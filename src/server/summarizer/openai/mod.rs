//! Summaries from any OpenAI-compatible chat completions endpoint (OpenAI,
//! Azure OpenAI, Ollama, vLLM, LiteLLM…), following reference/openai.md,
//! through the `async-openai` crate's config, types and errors:
//!
//! - `POST {base}/chat/completions` with `stream: true` and
//!   `stream_options.include_usage`, so text reaches the UI as it is written
//!   and the final chunk carries the token usage ([`client`]);
//! - `max_completion_tokens` (plus `max_tokens` for non-OpenAI servers that
//!   only know the old name);
//! - a JSON answer `{"tldr", "key_points": [{"text", "at_seconds"}]}`
//!   requested with `response_format`, but any shape accepted, markdown
//!   included, for servers and models that ignore it
//!   ([`crate::server::summarizer::answer`]);
//! - bounded retries with full-jitter exponential backoff on 429 rate limits,
//!   5xx, timeouts and dropped connections, never on `insufficient_quota`
//!   or other 4xx: `OPENAI_MAX_RETRIES` + 1 HTTP requests per call at most;
//! - map-reduce: a transcript over the token budget is cut into chunks, each
//!   chunk becomes timestamped notes, and the notes are combined into the
//!   summary, so a 3-hour video is summarised whole.
//!
//! Each HTTP call has its own tracing span with the `x-request-id` the
//! provider returned. The API key is only ever inside a sensitive header.

mod client;
mod prompts;
mod readable;
mod settings;

pub use settings::{DEFAULT_BASE_URL, DEFAULT_MODEL, OpenAiSettings, ResponseFormat};

use super::{
    BoxFuture, Language, PROMPT_VERSION, Progress, ProgressFn, SummarizeError, Summarizer, Summary,
    TranscriptLine, Usage,
    answer::{Draft, parse_answer},
    chunking::{approx_tokens, chunk_transcript, group_by_budget},
};
use async_openai::{config::Config, types::chat::FinishReason};
use rand::Rng as _;
use readable::TextSink;
use std::time::Duration;
use tracing::{Instrument as _, field};

pub struct OpenAiSummarizer {
    settings: OpenAiSettings,
    http: reqwest::Client,
    /// async-openai's config: the URL, key and headers of every request.
    config: Box<dyn Config>,
}

impl std::fmt::Debug for OpenAiSummarizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSummarizer")
            .field("endpoint", &self.config.url("/chat/completions"))
            .field("model", &self.settings.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiSummarizer {
    pub fn new(settings: OpenAiSettings) -> anyhow::Result<OpenAiSummarizer> {
        let config = client::config(&settings)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("tldw/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // Never carry the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(OpenAiSummarizer {
            settings,
            http,
            config,
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

    fn summarize_in<'a>(
        &'a self,
        title: &'a str,
        transcript: &'a [TranscriptLine],
        language: Language<'a>,
        progress: &'a ProgressFn,
    ) -> BoxFuture<'a, Result<Summary, SummarizeError>> {
        Box::pin(self.run(title, transcript, language, progress))
    }
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
        language: Language<'_>,
        progress: &ProgressFn,
    ) -> Result<Summary, SummarizeError> {
        let chunks = chunk_transcript(transcript, self.settings.chunk_tokens);
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            return Err(SummarizeError::EmptyTranscript);
        };
        // The video's length, as far as we know it: its last line's start.
        let (start, end) = (first.first_second, last.last_second);
        let mut usage = Usage::default();

        if let [only] = chunks.as_slice() {
            progress(Progress::Chunk { done: 0, total: 1 });
            let draft = self
                .call(
                    Stage::Single,
                    prompts::single(title, only, language),
                    (start, end),
                    &mut usage,
                    progress,
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
            let range = (chunk.first_second, chunk.last_second);
            let draft = self
                .call(
                    Stage::Map,
                    prompts::map(title, i, chunks.len(), chunk, language),
                    range,
                    &mut usage,
                    progress,
                    None,
                )
                .await?;
            notes.push(prompts::render_note(
                &format!("Part {} of {}", i + 1, chunks.len()),
                range,
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
                    group
                        .first()
                        .and_then(|n| prompts::note_start(n))
                        .unwrap_or(start),
                    group
                        .last()
                        .and_then(|n| prompts::note_end(n))
                        .unwrap_or(end),
                );
                let draft = self
                    .call(
                        Stage::Condense,
                        prompts::condense(title, group, language),
                        range,
                        &mut usage,
                        progress,
                        None,
                    )
                    .await?;
                condensed.push(prompts::render_note("Section", range, &draft));
                done += 1;
                progress(Progress::Chunk { done, total });
            }
            notes = condensed;
        }

        // Reduce, streamed to the reader.
        let draft = self
            .call(
                Stage::Reduce,
                prompts::reduce(title, end, &notes, language),
                (start, end),
                &mut usage,
                progress,
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
        report: &ProgressFn,
        stream_to: Option<&ProgressFn>,
    ) -> Result<Draft, SummarizeError> {
        let request = self.request(instructions, input);
        let mut attempt = 0u32;
        loop {
            let mut sink = TextSink::new(stream_to);
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
                .attempt(&request, &mut sink)
                .instrument(span.clone())
                .await;
            // Usage is billed even when the answer turns out unusable: say
            // so at once, so a summary that fails later is still known to
            // have cost something.
            let parsed = outcome.and_then(|completion| {
                usage.add(completion.usage);
                if completion.usage != Usage::default() {
                    report(Progress::Billed(completion.usage));
                }
                let _entered = span.enter();
                self.draft(&completion, range).map_err(|error| {
                    tracing::warn!(%error, "unusable answer from the model");
                    client::Failure::from(error)
                })
            });
            let failure = match parsed {
                Ok(draft) => return Ok(draft),
                Err(failure) => failure,
            };
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

    /// The draft in a completed answer, with a hint when the answer was cut
    /// off at the output cap.
    fn draft(
        &self,
        completion: &client::Completion,
        range: (u32, u32),
    ) -> Result<Draft, SummarizeError> {
        if completion.content.trim().is_empty() && !completion.refusal.trim().is_empty() {
            return Err(SummarizeError::BadResponse(format!(
                "the model refused: {}",
                completion.refusal.trim()
            )));
        }
        parse_answer(&completion.content, range).map_err(|error| {
            match (error, completion.finish_reason) {
                (
                    SummarizeError::BadResponse(reason) | SummarizeError::NoSummary(reason),
                    Some(FinishReason::Length),
                ) => SummarizeError::BadResponse(format!(
                    "{reason}; the answer was cut off at max_completion_tokens ({}), raise OPENAI_MAX_COMPLETION_TOKENS",
                    self.settings.max_completion_tokens
                )),
                (error, _) => error,
            }
        })
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
}
