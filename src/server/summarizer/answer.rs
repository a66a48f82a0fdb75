//! A model's answer, whatever its shape, turned into a TL;DR and key points
//! with timestamps.
//!
//! We ask for JSON, but several local servers and older models ignore
//! `response_format` and answer in markdown. Accepted:
//! - JSON `{"tldr", "key_points": [{"text", "at_seconds"}]}` and close
//!   variants (`summary`, `points`, plain-string points, `"1:23"` times, a
//!   bare array of points), on its own, fenced or inside prose;
//! - markdown or plain text: a `TL;DR:` line, else the first paragraph, is
//!   the TL;DR; bullet (`-`, `*`, `•`, `+`) and numbered (`1.`, `1)`) lines,
//!   and lines that start with a timestamp, are key points. Headings such as
//!   `## Key points` or `Key points:` are neither.
//!
//! Timestamps `[mm:ss]`, `[h:mm:ss]`, `(mm:ss)`, `[754s]`, `**12:34**`,
//! `` `12:34` `` and `12:34 –` / `12:34 -` / `12:34:` / `12:34 ` prefixes, or a
//! bracketed one at the end of a point, become `at_seconds` and leave the
//! text. Every time is clamped into the range the answer is about (for the
//! whole video: its first line's start to its last line's start); a point
//! without one takes the time of the point before it.
//!
//! An answer with no usable text is [`SummarizeError::NoSummary`]; one with
//! text that cannot be a summary (a refusal, an HTML page, JSON of another
//! shape or cut off) is [`SummarizeError::BadResponse`].

use super::{KeyPoint, SummarizeError};
use serde_json::{Map, Value};

/// At most this many key points are kept (in time order).
pub const MAX_KEY_POINTS: usize = 12;

/// A TL;DR and key points, before they become a summary or a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub tldr: String,
    /// In time order, within the range, without duplicates.
    pub key_points: Vec<KeyPoint>,
}

/// Parses `answer` into a draft whose timestamps lie in `from..=to` seconds.
pub fn parse_answer(answer: &str, (from, to): (u32, u32)) -> Result<Draft, SummarizeError> {
    let text = answer.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(SummarizeError::NoSummary("the answer is empty".into()));
    }
    let range = (from, to.max(from));
    if let Some(found) = find_json_summary(text) {
        return finish(found, range);
    }
    if looks_like_html(text) {
        return Err(SummarizeError::BadResponse(format!(
            "an HTML page instead of a summary: {}",
            shorten(text, 120)
        )));
    }
    if let Some(json) = json_start(text) {
        return Err(SummarizeError::BadResponse(format!(
            "a JSON answer without \"tldr\" or \"key_points\", or cut off: {}",
            shorten(json, 120)
        )));
    }
    let parsed = parse_markdown(text);
    if parsed.tldr.is_none() && parsed.points.is_empty() {
        return Err(SummarizeError::NoSummary(format!(
            "no readable text in the answer: {}",
            shorten(text, 120)
        )));
    }
    if !parsed.labelled && parsed.points.is_empty() {
        let tldr = parsed.tldr.as_deref().unwrap_or_default();
        if is_refusal(tldr) {
            return Err(SummarizeError::BadResponse(format!(
                "the model did not summarize: {}",
                shorten(tldr, 120)
            )));
        }
    }
    finish(
        Found {
            tldr: parsed.tldr.unwrap_or_default(),
            points: parsed.points,
        },
        range,
    )
}

/// What an answer holds before times are clamped and points tidied.
struct Found {
    tldr: String,
    points: Vec<(String, Option<u32>)>,
}

fn finish(found: Found, (from, to): (u32, u32)) -> Result<Draft, SummarizeError> {
    let mut key_points: Vec<KeyPoint> = Vec::new();
    let mut previous = from;
    for (text, at) in found.points {
        let text = clean_text(&text);
        if !has_words(&text) {
            continue;
        }
        let at = at.unwrap_or(previous).clamp(from, to);
        previous = at;
        if key_points.iter().any(|p| p.text == text) {
            continue;
        }
        key_points.push(KeyPoint {
            text,
            at_seconds: at,
        });
    }
    let mut tldr = clean_text(&found.tldr);
    if !has_words(&tldr) {
        // Only points: the first one says what the video is about.
        tldr = key_points
            .first()
            .map(|p| p.text.clone())
            .unwrap_or_default();
    }
    if tldr.is_empty() {
        return Err(SummarizeError::NoSummary(
            "the answer has neither a TL;DR nor key points".into(),
        ));
    }
    key_points.sort_by_key(|p| p.at_seconds);
    key_points.truncate(MAX_KEY_POINTS);
    Ok(Draft { tldr, key_points })
}

