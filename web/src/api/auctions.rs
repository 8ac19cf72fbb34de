//! Auctions: create, list, read, bid, buy now, cancel, watch, and the caller's own views.

use chrono::{DateTime, Utc};
use neighborbid_shared::auctions::bidding::{self, Bid, BidOrder, BidReceipt};
use neighborbid_shared::auctions::listing::{self, Filter, Sort};
use neighborbid_shared::auctions::new::NewAuctionRequest;
use neighborbid_shared::auctions::store::{self, Auction};
use neighborbid_shared::auctions::{self as domain, AuctionError, watch};
use neighborbid_shared::ids::{AuctionId, CategoryId, RegionId, UserId};
use neighborbid_shared::media::MediaKey;
use neighborbid_shared::metrics::BIDS;
use neighborbid_shared::money::Krw;
use neighborbid_shared::pagination::Cursor;
use neighborbid_shared::validation::refuse_control_chars;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::auth::BearerAuth;
use super::error::{ApiError, ErrorSet, error_set};
use super::photos::PhotoView;
use super::talk::RatingView;
use super::{ApiTags, Page};
use crate::state::AppState;

error_set!(
    /// Errors of creating an auction.
    CreateErrors {
        400 => "malformed body",
        401 => "missing, invalid, expired or revoked token",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        409 => "`too_many_open_auctions`: the seller has `MAX_OPEN_AUCTIONS_PER_USER` scheduled or active auctions",
        422 => "a rule was broken; `details.field` names the field (`invalid_title`, `control_character`, `invalid_duration`, `starts_too_late`, `no_room_to_outbid`, `unknown_category`, …)",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of reading auctions.
    ReadErrors {
        400 => "malformed parameter or `invalid_cursor`",
        422 => "`control_character` in `q`",
        404 => "`auction_not_found`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of the caller's own lists.
    MyListErrors {
        400 => "malformed parameter or `invalid_cursor`",
        401 => "missing, invalid, expired or revoked token",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of bidding and buying.
    BidErrors {
        400 => "malformed body or parameter",
        401 => "missing, invalid, expired or revoked token",
        403 => "`own_auction`: sellers cannot bid on or buy their own items",
        404 => "`auction_not_found`",
        409 => "`auction_not_active`, `bid_too_low` (`details.minimum`), `maximum_not_raised` (`details.maximum`, your own), `buy_now_unavailable`, `insufficient_funds` or `idempotency_key_reused`",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`amount_not_positive`, `amount_too_large`, `max_below_amount` or `invalid_idempotency_key`",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of seller and watchlist actions.
    ActionErrors {
        400 => "malformed parameter",
        401 => "missing, invalid, expired or revoked token",
        403 => "`not_seller`",
        404 => "`auction_not_found`",
        409 => "`auction_has_bids` or `auction_not_active`",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident => $domain:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Clone, Copy, PartialEq, Eq)]
        #[oai(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                match value { $(<$domain>::$variant => Self::$variant),+ }
            }
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => Self::$variant),+ }
            }
        }
    };
}

mirror_enum!(
    /// `scheduled` → `active` → `closed` (winner known) → `settled` (paid); or `unsold`, `cancelled`.
    StatusView => domain::Status { Scheduled, Active, Closed, Settled, Unsold, Cancelled }
);
mirror_enum!(
    /// The item's condition.
    ConditionView => domain::Condition { New, LikeNew, Good, Fair, Poor }
);
mirror_enum!(
    /// Who pays shipping.
    ShippingPayerView => domain::ShippingPayer { Seller, Buyer }
);

/// List order.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum SortView {
    /// Soonest end first (the default).
    EndingSoon,
    /// Most recently created first.
    Newest,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// Most bids first.
    MostBids,
}

impl From<SortView> for Sort {
    fn from(sort: SortView) -> Self {
        match sort {
            SortView::EndingSoon => Sort::EndingSoon,
            SortView::Newest => Sort::Newest,
            SortView::PriceAsc => Sort::PriceAsc,
            SortView::PriceDesc => Sort::PriceDesc,
            SortView::MostBids => Sort::MostBids,
        }
    }
}

