//! NeighborBid's core: the domain rules, the ledger, database access, jobs, events, configuration and
//! telemetry shared by the web front, the workers and the scheduler.

pub mod config;
pub mod db;
pub mod health;
pub mod reference;
pub mod shutdown;
pub mod telemetry;
pub mod users;
pub mod validation;