// ---------------------------------------------------------------------------
// JSON.

/// The first JSON object in `text` that looks like a summary (or a bare array
/// of points): servers that ignore `response_format` wrap it in prose or
/// code fences.
fn find_json_summary(text: &str) -> Option<Found> {
    let starts = text
        .char_indices()
        .filter(|(_, c)| matches!(c, '{' | '['))
        .take(40);
    for (at, _) in starts {
        let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Value>();
        let Some(Ok(value)) = values.next() else {
            continue;
        };
        let found = match &value {
            Value::Object(object) => summary_object(object, 0).map(from_object),
            Value::Array(items) if items.iter().any(|i| point_from_json(i).is_some()) => {
                Some(Found {
                    tldr: String::new(),
                    points: items.iter().filter_map(point_from_json).collect(),
                })
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `Summary`, `key_points`, `TL;DR` → `summary`, `keypoints`, `tldr`.
fn normalized_key(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

const TLDR_KEYS: [&str; 3] = ["tldr", "summary", "overview"];
const POINTS_KEYS: [&str; 5] = [
    "keypoints",
    "points",
    "highlights",
    "keytakeaways",
    "takeaways",
];

fn field<'a>(object: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| names.contains(&normalized_key(k).as_str()))
        .map(|(_, v)| v)
}

/// The object holding the summary: this one, or one nested in it
/// (`{"summary": {"tldr": …}}`).
fn summary_object(object: &Map<String, Value>, depth: u32) -> Option<&Map<String, Value>> {
    let tldr = field(object, &TLDR_KEYS).is_some_and(|v| v.is_string() || v.is_array());
    let points = field(object, &POINTS_KEYS).is_some_and(Value::is_array);
    if tldr || points {
        return Some(object);
    }
    if depth >= 2 {
        return None;
    }
    object
        .values()
        .filter_map(Value::as_object)
        .find_map(|inner| summary_object(inner, depth + 1))
}

fn from_object(object: &Map<String, Value>) -> Found {
    let tldr = match field(object, &TLDR_KEYS) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let points = field(object, &POINTS_KEYS)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(point_from_json).collect())
        .unwrap_or_default();
    Found { tldr, points }
}

fn point_from_json(item: &Value) -> Option<(String, Option<u32>)> {
    match item {
        Value::String(s) => Some(point_from_text(s)),
        Value::Object(o) => {
            let text = [
                "text",
                "point",
                "description",
                "summary",
                "content",
                "title",
            ]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))?;
            let at = [
                "at_seconds",
                "seconds",
                "timestamp",
                "time",
                "start",
                "start_time",
                "at",
            ]
            .iter()
            .find_map(|k| o.get(*k).and_then(json_seconds));
            let (text, inline) = point_from_text(text);
            Some((text, at.or(inline)))
        }
        _ => None,
    }
}

/// `123`, `123.4`, `"123"`, `"123s"`, `"2:03"`, `"[1:02:03]"`.
fn json_seconds(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        Value::String(s) => {
            let s = s.trim().trim_start_matches(['[', '(']);
            let s = s.trim_end_matches([']', ')']).trim();
            if let Some((seconds, used)) = clock(s, true)
                && used == s.len()
            {
                return Some(seconds);
            }
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u32)
        }
        _ => None,
    }
}

/// Where JSON that is not a summary starts: the answer itself, or a line.
fn json_start(text: &str) -> Option<&str> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('{') || (offset == 0 && trimmed.starts_with('[')) {
            return Some(&text[offset + line.len() - trimmed.len()..]);
        }
        offset += line.len();
    }
    None
}

fn looks_like_html(text: &str) -> bool {
    let lower = text.get(..200.min(text.len())).unwrap_or(text);
    let lower = lower.to_ascii_lowercase();
    lower.starts_with("<!doctype") || lower.starts_with("<html") || lower.starts_with("<body")
}