/// Which of the caller's auctions to list.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum MyView {
    /// Auctions you sell.
    Selling,
    /// Auctions you have bid on.
    Bidding,
    /// Auctions on your watchlist.
    Watching,
}

/// A user as others see them.
#[derive(Object)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
}

/// The seller, with the rating buyers gave them.
#[derive(Object)]
pub struct SellerRef {
    pub id: i64,
    pub username: String,
    /// Reviews they received as a seller or buyer.
    pub rating: RatingView,
}

/// A category reference.
#[derive(Object)]
pub struct CategoryRef {
    pub id: i64,
    pub slug: String,
    pub name: String,
}

/// A region reference.
#[derive(Object)]
pub struct RegionRef {
    pub id: i64,
    pub name: String,
}

/// An auction.
#[derive(Object)]
pub struct AuctionView {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub seller: SellerRef,
    pub category: CategoryRef,
    pub region: RegionRef,
    /// Visible in every region's listing.
    pub national: bool,
    pub condition: ConditionView,
    pub shipping_payer: ShippingPayerView,
    pub status: StatusView,
    pub start_price: i64,
    /// The leading bid, or the start price before any bid.
    pub current_price: i64,
    pub buy_now_price: Option<i64>,
    /// True when there is no reserve or the leading bid meets it (the reserve itself stays secret).
    pub reserve_price_met: bool,
    /// The increment in force at the current price (fixed, or from the tiered table).
    pub bid_increment: i64,
    /// The smallest acceptable next bid.
    pub min_next_bid: i64,
    pub bid_count: i32,
    pub leader_id: Option<i64>,
    pub winner_id: Option<i64>,
    pub watchers_count: i32,
    pub starts_at: DateTime<Utc>,
    /// May move later when bids arrive in the soft-close window.
    pub ends_at: DateTime<Utc>,
    pub soft_close_seconds: i32,
    /// The sequence number of the auction's latest event.
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// Its ready photos in display order.
    pub photos: Vec<PhotoView>,
    /// The first photo's thumbnail, for list pages.
    pub cover_url: Option<String>,
}

impl AuctionView {
    fn at(auction: Auction, now: DateTime<Utc>) -> Self {
        let state = auction.state();
        Self {
            status: state.status_at(now).into(),
            reserve_price_met: auction.reserve_price_met(),
            bid_increment: state.increment(),
            min_next_bid: state.min_next_bid(),
            id: auction.id.0,
            title: auction.title,
            description: auction.description,
            seller: SellerRef {
                id: auction.seller_id.0,
                username: auction.seller_username,
                rating: RatingView { average: auction.seller_rating_average, count: auction.seller_rating_count },
            },
            category: CategoryRef {
                id: auction.category_id.0,
                slug: auction.category_slug,
                name: auction.category_name,
            },
            region: RegionRef { id: auction.region_id.0, name: auction.region_name },
            national: auction.national,
            condition: auction.condition.into(),
            shipping_payer: auction.shipping_payer.into(),
            start_price: auction.start_price,
            current_price: auction.current_price,
            buy_now_price: auction.buy_now_price,
            bid_count: auction.bid_count,
            leader_id: auction.leader_id.map(i64::from),
            winner_id: auction.winner_id.map(i64::from),
            watchers_count: auction.watchers_count,
            starts_at: auction.starts_at,
            ends_at: auction.ends_at,
            soft_close_seconds: auction.soft_close_seconds,
            seq: auction.seq,
            created_at: auction.created_at,
            cover_url: auction.photos.first().map(|p| MediaKey::stored(p.thumb_key.clone()).url()),
            photos: auction.photos.0.into_iter().map(|p| PhotoView::ready(auction.id, p)).collect(),
        }
    }

    fn now(auction: Auction) -> Self {
        Self::at(auction, Utc::now())
    }
}

