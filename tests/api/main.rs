//! HTTP-level tests: each starts the real App on a database of its own, on
//! SQLite by default and on PostgreSQL when `TEST_DATABASE_URL` is set.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test that cannot go on should fail loudly at the line that failed"
)]

mod appointments;
mod audit;
mod auth;
mod billing;
mod calendar;
mod cli;
mod concurrency;
mod conditional;
mod contract;
mod cors;
mod courses;
mod demo;
mod errors;
mod events;
mod fhir;
mod helpers;
mod idempotency;
mod identifiers;
mod intake;
mod issuers;
mod limits;
mod links;
mod operations;
mod patients;
mod privilege;
mod roles;
mod schema;
mod security;
mod smart;
mod webhooks;
