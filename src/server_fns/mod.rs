//! Server functions: thin. Each runs inside `ctx::serve` (which gives an
//! error its HTTP status), authenticates and calls a service. Endpoints are
//! fixed names (`/api/auth/sign-in`…), so tests, logs and API users can rely
//! on them.

pub mod account;
pub mod api_docs;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod invitations;
pub mod orgs;
pub mod summaries;
pub mod usage;