/// A new auction.
#[derive(Object)]
pub struct CreateAuctionRequest {
    /// 1–100 characters.
    pub title: String,
    /// Up to 5,000 characters.
    pub description: Option<String>,
    pub category_id: i64,
    /// Defaults to your home region.
    pub region_id: Option<i64>,
    /// Visible in every region (default false).
    #[oai(default)]
    pub national: bool,
    pub condition: ConditionView,
    /// Default `buyer`.
    pub shipping_payer: Option<ShippingPayerView>,
    /// The first bid's minimum, 1 to 1,000,000,000,000 KRW.
    pub start_price: i64,
    /// Instant price; must be above `start_price`.
    pub buy_now_price: Option<i64>,
    /// Hidden minimum for a sale; at least `start_price`, at most `buy_now_price`.
    pub reserve_price: Option<i64>,
    /// Fixed increment; without it the tiered table applies (500 KRW below 10,000 … 100,000 KRW from 5,000,000).
    pub bid_increment: Option<i64>,
    /// Default now; a later start makes the auction `scheduled`.
    pub starts_at: Option<DateTime<Utc>>,
    /// 1 minute to 30 days after `starts_at`.
    pub ends_at: DateTime<Utc>,
    /// 0–600, default 120: a bid this close to the end extends it to now + this many seconds.
    pub soft_close_seconds: Option<i32>,
}

/// A bid, and optionally a maximum for proxy bidding.
#[derive(Object)]
pub struct BidRequest {
    /// Whole KRW, at least the auction's `min_next_bid`.
    pub amount: i64,
    /// Whole KRW, at least `amount`: held in full, and the system bids for you up to it, one
    /// increment above whoever bids against you. Never shown to anyone else. If you already lead,
    /// it raises your maximum without raising the price.
    pub max_amount: Option<i64>,
}

/// An accepted bid.
#[derive(Object)]
pub struct BidView {
    pub id: i64,
    pub auction_id: i64,
    pub bidder: UserRef,
    pub amount: i64,
    /// Placed by buy-now.
    pub buy_now: bool,
    /// Placed automatically for the bidder's maximum (proxy bidding).
    pub auto: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Bid> for BidView {
    fn from(b: Bid) -> Self {
        Self {
            id: b.id.0,
            auction_id: b.auction_id.0,
            bidder: UserRef { id: b.bidder_id.0, username: b.bidder_username },
            amount: b.amount,
            buy_now: b.buy_now,
            auto: b.auto,
            created_at: b.created_at,
        }
    }
}

/// A bid and the auction after it.
#[derive(Object)]
pub struct BidReceiptView {
    pub bid: BidView,
    /// Your maximum on this auction (yours alone to see).
    pub max_amount: i64,
    pub auction: AuctionView,
}

impl From<BidReceipt> for BidReceiptView {
    fn from(r: BidReceipt) -> Self {
        let max_amount = r.bid.max_amount.unwrap_or(r.bid.amount);
        Self { bid: r.bid.into(), max_amount, auction: AuctionView::now(r.auction) }
    }
}

#[derive(ApiResponse)]
enum CreatedAuction {
    /// Created.
    #[oai(status = 201)]
    Created(Json<AuctionView>),
}

#[derive(ApiResponse)]
enum PlacedBid {
    /// Accepted: your maximum (the amount, without `max_amount`) is held from your wallet.
    #[oai(status = 201)]
    Created(Json<BidReceiptView>),
}

#[derive(ApiResponse)]
enum Watched {
    /// Done (doing it twice is the same as once).
    #[oai(status = 204)]
    Done,
}

/// Query parameters shared by every auction list.
struct ListParams {
    sort: Option<SortView>,
    cursor: Option<String>,
    limit: u8,
}

async fn list_page<E: ErrorSet>(
    state: &AppState,
    filter: Filter,
    params: ListParams,
) -> Result<Json<Page<AuctionView>>, ApiError<E>> {
    let cursor = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let sort = params.sort.map(Sort::from).unwrap_or_default();
    let mut conn = state.pool.acquire().await?;
    let (auctions, next) = listing::list(&mut conn, &filter, sort, cursor, params.limit).await?;
    let now = Utc::now();
    let items = auctions.into_iter().map(|a| AuctionView::at(a, now)).collect();
    Ok(Json(Page { items, next_cursor: next.map(Cursor::encode) }))
}

/// Auctions.
pub struct AuctionsApi;

#[OpenApi(tag = "ApiTags::Auctions")]
impl AuctionsApi {
    /// List an auction for sale.
    #[oai(path = "/auctions", method = "post", operation_id = "create_auction")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateAuctionRequest>,
    ) -> Result<CreatedAuction, ApiError<CreateErrors>> {
        let b = body.0;
        let request = NewAuctionRequest {
            title: b.title,
            description: b.description,
            category_id: CategoryId(b.category_id),
            region_id: b.region_id.map(RegionId),
            national: b.national,
            condition: b.condition.into(),
            shipping_payer: b.shipping_payer.map_or(domain::ShippingPayer::Buyer, Into::into),
            start_price: b.start_price,
            buy_now_price: b.buy_now_price,
            reserve_price: b.reserve_price,
            bid_increment: b.bid_increment,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            soft_close_seconds: b.soft_close_seconds,
        };
        let new = request.validate(auth.0.user.region_id, Utc::now())?;
        let mut conn = state.pool.acquire().await?;
        let max_open = state.config.limits.max_open_auctions_per_user;
        let auction = store::create(&mut conn, auth.0.user.id, &new, max_open).await?;
        Ok(CreatedAuction::Created(Json(AuctionView::now(auction))))
    }

