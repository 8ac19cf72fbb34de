//! Seeding straight into PostgreSQL for the scenarios that measure the background path (`close`,
//! `jobs`): thousands of rows in a handful of statements, with the ledger kept as consistent as the
//! application keeps it (deposits from the `external` account, `hold` transfers, cached balances), so
//! the ledger audit still passes afterwards.
//!
//! Every name carries a fresh run id, so a scenario can run again and again on the same database.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};

/// The `external` account of the ledger: deposits come from it.
const EXTERNAL_ACCOUNT: i64 = 1;

/// A fresh run id, part of every username and title a run creates: `bench_{run_id}_…`.
pub fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A small pool: one connection seeds, one polls.
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new().max_connections(2).connect(url).await.context("failed to connect to the database")
}

/// The database's clock, which the scheduler's `now()` follows too.
pub async fn db_now(conn: &mut PgConnection) -> anyhow::Result<DateTime<Utc>> {
    Ok(sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(conn).await?)
}

/// Creates users `{prefix}1..={prefix}{count}` with their two accounts; each gets a deposit of
/// `deposit` (none when 0). Returns their ids.
pub async fn create_users(
    tx: &mut Transaction<'_, Postgres>,
    prefix: &str,
    count: i64,
    deposit: i64,
) -> anyhow::Result<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, email, password_hash) \
         SELECT $1 || i, $1 || i || '@example.test', 'not-a-login-hash' FROM generate_series(1, $2::bigint) i \
         RETURNING id",
    )
    .bind(prefix)
    .bind(count)
    .fetch_all(&mut **tx)
    .await
    .context("failed to create users")?;
    sqlx::query(
        "INSERT INTO accounts (user_id, kind) \
         SELECT u, k FROM unnest($1::bigint[]) u, unnest(ARRAY['available', 'held']) k",
    )
    .bind(&ids)
    .execute(&mut **tx)
    .await
    .context("failed to create accounts")?;
    if deposit > 0 {
        sqlx::query(
            "INSERT INTO transfers (from_account, to_account, amount, kind) \
             SELECT $3, id, $2, 'deposit' FROM accounts WHERE user_id = ANY($1) AND kind = 'available'",
        )
        .bind(&ids)
        .bind(deposit)
        .bind(EXTERNAL_ACCOUNT)
        .execute(&mut **tx)
        .await
        .context("failed to record deposits")?;
        sqlx::query(
            "UPDATE accounts SET balance = balance + CASE WHEN id = $3 THEN -$2 * cardinality($1) ELSE $2 END \
             WHERE id = $3 OR (user_id = ANY($1) AND kind = 'available')",
        )
        .bind(&ids)
        .bind(deposit)
        .bind(EXTERNAL_ACCOUNT)
        .execute(&mut **tx)
        .await
        .context("failed to update balances for deposits")?;
    }
    Ok(ids)
}

/// How seeded auctions stand.
pub enum AuctionState {
    /// Taking bids until this instant.
    ActiveUntil(DateTime<Utc>),
    /// Ended an hour ago without a winner.
    Unsold,
}

/// Creates `count` auctions of `seller` (category 1, region 111, start price and increment 1,000,
/// no soft close), titled `{title} {i}`. Returns their ids.
pub async fn create_auctions(
    tx: &mut Transaction<'_, Postgres>,
    seller: i64,
    count: i64,
    title: &str,
    state: AuctionState,
) -> anyhow::Result<Vec<i64>> {
    let (status, ends_at) = match state {
        AuctionState::ActiveUntil(at) => ("active", Some(at)),
        AuctionState::Unsold => ("unsold", None),
    };
    sqlx::query_scalar(
        "WITH e AS (SELECT coalesce($5::timestamptz, now() - interval '1 hour') AS ends_at) \
         INSERT INTO auctions (seller_id, title, description, category_id, region_id, national, condition, \
                               shipping_payer, start_price, bid_increment, current_price, status, starts_at, \
                               ends_at, soft_close_seconds, ended_at) \
         SELECT $1, $3 || ' ' || i, 'Seeded by neighborbid-bench.', 1, 111, FALSE, 'good', 'buyer', 1000, 1000, \
                1000, $4, least(now(), e.ends_at) - interval '1 hour', e.ends_at, 0, \
                CASE WHEN $4 <> 'active' THEN now() END \
         FROM e, generate_series(1, $2::bigint) i \
         ORDER BY i \
         RETURNING id",
    )
    .bind(seller)
    .bind(count)
    .bind(title)
    .bind(status)
    .bind(ends_at)
    .fetch_all(&mut **tx)
    .await
    .context("failed to create auctions")
}

/// Opens one 1,000 KRW hold per `(user, auction)` pair, moving the money from each user's available
/// to their held account with `hold` transfers (naming the user's latest bid on the auction, if
/// any). Returns the hold ids.
pub async fn open_holds(
    tx: &mut Transaction<'_, Postgres>,
    users: &[i64],
    auctions: &[i64],
) -> anyhow::Result<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO holds (user_id, auction_id, amount) \
         SELECT u, a, 1000 FROM unnest($1::bigint[], $2::bigint[]) AS p(u, a) \
         RETURNING id",
    )
    .bind(users)
    .bind(auctions)
    .fetch_all(&mut **tx)
    .await
    .context("failed to open holds")?;
    sqlx::query(
        "INSERT INTO transfers (from_account, to_account, amount, kind, hold_id, auction_id, bid_id) \
         SELECT av.id, he.id, h.amount, 'hold', h.id, h.auction_id, \
                (SELECT max(b.id) FROM bids b WHERE b.auction_id = h.auction_id AND b.bidder_id = h.user_id) \
         FROM holds h \
         JOIN accounts av ON av.user_id = h.user_id AND av.kind = 'available' \
         JOIN accounts he ON he.user_id = h.user_id AND he.kind = 'held' \
         WHERE h.id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut **tx)
    .await
    .context("failed to record hold transfers")?;
    sqlx::query(
        "UPDATE accounts a SET balance = a.balance + CASE WHEN a.kind = 'held' THEN s.total ELSE -s.total END \
         FROM (SELECT user_id, sum(amount)::bigint AS total FROM holds WHERE id = ANY($1) GROUP BY user_id) s \
         WHERE a.user_id = s.user_id AND a.kind IN ('available', 'held')",
    )
    .bind(&ids)
    .execute(&mut **tx)
    .await
    .context("failed to update balances for holds")?;
    Ok(ids)
}
