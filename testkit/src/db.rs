//! Shortcuts into a test's own database.

use neighborbid_shared::ids::{AuctionId, UserId};
use sqlx::{PgConnection, PgPool};

/// A user named `username` with both wallet accounts and no usable password, made in one statement
/// (sign-up's deliberately slow password hashing would dominate tests that need hundreds of users).
pub async fn insert_user(conn: &mut PgConnection, username: &str) -> Result<UserId, sqlx::Error> {
    sqlx::query_scalar(
        "WITH u AS (INSERT INTO users (username, email, password_hash) \
                    VALUES ($1, $1 || '@example.com', 'not-a-login-hash') RETURNING id), \
              a AS (INSERT INTO accounts (user_id, kind) SELECT id, k FROM u, unnest(ARRAY['available', 'held']) k) \
         SELECT id FROM u",
    )
    .bind(username)
    .fetch_one(conn)
    .await
}

/// Moves an auction's end to a second ago (and its start two minutes back), so the next closing
/// pass closes it.
pub async fn end_now(pool: &PgPool, auction_id: AuctionId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auctions SET starts_at = now() - interval '2 minutes', ends_at = now() - interval '1 second' \
         WHERE id = $1",
    )
    .bind(auction_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The URL of the database `pool` is connected to, for child processes of a test: `DATABASE_URL`'s
/// server with the test's own database name (`#[sqlx::test]` makes one per test).
pub async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for sqlx::test");
    let (server, _) = base.rsplit_once('/').expect("DATABASE_URL names a database");
    format!("{server}/{name}")
}
