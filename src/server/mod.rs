//! Everything that only exists on the server.

pub mod auth;
pub mod clients;
pub mod config;
pub mod db;
pub mod doctor;
pub mod http;
pub mod live;
pub mod metrics;
pub mod services;
pub mod startup;
pub mod summarizer;
pub mod telemetry;
pub mod webhooks;
