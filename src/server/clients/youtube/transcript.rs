//! Caption bodies: classic timedtext XML and json3.
//!
//! The XML YouTube sends for a caption track is one flat list of
//! `<text start="…" dur="…">…</text>` elements under `<transcript>`, with the
//! caption text entity-escaped, sometimes twice (`&amp;#39;`). That fixed
//! shape is all this reader understands: it is not a general XML parser.

use serde::Deserialize;

use super::{Segment, YouTubeError};

/// Reads a caption body in whichever format it is in. Segments whose text is
/// empty are dropped; an empty result means the track had no words.
pub(super) fn parse(body: &[u8]) -> Result<Vec<Segment>, YouTubeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| YouTubeError::Unparsable("the caption track is not UTF-8".into()))?;
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') {
        parse_json3(text)
    } else if text.starts_with('<') {
        parse_xml(text)
    } else {
        Err(YouTubeError::Unparsable(
            "the caption track is neither timedtext XML nor json3".into(),
        ))
    }
}

/// Classic timedtext XML (no `fmt`, or `fmt=srv1`); times are in seconds.
pub(super) fn parse_xml(xml: &str) -> Result<Vec<Segment>, YouTubeError> {
    if !xml.contains("<transcript") {
        return Err(unparsable("the caption XML has no <transcript> element"));
    }
    let mut segments = Vec::new();
    let mut rest = xml;
    while let Some(open) = find_text_tag(rest) {
        let after_name = &rest[open + "<text".len()..];
        let (attributes, self_closing, after_tag) = split_tag(after_name)?;
        let (raw_text, after_element) = if self_closing {
            ("", after_tag)
        } else {
            let close = after_tag
                .find("</text>")
                .ok_or_else(|| unparsable("a <text> element is never closed"))?;
            (&after_tag[..close], &after_tag[close + "</text>".len()..])
        };
        rest = after_element;

        let start = attribute(attributes, "start")
            .ok_or_else(|| unparsable("a <text> element has no start"))?;
        let start_ms = seconds_to_ms(&start)?;
        let duration_ms = match attribute(attributes, "dur") {
            Some(dur) => seconds_to_ms(&dur)?,
            None => 0,
        };
        // Once for the XML, once more for the HTML YouTube escaped inside it.
        let text = unescape(&unescape(raw_text));
        let text = normalize_whitespace(&strip_tags(&text));
        if !text.is_empty() {
            segments.push(Segment {
                start_ms,
                duration_ms,
                text,
            });
        }
    }
    Ok(segments)
}

#[derive(Deserialize)]
struct Json3 {
    events: Vec<Json3Event>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Json3Event {
    #[serde(default)]
    t_start_ms: u64,
    #[serde(default)]
    d_duration_ms: u64,
    segs: Option<Vec<Json3Seg>>,
}

#[derive(Deserialize)]
struct Json3Seg {
    #[serde(default)]
    utf8: String,
}

/// json3 (`fmt=json3`): times in milliseconds, text split over `segs`.
pub(super) fn parse_json3(json: &str) -> Result<Vec<Segment>, YouTubeError> {
    let doc: Json3 = serde_json::from_str(json)
        .map_err(|error| YouTubeError::Unparsable(format!("the json3 caption track: {error}")))?;
    Ok(doc
        .events
        .into_iter()
        .filter_map(|event| {
            // Events without segs, and "\n"-only appends, are layout noise.
            let text: String = event.segs?.into_iter().map(|seg| seg.utf8).collect();
            let text = normalize_whitespace(&text);
            (!text.is_empty()).then_some(Segment {
                start_ms: event.t_start_ms,
                duration_ms: event.d_duration_ms,
                text,
            })
        })
        .collect())
}

fn unparsable(what: &str) -> YouTubeError {
    YouTubeError::Unparsable(what.to_owned())
}

/// The byte offset of the next `<text` start tag (not `<textfoo`).
fn find_text_tag(haystack: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = haystack[from..].find("<text") {
        let at = from + found;
        match haystack.as_bytes().get(at + "<text".len()) {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') => return Some(at),
            _ => from = at + 1,
        }
    }
    None
}

/// Splits `…attributes…>` (or `…/>`) off the text following a tag name,
/// respecting quotes, which may hold a literal `>`.
fn split_tag(after_name: &str) -> Result<(&str, bool, &str), YouTubeError> {
    let mut quote = None;
    for (i, c) in after_name.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                let attributes = &after_name[..i];
                let self_closing = attributes.trim_end().ends_with('/');
                let attributes = attributes.trim_end().trim_end_matches('/');
                return Ok((attributes, self_closing, &after_name[i + 1..]));
            }
            (None, _) => {}
        }
    }
    Err(unparsable("a <text> tag is never closed"))
}

