//! Stored auctions: creating them and reading them with their seller, category and region.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use super::new::NewAuction;
use super::rules::AuctionState;
use super::{AuctionError, Condition, ShippingPayer, Status};
use crate::db::violates;
use crate::ids::{AuctionId, CategoryId, RegionId, UserId};
use crate::photos::ReadyPhoto;
use crate::validation::ValidationError;

/// The columns of [`Auction`]: one statement reads an auction with everything it shows. The view
/// (see migrations/20261126000001_bid_engine.sql) is also what the bid engine answers with.
macro_rules! auction_select {
    () => {
        "SELECT * FROM auction_views a"
    };
}
pub(crate) use auction_select;

/// An auction as clients see it (before the fields derived from the clock).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Auction {
    pub id: AuctionId,
    pub title: String,
    pub description: String,
    pub seller_id: UserId,
    pub seller_username: String,
    /// Mean rating of the reviews the seller received; `None` without any.
    pub seller_rating_average: Option<f64>,
    /// How many reviews the seller received.
    pub seller_rating_count: i64,
    pub category_id: CategoryId,
    pub category_slug: String,
    pub category_name: String,
    pub region_id: RegionId,
    pub region_name: String,
    pub national: bool,
    pub condition: Condition,
    pub shipping_payer: ShippingPayer,
    pub status: Status,
    pub start_price: i64,
    pub current_price: i64,
    pub buy_now_price: Option<i64>,
    pub reserve_price: Option<i64>,
    pub bid_increment: Option<i64>,
    pub bid_count: i32,
    pub leader_id: Option<UserId>,
    pub winner_id: Option<UserId>,
    pub watchers_count: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub soft_close_seconds: i32,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// Its ready photos in display order; the first is the cover.
    #[serde(default)]
    pub photos: sqlx::types::Json<Vec<ReadyPhoto>>,
}

impl Auction {
    /// The part the bidding rules look at.
    pub fn state(&self) -> AuctionState {
        AuctionState {
            status: self.status,
            seller_id: self.seller_id,
            start_price: self.start_price,
            current_price: self.current_price,
            bid_count: self.bid_count,
            bid_increment: self.bid_increment,
            buy_now_price: self.buy_now_price,
            reserve_price: self.reserve_price,
            leader_id: self.leader_id,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            soft_close_seconds: self.soft_close_seconds,
        }
    }

    /// True without a reserve, or once the leading bid reaches it.
    pub fn reserve_price_met(&self) -> bool {
        self.reserve_price.is_none_or(|reserve| self.bid_count > 0 && self.current_price >= reserve)
    }
}

/// Stores a validated auction for `seller_id` and returns it, unless the seller already has
/// `max_open` scheduled or active auctions.
#[tracing::instrument(skip(conn, new), fields(seller_id = seller_id.0, max_open = max_open, user.id = seller_id.0))]
pub async fn create(
    conn: &mut PgConnection,
    seller_id: UserId,
    new: &NewAuction,
    max_open: i64,
) -> Result<Auction, AuctionError> {
    let mut tx = conn.begin().await?;
    // The seller's row lock makes count-then-insert safe against the seller's own concurrent creates.
    let open = sqlx::query_scalar!(
        r#"SELECT count(*) AS "open!" FROM auctions WHERE seller_id = (SELECT id FROM users WHERE id = $1 FOR UPDATE)
             AND status IN ('scheduled', 'active')"#,
        seller_id as UserId,
    )
    .fetch_one(&mut *tx)
    .await?;
    if open >= max_open {
        return Err(AuctionError::TooManyOpen { max: max_open });
    }
    let id = sqlx::query_scalar!(
        r#"INSERT INTO auctions (seller_id, title, description, category_id, region_id, national, condition,
             shipping_payer, start_price, buy_now_price, reserve_price, bid_increment, current_price, status,
             starts_at, ends_at, soft_close_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $9, $13, $14, $15, $16)
         RETURNING id AS "id: AuctionId""#,
        seller_id as UserId,
        &new.title,
        &new.description,
        new.category_id as CategoryId,
        new.region_id as RegionId,
        new.national,
        new.condition as Condition,
        new.shipping_payer as ShippingPayer,
        new.start_price.get(),
        new.buy_now_price.map(|p| p.get()),
        new.reserve_price.map(|p| p.get()),
        new.bid_increment.map(|p| p.get()),
        new.status as Status,
        new.starts_at,
        new.ends_at,
        new.soft_close_seconds,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| {
        if violates(&err, "auctions_category_id_fkey") {
            ValidationError::new("category_id", "unknown_category", "no category has that id").into()
        } else if violates(&err, "auctions_region_id_fkey") {
            ValidationError::new("region_id", "unknown_region", "no region has that id").into()
        } else {
            AuctionError::from(err)
        }
    })?;
    let auction = find(&mut tx, id).await?.ok_or(AuctionError::NotFound)?;
    tx.commit().await?;
    Ok(auction)
}

/// The auction with this id.
pub async fn find(conn: &mut PgConnection, id: AuctionId) -> Result<Option<Auction>, sqlx::Error> {
    // Not a checked macro: the SELECT is shared with the list's dynamic statements (`auction_select!`).
    sqlx::query_as(concat!(auction_select!(), " WHERE a.id = $1")).bind(id).fetch_optional(conn).await
}
