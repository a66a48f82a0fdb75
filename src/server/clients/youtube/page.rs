//! What we read from the HTML of a watch page: the consent wall, the
//! reCAPTCHA block page and the innertube API key.

/// The EU consent form posts here.
pub(super) fn is_consent_wall(html: &str) -> bool {
    html.contains("action=\"https://consent.youtube.com/s\"")
}

/// The reCAPTCHA page YouTube shows a blocked IP.
pub(super) fn is_recaptcha(html: &str) -> bool {
    html.contains("class=\"g-recaptcha\"")
}

/// The consent form's `v` value, which becomes `CONSENT=YES+<value>`. Only
/// cookie-safe characters are accepted, so it can never inject a header.
pub(super) fn consent_value(html: &str) -> Option<&str> {
    const MARKER: &str = "name=\"v\" value=\"";
    let start = html.find(MARKER)? + MARKER.len();
    let end = start + html[start..].find('"')?;
    let value = &html[start..end];
    let safe = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    safe.then_some(value)
}

/// `"INNERTUBE_API_KEY":\s*"([a-zA-Z0-9_-]+)"`.
pub(super) fn api_key(html: &str) -> Option<&str> {
    const MARKER: &str = "\"INNERTUBE_API_KEY\":";
    let mut from = 0;
    while let Some(found) = html[from..].find(MARKER) {
        let after = html[from + found + MARKER.len()..].trim_start();
        if let Some(value) = after.strip_prefix('"') {
            let len = value
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                .count();
            if len > 0 && value[len..].starts_with('"') {
                return Some(&value[..len]);
            }
        }
        from += found + MARKER.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_follows_the_documented_pattern() {
        assert_eq!(
            api_key(r#"x,"INNERTUBE_API_KEY": "AIza_b-9","k":1"#),
            Some("AIza_b-9")
        );
        assert_eq!(
            api_key(r#""INNERTUBE_API_KEY":null,"INNERTUBE_API_KEY":"good""#),
            Some("good")
        );
        assert_eq!(api_key(r#""INNERTUBE_API_KEY":"""#), None);
        assert_eq!(api_key(r#""INNERTUBE_API_KEY":"a b""#), None);
        assert_eq!(api_key(r#""INNERTUBE_API_KEY":null"#), None);
        assert_eq!(api_key("<html></html>"), None);
    }

    #[test]
    fn consent_value_refuses_unsafe_characters() {
        assert_eq!(
            consent_value(r#"<input name="v" value="cb.20210328-17-p0.de+FX+119">"#),
            Some("cb.20210328-17-p0.de+FX+119")
        );
        assert_eq!(consent_value(r#"<input name="v" value="a;b">"#), None);
        assert_eq!(
            consent_value("<input name=\"v\" value=\"a\r\nX: y\">"),
            None
        );
        assert_eq!(consent_value(r#"<input name="v" value="">"#), None);
        assert_eq!(consent_value("<form></form>"), None);
    }
}
