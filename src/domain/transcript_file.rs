//! Transcripts members paste themselves: plain text, SubRip (.srt) or
//! WebVTT (.vtt), told apart by their content.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedLine {
    pub start_ms: u64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptFileError {
    #[error(
        "The transcript is empty. Paste the text of the video, or the contents of a .srt or .vtt file."
    )]
    Empty,
    #[error("The transcript is too long (over {0} characters).")]
    TooLong(usize),
}

pub const MAX_TRANSCRIPT_CHARS: usize = 400_000;
/// Plain text has no timestamps; we place lines at a speaking pace.
const WORDS_PER_MINUTE: u64 = 150;

pub fn parse_transcript(input: &str) -> Result<Vec<TimedLine>, TranscriptFileError> {
    if input.chars().count() > MAX_TRANSCRIPT_CHARS {
        return Err(TranscriptFileError::TooLong(MAX_TRANSCRIPT_CHARS));
    }
    let input = input.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let lines = if input.contains("-->") {
        parse_cues(&input)
    } else {
        parse_plain(&input)
    };
    if lines.is_empty() {
        Err(TranscriptFileError::Empty)
    } else {
        Ok(lines)
    }
}

/// SRT and VTT both write cues as a timing line (`start --> end`) followed
/// by text lines; the rest (numbers, `WEBVTT`, `NOTE`, styles) is skipped.
fn parse_cues(input: &str) -> Vec<TimedLine> {
    let mut lines = Vec::new();
    for block in input.split("\n\n") {
        let mut rows = block.lines().skip_while(|row| !row.contains("-->"));
        let Some(timing) = rows.next() else { continue };
        let Some(start_ms) = timing
            .split("-->")
            .next()
            .and_then(|t| parse_clock(t.trim()))
        else {
            continue;
        };
        let text = rows
            .map(strip_tags)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() {
            lines.push(TimedLine { start_ms, text });
        }
    }
    lines
}

fn parse_plain(input: &str) -> Vec<TimedLine> {
    let mut words_so_far = 0u64;
    input
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let start_ms = words_so_far * 60_000 / WORDS_PER_MINUTE;
            words_so_far += line.split_whitespace().count() as u64;
            TimedLine {
                start_ms,
                text: line.to_owned(),
            }
        })
        .collect()
}

/// `01:02:03,456` (SRT), `01:02:03.456` or `02:03.456` (VTT).
fn parse_clock(value: &str) -> Option<u64> {
    let value = value.split_whitespace().next()?.replace(',', ".");
    let (clock, millis) = value.split_once('.').unwrap_or((&value, "0"));
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let seconds = match parts.as_slice() {
        [h, m, s] => h * 3600 + m * 60 + s,
        [m, s] => m * 60 + s,
        _ => return None,
    };
    let millis: u64 = format!("{millis:0<3}").get(..3)?.parse().ok()?;
    Some(seconds * 1000 + millis)
}

fn strip_tags(row: &str) -> String {
    let mut out = String::with_capacity(row.len());
    let mut in_tag = false;
    for c in row.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt() {
        let srt = "1\n00:00:01,500 --> 00:00:04,000\nHello <i>there</i>\n\n2\n01:02:03,004 --> 01:02:05,000\nSecond line\nwraps here\n";
        assert_eq!(
            parse_transcript(srt).unwrap(),
            vec![
                TimedLine {
                    start_ms: 1500,
                    text: "Hello there".into()
                },
                TimedLine {
                    start_ms: 3_723_004,
                    text: "Second line wraps here".into()
                },
            ]
        );
    }

    #[test]
    fn vtt_with_header_notes_and_short_clocks() {
        let vtt = "\u{feff}WEBVTT\r\n\r\nNOTE a comment\r\n\r\nintro\r\n00:05.250 --> 00:07.000 align:start\r\n<v Ada>Welcome\r\n\r\n00:01:10.000 --> 00:01:12.000\r\nOn to it\r\n";
        let lines = parse_transcript(vtt).unwrap();
        assert_eq!(
            lines[0],
            TimedLine {
                start_ms: 5250,
                text: "Welcome".into()
            }
        );
        assert_eq!(lines[1].start_ms, 70_000);
    }

    #[test]
    fn plain_text_is_paced_by_words() {
        let lines = parse_transcript("one two three\n\nfour\n").unwrap();
        assert_eq!(lines[0].start_ms, 0);
        assert_eq!(lines[1].start_ms, 3 * 60_000 / 150);
    }

    #[test]
    fn empty_and_huge_are_refused() {
        assert_eq!(parse_transcript("  \n\n"), Err(TranscriptFileError::Empty));
        assert_eq!(
            parse_transcript("1\n00:00:01,000 --> 00:00:02,000\n\n"),
            Err(TranscriptFileError::Empty)
        );
        assert!(matches!(
            parse_transcript(&"x".repeat(MAX_TRANSCRIPT_CHARS + 1)),
            Err(TranscriptFileError::TooLong(_))
        ));
    }
}
