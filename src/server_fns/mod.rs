//! Server functions: thin. Each authenticates, calls a service and lets
//! `Ctx::finish` give the error its HTTP status. Endpoints are fixed names
//! (`/api/auth/sign-in`…), so tests, logs and API users can rely on them.

pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod invitations;
pub mod orgs;
pub mod summaries;
