//! One module per route.

pub mod account;
pub mod account_links;
pub mod api_docs;
pub mod app_home;
pub mod auth;
pub mod billing;
pub mod invitation;
pub mod landing;
pub mod new_org;
pub mod not_found;
pub mod org_home;
pub mod org_settings;
pub mod org_shell;
pub mod summary;
