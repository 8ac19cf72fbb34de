//! Background jobs: one module per job (payload, handler), each handler idempotent because
//! delivery is at-least-once; the queues, the outbox relay and the reconciliation sweep.

pub mod email;
pub mod queues;
pub mod reconcile;
pub mod refund;
pub mod relay;
pub mod settlement;
