//! Static files and HTTP caching, as a production site serves them.
//!
//! `scripts/lib.sh::build_site` names the browser bundle by content hash
//! (`pkg/tldw.<hash>.{js,wasm,css}`), puts a brotli and a gzip copy beside
//! each file and writes `hash.txt` (`js: <hash>` …) in the site root. Leptos
//! (`hash-files` in Leptos.toml) reads that file to write the page's
//! `<script>` and `<link>`. Here:
//!
//! - [`prepare_site`] checks the built site at start-up and points Leptos at
//!   its hash file;
//! - [`static_or_not_found`], the router's fallback, serves files from the
//!   site root (the `.br`/`.gz` copy when the client accepts it) with cache
//!   headers, and leaves every other path to Leptos's own 404 page;
//! - [`response_layers`] compresses HTML and JSON on the fly and marks HTML
//!   `no-cache`.

use anyhow::{Context, bail};
use axum::{
    body::{Body, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    response::Response,
};
use leptos::config::LeptosOptions;
use std::path::{Path, PathBuf};
use tower::{ServiceBuilder, ServiceExt, layer::util::Identity, layer::util::Stack};
use tower_http::{
    compression::{CompressionLayer, Predicate, predicate::SizeAbove},
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
};

use super::AppState;
use crate::app::shell;

/// Content-hashed files never change: a new build has new names.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Other public files (the favicon…) keep their names across builds.
pub const SHORT_LIVED: &str = "public, max-age=3600";
/// Unhashed files in the package folder (wasm-bindgen snippets, or a bundle
/// built without hashes) change in place: browsers must revalidate them.
pub const REVALIDATE: &str = "no-cache";
/// Pages are rendered per request (and per user).
pub const HTML: &str = "no-cache";

/// Smaller answers are sent as they are: compressing them hardly pays.
const MIN_COMPRESSED_BYTES: u16 = 1024;

/// The files `hash.txt` must name: the JS glue, the wasm and the CSS.
const BUNDLE: [&str; 3] = ["js", "wasm", "css"];

/// Resolves the site root (`LEPTOS_SITE_ROOT` via `site_root`, else
/// Leptos.toml's) to an absolute path and checks the bundle in it.
///
/// With `hash-files` on, the hash file is looked for in the site root (where
/// `build_site` writes it), then beside the server binary (where
/// cargo-leptos writes it and Leptos looks by default). Leptos joins
/// `hash_file` onto the binary's folder, so it is set to the absolute path
/// found (joining an absolute path yields that path).
///
/// - A hash file naming a file that is not there is an incomplete build:
///   start-up fails.
/// - No hash file, but an unhashed `tldw.js`/`tldw.wasm`: those are served
///   (revalidated on every use), with a warning.
/// - No bundle at all: an error is logged, and pages are served without
///   hydration (every page and form works without JavaScript).
pub fn prepare_site(options: &mut LeptosOptions, site_root: Option<&Path>) -> anyhow::Result<()> {
    let root = match site_root {
        Some(root) => root.to_path_buf(),
        None => PathBuf::from(&*options.site_root),
    };
    let root = std::path::absolute(&root)
        .with_context(|| format!("the site root {} cannot be resolved", root.display()))?;
    options.site_root = path_str(&root)?.into();
    let pkg = root.join(&*options.site_pkg_dir);
    let name = options.output_name.to_string();

    if options.hash_files {
        let beside_binary = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        let hash_file = std::iter::once(root.clone())
            .chain(beside_binary)
            .map(|dir| dir.join(&*options.hash_file))
            .find(|path| path.is_file());
        if let Some(hash_file) = hash_file {
            let text = std::fs::read_to_string(&hash_file)
                .with_context(|| format!("could not read {}", hash_file.display()))?;
            let hashes = parse_hash_file(&text)
                .with_context(|| format!("{} is not a valid hash file", hash_file.display()))?;
            let mut files = Vec::new();
            for ext in BUNDLE {
                let hash = hashes
                    .iter()
                    .find(|(kind, _)| *kind == ext)
                    .map(|(_, hash)| hash)
                    .with_context(|| format!("{} names no {ext} file", hash_file.display()))?;
                let file = pkg.join(format!("{name}.{hash}.{ext}"));
                if !file.is_file() {
                    bail!(
                        "{} names {}, which is missing: the site build is incomplete; rebuild it (scripts/run does)",
                        hash_file.display(),
                        file.display()
                    );
                }
                files.push(file);
            }
            tracing::info!(hash_file = %hash_file.display(), bundle = ?files, "serving the content-hashed browser bundle");
            options.hash_file = path_str(&hash_file)?.into();
            return Ok(());
        }
        // Leptos would panic on the first page without it.
        options.hash_files = false;
    }

    let unhashed = [
        pkg.join(format!("{name}.js")),
        pkg.join(format!("{name}.wasm")),
    ];
    if unhashed.iter().all(|file| file.is_file()) {
        tracing::warn!(
            pkg = %pkg.display(),
            "no hash file: serving an unhashed browser bundle, which browsers must revalidate on every use; build the site with scripts/run for cacheable names"
        );
    } else {
        tracing::error!(
            pkg = %pkg.display(),
            "no browser bundle: pages are served but will not hydrate (they work without JavaScript, less smoothly); build the site with scripts/run, or point LEPTOS_SITE_ROOT at a built site"
        );
    }
    Ok(())
}

/// `kind: hash` lines, as cargo-leptos writes them. Hashes end up in file
/// names, so they must be plain URL-safe words.
fn parse_hash_file(text: &str) -> anyhow::Result<Vec<(&str, &str)>> {
    let mut hashes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (kind, hash) = line
            .split_once(':')
            .with_context(|| format!("expected `kind: hash`, got {line:?}"))?;
        let hash = hash.trim();
        if !is_hash(hash) {
            bail!("{hash:?} is not a hash");
        }
        hashes.push((kind.trim(), hash));
    }
    Ok(hashes)
}

