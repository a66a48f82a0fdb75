//! Clients for services outside the process.

pub mod mailer;
pub mod youtube;
