//! Splitting a transcript into pieces that fit a model's context, keeping
//! every line's timestamp.
//!
//! Tokens are approximated as characters / 4 (rounded up), which is close
//! for English with OpenAI's tokenizers and errs on the safe side for most
//! other text; the budget is a knob, not an exact limit.

use super::{TranscriptLine, clean_caption};

/// Approximate token count of `text`: chars / 4, rounded up.
pub fn approx_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// One transcript line as the model sees it: `[123s] text`.
pub fn format_line(line: &TranscriptLine, text: &str) -> String {
    format!("[{}s] {}", line.start_ms / 1000, text)
}

/// About how many tokens `lines` make as the model sees them (each line
/// cleaned and formatted, as [`chunk_transcript`] does): what a per-summary
/// cap is checked against before any model call.
pub fn transcript_tokens(lines: &[TranscriptLine]) -> u64 {
    lines
        .iter()
        .map(|line| {
            let cleaned = clean_caption(&line.text);
            if cleaned.is_empty() {
                0
            } else {
                approx_tokens(&format_line(line, &cleaned)) as u64 + 1
            }
        })
        .sum()
}

/// A run of consecutive lines, formatted for a prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub first_second: u32,
    pub last_second: u32,
    /// `[123s] text` lines separated by newlines.
    pub text: String,
}

/// Splits `lines` into chunks of at most `budget_tokens` (approximately)
/// each, never splitting a line. A single line longer than the budget is
/// cut to fit. Lines that are empty after removing caption noise are
/// dropped. Runs in one pass.
pub fn chunk_transcript(lines: &[TranscriptLine], budget_tokens: usize) -> Vec<Chunk> {
    let budget = budget_tokens.max(16);
    let mut chunks = Vec::new();
    let mut current: Option<Chunk> = None;
    let mut current_tokens = 0usize;
    for line in lines {
        let cleaned = clean_caption(&line.text);
        if cleaned.is_empty() {
            continue;
        }
        let mut formatted = format_line(line, &cleaned);
        let mut tokens = approx_tokens(&formatted) + 1; // + the newline
        if tokens > budget {
            formatted = formatted.chars().take((budget - 1) * 4).collect();
            tokens = budget;
        }
        let second = seconds(line.start_ms);
        if current.is_some() && current_tokens + tokens > budget {
            chunks.extend(current.take());
            current_tokens = 0;
        }
        let chunk = current.get_or_insert_with(|| Chunk {
            first_second: second,
            last_second: second,
            text: String::new(),
        });
        if !chunk.text.is_empty() {
            chunk.text.push('\n');
        }
        chunk.text.push_str(&formatted);
        chunk.last_second = second;
        current_tokens += tokens;
    }
    chunks.extend(current);
    chunks
}

/// Groups already-formatted pieces (notes) into batches of at most
/// `budget_tokens`, keeping order; every batch holds at least one piece.
pub fn group_by_budget(pieces: &[String], budget_tokens: usize) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut tokens = 0usize;
    for piece in pieces {
        let cost = approx_tokens(piece) + 1;
        match groups.last_mut() {
            Some(group) if tokens + cost <= budget_tokens => {
                group.push(piece.clone());
                tokens += cost;
            }
            _ => {
                groups.push(vec![piece.clone()]);
                tokens = cost;
            }
        }
    }
    groups
}

pub(crate) fn seconds(start_ms: u64) -> u32 {
    u32::try_from(start_ms / 1000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: u64, text: &str) -> TranscriptLine {
        TranscriptLine {
            start_ms: s * 1000,
            text: text.into(),
        }
    }

    #[test]
    fn chunks_respect_the_budget_and_keep_every_line() {
        let lines: Vec<_> = (0..100)
            .map(|i| line(i * 5, "some words spoken here"))
            .collect();
        let chunks = chunk_transcript(&lines, 50);
        assert!(chunks.len() > 5);
        for chunk in &chunks {
            assert!(approx_tokens(&chunk.text) <= 50, "{}", chunk.text);
        }
        let total: usize = chunks.iter().map(|c| c.text.lines().count()).sum();
        assert_eq!(total, 100);
        assert_eq!(chunks[0].first_second, 0);
        assert_eq!(chunks.last().unwrap().last_second, 495);
        for pair in chunks.windows(2) {
            assert!(pair[0].last_second < pair[1].first_second);
        }
    }

    #[test]
    fn an_overlong_line_is_cut_and_noise_dropped() {
        let long = "x".repeat(1000);
        let chunks = chunk_transcript(&[line(0, "[Music]"), line(1, &long)], 20);
        assert_eq!(chunks.len(), 1);
        assert!(approx_tokens(&chunks[0].text) <= 20);
        assert_eq!(chunks[0].first_second, 1);
    }

    #[test]
    fn the_token_count_matches_what_the_chunks_hold() {
        let lines: Vec<_> = (0..100)
            .map(|i| line(i * 5, "[Music] some words spoken here"))
            .collect();
        let tokens = transcript_tokens(&lines);
        let chunked: usize = chunk_transcript(&lines, 1_000_000)
            .iter()
            .map(|c| approx_tokens(&c.text))
            .sum();
        // Never under what the chunks hold (a cap must not be slipped
        // past), and over it by at most the rounding and newline per line.
        assert!(tokens >= chunked as u64, "{tokens} vs {chunked}");
        assert!(tokens <= chunked as u64 + 2 * 100, "{tokens} vs {chunked}");
        assert_eq!(transcript_tokens(&[line(0, "[Music]")]), 0);
    }

    #[test]
    fn groups_keep_order() {
        let pieces: Vec<String> = (0..10)
            .map(|i| format!("note {i} {}", "y".repeat(30)))
            .collect();
        let groups = group_by_budget(&pieces, 25);
        assert!(groups.len() > 1);
        assert_eq!(groups.concat(), pieces);
    }
}