fn is_hash(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

/// The router's fallback: a file from the site root if there is one (GET or
/// HEAD), else Leptos's handler, which renders the app's 404 page.
pub async fn static_or_not_found(State(state): State<AppState>, request: Request) -> Response {
    let mut request = request;
    if request.method() == Method::GET || request.method() == Method::HEAD {
        let (parts, body) = request.into_parts();
        let file_request = Request::from_parts(parts.clone(), Body::empty());
        let Ok(response) = ServeDir::new(&*state.leptos_options.site_root)
            .precompressed_br()
            .precompressed_gzip()
            .oneshot(file_request)
            .await;
        if matches!(
            response.status(),
            StatusCode::OK
                | StatusCode::PARTIAL_CONTENT
                | StatusCode::NOT_MODIFIED
                | StatusCode::RANGE_NOT_SATISFIABLE
        ) {
            let cache = cache_control(&state.leptos_options.site_pkg_dir, parts.uri.path());
            let mut response = response.map(Body::new);
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            // The .br/.gz copies make the answer depend on Accept-Encoding.
            headers.append(
                header::VARY,
                HeaderValue::from_static(header::ACCEPT_ENCODING.as_str()),
            );
            return response;
        }
        request = Request::from_parts(parts, body);
    }
    let uri = request.uri().clone();
    leptos_axum::file_and_error_handler::<AppState, _>(shell)(uri, State(state), request).await
}

/// `Cache-Control` for the file at `path` (the request path).
pub fn cache_control(pkg_dir: &str, path: &str) -> &'static str {
    let pkg_prefix = format!("/{}/", pkg_dir.trim_matches('/'));
    match path.strip_prefix(&pkg_prefix) {
        Some(file) if is_content_hashed(file) => IMMUTABLE,
        Some(_) => REVALIDATE,
        None => SHORT_LIVED,
    }
}

/// `name.<hash>.ext` directly in the package folder, as `build_site` (and
/// cargo-leptos) name the bundle: a hash of at least 16 URL-safe characters.
fn is_content_hashed(file: &str) -> bool {
    let parts: Vec<&str> = file.split('.').collect();
    !file.contains('/')
        && parts.len() == 3
        && parts.iter().all(|p| !p.is_empty())
        && parts[1].len() >= 16
        && is_hash(parts[1])
}

