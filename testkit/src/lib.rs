//! Test support, in one place for every suite (and the benchmark): a real SMTP server that keeps
//! what it receives, and the database shortcuts tests need (a user without the slow sign-up, an
//! auction ended now, a test database's URL for child processes).

pub mod db;
pub mod smtp;
