//! Background jobs: one module per job, each handler idempotent (delivery is at-least-once).

pub mod refund;
