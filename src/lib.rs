//! infusion-api: intake and scheduling for an outpatient ketamine infusion
//! clinic. `http` (actix-web) calls `domain` (pure rules) and `store`
//! (diesel over PostgreSQL or SQLite).

pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod store;
