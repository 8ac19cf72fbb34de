//! Test support, in one place for every suite (and the benchmark): a real SMTP server that keeps
//! what it receives, a Sentry sink that keeps the events it is sent, our binaries as child processes
//! with their logs, `/metrics` scrapes, and the database shortcuts tests need (a user without the
//! slow sign-up, an auction ended now, a test database's URL for child processes).

pub mod db;
pub mod process;
pub mod sentry;
pub mod smtp;
