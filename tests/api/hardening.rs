//! Issue 12, the HTTP findings of the security review: redirects after
//! sign-in, slow clients, security headers, and what reaches the logs.

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app};

/// Signs in with a raw form body, so `next` arrives exactly as an attacker
/// encoded it (reqwest's `.form` would escape the `%`).
async fn sign_in_raw(app: &TestApp, email: &str, next_encoded: &str) -> Reply {
    let body = format!(
        "email={}&password={}&next={next_encoded}",
        url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect::<String>(),
    );
    let response = app
        .post("auth/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

#[tokio::test]
async fn a_control_character_in_next_signs_in_normally() {
    let app = spawn_app().await;
    app.sign_up("ctl@example.com").await;
    // `/%01x` decodes to "/\u{1}x": leptos_axum::redirect used to panic on
    // it after the session row was written (finding 15).
    for next in ["/%01x", "%0A", "/%7F"] {
        let reply = sign_in_raw(&app, "ctl@example.com", next).await;
        assert_eq!(reply.status, 200, "{next}: {}", reply.body);
        assert_eq!(reply.location(), Some("/app"), "{next}");
        assert!(reply.session_cookie().is_some(), "{next}: no cookie");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn after_sign_in_encoded_and_whitespace_tricks_land_on_the_app() {
    let app = spawn_app().await;
    app.sign_up("redir@example.com").await;
    // As the form body carries them (one layer of form encoding).
    for next in [
        "/%09/evil.example/phish",
        "%2F%09%2Fevil.example",
        "/%0A/evil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%E3%80%80/evil.example",
    ] {
        let reply = sign_in_raw(&app, "redir@example.com", next).await;
        assert_eq!(reply.status, 200, "{next}: {}", reply.body);
        assert_eq!(reply.location(), Some("/app"), "{next}");
    }
    let good = sign_in_raw(&app, "redir@example.com", "%2Fo%2Fteam%2Fsettings%3Fx%3D1").await;
    assert_eq!(good.location(), Some("/o/team/settings?x=1"));
    app.stop().await.unwrap();
}

/// Reads until the server closes the connection (or `limit` passes) and
/// returns what arrived, and whether the server did close it.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();

    // Slowloris: half a header block, then nothing. hyper's 10 s
    // header-read timeout must close it; before, it stayed open for good.
    let half_headers = async {
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        read_until_closed(&mut stream, std::time::Duration::from_secs(40)).await
    };
    // A body promised but never sent: answered and closed after the 15 s
    // body timeout (a plain route says 408; a server function reports the
    // failed body read as its own error, a 500).
    let slow_body = async {
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let request = format!(
            "POST /api/auth/sign-in HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        read_until_closed(&mut stream, std::time::Duration::from_secs(40)).await
    };
    let ((headers_got, headers_closed), (body_got, body_closed)) =
        tokio::join!(half_headers, slow_body);
    assert!(
        headers_closed,
        "half a header block kept the connection open"
    );
    assert!(!headers_got.contains(" 200 "), "{headers_got}");
    assert!(
        body_closed,
        "a body that never came kept the connection open"
    );
    assert!(
        body_got.starts_with("HTTP/1.1 408") || body_got.starts_with("HTTP/1.1 500"),
        "{body_got}"
    );

    // Ordinary requests are untouched.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn pages_carry_a_nonce_policy_and_every_response_the_hardening_headers() {
    let app = spawn_app().await;
    let page = app.get("/sign-in").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let body = page.text().await.unwrap();
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in {csp}"));
    assert!(nonce.len() >= 16, "{nonce}");
    let script_src = csp.split(';').find(|d| d.contains("script-src")).unwrap();
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Every inline script Leptos wrote carries this response's nonce.
    let scripts = body.matches("<script").count();
    assert!(scripts > 0, "{body}");
    assert_eq!(
        body.matches(&format!("nonce=\"{nonce}\"")).count(),
        body.matches("<script").count() - body.matches("<script src=").count(),
        "{body}"
    );
    // A second page gets a fresh nonce.
    let again = app.get("/sign-in").await;
    assert_ne!(again.headers()["content-security-policy"], csp.as_str());

    for path in [
        "/sign-in",
        "/healthz",
        "/api/v1/openapi.json",
        "/no-such-page",
    ] {
        let response = app.get(path).await;
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert!(h.contains_key("content-security-policy"), "{path}");
        // Plain http here: no HSTS (browsers ignore it anyway).
        assert!(!h.contains_key("strict-transport-security"), "{path}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn over_https_hsts_and_a_host_only_secure_cookie() {
    let app = crate::helpers::spawn_app_with(&[("TLDW_TRUSTED_PROXIES", "127.0.0.1")]).await;
    // Our trusted proxy says the browser came over https.
    let response = app
        .post("auth/sign-up")
        .header("x-forwarded-proto", "https")
        .form(&[("email", "tls@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let reply = Reply::read(response).await;
    reply.ok();
    let set_cookie = reply.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with("__Host-tldw_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert!(reply.header("strict-transport-security").is_some());
    // The __Host- cookie signs the browser in.
    let pair = set_cookie.split(';').next().unwrap();
    let whoami = app.call(pair, "auth/whoami", &[]).await;
    assert!(
        whoami.ok().body.contains("tls@example.com"),
        "{}",
        whoami.body
    );

    // Anyone else claiming https gets neither.
    let app2 = spawn_app().await;
    let response = app2
        .post("auth/sign-up")
        .header("x-forwarded-proto", "https")
        .form(&[("email", "liar@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let reply = Reply::read(response).await;
    assert!(
        reply
            .ok()
            .header("set-cookie")
            .unwrap()
            .starts_with("tldw_session=")
    );
    assert!(reply.header("strict-transport-security").is_none());
    app.stop().await.unwrap();
    app2.stop().await.unwrap();
}

#[tokio::test]
async fn the_request_id_is_ours_not_the_clients() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "forged-id-from-the-client")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "forged-id-from-the-client");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    app.stop().await.unwrap();
}
