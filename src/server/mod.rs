//! Everything that only exists on the server.

pub mod config;
pub mod db;
pub mod http;
pub mod startup;
pub mod telemetry;