fn is_refusal(text: &str) -> bool {
    let lower = text.to_lowercase().replace('’', "'");
    [
        "i'm sorry",
        "i am sorry",
        "sorry,",
        "i apologize",
        "i cannot",
        "i can't",
        "i can not",
        "i'm unable",
        "i am unable",
        "i'm not able",
        "i am not able",
        "i won't",
        "i will not",
        "as an ai",
        "unfortunately, i",
    ]
    .iter()
    .any(|start| lower.starts_with(start))
}

// ---------------------------------------------------------------------------
// Markdown and plain text.

/// One line of a markdown answer, as far as a summary cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Blank,
    /// ```` ``` ```` or `~~~`, with the language after it.
    Fence(String),
    /// `---`, `***`.
    Rule,
    /// `## Key points`, `**Highlights**`, `Here are the key points:`.
    Heading,
    /// `TL;DR: …` or `**Summary:** …`; empty when the TL;DR follows on the
    /// next lines (`## TL;DR`).
    Tldr(String),
    /// A bullet, a numbered line, or a line led by a timestamp.
    Point {
        text: String,
        at: Option<u32>,
    },
    Text(String),
}

/// Classifies one line (without its newline).
pub(crate) fn classify_line(line: &str) -> Line {
    let mut t = line.trim();
    while let Some(rest) = t.strip_prefix('>') {
        t = rest.trim_start();
    }
    if t.is_empty() {
        return Line::Blank;
    }
    if let Some(lang) = t.strip_prefix("```").or_else(|| t.strip_prefix("~~~")) {
        return Line::Fence(lang.trim().to_ascii_lowercase());
    }
    let marks: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if marks.len() >= 3
        && (marks.chars().all(|c| c == '-')
            || marks.chars().all(|c| c == '*')
            || marks.chars().all(|c| c == '_')
            || marks.chars().all(|c| c == '='))
    {
        return Line::Rule;
    }
    if let Some(heading) = atx_heading(t) {
        return match tldr_label(heading) {
            Some(rest) => Line::Tldr(rest.to_owned()),
            None => Line::Heading,
        };
    }
    if let Some(content) = bullet(t) {
        if let Some(rest) = tldr_label(content)
            && !rest.is_empty()
        {
            return Line::Tldr(rest.to_owned());
        }
        let (text, at) = point_from_text(content);
        return Line::Point { text, at };
    }
    if let Some(rest) = tldr_label(t) {
        return Line::Tldr(rest.to_owned());
    }
    if let Some((at, rest)) = leading_timestamp(t)
        && has_words(rest)
    {
        let (text, _) = point_from_text(rest);
        return Line::Point { text, at: Some(at) };
    }
    if is_heading_like(t) {
        return Line::Heading;
    }
    Line::Text(t.to_owned())
}

/// `## Title ##` → `Title`.
fn atx_heading(t: &str) -> Option<&str> {
    let hashes = t.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &t[hashes..];
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

/// The content of a bullet (`-`, `*`, `•`, `+`, `–`) or numbered (`1.`,
/// `1)`) line.
fn bullet(t: &str) -> Option<&str> {
    for marker in ['-', '*', '•', '+', '–', '◦', '▪'] {
        if let Some(rest) = t.strip_prefix(marker)
            && rest.starts_with(char::is_whitespace)
        {
            return Some(rest.trim());
        }
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if (1..=3).contains(&digits) {
        let rest = &t[digits..];
        if let Some(rest) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))
            && rest.starts_with(char::is_whitespace)
        {
            return Some(rest.trim());
        }
    }
    None
}

