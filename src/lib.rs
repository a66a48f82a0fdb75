//! tldw: AI summaries of YouTube videos for organizations.
//!
//! This file is the only place that gates whole modules by feature: `server`
//! exists for the `ssr` build, `hydrate()` for the browser build.

pub mod app;
pub mod components;
pub mod domain;
pub mod error;
pub mod pages;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the browser build: attach to the server-rendered HTML.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
