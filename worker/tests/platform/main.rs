//! The job platform end to end: real schedulers and workers, PostgreSQL, Redis and an SMTP server.

mod harness;
mod lifecycle;
mod observability;
mod photos;
