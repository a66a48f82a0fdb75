//! Incoming webhooks.

pub mod signature;