/// The unescaped value of `name="…"` (or single-quoted) in an attribute list.
fn attribute(attributes: &str, name: &str) -> Option<String> {
    let mut rest = attributes;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let value_part = rest[eq + 1..].trim_start();
        let quote = value_part
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')?;
        let value_end = value_part[1..].find(quote)? + 1;
        let value = &value_part[1..value_end];
        if key == name {
            return Some(unescape(value));
        }
        rest = &value_part[value_end + 1..];
    }
}

fn seconds_to_ms(value: &str) -> Result<u64, YouTubeError> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| YouTubeError::Unparsable(format!("{value:?} is not a time in seconds")))?;
    // NaN is outside every range; 1e9 s is ~31 years, far past any video.
    if !(0.0..=1.0e9).contains(&seconds) {
        return Err(YouTubeError::Unparsable(format!(
            "{value:?} is not a time in seconds"
        )));
    }
    Ok((seconds * 1000.0).round() as u64)
}

/// The named entities YouTube's captions use, plus the XML five.
const NAMED_ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("hellip", '…'),
    ("mdash", '—'),
    ("ndash", '–'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("deg", '°'),
    ("eacute", 'é'),
];

/// Decodes one level of `&name;`, `&#NN;` and `&#xHH;` references. Anything
/// that is not a well-formed reference we know is left exactly as it was.
pub(super) fn unescape(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let candidate = &rest[amp + 1..];
        // References are short; a ';' far away belongs to something else.
        let decoded = candidate
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .and_then(|(semi, _)| decode_reference(&candidate[..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &candidate[semi + 1..];
            }
            None => {
                out.push('&');
                rest = candidate;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()?
            }
            Some(_) => return None,
            None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                number.parse().ok()?
            }
            None => return None,
        };
        return Some(match char::from_u32(code) {
            Some('\0') | None => char::REPLACEMENT_CHARACTER,
            Some(c) => c,
        });
    }
    NAMED_ENTITIES
        .iter()
        .find(|(entity, _)| *entity == name)
        .map(|(_, c)| *c)
}