    /// Browse auctions. Every filter is optional; `region_id` covers the region's whole subtree plus
    /// national auctions.
    #[oai(path = "/auctions", method = "get", operation_id = "list_auctions")]
    #[expect(clippy::too_many_arguments, reason = "one argument per documented query parameter")]
    async fn list(
        &self,
        state: Data<&AppState>,
        region_id: Query<Option<i64>>,
        category_id: Query<Option<i64>>,
        /// Words in the title.
        #[oai(validator(max_length = 100))]
        q: Query<Option<String>>,
        min_price: Query<Option<i64>>,
        max_price: Query<Option<i64>>,
        status: Query<Option<StatusView>>,
        seller_id: Query<Option<i64>>,
        sort: Query<Option<SortView>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<AuctionView>>, ApiError<ReadErrors>> {
        let filter = Filter {
            region_id: region_id.0.map(RegionId),
            category_id: category_id.0.map(CategoryId),
            q: q.0
                .filter(|q| !q.trim().is_empty())
                .map(|q| refuse_control_chars("q", &q, false).map(|()| q))
                .transpose()?,
            min_price: min_price.0,
            max_price: max_price.0,
            status: status.0.map(Into::into),
            seller_id: seller_id.0.map(UserId),
            ..Filter::default()
        };
        list_page(&state, filter, ListParams { sort: sort.0, cursor: cursor.0, limit: limit.0 }).await
    }

    /// One auction.
    #[oai(path = "/auctions/:id", method = "get", operation_id = "get_auction")]
    async fn get(&self, state: Data<&AppState>, id: Path<i64>) -> Result<Json<AuctionView>, ApiError<ReadErrors>> {
        let mut conn = state.pool.acquire().await?;
        let auction = store::find(&mut conn, AuctionId(id.0)).await?.ok_or(AuctionError::NotFound)?;
        Ok(Json(AuctionView::now(auction)))
    }

    /// An auction's bids, newest first.
    #[oai(path = "/auctions/:id/bids", method = "get", operation_id = "list_bids")]
    async fn bids(
        &self,
        state: Data<&AppState>,
        id: Path<i64>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<BidView>>, ApiError<ReadErrors>> {
        let cursor = cursor.0.as_deref().map(Cursor::decode).transpose()?;
        let mut conn = state.pool.acquire().await?;
        let (bids, next) =
            listing::bids(&mut conn, AuctionId(id.0), cursor, limit.0).await?.ok_or(AuctionError::NotFound)?;
        Ok(Json(Page { items: bids.into_iter().map(Into::into).collect(), next_cursor: next.map(Cursor::encode) }))
    }

    /// Bid, optionally with a maximum (proxy bidding). Your maximum is held from your available
    /// balance (if you hold money on this auction already, only the difference); when you are
    /// outbid it is released back, and a winner's unused maximum is released at settlement.
    #[oai(path = "/auctions/:id/bids", method = "post", operation_id = "place_bid")]
    async fn bid(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        /// Repeat a request with the same key to get the first result instead of a second bid.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<BidRequest>,
    ) -> Result<PlacedBid, ApiError<BidErrors>> {
        let placed = async {
            let amount = Krw::parse(body.amount, "amount")?;
            let max_amount = body.max_amount.map(|max| Krw::parse(max, "max_amount")).transpose()?;
            let order = BidOrder::bid(AuctionId(id.0), auth.0.user.id, amount, max_amount, key.0.as_deref())?;
            let receipt = state.bids.place(order).await?;
            Ok(PlacedBid::Created(Json(receipt.into())))
        }
        .await;
        count_bid(&placed);
        placed
    }

    /// Buy now at the buy-now price: the auction closes at once with you as the winner.
    #[oai(path = "/auctions/:id/buy-now", method = "post", operation_id = "buy_now")]
    async fn buy_now(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        /// Repeat a request with the same key to get the first result instead of a second purchase.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
    ) -> Result<Json<AuctionView>, ApiError<BidErrors>> {
        let order = BidOrder::buy_now(AuctionId(id.0), auth.0.user.id, key.0.as_deref())?;
        let receipt = state.bids.place(order).await?;
        Ok(Json(AuctionView::now(receipt.auction)))
    }

    /// Cancel your auction; only before the first bid.
    #[oai(path = "/auctions/:id/cancel", method = "post", operation_id = "cancel_auction")]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<Json<AuctionView>, ApiError<ActionErrors>> {
        let cancelled = bidding::cancel(&state.pool, AuctionId(id.0), auth.0.user.id).await?;
        state.hub.publish(&cancelled.events);
        Ok(Json(AuctionView::now(cancelled.auction)))
    }

    /// Watch an auction.
    #[oai(path = "/auctions/:id/watch", method = "put", operation_id = "watch_auction")]
    async fn watch(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<Watched, ApiError<ActionErrors>> {
        let mut conn = state.pool.acquire().await?;
        watch::watch(&mut conn, auth.0.user.id, AuctionId(id.0)).await?;
        Ok(Watched::Done)
    }

    /// Stop watching an auction.
    #[oai(path = "/auctions/:id/watch", method = "delete", operation_id = "unwatch_auction")]
    async fn unwatch(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<Watched, ApiError<ActionErrors>> {
        let mut conn = state.pool.acquire().await?;
        watch::unwatch(&mut conn, auth.0.user.id, AuctionId(id.0)).await?;
        Ok(Watched::Done)
    }

    /// Your auctions: the ones you sell (the default), have bid on, or watch.
    #[oai(path = "/me/auctions", method = "get", operation_id = "list_my_auctions")]
    async fn my_auctions(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Which of your auctions.
        view: Query<Option<MyView>>,
        sort: Query<Option<SortView>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<AuctionView>>, ApiError<MyListErrors>> {
        let me = Some(auth.0.user.id);
        let filter = match view.0.unwrap_or(MyView::Selling) {
            MyView::Selling => Filter { seller_id: me, ..Filter::default() },
            MyView::Bidding => Filter { bidder_id: me, ..Filter::default() },
            MyView::Watching => Filter { watcher_id: me, ..Filter::default() },
        };
        list_page(&state, filter, ListParams { sort: sort.0, cursor: cursor.0, limit: limit.0 }).await
    }
}

/// Counts a bid's outcome: accepted, or refused with the error code as the reason (a fixed set).
/// The accepted series is a static key: the hot path allocates nothing for it.
fn count_bid<T>(placed: &Result<T, ApiError<BidErrors>>) {
    match placed {
        Ok(_) => metrics::counter!(BIDS, "outcome" => "accepted").increment(1),
        Err(err) => metrics::counter!(BIDS, "outcome" => "refused", "reason" => err.code()).increment(1),
    }
}