/// After a `TL;DR` (or `Summary`, `Overview`) label, in any emphasis, with
/// `:` or a dash after it: the rest of the line. A label alone on its line
/// gives `""`.
fn tldr_label(t: &str) -> Option<&str> {
    let s = t.trim_start_matches(['*', '_']);
    let lower = s.to_ascii_lowercase();
    let label = [
        "tl;dr", "tl; dr", "tl:dr", "tl-dr", "tl dr", "tldr", "summary", "overview",
    ]
    .into_iter()
    .find(|label| lower.starts_with(label))?;
    let rest = &s[label.len()..];
    if rest.starts_with(|c: char| c.is_alphanumeric()) {
        return None;
    }
    let rest = rest.trim_start_matches(['*', '_']).trim_start();
    let (rest, separated) = match rest.strip_prefix([':', '-', '–', '—']) {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let rest = rest.trim_start_matches(['*', '_']).trim();
    if !separated && !rest.is_empty() {
        // "Summary of the talk…" is a sentence, not a label.
        return None;
    }
    Some(rest)
}

/// A line that introduces what follows rather than saying something:
/// `**Key points**`, `Key takeaways:`, `Here is a summary of the video:`.
fn is_heading_like(t: &str) -> bool {
    let inner = t.trim_end_matches(['*', '_']);
    let bold_only = (t.starts_with("**") || t.starts_with("__"))
        && (t.ends_with("**") || t.ends_with("__") || t.ends_with(':'))
        && !inner.trim_start_matches(['*', '_']).contains("**");
    bold_only || (inner.ends_with(':') && inner.chars().count() <= 80)
}

/// A point's text with a leading or trailing timestamp taken out.
fn point_from_text(text: &str) -> (String, Option<u32>) {
    let (at, rest) = match leading_timestamp(text) {
        Some((at, rest)) => (Some(at), rest),
        None => (None, text),
    };
    let rest = rest.replace("**", "").replace("__", "");
    let rest = rest.trim();
    match (at, trailing_timestamp(rest)) {
        (None, Some((at, before))) => (before.to_owned(), Some(at)),
        _ => (rest.to_owned(), at),
    }
}

/// `[12:34]`, `(1:02:03)`, `[754s]`, `**12:34**`, `` `12:34` ``, `[1:00–2:00]`,
/// or a bare `12:34` followed by a space, a dash or a colon, at the start of
/// `text`: its seconds and what follows the separators after it.
fn leading_timestamp(text: &str) -> Option<(u32, &str)> {
    let mut rest = text.trim_start();
    let mut closers: Vec<&str> = Vec::new();
    while closers.len() < 4 {
        let (wrapper, closer) = if rest.starts_with("**") {
            ("**", "**")
        } else if rest.starts_with("__") {
            ("__", "__")
        } else if rest.starts_with('`') {
            ("`", "`")
        } else if rest.starts_with('[') {
            ("[", "]")
        } else if rest.starts_with('(') {
            ("(", ")")
        } else {
            break;
        };
        closers.push(closer);
        rest = &rest[wrapper.len()..];
    }
    let bracketed = closers.iter().any(|c| matches!(*c, "]" | ")" | "`"));
    let (seconds, used) = clock(rest, bracketed)?;
    rest = &rest[used..];
    if bracketed {
        // A range: keep its start.
        let after = rest.trim_start();
        if let Some(tail) = after
            .strip_prefix(['-', '–', '—', '~'])
            .or_else(|| after.strip_prefix("to "))
            && let Some((_, used)) = clock(tail.trim_start(), true)
        {
            rest = &tail.trim_start()[used..];
        }
    }
    for closer in closers.iter().rev() {
        let trimmed = rest.trim_start();
        match trimmed.strip_prefix(closer) {
            Some(after) => rest = after,
            // "**12:34 – Title**": the bold closes later, the text keeps it.
            None if matches!(*closer, "**" | "__") => {}
            None => return None,
        }
    }
    if closers.is_empty() && !(rest.is_empty() || rest.starts_with([' ', '\t', ':', '-', '–', '—']))
    {
        return None;
    }
    let rest = rest.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | '-' | '–' | '—' | '|' | '·' | ',')
    });
    Some((seconds, rest))
}

/// A bracketed timestamp at the end of `text` (`… (12:34)`, `… [at 1:02:03]`).
fn trailing_timestamp(text: &str) -> Option<(u32, &str)> {
    let close = text.chars().last()?;
    let open = match close {
        ')' => '(',
        ']' => '[',
        _ => return None,
    };
    let start = text.rfind(open)?;
    let inner = text[start + 1..text.len() - 1].trim();
    let inner = inner
        .strip_prefix("at ")
        .or_else(|| inner.strip_prefix("@"))
        .unwrap_or(inner)
        .trim();
    let (seconds, used) = clock(inner, true)?;
    let tail = inner[used..].trim_start();
    let range_tail = tail
        .strip_prefix(['-', '–', '—', '~'])
        .map(str::trim_start)
        .and_then(|t| clock(t, true).map(|(_, n)| t.len() == n));
    if !tail.is_empty() && range_tail != Some(true) {
        return None;
    }
    let before = text[..start].trim_end().trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | '-' | '–' | '—' | '|' | ',')
    });
    Some((seconds, before))
}

