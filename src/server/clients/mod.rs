//! Clients for services outside the process.

pub mod dodo;
pub mod mailer;
pub mod youtube;
