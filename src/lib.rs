//! dbstash: back up many databases from one YAML manifest.
//!
//! The data path reads from the folder names: `manifest` (text → validated `model`) → `plan`
//! (model → pure `JobPlan`) → `run` (execute a plan: dump → relay → storage → record in
//! `catalog`) → `storage` (local folder or rclone). `engine` holds everything about each database
//! engine, `domain` the vocabulary all of them share. `supervisor` schedules runs, `notify` tells
//! people, `server` serves health and metrics, `cli` is the imperative shell.
//!
//! Imports point one way, down the order declared in `layers::ORDER` (a test enforces it).

// Functions read as named stages: clippy.toml sets the limit (150 lines of code).
#![warn(clippy::too_many_lines)]

pub mod cancel;
pub mod catalog;
pub mod cli;
pub mod crypt;
pub mod domain;
pub mod engine;
pub mod error;
pub mod layers;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod notify;
pub mod pitr;
pub mod plan;
pub mod proc;
pub mod restore;
pub mod run;
pub mod secret;
pub mod server;
pub mod signals;
pub mod storage;
pub mod supervisor;
