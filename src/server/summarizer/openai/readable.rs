//! What a reader sees while an answer streams in: the TL;DR, then each key
//! point on its own line starting with `• ` (the shape of the final
//! summary, so the page does not jump when it lands).

use crate::server::summarizer::{
    Progress, ProgressFn,
    answer::{Line, classify_line, clean_text},
};

/// Forwards the readable part of the streamed answer to the progress
/// callback.
pub(super) struct TextSink<'a> {
    progress: Option<&'a ProgressFn>,
    readable: ReadableText,
    /// Some text reached the reader (a retry must withdraw it).
    pub(super) emitted: bool,
}

impl<'a> TextSink<'a> {
    pub(super) fn new(progress: Option<&'a ProgressFn>) -> TextSink<'a> {
        TextSink {
            progress,
            readable: ReadableText::default(),
            emitted: false,
        }
    }

    pub(super) fn push(&mut self, delta: &str) {
        if self.progress.is_some() {
            let text = self.readable.push(delta);
            self.emit(text);
        }
    }

    /// The answer is complete: show what was held back (a last line).
    pub(super) fn finish(&mut self) {
        if self.progress.is_some() {
            let text = self.readable.finish();
            self.emit(text);
        }
    }

    fn emit(&mut self, text: String) {
        if let Some(progress) = self.progress
            && !text.is_empty()
        {
            self.emitted = true;
            progress(Progress::Text(text));
        }
    }
}

/// Turns an answer, as it streams in, into readable text.
///
/// A JSON answer (a line that starts with `{`) is followed by a tiny
/// incremental lexer that shows the `tldr` string and each point's `text`,
/// character by character. Anything else is markdown, shown a line at a
/// time as [`classify_line`] reads it: headings, fences and intros
/// (`Here is the summary:`) are skipped, so prose before a fenced JSON answer
/// does not show either.
#[derive(Default)]
pub(super) struct ReadableText {
    json: Option<JsonText>,
    /// The markdown line being received.
    line: String,
    wrote_anything: bool,
    /// A blank line, heading… since the last text: the next text starts a
    /// new paragraph.
    paragraph_break: bool,
}

impl ReadableText {
    pub(super) fn push(&mut self, delta: &str) -> String {
        let mut out = String::new();
        for c in delta.chars() {
            if let Some(json) = &mut self.json {
                json.step(c, &mut out);
                continue;
            }
            if c == '{' && self.line.trim().is_empty() {
                let mut json = JsonText {
                    wrote_anything: self.wrote_anything,
                    ..JsonText::default()
                };
                json.step(c, &mut out);
                self.json = Some(json);
                continue;
            }
            if c == '\n' {
                let line = std::mem::take(&mut self.line);
                self.markdown_line(&line, &mut out);
            } else {
                self.line.push(c);
            }
        }
        out
    }

    pub(super) fn finish(&mut self) -> String {
        let mut out = String::new();
        if self.json.is_none() {
            let line = std::mem::take(&mut self.line);
            self.markdown_line(&line, &mut out);
        }
        out
    }

    fn markdown_line(&mut self, line: &str, out: &mut String) {
        if line.contains("```") || line.contains("~~~") {
            self.paragraph_break = true;
            return;
        }
        let (bullet, text) = match classify_line(line) {
            Line::Point { text, .. } => (true, text),
            Line::Tldr(text) | Line::Text(text) if !text.is_empty() => (false, text),
            _ => {
                self.paragraph_break = true;
                return;
            }
        };
        let text = clean_text(&text);
        if text.is_empty() {
            return;
        }
        if self.wrote_anything {
            out.push_str(match (bullet, self.paragraph_break) {
                (true, _) => "\n",
                (false, true) => "\n\n",
                (false, false) => " ",
            });
        }
        if bullet {
            out.push_str("• ");
        }
        out.push_str(&text);
        self.wrote_anything = true;
        self.paragraph_break = false;
    }
}

/// The JSON lexer: `tldr` (at the top level) and `text` (inside a point).
#[derive(Default)]
struct JsonText {
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

impl JsonText {
    fn step(&mut self, c: char, out: &mut String) {
        if self.finished {
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
                    let key = self.last_key.to_ascii_lowercase();
                    if depth == 1 && matches!(key.as_str(), "tldr" | "tl;dr" | "summary") {
                        self.emitting = true;
                        if self.wrote_anything {
                            out.push_str("\n\n");
                        }
                    } else if depth > 1 && matches!(key.as_str(), "text" | "point") {
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

    fn read_in_pieces(answer: &str, size: usize) -> String {
        let mut readable = ReadableText::default();
        let chars: Vec<char> = answer.chars().collect();
        let mut out: String = chars
            .chunks(size)
            .map(|c| readable.push(&c.iter().collect::<String>()))
            .collect();
        out.push_str(&readable.finish());
        out
    }

    #[test]
    fn json_is_followed_in_any_split() {
        let answer = "Sure! ```json\n{\"tldr\": \"Rust \\\"rocks\\\" \\u00e9\\ud83d\\ude00.\", \"key_points\": [{\"text\": \"First\\npoint\", \"at_seconds\": 5}, {\"at_seconds\": 9, \"text\": \"Second\"}]}\n```";
        let expected = "Rust \"rocks\" é😀.\n• First\npoint\n• Second";
        for size in 1..=7 {
            assert_eq!(
                read_in_pieces(answer, size),
                expected,
                "split every {size} chars"
            );
        }
    }

    #[test]
    fn markdown_is_shown_a_line_at_a_time() {
        let answer = "Here is the summary:\n\n## TL;DR\nRust frees memory\nwithout a GC.\n\n## Key points\n- **[0:04]** One owner per value.\n- [0:15] Borrowing lends a value\n\nThanks!";
        let expected = "Rust frees memory without a GC.\n• One owner per value.\n• Borrowing lends a value\n\nThanks!";
        for size in [1, 3, 50, 1000] {
            assert_eq!(
                read_in_pieces(answer, size),
                expected,
                "split every {size} chars"
            );
        }
        // Only complete lines are shown until the answer ends.
        let mut readable = ReadableText::default();
        assert_eq!(readable.push("TL;DR: Half a li"), "");
        assert_eq!(readable.push("ne.\n- [1:00] Po"), "Half a line.");
        assert_eq!(readable.finish(), "\n• Po");
    }
}
