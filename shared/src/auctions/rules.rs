//! The auction rules as plain functions over plain values: no database, no clock of their own.

use chrono::{DateTime, Duration, Utc};

use super::Status;
use crate::ids::UserId;

/// The documented bid increment table, by current price (KRW):
///
/// | current price        | increment |
/// |----------------------|-----------|
/// | below 10,000         | 500       |
/// | below 50,000         | 1,000     |
/// | below 100,000        | 2,000     |
/// | below 500,000        | 5,000     |
/// | below 1,000,000      | 10,000    |
/// | below 5,000,000      | 50,000    |
/// | 5,000,000 and above  | 100,000   |
pub const INCREMENT_TIERS: [(i64, i64); 6] =
    [(10_000, 500), (50_000, 1_000), (100_000, 2_000), (500_000, 5_000), (1_000_000, 10_000), (5_000_000, 50_000)];
const TOP_INCREMENT: i64 = 100_000;

/// The tiered increment at `price`.
pub fn tiered_increment(price: i64) -> i64 {
    INCREMENT_TIERS.iter().find(|(below, _)| price < *below).map_or(TOP_INCREMENT, |(_, inc)| *inc)
}

/// The smallest acceptable next bid: the start price first, then current price + increment (fixed,
/// or from the tiered table).
pub fn min_next_bid(start_price: i64, bid_count: i32, current_price: i64, bid_increment: Option<i64>) -> i64 {
    if bid_count == 0 {
        start_price
    } else {
        current_price + bid_increment.unwrap_or_else(|| tiered_increment(current_price))
    }
}

/// What the rules need to know about an auction.
#[derive(Debug, Clone, Copy)]
pub struct AuctionState {
    /// Stored status.
    pub status: Status,
    /// Who sells.
    pub seller_id: UserId,
    /// The first bid's minimum.
    pub start_price: i64,
    /// The highest accepted bid (the start price before any).
    pub current_price: i64,
    /// Accepted bids so far.
    pub bid_count: i32,
    /// A fixed increment, or `None` for the tiered table.
    pub bid_increment: Option<i64>,
    /// Buy-now price, if offered.
    pub buy_now_price: Option<i64>,
    /// Who leads.
    pub leader_id: Option<UserId>,
    /// When bidding opens.
    pub starts_at: DateTime<Utc>,
    /// When bidding closes.
    pub ends_at: DateTime<Utc>,
    /// A bid this close to the end extends it to now + this.
    pub soft_close_seconds: i32,
}

impl AuctionState {
    /// The increment in force at the current price.
    pub fn increment(&self) -> i64 {
        self.bid_increment.unwrap_or_else(|| tiered_increment(self.current_price))
    }

    /// The smallest acceptable next bid.
    pub fn min_next_bid(&self) -> i64 {
        min_next_bid(self.start_price, self.bid_count, self.current_price, self.bid_increment)
    }

    /// The status a client sees: a scheduled auction whose start has passed is active.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match self.status {
            Status::Scheduled if now >= self.starts_at => Status::Active,
            other => other,
        }
    }

    /// Open for bids and buy-now: not ended, cancelled or closed, and within its time window.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status, Status::Scheduled | Status::Active) && self.starts_at <= now && now < self.ends_at
    }
}

/// Why a bid or buy-now is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not open for bidding (not started, ended, closed or cancelled).
    #[error("the auction is not open for bids")]
    NotActive,
    /// Sellers cannot bid on or buy their own items.
    #[error("you cannot bid on your own auction")]
    OwnAuction,
    /// Below the minimum next bid.
    #[error("the bid must be at least {minimum} KRW")]
    TooLow {
        /// The smallest acceptable bid.
        minimum: i64,
    },
    /// No buy-now price, or bidding has already reached it.
    #[error("buy-now is not available for this auction")]
    BuyNowUnavailable,
}

/// What an accepted bid changes besides the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedBid {
    /// The new end time when the bid falls inside the soft-close window.
    pub extended_to: Option<DateTime<Utc>>,
}

/// Checks a bid of `amount` by `bidder_id` at `now`.
pub fn check_bid(
    auction: &AuctionState,
    bidder_id: UserId,
    amount: i64,
    now: DateTime<Utc>,
) -> Result<AcceptedBid, Refusal> {
    if bidder_id == auction.seller_id {
        return Err(Refusal::OwnAuction);
    }
    if !auction.is_open_at(now) {
        return Err(Refusal::NotActive);
    }
    let minimum = auction.min_next_bid();
    if amount < minimum {
        return Err(Refusal::TooLow { minimum });
    }
    let window = Duration::seconds(i64::from(auction.soft_close_seconds));
    let extended_to = (auction.soft_close_seconds > 0 && auction.ends_at - now < window).then(|| now + window);
    Ok(AcceptedBid { extended_to })
}

