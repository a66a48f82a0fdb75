//! Turning a transcript into a summary: a TL;DR plus key points, each with
//! the moment of the video it comes from.
//!
//! Two implementations sit behind one trait:
//! - [`extractive::ExtractiveSummarizer`], the built-in default: offline,
//!   deterministic, picks the most representative sentences;
//! - [`openai::OpenAiSummarizer`], any OpenAI-compatible chat completions
//!   endpoint (OpenAI, Azure, Ollama, vLLM…) through `async-openai`,
//!   streamed, retried with jittered backoff, and map-reduced over long
//!   transcripts; its answers, in whatever shape, are read by [`answer`].
//!
//! Callers hold an `Arc<dyn Summarizer>` (see [`from_settings`]).

pub mod answer;
pub mod chunking;
pub mod extractive;
pub mod openai;

use serde::{Deserialize, Serialize};
use std::{future::Future, pin::Pin, sync::Arc};

pub use crate::domain::SummaryLanguage;
pub use extractive::ExtractiveSummarizer;
pub use openai::{OpenAiSettings, OpenAiSummarizer, ResponseFormat};

/// Bumped whenever the prompts or the extractive algorithm change in a way
/// that changes output, so cached summaries can say what made them.
pub const PROMPT_VERSION: &str = "v1";

/// One caption line of the input. Timestamps are kept all the way to the
/// key points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    pub start_ms: u64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPoint {
    pub text: String,
    /// Where in the video this point is made; the UI links to `&t={at_seconds}`.
    pub at_seconds: u32,
}

/// Tokens billed, summed over every call that made one summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub tldr: String,
    /// In timestamp order.
    pub key_points: Vec<KeyPoint>,
    /// The model that wrote it, e.g. `gpt-4o-mini`, or `tldw-extractive`.
    pub model: String,
    pub prompt_version: String,
    pub usage: Usage,
    /// True for the offline extractive summarizer (the UI labels it).
    pub built_in: bool,
}

impl Summary {
    /// What is stored and shown: the text, without the accounting.
    pub fn body(&self) -> crate::domain::SummaryBody {
        crate::domain::SummaryBody {
            tldr: self.tldr.clone(),
            key_points: self
                .key_points
                .iter()
                .map(|p| crate::domain::KeyPoint {
                    text: p.text.clone(),
                    at_seconds: p.at_seconds,
                })
                .collect(),
        }
    }
}

/// What a summarizer reports while it works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A stage of the work: `done` of `total` model calls finished (for a
    /// long transcript: one per chunk, then the combining call).
    Chunk { done: u32, total: u32 },
    /// Readable text of the final summary as it streams in: the TL;DR, then
    /// each key point on its own line starting with `• `. Append these.
    Text(String),
    /// The call that was streaming text failed and is being tried again:
    /// throw away the text received so far.
    Restart { attempt: u32 },
    /// A model call came back with these tokens billed, whether or not its
    /// answer turns out usable. Reported as it happens, so the caller knows
    /// what a summary that later fails has already cost (a failed summary
    /// that billed tokens is charged, not refunded).
    Billed(Usage),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SummarizeError {
    /// OpenAI `insufficient_quota`: out of credits or over budget. Permanent
    /// until an operator acts; never retried.
    #[error("the AI provider's quota is exhausted (insufficient_quota)")]
    QuotaExhausted,
    /// 429 `rate_limit_exceeded` (or similar) that outlasted our retries.
    #[error("the AI provider is rate limiting us")]
    RateLimited,
    #[error("the AI provider did not answer in time")]
    Timeout,
    /// 5xx, a dropped connection, or an error event inside the stream.
    #[error("the AI provider failed: {0}")]
    Upstream(String),
    /// A 4xx other than 429: bad key, unknown model, request rejected.
    /// Retrying the same request cannot help.
    #[error("the AI provider rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The answer could not be understood (not SSE, not a chat completion,
    /// too large, cut off), or is text that is no summary (a refusal, an
    /// HTML page, JSON of another shape).
    #[error("the AI provider's answer could not be understood: {0}")]
    BadResponse(String),
    /// The answer held no usable text at all: empty, whitespace, or only
    /// markup (fences, headings, punctuation).
    #[error("the AI provider's answer held no summary: {0}")]
    NoSummary(String),
    #[error("the transcript is empty")]
    EmptyTranscript,
}

