//! Plain axum routes and the HTTP plumbing shared by every route.

pub mod api;
pub mod assets;
pub mod csrf;
pub mod ctx;
pub mod error_response;
pub mod events;
pub mod health;
pub mod security_headers;
pub mod serve;
pub mod state;

pub use state::{AppState, WebSettings};
