//! The web API, end to end over HTTP against the real PostgreSQL and Redis.

mod admin;
mod auctions;
mod bad_input;
mod bidding;
mod ceiling;
mod closing;
mod concurrency;
mod demo;
mod emails;
mod health;
mod helpers;
mod holds;
mod hostile;
mod limits;
mod live;
mod observability;
mod photos;
mod proxy;
mod reference;
mod retention;
mod sessions;
mod spec;
mod statements;
mod talk;
mod users;
mod wallet;