impl SummarizeError {
    /// Worth trying again later (the same request may well succeed).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SummarizeError::RateLimited | SummarizeError::Timeout | SummarizeError::Upstream(_)
        )
    }
}

/// The language a summary is to be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language<'a> {
    /// The transcript's own: its caption track's code when known (`es`,
    /// `en-GB`).
    Transcript(Option<&'a str>),
    /// Another language, chosen by the org: the model translates.
    Chosen(SummaryLanguage),
}

impl Language<'_> {
    /// The sentence that tells the model which language to write in;
    /// `source` is what it reads (`transcript`, `notes`).
    pub fn instruction(self, source: &str) -> String {
        match self {
            Language::Transcript(None) => format!("Write in the language of the {source}."),
            Language::Transcript(Some(code)) => match SummaryLanguage::of_track(code) {
                Some(language) => format!(
                    "Write in {} ({}), the language of the {source}.",
                    language.name(),
                    language.code()
                ),
                None => format!("Write in the language of the {source} ({code})."),
            },
            Language::Chosen(language) => format!(
                "Write in {name} ({code}), whatever the language of the {source}: translate into                  {name}, keeping names and technical terms accurate.",
                name = language.name(),
                code = language.code()
            ),
        }
    }
}

/// A boxed, sendable future, so the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The progress callback: called from the summarizing task, in order.
pub type ProgressFn = dyn Fn(Progress) + Send + Sync;

pub trait Summarizer: Send + Sync {
    /// A short label for logs and the UI (the model name).
    fn name(&self) -> String;

    /// True for the built-in, offline summarizer.
    fn built_in(&self) -> bool;

    /// The summary in `language`. The built-in summarizer can only keep
    /// the transcript's language, whatever is asked.
    fn summarize_in<'a>(
        &'a self,
        title: &'a str,
        transcript: &'a [TranscriptLine],
        language: Language<'a>,
        progress: &'a ProgressFn,
    ) -> BoxFuture<'a, Result<Summary, SummarizeError>>;

    /// The summary in the transcript's language.
    fn summarize<'a>(
        &'a self,
        title: &'a str,
        transcript: &'a [TranscriptLine],
        progress: &'a ProgressFn,
    ) -> BoxFuture<'a, Result<Summary, SummarizeError>> {
        self.summarize_in(title, transcript, Language::Transcript(None), progress)
    }
}

/// The OpenAI-compatible summarizer when configured, else the built-in one.
pub fn from_settings(settings: Option<OpenAiSettings>) -> anyhow::Result<Arc<dyn Summarizer>> {
    Ok(match settings {
        Some(settings) => Arc::new(OpenAiSummarizer::new(settings)?),
        None => Arc::new(ExtractiveSummarizer::default()),
    })
}

/// Shared with the pages, so notes and links read the same.
pub use crate::domain::format_timestamp;

/// Caption noise that carries no meaning: `[Music]`, `(applause)`, `♪`, `>>`.
pub(crate) fn clean_caption(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            '♪' | '♫' => out.push(' '),
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    let out = out.replace(">>", " ").replace("&gt;&gt;", " ");
    let mut collapsed = String::with_capacity(out.len());
    for word in out.split_whitespace() {
        let lower = word.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "(music)" | "(applause)" | "(laughter)" | "(laughs)"
        ) {
            continue;
        }
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_instruction_names_the_language() {
        assert_eq!(
            Language::Transcript(None).instruction("transcript"),
            "Write in the language of the transcript."
        );
        assert_eq!(
            Language::Transcript(Some("es-419")).instruction("notes"),
            "Write in Spanish (es), the language of the notes."
        );
        assert_eq!(
            Language::Transcript(Some("cs")).instruction("transcript"),
            "Write in the language of the transcript (cs)."
        );
        let chosen = Language::Chosen(SummaryLanguage::English).instruction("transcript");
        assert!(chosen.starts_with("Write in English (en), whatever the language"));
    }

    #[test]
    fn caption_noise_is_removed() {
        assert_eq!(clean_caption("[Music] hello  >> there ♪"), "hello there");
        assert_eq!(clean_caption("(Applause) ok\nthen"), "ok then");
    }
}
