//! Security headers on every response (security review finding 16).
//!
//! Pages get a Content-Security-Policy with a per-response nonce: Leptos
//! (leptos_axum's `nonce` feature, on by default) makes one for every page
//! it renders and puts it on each inline script it writes (hydration
//! bootstrap, streamed chunks, resources); [`page_policy`] adds the same
//! nonce to the header, so no script runs without it and `unsafe-inline`
//! is not needed for scripts. Everything else (JSON, files, error pages)
//! gets [`DEFAULT_POLICY`], which allows no inline script at all.

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use std::net::{IpAddr, SocketAddr};

use super::{AppState, WebSettings};

/// Shared by both policies: where everything but scripts may come from.
/// Inline `style=""` attributes are allowed (a progress bar's width);
/// inline `<style>` elements and scripts are not.
const COMMON: &str = "default-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; \
img-src 'self' data: https://*.ytimg.com; connect-src 'self'; object-src 'none'; \
base-uri 'none'; frame-ancestors 'none'";

/// Responses that are not Leptos pages: scripts from our own files only.
pub const DEFAULT_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data: https://*.ytimg.com; \
connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// A page's policy: scripts only with this response's nonce, and what they
/// load (`strict-dynamic`: the bundle's module imports); wasm compiles.
pub fn page_policy(nonce: &str) -> String {
    format!("{COMMON}; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'")
}

/// Two years, the preload list's minimum, once we know we are on https.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Called while Leptos renders a page (its additional context): puts the
/// page's nonce into its CSP header.
pub fn provide_page_policy() {
    use leptos::prelude::use_context;
    if let Some(nonce) = leptos::nonce::use_nonce()
        && let Some(response) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(value) = HeaderValue::from_str(&page_policy(&nonce))
    {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Whether this request reached us over https: PUBLIC_URL says so, or a
/// proxy we trust says so in `X-Forwarded-Proto`.
pub fn over_https(web: &WebSettings, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
    web.secure_cookies
        || (peer.is_some_and(|p| web.trusted_proxies.contains(&p))
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")))
}

pub async fn add(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let https = over_https(&state.web, peer, request.headers());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, DEFAULT_POLICY);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Other sites see our origin at most, never a path (invitation links
    // carry their token in the path).
    set(
        headers,
        header::REFERRER_POLICY,
        "strict-origin-when-cross-origin",
    );
    if https {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_policy_allows_inline_scripts_or_framing() {
        for policy in [DEFAULT_POLICY.to_owned(), page_policy("abc")] {
            let script = policy
                .split(';')
                .map(str::trim)
                .find(|d| d.starts_with("script-src"))
                .unwrap();
            // 'wasm-unsafe-eval' only lets WebAssembly compile; the two
            // sources that would let injected script run must be absent.
            let sources: Vec<&str> = script.split_whitespace().collect();
            assert!(!sources.contains(&"'unsafe-inline'"), "{policy}");
            assert!(!sources.contains(&"'unsafe-eval'"), "{policy}");
            assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        }
        assert!(page_policy("abc").contains("'nonce-abc'"));
    }

    #[test]
    fn forwarded_https_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let web = WebSettings {
            trusted_proxies: vec![proxy],
            ..WebSettings::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_https(&web, Some(proxy), &headers));
        assert!(!over_https(
            &web,
            Some("10.0.0.2".parse().unwrap()),
            &headers
        ));
        assert!(!over_https(&web, Some(proxy), &HeaderMap::new()));
        let https = WebSettings {
            secure_cookies: true,
            ..WebSettings::default()
        };
        assert!(over_https(&https, None, &HeaderMap::new()));
    }
}
