//! The deployment engine of ecs-dns-canary.
//!
//! A deployment follows the modules in order: [`model`] (the input and each
//! function's answer), [`plan`] (pure decisions: which slot is idle, the next
//! weights, whether a gate passes), [`aws`] (one adapter per AWS service) and
//! [`handlers`] (one per Lambda function). [`runtime`] holds what the thin
//! `main.rs` of each function needs: logging, settings and SDK clients.

pub mod aws;
pub mod error;
pub mod handlers;
pub mod model;
pub mod plan;
pub mod runtime;
pub mod states;
pub mod time;

pub use error::{CanaryError, Result};