/// Drops HTML tags (`<i>`, `</font>`, `<br/>` …). A `<` that does not start
/// a tag, as in "a < b", stays.
fn strip_tags(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
        match after.find('>') {
            Some(gt) if starts_tag => rest = &after[gt + 1..],
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Line breaks and runs of spaces inside one caption become single spaces.
fn normalize_whitespace(input: &str) -> String {
    input.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_decodes_named_and_numeric_references() {
        assert_eq!(unescape("a &amp; b &lt;i&gt;"), "a & b <i>");
        assert_eq!(
            unescape("it&#39;s &#x27;q&#X27; &quot;x&quot;"),
            "it's 'q' \"x\""
        );
        assert_eq!(unescape("caf&eacute;&nbsp;ok"), "café\u{a0}ok");
    }

    #[test]
    fn unescape_is_one_level_so_double_escapes_need_two_passes() {
        assert_eq!(unescape("don&amp;#39;t"), "don&#39;t");
        assert_eq!(unescape(&unescape("don&amp;#39;t")), "don't");
    }

    #[test]
    fn unescape_leaves_what_is_not_a_reference() {
        for text in [
            "AT&T",
            "a & b",
            "&unknown;",
            "&#;",
            "&#x;",
            "&#12a;",
            "& amp;",
            "tail &",
            "&amp",
        ] {
            assert_eq!(unescape(text), text);
        }
        assert_eq!(unescape("&#0;"), "\u{fffd}");
        assert_eq!(unescape("&#xD800;"), "\u{fffd}");
        assert_eq!(unescape("&#99999999999;"), "&#99999999999;");
    }

    #[test]
    fn strip_tags_keeps_comparisons() {
        assert_eq!(strip_tags("<i>not</i> <b>so</b> <br/>x"), "not so x");
        assert_eq!(strip_tags("a < b and c > d"), "a < b and c > d");
        assert_eq!(strip_tags("3 <5"), "3 <5");
    }

    #[test]
    fn xml_reads_times_text_and_skips_empty_elements() {
        let xml = r#"<?xml version="1.0" encoding="utf-8" ?><transcript>
            <text start="0" dur="1.54">Hey &amp;amp; you</text>
            <text start='1.5' dur="0.5"></text>
            <text start="2.25"/>
            <text start="3" dur="2">don&amp;#39;t &lt;i&gt;stop&lt;/i&gt;
            now</text>
            <text start="7.0006">no duration</text>
        </transcript>"#;
        let segments = parse_xml(xml).unwrap();
        let got: Vec<_> = segments
            .iter()
            .map(|s| (s.start_ms, s.duration_ms, s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 1540, "Hey & you"),
                (3000, 2000, "don't stop now"),
                (7001, 0, "no duration"),
            ]
        );
    }

    #[test]
    fn xml_rejects_broken_input() {
        for xml in [
            "<html><body>nope</body></html>",
            "<transcript><text start=\"1\">never closed",
            "<transcript><text start=\"x\">bad</text></transcript>",
            "<transcript><text start=\"-1\">bad</text></transcript>",
            "<transcript><text dur=\"1\">no start</text></transcript>",
            "<transcript><text start=\"1\"",
        ] {
            assert!(
                matches!(parse_xml(xml), Err(YouTubeError::Unparsable(_))),
                "{xml}"
            );
        }
        assert!(parse_xml("<transcript></transcript>").unwrap().is_empty());
    }

    #[test]
    fn json3_joins_segs_and_skips_layout_noise() {
        let json = r#"{"wireMagic":"pb3","events":[
            {"tStartMs":0,"dDurationMs":10000,"id":1,"wpWinPosId":1},
            {"tStartMs":0,"dDurationMs":1540,"segs":[{"utf8":"Hey"},{"utf8":" there","tOffsetMs":400}]},
            {"tStartMs":1540,"dDurationMs":100,"aAppend":1,"segs":[{"utf8":"\n"}]},
            {"tStartMs":2000,"segs":[{"utf8":"it's"},{"utf8":"\nme"}]}
        ]}"#;
        let segments = parse_json3(json).unwrap();
        let got: Vec<_> = segments
            .iter()
            .map(|s| (s.start_ms, s.duration_ms, s.text.as_str()))
            .collect();
        assert_eq!(got, [(0, 1540, "Hey there"), (2000, 0, "it's me")]);
        assert!(matches!(
            parse_json3(r#"{"wireMagic":"pb3"}"#),
            Err(YouTubeError::Unparsable(_))
        ));
    }

    #[test]
    fn parse_detects_the_format() {
        assert_eq!(
            parse(b"\xef\xbb\xbf <transcript><text start=\"1\">a</text></transcript>").unwrap()[0]
                .text,
            "a"
        );
        assert_eq!(
            parse(br#"{"events":[{"tStartMs":5,"segs":[{"utf8":"b"}]}]}"#).unwrap()[0].start_ms,
            5
        );
        assert!(matches!(
            parse(b"garbage"),
            Err(YouTubeError::Unparsable(_))
        ));
        assert!(matches!(
            parse(b"\xff\xfe<"),
            Err(YouTubeError::Unparsable(_))
        ));
    }
}
