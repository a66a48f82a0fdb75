//! Where to send someone after they sign in: a path on this site, never
//! another one.
//!
//! The value travels through a query string, a hidden form field and a
//! `Location` header, and each hop may decode it once more; browsers then
//! drop tabs and newlines and read `\` as `/` while they parse it. So the
//! check is on every decoding of the value, not just the one we see: a
//! `%2F%2F` or a `/\t/` that becomes `//host` later is refused here.
//! A refused value is no error for the person signing in: they simply land
//! on the app.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A same-site absolute path (`/o/acme/settings?x=1#part`), safe to put in
/// a `Location` header as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NextPath(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a path on this site")]
pub struct NextPathError;

/// Longer than any page of ours; a cap keeps a hostile value out of logs
/// and headers.
const MAX_LEN: usize = 1024;

/// Layers of percent-encoding we look through. A value still changing after
/// that many decodings is refused: nothing of ours is encoded that deep.
const MAX_DECODINGS: usize = 4;

impl NextPath {
    pub fn parse(input: &str) -> Result<NextPath, NextPathError> {
        if input.is_empty() || input.len() > MAX_LEN {
            return Err(NextPathError);
        }
        // What we send: printable ASCII from a short list, so the header is
        // valid as it is and no browser can read a separator into it.
        if !input.bytes().all(allowed_raw) {
            return Err(NextPathError);
        }
        let mut layer = input.to_owned();
        for _ in 0..=MAX_DECODINGS {
            local_path(&layer)?;
            let decoded = percent_decode(&layer)?;
            if decoded == layer {
                return same_origin(input).map(|()| NextPath(input.to_owned()));
            }
            layer = decoded;
        }
        Err(NextPathError)
    }

    /// The default landing place after signing in.
    pub fn app() -> NextPath {
        NextPath("/app".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn allowed_raw(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~/?=&#%+,:@".contains(&byte)
}

/// One decoding of the value must still be a plain local path: starts with
/// one `/`, has no `//` or `\` anywhere, and only visible ASCII (control
/// characters, spaces and look-alike Unicode are all refused).
fn local_path(layer: &str) -> Result<(), NextPathError> {
    let visible = layer.bytes().all(|b| b.is_ascii_graphic());
    if visible && layer.starts_with('/') && !layer.contains("//") && !layer.contains('\\') {
        Ok(())
    } else {
        Err(NextPathError)
    }
}

/// Decodes `%XX` once. A `%` without two hex digits, or bytes that are not
/// UTF-8, make the whole value suspect.
fn percent_decode(layer: &str) -> Result<String, NextPathError> {
    let bytes = layer.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(NextPathError)?;
            let hex = std::str::from_utf8(hex).map_err(|_| NextPathError)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| NextPathError)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| NextPathError)
}

/// The last word goes to a real URL parser: joined onto our origin, the
/// value must still point at it.
fn same_origin(path: &str) -> Result<(), NextPathError> {
    let base = url::Url::parse("http://next.invalid/").map_err(|_| NextPathError)?;
    let joined = base.join(path).map_err(|_| NextPathError)?;
    if joined.origin() == base.origin() {
        Ok(())
    } else {
        Err(NextPathError)
    }
}

impl TryFrom<String> for NextPath {
    type Error = NextPathError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        NextPath::parse(&value)
    }
}

impl From<NextPath> for String {
    fn from(value: NextPath) -> String {
        value.0
    }
}

impl fmt::Display for NextPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "",
        "app",
        "evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "/%0D%0A/evil.example",
        "/\r/evil.example",
        "/%2F/evil.example",
        "/%2f%2fevil.example",
        "%2F%2Fevil.example",
        "%2F%09%2Fevil.example",
        "/%5Cevil.example",
        "/%5c%5cevil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "/%2525252F%2525252Fevil.example",
        "/%25%32%46%25%32%46evil.example",
        "https://evil.example",
        "http:evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "data:text/html,hi",
        "/%01x",
        "/\u{1}x",
        "/app\u{0}",
        "/%00",
        "/\u{7f}",
        "/%7F",
        "/ /evil.example",
        "/%20/evil.example",
        " /app",
        "/app ",
        "/\u{3000}/evil.example",
        "/%E3%80%80/evil.example",
        "/\u{2028}/evil.example",
        "/%E2%80%A8/evil.example",
        "/\u{ff0f}evil.example",
        "/%EF%BC%8Fevil.example",
        "/%C0%AF",
        "/%",
        "/%2",
        "/%zz",
        "/app#//evil.example",
        "/app?next=//evil.example",
        "/.//evil.example",
        "/app/%2e%2e//evil.example",
        "/app\"><script>",
        "/app<script>",
        "/app'onload",
    ];

    const GOOD: &[&str] = &[
        "/",
        "/app",
        "/o/acme/settings",
        "/o/acme-4f2a/v/dQw4w9WgXcQ",
        "/o/acme/settings?invite=0a1b.AbC-_x&mail=off#invitations",
        "/invite/0123abcd.AbC-_x~y",
        "/app?tab=history&page=2",
        "/o/acme%2Dx",
        "/o/acme/v/abc?lang=pt-BR",
        "/account:security@home,1+2",
    ];

    #[test]
    fn hostile_values_are_refused() {
        assert!(HOSTILE.len() >= 30);
        for input in HOSTILE {
            assert_eq!(NextPath::parse(input), Err(NextPathError), "{input:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_LEN));
        assert_eq!(NextPath::parse(&long), Err(NextPathError));
    }

    #[test]
    fn local_paths_pass_unchanged() {
        for input in GOOD {
            let next = NextPath::parse(input).unwrap_or_else(|_| panic!("{input:?} refused"));
            assert_eq!(next.as_str(), *input);
        }
    }

    #[test]
    fn what_passes_is_a_valid_header_that_stays_here() {
        // Whatever the browser does with a Location header, it resolves
        // against our origin: checked with the WHATWG parser (the `url`
        // crate), which strips tabs and newlines as browsers do.
        for input in GOOD {
            let next = NextPath::parse(input).unwrap();
            assert!(next.as_str().bytes().all(|b| b.is_ascii_graphic()));
            let joined = url::Url::parse("https://tldw.example/")
                .unwrap()
                .join(next.as_str())
                .unwrap();
            assert_eq!(joined.host_str(), Some("tldw.example"), "{input:?}");
        }
    }

    #[test]
    fn the_default_is_the_app() {
        assert_eq!(NextPath::app().as_str(), "/app");
        assert_eq!(NextPath::parse("/app").unwrap(), NextPath::app());
    }

    #[test]
    fn deserializing_checks_too() {
        let refused: Result<NextPath, _> = serde_json::from_str("\"//evil.example\"");
        assert!(refused.is_err());
        let ok: NextPath = serde_json::from_str("\"/app\"").unwrap();
        assert_eq!(ok.as_str(), "/app");
    }
}