/// `m:ss`, `mm:ss`, `h:mm:ss` (and, when `seconds_ok`, `754s`) at the start
/// of `s`: the seconds and the bytes used.
fn clock(s: &str, seconds_ok: bool) -> Option<(u32, usize)> {
    let bytes = s.as_bytes();
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let first = digits(0);
    if first == 0 || first > 3 {
        return None;
    }
    let number = |from: usize, len: usize| s[from..from + len].parse::<u32>().ok();
    let mut parts = vec![number(0, first)?];
    let mut at = first;
    while parts.len() < 3 && bytes.get(at) == Some(&b':') && digits(at + 1) == 2 {
        parts.push(number(at + 1, 2)?);
        at += 3;
    }
    match parts.as_slice() {
        [n] if seconds_ok && bytes.get(at) == Some(&b's') => {
            let next = s_next_is_word(bytes, at + 1);
            (!next).then_some((*n, at + 1))
        }
        [m, sec] if *sec < 60 => Some((m * 60 + sec, at)),
        [h, m, sec] if *m < 60 && *sec < 60 => Some((h * 3600 + m * 60 + sec, at)),
        _ => None,
    }
}

fn s_next_is_word(bytes: &[u8], at: usize) -> bool {
    bytes.get(at).is_some_and(|b| b.is_ascii_alphanumeric())
}

/// What a markdown answer holds.
struct Markdown {
    tldr: Option<String>,
    /// The TL;DR came from a `TL;DR:` label (not a guess).
    labelled: bool,
    points: Vec<(String, Option<u32>)>,
}

fn parse_markdown(text: &str) -> Markdown {
    let mut labelled_tldr: Option<String> = None;
    let mut first_paragraph: Option<String> = None;
    let mut points: Vec<(String, Option<u32>)> = Vec::new();
    // The paragraph being read, and whether it is the TL;DR.
    let mut paragraph: Option<(String, bool)> = None;
    let mut next_is_tldr = false;
    let mut after_point = false;
    let mut in_code = false;

    let mut flush = |paragraph: &mut Option<(String, bool)>| {
        if let Some((text, is_tldr)) = paragraph.take() {
            let text = clean_text(&text);
            if !has_words(&text) {
                return;
            }
            if is_tldr {
                labelled_tldr.get_or_insert(text);
            } else if !text.ends_with(':') {
                first_paragraph.get_or_insert(text);
            }
        }
    };

    for raw in text.lines() {
        let line = classify_line(raw);
        if in_code {
            in_code = !matches!(line, Line::Fence(_));
            continue;
        }
        match line {
            Line::Fence(lang) => {
                flush(&mut paragraph);
                after_point = false;
                // Code in a summary is an example, not a point; a fence
                // around the whole answer (```markdown) is just a wrapper.
                in_code = !matches!(
                    lang.as_str(),
                    "" | "markdown" | "md" | "text" | "plain" | "json"
                );
            }
            Line::Blank | Line::Rule | Line::Heading => {
                flush(&mut paragraph);
                after_point = false;
            }
            Line::Tldr(rest) => {
                flush(&mut paragraph);
                after_point = false;
                if rest.is_empty() {
                    next_is_tldr = true;
                } else {
                    paragraph = Some((rest, true));
                }
            }
            Line::Point { text, at } => {
                flush(&mut paragraph);
                points.push((text, at));
                after_point = true;
            }
            Line::Text(text) => {
                if after_point && let Some((last, _)) = points.last_mut() {
                    // A point's continuation line.
                    last.push(' ');
                    last.push_str(&text);
                    continue;
                }
                match &mut paragraph {
                    Some((so_far, _)) => {
                        so_far.push(' ');
                        so_far.push_str(&text);
                    }
                    None => {
                        paragraph = Some((text, std::mem::take(&mut next_is_tldr)));
                    }
                }
            }
        }
    }
    flush(&mut paragraph);
    let labelled = labelled_tldr.is_some();
    Markdown {
        tldr: labelled_tldr.or(first_paragraph),
        labelled,
        points,
    }
}

/// Emphasis markers out, whitespace collapsed, stray separators trimmed.
pub(crate) fn clean_text(text: &str) -> String {
    let text = text.replace("**", "").replace("__", "");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.trim_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '–' | '—' | '|' | '•'))
        .to_owned()
}