/// Checks a buy-now by `buyer_id` at `now`, returning the price to pay.
pub fn check_buy_now(auction: &AuctionState, buyer_id: UserId, now: DateTime<Utc>) -> Result<i64, Refusal> {
    if buyer_id == auction.seller_id {
        return Err(Refusal::OwnAuction);
    }
    if !auction.is_open_at(now) {
        return Err(Refusal::NotActive);
    }
    match auction.buy_now_price {
        Some(price) if auction.current_price < price => Ok(price),
        _ => Err(Refusal::BuyNowUnavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELLER: UserId = UserId(1);
    const BIDDER: UserId = UserId(2);
    const RIVAL: UserId = UserId(3);

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn auction() -> AuctionState {
        AuctionState {
            status: Status::Active,
            seller_id: SELLER,
            start_price: 10_000,
            current_price: 10_000,
            bid_count: 0,
            bid_increment: None,
            buy_now_price: Some(50_000),
            leader_id: None,
            starts_at: at(0),
            ends_at: at(3_600),
            soft_close_seconds: 120,
        }
    }

    #[test]
    fn tiers_follow_the_documented_table() {
        assert_eq!(tiered_increment(0), 500);
        assert_eq!(tiered_increment(9_999), 500);
        assert_eq!(tiered_increment(10_000), 1_000);
        assert_eq!(tiered_increment(499_999), 5_000);
        assert_eq!(tiered_increment(5_000_000), 100_000);
    }

    #[test]
    fn the_first_bid_may_equal_the_start_price_and_later_ones_need_an_increment() {
        let mut a = auction();
        assert_eq!(check_bid(&a, BIDDER, 9_999, at(10)), Err(Refusal::TooLow { minimum: 10_000 }));
        assert!(check_bid(&a, BIDDER, 10_000, at(10)).is_ok());
        a.bid_count = 1;
        assert_eq!(a.min_next_bid(), 11_000);
        a.bid_increment = Some(3_000);
        assert_eq!(check_bid(&a, RIVAL, 12_000, at(10)), Err(Refusal::TooLow { minimum: 13_000 }));
    }

    #[test]
    fn sellers_cannot_bid_or_buy_their_own_items() {
        assert_eq!(check_bid(&auction(), SELLER, 20_000, at(10)), Err(Refusal::OwnAuction));
        assert_eq!(check_buy_now(&auction(), SELLER, at(10)), Err(Refusal::OwnAuction));
    }

    #[test]
    fn nothing_is_accepted_before_the_start_or_from_the_end_on() {
        let a = auction();
        assert_eq!(check_bid(&a, BIDDER, 10_000, at(-1)), Err(Refusal::NotActive));
        assert_eq!(check_bid(&a, BIDDER, 10_000, at(3_600)), Err(Refusal::NotActive));
        assert_eq!(
            check_buy_now(&a, BIDDER, at(3_600)),
            Err(Refusal::NotActive),
            "buy-now after the end steals the win"
        );
        for status in [Status::Closed, Status::Settled, Status::Unsold, Status::Cancelled] {
            let ended = AuctionState { status, ..auction() };
            assert_eq!(check_bid(&ended, BIDDER, 90_000, at(10)), Err(Refusal::NotActive));
            assert_eq!(check_buy_now(&ended, BIDDER, at(10)), Err(Refusal::NotActive));
        }
    }

    #[test]
    fn buy_now_is_gone_once_bidding_reaches_its_price() {
        let mut a = auction();
        assert_eq!(check_buy_now(&a, BIDDER, at(10)), Ok(50_000));
        a.bid_count = 3;
        a.current_price = 50_000;
        assert_eq!(check_buy_now(&a, BIDDER, at(10)), Err(Refusal::BuyNowUnavailable));
        assert_eq!(
            check_buy_now(&AuctionState { buy_now_price: None, ..auction() }, BIDDER, at(10)),
            Err(Refusal::BuyNowUnavailable)
        );
    }

    #[test]
    fn bids_in_the_soft_close_window_extend_the_end() {
        let a = auction();
        assert_eq!(check_bid(&a, BIDDER, 10_000, at(3_000)).unwrap().extended_to, None);
        assert_eq!(check_bid(&a, BIDDER, 10_000, at(3_500)).unwrap().extended_to, Some(at(3_620)));
        let no_window = AuctionState { soft_close_seconds: 0, ..auction() };
        assert_eq!(check_bid(&no_window, BIDDER, 10_000, at(3_599)).unwrap().extended_to, None);
    }

    #[test]
    fn a_scheduled_auction_reads_as_active_once_started() {
        let a = AuctionState { status: Status::Scheduled, ..auction() };
        assert_eq!(a.status_at(at(-5)), Status::Scheduled);
        assert_eq!(a.status_at(at(5)), Status::Active);
        assert!(a.is_open_at(at(5)));
    }
}
