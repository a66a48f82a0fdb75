//! One integration-test binary, so the app links once. Every test gets its
//! own database cloned from a migrated template in a private cluster.

mod accounts;
mod api_keys;
mod assets;
mod billing;
mod clerk;
mod clerk_mode;
mod csrf;
mod docs;
mod doctor;
mod dodo;
mod embedded;
mod faults;
mod health;
mod helpers;
mod idempotency;
mod identity_cache;
mod invitations;
mod languages;
mod leptos_toml;
mod mail;
mod metrics;
mod orgs;
mod outage_pages;
mod own_transcripts;
mod pages;
mod pgbouncer;
mod quota;
mod rest;
mod rls;
mod scale_out;
mod summaries;
mod summarizer;
mod usage;
mod video_cache;
mod youtube;
