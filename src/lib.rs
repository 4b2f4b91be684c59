//! RunLedger: an event-sourced MLOps tracking server that speaks MLflow's REST API.
//!
//! Data flow: `api` parses requests → `ledger` decides with `domain` and appends `events` to the
//! `log` → `projection` applies them to DuckDB → `query` reads DuckDB for responses.

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod domain;
pub mod events;
pub mod jobs;
pub mod ledger;
pub mod log;
pub mod optimize;
pub mod projection;
pub mod query;
pub mod server;
pub mod telemetry;
