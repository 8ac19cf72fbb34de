//! The web API, end to end over HTTP against the real PostgreSQL and Redis.

mod bad_input;
mod health;
mod helpers;
mod reference;
mod sessions;
mod spec;
mod users;
