//! One integration-test binary, so the app links once. Every test gets its
//! own database cloned from a migrated template in a private cluster.

mod clerk;
mod embedded;
mod health;
mod helpers;
mod leptos_toml;
mod pages;
mod rls;
