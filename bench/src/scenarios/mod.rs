//! One module per scenario; each returns its JSON report.

pub mod bids;
pub mod chat;
pub mod close;
pub mod engine;
pub mod fanout;
pub mod flood;
pub mod jobs;
pub mod list;
pub mod photos;
pub mod reference;
