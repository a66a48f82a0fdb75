//! Plain axum routes and the HTTP plumbing shared by every route.

pub mod error_response;
pub mod health;
pub mod state;

pub use state::AppState;
