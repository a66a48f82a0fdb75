//! Static files as a production site serves them: the content-hashed bundle
//! under /pkg, precompressed and cached for a year; HTML compressed on the
//! fly and never cached stale; everything else still the app's 404 page.
//!
//! Each test builds its own small site folder, so none depends on a prior
//! `build_site`; one more check runs against the real build when there is one.

use crate::helpers::{TestApp, TestDb, settings_for, spawn_app_with};
use std::{
    io::Read,
    path::{Path, PathBuf},
};
use tldw::server::startup::Application;

const JS_HASH: &str = "0123456789abcdef";
const WASM_HASH: &str = "fedcba9876543210";
const CSS_HASH: &str = "00112233445566aa";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn wasm_path() -> String {
    format!("/pkg/tldw.{WASM_HASH}.wasm")
}

/// A site folder as `build_site` lays it out, with small fake files whose
/// precompressed copies hold markers, so a test can tell which one came.
struct Site {
    root: PathBuf,
}

impl Site {
    fn empty() -> Site {
        let root = std::env::temp_dir().join(format!("tldw-site-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        std::fs::write(
            root.join("favicon.svg"),
            "<svg xmlns='http://www.w3.org/2000/svg'/>",
        )
        .unwrap();
        Site { root }
    }

    /// Hashed files, their .br/.gz copies, and hash.txt naming them.
    fn hashed() -> Site {
        let site = Site::empty();
        for (ext, hash) in [("js", JS_HASH), ("wasm", WASM_HASH), ("css", CSS_HASH)] {
            let name = format!("tldw.{hash}.{ext}");
            site.write(&format!("pkg/{name}"), &identity_body(ext));
            site.write(&format!("pkg/{name}.br"), format!("BR {ext}").as_bytes());
            site.write(&format!("pkg/{name}.gz"), format!("GZ {ext}").as_bytes());
        }
        site.write(
            "hash.txt",
            format!("js: {JS_HASH}\nwasm: {WASM_HASH}\ncss: {CSS_HASH}\n").as_bytes(),
        );
        site
    }

    fn write(&self, path: &str, contents: &[u8]) {
        std::fs::write(self.root.join(path), contents).unwrap();
    }

    fn root(&self) -> &str {
        self.root.to_str().unwrap()
    }

    async fn spawn(&self) -> TestApp {
        spawn_app_with(&[("LEPTOS_SITE_ROOT", self.root())]).await
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn identity_body(ext: &str) -> Vec<u8> {
    match ext {
        "wasm" => b"\0asm\x01\0\0\0 plain wasm".to_vec(),
        other => format!("/* plain {other} */").into_bytes(),
    }
}

async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> Answer {
    let mut request = app.client.get(app.url(path));
    if let Some(value) = accept_encoding {
        request = request.header("accept-encoding", value);
    }
    Answer::read(request.send().await.unwrap()).await
}

/// An answer with its body as sent (reqwest here decodes nothing).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn varies_on_accept_encoding(&self) -> bool {
        self.headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"))
    }

    /// The body decoded according to `Content-Encoding`.
    fn text(&self) -> String {
        let mut text = String::new();
        match self.header("content-encoding") {
            None => text = String::from_utf8(self.body.clone()).unwrap(),
            Some("br") => {
                brotli_decompressor::Decompressor::new(&self.body[..], 4096)
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Some("gzip") => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Some(other) => panic!("unexpected content-encoding {other}"),
        }
        text
    }
}

#[tokio::test]
async fn the_wasm_comes_precompressed_as_the_client_accepts_and_is_cached_for_a_year() {
    let site = Site::hashed();
    let app = site.spawn().await;

    for (accept, encoding, body) in [
        (Some("br"), Some("br"), b"BR wasm".to_vec()),
        // What browsers send: brotli wins.
        (
            Some("gzip, deflate, br, zstd"),
            Some("br"),
            b"BR wasm".to_vec(),
        ),
        (Some("gzip"), Some("gzip"), b"GZ wasm".to_vec()),
        (Some("identity"), None, identity_body("wasm")),
        (None, None, identity_body("wasm")),
    ] {
        let answer = get(&app, &wasm_path(), accept).await;
        assert_eq!(answer.status, 200, "Accept-Encoding {accept:?}");
        assert_eq!(answer.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(answer.body, body, "{accept:?}");
        assert_eq!(answer.header("content-type"), Some("application/wasm"));
        assert_eq!(answer.header("cache-control"), Some(IMMUTABLE));
        assert!(answer.varies_on_accept_encoding(), "{accept:?}");
    }

    let js = get(&app, &format!("/pkg/tldw.{JS_HASH}.js"), Some("gzip")).await;
    assert_eq!(js.status, 200);
    assert_eq!(js.header("content-encoding"), Some("gzip"));
    assert!(js.header("content-type").unwrap().contains("javascript"));
    assert_eq!(js.header("cache-control"), Some(IMMUTABLE));
    let css = get(&app, &format!("/pkg/tldw.{CSS_HASH}.css"), Some("br")).await;
    assert_eq!(css.header("content-encoding"), Some("br"));
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(css.header("cache-control"), Some(IMMUTABLE));

    // Other public files keep their names across builds: a short life.
    let favicon = get(&app, "/favicon.svg", Some("br, gzip")).await;
    assert_eq!(favicon.status, 200);
    assert_eq!(favicon.header("content-encoding"), None);
    assert_eq!(
        favicon.header("cache-control"),
        Some("public, max-age=3600")
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_links_the_hashed_bundle_and_every_link_resolves() {
    let site = Site::hashed();
    let app = site.spawn().await;
    let page = get(&app, "/", None).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    let links = pkg_links(&html);
    for expected in [
        format!("/pkg/tldw.{JS_HASH}.js"),
        format!("/pkg/tldw.{WASM_HASH}.wasm"),
        format!("/pkg/tldw.{CSS_HASH}.css"),
    ] {
        assert!(links.contains(&expected), "{expected} not in {links:?}");
    }
    // The hydration script is handed the same names.
    assert!(html.contains(&format!("\"tldw.{JS_HASH}\"")));
    assert!(html.contains(&format!("\"tldw.{WASM_HASH}\"")));
    for link in &links {
        assert_eq!(get(&app, link, Some("br")).await.status, 200, "{link}");
    }
    app.stop().await.unwrap();
}

/// Every `href="/pkg/…"` in a page.
fn pkg_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/pkg/"))
        .map(str::to_owned)
        .collect()
}

/// The real build, when `build_site` has made one where the server looks
/// (`LEPTOS_SITE_ROOT`, as scripts/lib.sh exports it): the page's links
/// exist and come precompressed.
#[tokio::test]
async fn the_real_build_is_linked_and_precompressed_when_there_is_one() {
    let Some(root) = std::env::var_os("LEPTOS_SITE_ROOT").map(PathBuf::from) else {
        eprintln!("LEPTOS_SITE_ROOT is unset: no real build to check");
        return;
    };
    if !root.join("hash.txt").is_file() {
        eprintln!("no hash.txt in {}: no real build to check", root.display());
        return;
    }
    let app = spawn_app_with(&[("LEPTOS_SITE_ROOT", root.to_str().unwrap())]).await;
    let html = get(&app, "/", None).await.text();
    let links = pkg_links(&html);
    for ext in ["js", "wasm", "css"] {
        let link = links
            .iter()
            .find(|l| l.ends_with(&format!(".{ext}")))
            .unwrap_or_else(|| panic!("no .{ext} link in {links:?}"));
        let name = link.trim_start_matches("/pkg/");
        assert_eq!(name.split('.').count(), 3, "{link} is not hashed");
        let answer = get(&app, link, Some("br")).await;
        assert_eq!(answer.status, 200, "{link}");
        assert_eq!(answer.header("content-encoding"), Some("br"), "{link}");
        assert_eq!(answer.header("cache-control"), Some(IMMUTABLE));
        assert!(root.join("pkg").join(name).is_file());
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn pages_are_compressed_when_accepted_and_never_cached_stale() {
    let site = Site::hashed();
    let app = site.spawn().await;
    for (accept, encoding) in [
        (Some("br"), Some("br")),
        (Some("gzip"), Some("gzip")),
        (Some("gzip, deflate, br"), Some("br")),
        (None, None),
    ] {
        let page = get(&app, "/", accept).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(page.header("cache-control"), Some("no-cache"));
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.varies_on_accept_encoding(), "{accept:?}");
        let html = page.text();
        assert!(html.contains("</html>"), "{accept:?}: {html}");
        assert!(html.contains(&format!("/pkg/tldw.{CSS_HASH}.css")));
    }
    // Small JSON is not worth compressing.
    let health = get(&app, "/healthz", Some("br")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-encoding"), None);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_are_still_the_apps_404_page() {
    let site = Site::hashed();
    let app = site.spawn().await;
    for path in [
        "/no/such/page",
        "/pkg/tldw.ffffffffffffffff.wasm",
        "/pkg",
        "/pkg/",
        "/hash.txt/x",
    ] {
        let answer = get(&app, path, Some("br")).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-cache"), "{path}");
        assert!(
            answer.text().contains("We couldn't find that page."),
            "{path}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_unhashed_bundle_is_served_but_revalidated() {
    // What an older build (or cargo-leptos without hash-files) leaves.
    let site = Site::empty();
    for ext in ["js", "wasm", "css"] {
        site.write(&format!("pkg/tldw.{ext}"), &identity_body(ext));
    }
    let app = site.spawn().await;
    let links = pkg_links(&get(&app, "/", None).await.text());
    for expected in ["/pkg/tldw.js", "/pkg/tldw.wasm", "/pkg/tldw.css"] {
        assert!(
            links.iter().any(|l| l == expected),
            "{expected} not in {links:?}"
        );
    }
    let wasm = get(&app, "/pkg/tldw.wasm", Some("br")).await;
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.body, identity_body("wasm"));
    assert_eq!(wasm.header("cache-control"), Some("no-cache"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_hash_file_naming_a_missing_file_stops_start_up() {
    let site = Site::hashed();
    std::fs::remove_file(Path::new(site.root()).join(format!("pkg/tldw.{WASM_HASH}.wasm")))
        .unwrap();
    let db = TestDb::new().await;
    let settings = settings_for(&db, &[("LEPTOS_SITE_ROOT", site.root())]);
    let error = match Application::build(settings).await {
        Ok(_) => panic!("the app started with an incomplete bundle"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&format!("tldw.{WASM_HASH}.wasm")) && error.contains("missing"),
        "{error}"
    );
}
