//! What the model is asked, for each stage of the map-reduce, and the notes
//! handed from one stage to the next. Changing a prompt in a way that
//! changes output means bumping [`crate::server::summarizer::PROMPT_VERSION`].

use crate::server::summarizer::{Language, answer::Draft, chunking::Chunk, format_timestamp};
use serde_json::{Value, json};

/// The JSON schema of a summary (and of notes), for `response_format`.
pub(super) fn summary_schema() -> Value {
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

/// (instructions, input) for a transcript that fits one call.
pub(super) fn single(title: &str, chunk: &Chunk, language: Language<'_>) -> (String, String) {
    (
        format!(
            "You summarize YouTube videos from their transcripts for busy readers. \
             Each transcript line starts with its start time in seconds, like [754s]. {SHAPE} \
             \"tldr\": one to three sentences on what the video is about and its main takeaway. \
             \"key_points\": the 5 to 8 most important points, in the order they occur, spread over \
             the whole video, each a self-contained sentence, with \"at_seconds\" set to the start \
             time in seconds of the line where the point is made. {} \
             Use only what the transcript says.",
            language.instruction("transcript")
        ),
        format!("Title: {title}\n\nTranscript:\n{}", chunk.text),
    )
}

/// Notes on part `index` of `count` of a long transcript.
pub(super) fn map(
    title: &str,
    index: usize,
    count: usize,
    chunk: &Chunk,
    language: Language<'_>,
) -> (String, String) {
    (
        format!(
            "You take notes on one part of a long YouTube video, from its transcript. \
             Each transcript line starts with its start time in seconds, like [754s]. {SHAPE} \
             \"tldr\": one or two sentences on what this part covers. \"key_points\": the 3 to 6 \
             most important points of this part, in order, each a self-contained sentence, with \
             \"at_seconds\" set to the start time in seconds of the line where the point is made. \
             {} Use only what the transcript says.",
            language.instruction("transcript")
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

/// Notes on notes, when all the notes do not fit one call.
pub(super) fn condense(title: &str, notes: &[String], language: Language<'_>) -> (String, String) {
    (
        format!(
            "You condense notes taken on consecutive parts of a long YouTube video. Each point \
             starts with the time in seconds where it is made, like [754s]. {SHAPE} \"tldr\": one \
             or two sentences on what these parts cover. \"key_points\": the 4 to 8 most important \
             points, in time order, spread over all of these parts, with \"at_seconds\" copied \
             from the point it comes from. {}",
            language.instruction("notes")
        ),
        format!("Title: {title}\n\nNotes:\n{}", notes.join("\n\n")),
    )
}

/// The summary of a long video from the notes on its parts.
pub(super) fn reduce(
    title: &str,
    end: u32,
    notes: &[String],
    language: Language<'_>,
) -> (String, String) {
    (
        format!(
            "You write the summary of a long YouTube video for busy readers, from notes taken on \
             its consecutive parts. Each point starts with the time in seconds where it is made, \
             like [754s]. {SHAPE} \"tldr\": one to three sentences on what the whole video is \
             about and its main takeaway. \"key_points\": the 5 to 8 most important points of the \
             whole video, in time order, spread from its beginning to its end rather than taken \
             from the first parts only, each a self-contained sentence, with \"at_seconds\" copied \
             from the point it comes from. {}",
            language.instruction("notes")
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
pub(super) fn render_note(label: &str, (from, to): (u32, u32), draft: &Draft) -> String {
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

pub(super) fn note_start(note: &str) -> Option<u32> {
    note_times(note).first().copied()
}

pub(super) fn note_end(note: &str) -> Option<u32> {
    note_times(note).last().copied()
}
