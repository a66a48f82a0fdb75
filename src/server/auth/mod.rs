//! Who is asking: built-in accounts or Clerk session tokens, behind the same
//! types so the rest of the app does not know which one is on.

pub mod cache;
pub mod clerk;
pub mod clerk_api;
pub mod clerk_link;
pub mod clerk_sync;
pub mod client_ip;
pub mod identity;
pub mod password;
pub mod rate_limit;
pub mod session;
