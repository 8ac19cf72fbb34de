//! Listing auctions and bids: filters, sorts and keyset cursors, one SQL statement per page
//! whatever its size (seller, category and region come from joins; counts are kept on the row).

use sqlx::PgConnection;

use super::Status;
use super::bidding::Bid;
use super::store::{Auction, auction_select};
use crate::ids::{AuctionId, BidId, CategoryId, RegionId, UserId};
use crate::pagination::{Cursor, CursorError, next_page};

/// List order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Soonest `ends_at` first.
    #[default]
    EndingSoon,
    /// Most recently created first.
    Newest,
    /// Cheapest current price first.
    PriceAsc,
    /// Dearest current price first.
    PriceDesc,
    /// Most bids first.
    MostBids,
}

/// What to list; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The region's whole subtree, plus national auctions.
    pub region_id: Option<RegionId>,
    /// One category.
    pub category_id: Option<CategoryId>,
    /// Words in the title (case-insensitive substring).
    pub q: Option<String>,
    /// Current price at least.
    pub min_price: Option<i64>,
    /// Current price at most.
    pub max_price: Option<i64>,
    /// Status as clients see it.
    pub status: Option<Status>,
    /// One seller's auctions.
    pub seller_id: Option<UserId>,
    /// Auctions this user has bid on.
    pub bidder_id: Option<UserId>,
    /// Auctions this user watches.
    pub watcher_id: Option<UserId>,
}

fn cursor_after(sort: Sort, auction: &Auction) -> Cursor {
    let key = match sort {
        Sort::EndingSoon => return Cursor::for_time(auction.ends_at, auction.id.0),
        Sort::Newest => auction.id.0,
        Sort::PriceAsc | Sort::PriceDesc => auction.current_price,
        Sort::MostBids => i64::from(auction.bid_count),
    };
    Cursor::new(key, auction.id.0)
}

macro_rules! list_sql {
    ($keyset:literal, $order:literal) => {
        concat!(
            auction_select!(),
            " WHERE ($1::bigint IS NULL OR a.national OR a.region_path @> ARRAY[$1::bigint]) \
                AND ($2::bigint IS NULL OR a.category_id = $2) \
                AND ($3::text IS NULL OR a.id IN (SELECT t.auction_id FROM auction_titles t WHERE t.title ILIKE $3)) \
                AND ($4::bigint IS NULL OR a.current_price >= $4) \
                AND ($5::bigint IS NULL OR a.current_price <= $5) \
                AND ($6::text IS NULL OR CASE $6::text \
                      WHEN 'active' THEN a.status = 'active' OR (a.status = 'scheduled' AND a.starts_at <= now()) \
                      WHEN 'scheduled' THEN a.status = 'scheduled' AND a.starts_at > now() \
                      ELSE a.status = $6::text END) \
                AND ($7::bigint IS NULL OR a.seller_id = $7) \
                AND ($8::bigint IS NULL OR EXISTS (SELECT 1 FROM bids b WHERE b.auction_id = a.id AND b.bidder_id = $8)) \
                AND ($9::bigint IS NULL OR EXISTS (SELECT 1 FROM watches w WHERE w.auction_id = a.id AND w.user_id = $9)) \
                AND ($10::bigint IS NULL OR ",
            $keyset,
            ") ORDER BY ",
            $order,
            " LIMIT $12"
        )
    };
}

// Not checked macros: one statement per sort order, assembled from the shared filters by `list_sql!`.
fn sql(sort: Sort) -> &'static str {
    match sort {
        Sort::EndingSoon => list_sql!("(a.ends_at, a.id) > ($13, $11)", "a.ends_at, a.id"),
        Sort::Newest => list_sql!("a.id < $11", "a.id DESC"),
        Sort::PriceAsc => list_sql!("(a.current_price, a.id) > ($10, $11)", "a.current_price, a.id"),
        Sort::PriceDesc => list_sql!("(a.current_price, a.id) < ($10, $11)", "a.current_price DESC, a.id DESC"),
        Sort::MostBids => list_sql!("(a.bid_count, a.id) < ($10, $11)", "a.bid_count DESC, a.id DESC"),
    }
}

/// `%text%` for ILIKE, with the pattern characters in `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Why a page could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The cursor does not fit this list's order.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One page of auctions and the cursor of the next page, if there is one.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter,
    sort: Sort,
    cursor: Option<Cursor>,
    limit: u8,
) -> Result<(Vec<Auction>, Option<Cursor>), ListError> {
    // Ending-soon pages compare times exactly, as timestamps: never through floating point.
    let ends_after = match (sort, cursor) {
        (Sort::EndingSoon, Some(cursor)) => Some(cursor.time_key()?),
        _ => None,
    };
    let items: Vec<Auction> = sqlx::query_as(sql(sort))
        .bind(filter.region_id)
        .bind(filter.category_id)
        .bind(filter.q.as_deref().map(contains_pattern))
        .bind(filter.min_price)
        .bind(filter.max_price)
        .bind(filter.status.map(Status::as_str))
        .bind(filter.seller_id)
        .bind(filter.bidder_id)
        .bind(filter.watcher_id)
        .bind(cursor.map(Cursor::key))
        .bind(cursor.map(Cursor::id))
        .bind(i64::from(limit) + 1)
        .bind(ends_after)
        .fetch_all(conn)
        .await?;
    Ok(next_page(items, limit, |auction| cursor_after(sort, auction)))
}

/// A page of an auction's bids, newest first; `None` for an unknown auction.
pub async fn bids(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    cursor: Option<Cursor>,
    limit: u8,
) -> Result<Option<(Vec<Bid>, Option<Cursor>)>, sqlx::Error> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM auctions WHERE id = $1) AS "exists!""#,
        auction_id as AuctionId
    )
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(None);
    }
    let items = sqlx::query_as!(
        Bid,
        r#"SELECT b.id AS "id: BidId", b.auction_id AS "auction_id: AuctionId", b.bidder_id AS "bidder_id: UserId",
                  u.username AS bidder_username, b.amount, b.buy_now, b.auto,
                  NULL::bigint AS max_amount, b.created_at
           FROM bids b JOIN users u ON u.id = b.bidder_id
           WHERE b.auction_id = $1 AND ($2::bigint IS NULL OR b.id < $2) ORDER BY b.id DESC LIMIT $3"#,
        auction_id as AuctionId,
        cursor.map(Cursor::id),
        i64::from(limit) + 1,
    )
    .fetch_all(conn)
    .await?;
    Ok(Some(next_page(items, limit, |bid| Cursor::for_id(bid.id.0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_matched_literally() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
