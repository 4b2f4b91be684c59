//! Integration tests: the real `runledger` binary on port 0 with a temporary data directory.
//! One test binary keeps link time down.

mod support;

mod analytics;
mod artifacts;
mod auth;
mod crash;
mod jobs;
mod openapi;
mod opt_common;
mod optimize;
mod projection;
mod techniques;
mod telemetry;
mod tenancy;
