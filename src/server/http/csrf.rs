//! Cross-site request forgery protection for every state-changing request
//! (server functions included). Browsers say where a request comes from in
//! `Sec-Fetch-Site` and `Origin`; a request from another site is refused.
//! Webhooks are exempt: their signature is their authentication.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::AppState;
use crate::error::AppError;

const REFUSED: &str = "This request came from another website, so it was refused. Go back to tldw, reload the page and try again.";

pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_safe(request.method()) || request.uri().path().starts_with("/webhooks/") {
        return next.run(request).await;
    }
    if same_site(request.headers(), state.web.public_origin.as_deref()) {
        next.run(request).await
    } else {
        tracing::warn!(path = %request.uri().path(), "refused a cross-site request");
        AppError::Refused(REFUSED.into()).into_response()
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn same_site(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    // A bearer token without cookies is no ambient authority: whoever sent
    // it chose to, so another site cannot ride on it.
    if headers.contains_key(header::AUTHORIZATION) && !headers.contains_key(header::COOKIE) {
        return true;
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return matches!(site, "same-origin" | "none");
    }
    if let Some(origin) = text(header::ORIGIN) {
        return origin_matches(origin, headers, public_origin);
    }
    // Neither header: not a modern browser. Without a cookie there is no
    // ambient authority to abuse; with one, refuse.
    !headers.contains_key(header::COOKIE)
}

fn origin_matches(origin: &str, headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(public) = public_origin {
        return origin.trim_end_matches('/') == public;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(same_site(
            &headers(&[("sec-fetch-site", "same-origin"), ("cookie", "a=b")]),
            None
        ));
        assert!(!same_site(
            &headers(&[("sec-fetch-site", "cross-site")]),
            None
        ));
        assert!(!same_site(
            &headers(&[("sec-fetch-site", "same-site")]),
            None
        ));
    }

    #[test]
    fn origin_must_be_ours() {
        let ours = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
            ("cookie", "a"),
        ]);
        assert!(same_site(&ours, None));
        let theirs = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example"),
            ("cookie", "a"),
        ]);
        assert!(!same_site(&theirs, None));
        let proxied = headers(&[
            ("host", "internal:3000"),
            ("origin", "https://tldw.example"),
        ]);
        assert!(same_site(&proxied, Some("https://tldw.example")));
        assert!(!same_site(&proxied, Some("https://other.example")));
    }

    #[test]
    fn bearer_calls_without_cookies_pass() {
        assert!(same_site(
            &headers(&[
                ("authorization", "Bearer x"),
                ("sec-fetch-site", "cross-site")
            ]),
            None
        ));
        assert!(!same_site(
            &headers(&[
                ("authorization", "Bearer x"),
                ("cookie", "a"),
                ("sec-fetch-site", "cross-site")
            ]),
            None
        ));
    }

    #[test]
    fn headerless_requests_pass_only_without_cookies() {
        assert!(same_site(&headers(&[]), None));
        assert!(!same_site(&headers(&[("cookie", "tldw_session=x")]), None));
    }
}
