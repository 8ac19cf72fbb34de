//! The watchlist: watching is idempotent, and the auction's watcher count follows it exactly.

use sqlx::{Connection, PgConnection};

use super::AuctionError;
use crate::db::violates;
use crate::ids::{AuctionId, UserId};

/// Adds the auction to the user's watchlist; watching twice is the same as once.
pub async fn watch(conn: &mut PgConnection, user_id: UserId, auction_id: AuctionId) -> Result<(), AuctionError> {
    let mut tx = conn.begin().await?;
    let added = sqlx::query!(
        "INSERT INTO watches (user_id, auction_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user_id as UserId,
        auction_id as AuctionId,
    )
    .execute(&mut *tx)
    .await
    .map_err(|err| if violates(&err, "watches_auction_id_fkey") { AuctionError::NotFound } else { err.into() })?
    .rows_affected();
    if added == 1 {
        sqlx::query!("UPDATE auctions SET watchers_count = watchers_count + 1 WHERE id = $1", auction_id as AuctionId)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes the auction from the user's watchlist; unwatching an unwatched auction does nothing.
pub async fn unwatch(conn: &mut PgConnection, user_id: UserId, auction_id: AuctionId) -> Result<(), AuctionError> {
    let mut tx = conn.begin().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM auctions WHERE id = $1) AS "exists!""#,
        auction_id as AuctionId
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(AuctionError::NotFound);
    }
    let removed = sqlx::query!(
        "DELETE FROM watches WHERE user_id = $1 AND auction_id = $2",
        user_id as UserId,
        auction_id as AuctionId
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 1 {
        sqlx::query!("UPDATE auctions SET watchers_count = watchers_count - 1 WHERE id = $1", auction_id as AuctionId)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