/// Layers for the whole router: on-the-fly compression (brotli or gzip) of
/// HTML and JSON, and `Cache-Control: no-cache` on HTML that sets none.
pub fn response_layers() -> ResponseLayers {
    ServiceBuilder::new()
        .layer(
            CompressionLayer::new()
                .br(true)
                .gzip(true)
                .compress_when(Compressible),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            html_cache_control as HtmlCacheControl,
        ))
}

/// Compression outside, the HTML `Cache-Control` inside.
pub type ResponseLayers = ServiceBuilder<
    Stack<
        SetResponseHeaderLayer<HtmlCacheControl>,
        Stack<CompressionLayer<Compressible>, Identity>,
    >,
>;

pub type HtmlCacheControl = fn(&Response) -> Option<HeaderValue>;

fn html_cache_control(response: &Response) -> Option<HeaderValue> {
    (media_type(response.headers()) == "text/html").then(|| HeaderValue::from_static(HTML))
}

/// What is worth compressing on the fly: HTML and JSON of some size. Never
/// the bundle (it is precompressed, or sent as it is), never anything
/// already encoded (CompressionLayer checks `Content-Encoding` itself), and
/// never an event stream, which must reach the client chunk by chunk.
#[derive(Clone, Copy, Debug)]
pub struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B>(&self, response: &axum::http::Response<B>) -> bool
    where
        B: HttpBody,
    {
        matches!(
            media_type(response.headers()).as_str(),
            "text/html" | "application/json"
        ) && SizeAbove::new(MIN_COMPRESSED_BYTES).should_compress(response)
    }
}

/// `text/html` from `text/html; charset=utf-8`, lower-cased.
fn media_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hashed_bundle_files_are_immutable() {
        assert_eq!(
            cache_control("pkg", "/pkg/tldw.0123456789abcdef.wasm"),
            IMMUTABLE
        );
        assert_eq!(
            cache_control("/pkg/", "/pkg/tldw.0123456789abcdef.js"),
            IMMUTABLE
        );
        // cargo-leptos's hashes: base64url MD5.
        assert_eq!(
            cache_control("pkg", "/pkg/tldw.Kd-3_xQ9aZ0b1c2d3e4f5g.css"),
            IMMUTABLE
        );
        assert_eq!(cache_control("pkg", "/pkg/tldw.wasm"), REVALIDATE);
        assert_eq!(cache_control("pkg", "/pkg/tldw.abc.wasm"), REVALIDATE);
        assert_eq!(
            cache_control("pkg", "/pkg/snippets/x-0123456789abcdef/inline0.js"),
            REVALIDATE
        );
        assert_eq!(cache_control("pkg", "/favicon.svg"), SHORT_LIVED);
        assert_eq!(
            cache_control("pkg", "/tldw.0123456789abcdef.wasm"),
            SHORT_LIVED
        );
    }

    #[test]
    fn only_html_and_json_of_some_size_are_compressed_on_the_fly() {
        let response = |content_type: &str, len: usize| {
            axum::http::Response::builder()
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(vec![b'a'; len]))
                .unwrap()
        };
        assert!(Compressible.should_compress(&response("text/html; charset=utf-8", 2000)));
        assert!(Compressible.should_compress(&response("application/json", 2000)));
        assert!(!Compressible.should_compress(&response("application/json", 100)));
        assert!(!Compressible.should_compress(&response("text/event-stream", 2000)));
        assert!(!Compressible.should_compress(&response("application/wasm", 2000)));
        assert!(!Compressible.should_compress(&response("text/javascript", 2000)));
    }

    #[test]
    fn hash_files_parse_as_cargo_leptos_writes_them() {
        let text = "js: abc123\nwasm: Kd-3_x\ncss: 0f\n\n";
        assert_eq!(
            parse_hash_file(text).unwrap(),
            vec![("js", "abc123"), ("wasm", "Kd-3_x"), ("css", "0f")]
        );
        assert!(parse_hash_file("js: ../../etc/passwd").is_err());
        assert!(parse_hash_file("js abc").is_err());
    }
}