fn has_words(text: &str) -> bool {
    text.chars().filter(|c| c.is_alphanumeric()).count() >= 2
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

    /// The whole video: 0 s to 1 h 05 min.
    const VIDEO: (u32, u32) = (0, 3900);

    fn ok(answer: &str) -> Draft {
        parse_answer(answer, VIDEO).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }

    fn points(draft: &Draft) -> Vec<(&str, u32)> {
        draft
            .key_points
            .iter()
            .map(|p| (p.text.as_str(), p.at_seconds))
            .collect()
    }

    #[test]
    fn strict_json_as_the_schema_asks() {
        let d = ok(
            r#"{"tldr":"Rust frees memory through ownership.","key_points":[{"text":"One owner per value.","at_seconds":4},{"text":"Borrowing.","at_seconds":15}]}"#,
        );
        assert_eq!(d.tldr, "Rust frees memory through ownership.");
        assert_eq!(
            points(&d),
            [("One owner per value.", 4), ("Borrowing.", 15)]
        );
    }

    #[test]
    fn json_in_a_fence_after_prose() {
        let d = ok(
            "Sure! Here is the summary:\n```json\n{\"tldr\": \"About Rust.\", \"key_points\": [{\"text\": \"Owners\", \"at_seconds\": \"1:05\"}]}\n```\nLet me know if you need more.",
        );
        assert_eq!(d.tldr, "About Rust.");
        assert_eq!(points(&d), [("Owners", 65)]);
    }

    #[test]
    fn json_of_another_schema_and_string_points() {
        let d = ok(
            r#"{"summary": "A talk on lifetimes.", "points": ["[02:10] Lifetimes are inferred", "Annotations explain relations (1:02:03)", {"point": "Elision rules", "timestamp": "75s"}]}"#,
        );
        assert_eq!(d.tldr, "A talk on lifetimes.");
        assert_eq!(
            points(&d),
            [
                ("Elision rules", 75),
                ("Lifetimes are inferred", 130),
                ("Annotations explain relations", 3723)
            ]
        );
        // Nested one level down, and a bare array of points.
        let nested = ok(r#"{"video": {"tldr": "Nested.", "key_points": []}}"#);
        assert_eq!(nested.tldr, "Nested.");
        let bare =
            ok(r#"[{"text": "First", "at_seconds": 3}, {"text": "Second", "at_seconds": 9}]"#);
        assert_eq!(bare.tldr, "First");
        assert_eq!(points(&bare), [("First", 3), ("Second", 9)]);
    }

    #[test]
    fn json_times_are_clamped_sorted_and_deduplicated() {
        let answer = r#"Here you go: {"tldr": " About Rust. ", "key_points": [
            {"text": "late", "at_seconds": 90}, {"text": "early", "at_seconds": "0:10"},
            {"text": "early", "at_seconds": 11}, {"text": "beyond", "at_seconds": 99999},
            {"text": " ", "at_seconds": 1}]} trailing"#;
        let d = parse_answer(answer, (5, 100)).unwrap();
        assert_eq!(d.tldr, "About Rust.");
        assert_eq!(points(&d), [("early", 10), ("late", 90), ("beyond", 100)]);
    }

    #[test]
    fn markdown_with_headings_bold_and_bullets() {
        let d = ok(
            "## Summary\n\nThe video explains **ownership** in Rust and why it replaces a garbage collector.\n\n## Key points\n\n- **[00:04]** Every value has exactly one owner.\n- **[00:09]** Values are dropped when the owner goes out of scope.\n* [0:15] Borrowing lends a value without moving it.\n\n### Conclusion\nA good intro.",
        );
        assert_eq!(
            d.tldr,
            "The video explains ownership in Rust and why it replaces a garbage collector."
        );
        assert_eq!(
            points(&d),
            [
                ("Every value has exactly one owner.", 4),
                ("Values are dropped when the owner goes out of scope.", 9),
                ("Borrowing lends a value without moving it.", 15),
            ]
        );
    }

    #[test]
    fn a_tldr_line_wins_over_the_first_paragraph() {
        let d = ok(
            "Here is a summary of the video:\n\nIn this talk the speaker covers many things.\n\nTL;DR: Ownership makes Rust memory safe without a GC.\n\nKey points:\n1. Ownership (0:04)\n2) Borrowing (0:15)",
        );
        assert_eq!(d.tldr, "Ownership makes Rust memory safe without a GC.");
        assert_eq!(points(&d), [("Ownership", 4), ("Borrowing", 15)]);
        for label in [
            "**TL;DR:** Short.",
            "TLDR - Short.",
            "**TL;DR**: Short.",
            "> TL;DR: Short.",
        ] {
            assert_eq!(ok(label).tldr, "Short.", "{label}");
        }
        // A label alone: the TL;DR is the next paragraph.
        let d = ok("**TL;DR**\nOwnership,\nexplained.\n\n- a point");
        assert_eq!(d.tldr, "Ownership, explained.");
    }

    #[test]
    fn no_tldr_line_means_the_first_paragraph() {
        let d = ok(
            "This video walks through async Rust, from futures to executors.\nIt ends with a demo.\n\nSecond paragraph that is not the TL;DR.\n\n- 3:20 – Futures are lazy\n- 7:45 - Executors poll them\n- 12:05: Wakers signal readiness",
        );
        assert_eq!(
            d.tldr,
            "This video walks through async Rust, from futures to executors. It ends with a demo."
        );
        assert_eq!(
            points(&d),
            [
                ("Futures are lazy", 200),
                ("Executors poll them", 465),
                ("Wakers signal readiness", 725)
            ]
        );
    }

    #[test]
    fn every_timestamp_style() {
        let cases = [
            ("- [12:34] text", 754),
            ("- [1:02:03] text", 3723),
            ("- (1:02:03) text", 3723),
            ("- (12:34) text", 754),
            ("- 12:34 – text", 754),
            ("- 12:34 - text", 754),
            ("- 12:34: text", 754),
            ("- **12:34** text", 754),
            ("- **12:34 – text**", 754),
            ("- **[12:34]** – text", 754),
            ("- `12:34` text", 754),
            ("- [754s] text", 754),
            ("- [12:34–13:00] text", 754),
            ("- text (12:34)", 754),
            ("- text [at 1:02:03]", 3723),
            ("12:34 text", 754),
            ("[00:12:34] text", 754),
        ];
        for (line, seconds) in cases {
            let d = ok(&format!("A TL;DR paragraph.\n\n{line}"));
            assert_eq!(points(&d), [("text", seconds)], "{line}");
        }
    }

    #[test]
    fn hour_long_and_out_of_range_timestamps_are_clamped() {
        let answer = "TL;DR: Long video.\n\n- [0:00] Start\n- [1:59:59] Near the end\n- [3:10:00] Past the end\n- [75:30] Minutes over sixty";
        let d = parse_answer(answer, (0, 7200)).unwrap();
        assert_eq!(
            points(&d),
            [
                ("Start", 0),
                ("Minutes over sixty", 4530),
                ("Near the end", 7199),
                ("Past the end", 7200)
            ]
        );
        // A chunk of a long video: clamped into the chunk.
        let d = parse_answer(
            "Part.\n- [0:10] Before\n- [45:00] Inside\n- [2:00:00] After",
            (600, 3000),
        )
        .unwrap();
        assert_eq!(
            points(&d),
            [("Before", 600), ("Inside", 2700), ("After", 3000)]
        );
    }

    #[test]
    fn crlf_and_untimed_points_take_the_previous_time() {
        let d = ok(
            "TL;DR: Windows line endings.\r\n\r\n* [1:00] First\r\n* Second, no time\r\n  continues here\r\n* [2:00] Third\r\n",
        );
        assert_eq!(
            points(&d),
            [
                ("First", 60),
                ("Second, no time continues here", 60),
                ("Third", 120)
            ]
        );
        assert_eq!(d.tldr, "Windows line endings.");
    }

    #[test]
    fn only_bullets_make_the_first_the_tldr() {
        let d = ok(
            "• 0:05 Intro to the borrow checker\n• 2:30 Shared vs mutable references\n• 4:10 Lifetimes",
        );
        assert_eq!(d.tldr, "Intro to the borrow checker");
        assert_eq!(d.key_points.len(), 3);
    }

    #[test]
    fn youtube_chapter_lists_and_plain_prose() {
        let d = ok("Chapters:\n00:00 Intro\n01:15 Setting up cargo\n1:02:03 Wrap-up");
        assert_eq!(
            points(&d),
            [("Intro", 0), ("Setting up cargo", 75), ("Wrap-up", 3723)]
        );
        let prose =
            ok("The speaker argues that Rust's ownership model removes whole classes of bugs.");
        assert_eq!(
            prose.tldr,
            "The speaker argues that Rust's ownership model removes whole classes of bugs."
        );
        assert!(prose.key_points.is_empty());
    }

    #[test]
    fn markdown_in_a_fence_and_code_examples_are_skipped() {
        let d = ok(
            "```markdown\n**Summary:** Macros generate code.\n\n**Key points:**\n- [0:30] `macro_rules!` matches tokens\n```",
        );
        assert_eq!(d.tldr, "Macros generate code.");
        assert_eq!(points(&d), [("`macro_rules!` matches tokens", 30)]);
        let d = ok(
            "Traits explained.\n\n```rust\n- not a point\nfn main() {}\n```\n- [1:00] Real point",
        );
        assert_eq!(points(&d), [("Real point", 60)]);
    }

    #[test]
    fn rules_and_numbered_headings_are_not_points() {
        let d = ok(
            "# Video summary\n---\nOverview: Cargo features.\n***\n## Key Points\n1. **Features** are additive [0:40]\n2. **Workspaces** share a lock file [3:00]",
        );
        assert_eq!(d.tldr, "Cargo features.");
        assert_eq!(
            points(&d),
            [
                ("Features are additive", 40),
                ("Workspaces share a lock file", 180)
            ]
        );
    }

    #[test]
    fn nothing_usable_is_a_typed_failure() {
        for answer in [
            "",
            "   \n\t\r\n",
            "```\n```",
            "---\n***",
            "## Key points\n",
            "…!?",
            "- \n- [0:10]",
        ] {
            let error = parse_answer(answer, VIDEO).unwrap_err();
            assert!(
                matches!(error, SummarizeError::NoSummary(_)),
                "{answer:?}: {error:?}"
            );
            assert!(!error.is_transient());
        }
        let empty_json = parse_answer(r#"{"tldr": "", "key_points": []}"#, VIDEO).unwrap_err();
        assert!(
            matches!(empty_json, SummarizeError::NoSummary(_)),
            "{empty_json:?}"
        );
    }

    #[test]
    fn text_that_is_not_a_summary_is_a_bad_response() {
        for answer in [
            "I cannot summarize this video.",
            "I'm sorry, but I can't help with that.",
            "<html><body>502 Bad Gateway</body></html>",
            r#"{"error": "model not loaded"}"#,
            "Here it is:\n{\"tldr\": \"cut off at the tok",
        ] {
            let error = parse_answer(answer, VIDEO).unwrap_err();
            assert!(
                matches!(error, SummarizeError::BadResponse(_)),
                "{answer:?}: {error:?}"
            );
        }
        // A labelled TL;DR that starts like a refusal is still a summary.
        assert_eq!(
            ok("TL;DR: Sorry, the video is about apologies.").tldr,
            "Sorry, the video is about apologies."
        );
    }

    #[test]
    fn many_points_are_capped() {
        let answer: String = (0..20).map(|i| format!("- [{i}:00] Point {i}\n")).collect();
        let d = ok(&format!("Many.\n{answer}"));
        assert_eq!(d.key_points.len(), MAX_KEY_POINTS);
        assert_eq!(d.key_points[0].at_seconds, 0);
    }

    #[test]
    fn the_lines_classify() {
        assert_eq!(classify_line("## Key points"), Line::Heading);
        assert_eq!(classify_line("**Key Points:**"), Line::Heading);
        assert_eq!(classify_line("Here are the main takeaways:"), Line::Heading);
        assert_eq!(classify_line("## TL;DR"), Line::Tldr(String::new()));
        assert_eq!(
            classify_line("  - [1:00] x y"),
            Line::Point {
                text: "x y".into(),
                at: Some(60)
            }
        );
        assert_eq!(
            classify_line("*italic start* of a sentence"),
            Line::Text("*italic start* of a sentence".into())
        );
        assert_eq!(
            classify_line("Summary of the talk follows"),
            Line::Text("Summary of the talk follows".into())
        );
        assert_eq!(clock("12:75", false), None);
        assert_eq!(clock("7s", true), Some((7, 2)));
        assert_eq!(clock("7seconds", true), None);
    }
}
