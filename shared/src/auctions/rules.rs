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
    /// Reserve price, if set.
    pub reserve_price: Option<i64>,
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
    /// The leader's new maximum does not exceed their current one.
    #[error("your maximum is already {maximum} KRW; a new one must be higher")]
    MaximumNotRaised {
        /// The leader's current maximum (told only to them).
        maximum: i64,
    },
    /// No buy-now price, or bidding has already reached it.
    #[error("buy-now is not available for this auction")]
    BuyNowUnavailable,
}

/// A request to bid: `amount` now, and up to `max_amount` automatically (a proxy bid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BidRequest {
    /// Who bids.
    pub bidder_id: UserId,
    /// The bid, at least the minimum next bid.
    pub amount: i64,
    /// The most the system may bid for them (at least `amount`); `None` for a plain bid.
    pub max_amount: Option<i64>,
}

impl BidRequest {
    /// The bidder's maximum: `max_amount`, or the amount itself.
    pub fn maximum(&self) -> i64 {
        self.max_amount.unwrap_or(self.amount)
    }
}

/// One visible bid a request causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibleBid {
    /// Whose bid.
    pub bidder_id: UserId,
    /// Its amount.
    pub amount: i64,
    /// Placed by the system for a leader's maximum, not by this request's sender.
    pub auto: bool,
}

/// What an accepted bid does. The requester's maximum is held in full; whichever hold stops
/// leading is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidDecision {
    /// The bids to show, in order (none when a leader only raises their maximum).
    pub bids: Vec<VisibleBid>,
    /// Who leads afterwards.
    pub leader_id: UserId,
    /// The leader's maximum afterwards (their hold).
    pub leader_max: i64,
    /// The visible price afterwards.
    pub price: i64,
    /// The new end time when a bid falls inside the soft-close window.
    pub extended_to: Option<DateTime<Utc>>,
}

/// Decides a bid by eBay's proxy rules, given the leader's maximum (`None` before the first bid).
/// The same rules run in the database (`place_bid` in migrations/20261126000001_bid_engine.sql);
/// property tests hold the two to each other.
///
/// * A newcomer whose maximum M beats the leader's maximum L leads at
///   `max(amount, min(M, L + increment(L)))`.
/// * Otherwise the newcomer's bid shows at M and the leader answers automatically at
///   `min(L, M + increment(M))`; of equal maxima the earlier leads.
/// * The leader's own bid raises their maximum; the price does not move.
/// * A leading maximum that reaches the reserve lifts the price to the reserve.
pub fn decide_bid(
    auction: &AuctionState,
    leader_max: Option<i64>,
    request: BidRequest,
    now: DateTime<Utc>,
) -> Result<BidDecision, Refusal> {
    if request.bidder_id == auction.seller_id {
        return Err(Refusal::OwnAuction);
    }
    if !auction.is_open_at(now) {
        return Err(Refusal::NotActive);
    }
    let minimum = auction.min_next_bid();
    if request.amount < minimum {
        return Err(Refusal::TooLow { minimum });
    }
    let maximum = request.maximum();
    let increment = |price| auction.bid_increment.unwrap_or_else(|| tiered_increment(price));
    let mut bids = Vec::new();
    let (leader_id, leader_max, price) = match (auction.leader_id, leader_max) {
        (Some(leader), Some(held)) if leader == request.bidder_id => {
            if maximum <= held {
                return Err(Refusal::MaximumNotRaised { maximum: held });
            }
            (leader, maximum, auction.current_price)
        }
        (Some(leader), Some(held)) if maximum <= held => {
            bids.push(VisibleBid { bidder_id: request.bidder_id, amount: maximum, auto: false });
            (leader, held, held.min(maximum + increment(maximum)))
        }
        (Some(_), Some(held)) => (request.bidder_id, maximum, request.amount.max(maximum.min(held + increment(held)))),
        _ => (request.bidder_id, maximum, request.amount),
    };
    let price = match auction.reserve_price {
        Some(reserve) if leader_max >= reserve => price.max(reserve),
        _ => price,
    };
    if price != auction.current_price || auction.leader_id != Some(leader_id) || auction.bid_count == 0 {
        bids.push(VisibleBid { bidder_id: leader_id, amount: price, auto: leader_id != request.bidder_id });
    }
    let window = Duration::seconds(i64::from(auction.soft_close_seconds));
    let extended_to =
        (!bids.is_empty() && auction.soft_close_seconds > 0 && auction.ends_at - now < window).then(|| now + window);
    Ok(BidDecision { bids, leader_id, leader_max, price, extended_to })
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
            reserve_price: None,
            leader_id: None,
            starts_at: at(0),
            ends_at: at(3_600),
            soft_close_seconds: 120,
        }
    }

    /// A plain bid (no maximum) against `a`, whose leader's maximum is the current price.
    fn plain(a: &AuctionState, bidder_id: UserId, amount: i64, now: DateTime<Utc>) -> Result<BidDecision, Refusal> {
        decide_bid(a, a.leader_id.map(|_| a.current_price), BidRequest { bidder_id, amount, max_amount: None }, now)
    }

    /// Applies requests in order to a fresh auction starting at `start` (tiered increments), as
    /// the engine would; returns the auction, the leader's maximum, and every visible bid.
    fn run(start: i64, requests: &[(UserId, i64, Option<i64>)]) -> (AuctionState, i64, Vec<VisibleBid>) {
        let mut a = AuctionState { start_price: start, current_price: start, buy_now_price: None, ..auction() };
        let (mut leader_max, mut shown) = (None, Vec::new());
        for &(bidder_id, amount, max_amount) in requests {
            let d = decide_bid(&a, leader_max, BidRequest { bidder_id, amount, max_amount }, at(10)).unwrap();
            a.bid_count += d.bids.len() as i32;
            (a.current_price, a.leader_id, leader_max) = (d.price, Some(d.leader_id), Some(d.leader_max));
            shown.extend(d.bids);
        }
        (a, leader_max.unwrap(), shown)
    }

    fn shown(bidder_id: UserId, amount: i64, auto: bool) -> VisibleBid {
        VisibleBid { bidder_id, amount, auto }
    }

    #[test]
    fn a_proxy_answers_a_manual_bid_one_increment_above_it() {
        // eBay's example: a 10,000 start, B's maximum 25,000; A bids 12,000 by hand.
        let (a, max, bids) = run(10_000, &[(BIDDER, 10_000, Some(25_000)), (RIVAL, 12_000, None)]);
        assert_eq!(bids, [shown(BIDDER, 10_000, false), shown(RIVAL, 12_000, false), shown(BIDDER, 13_000, true)]);
        assert_eq!((a.leader_id, a.current_price, max), (Some(BIDDER), 13_000, 25_000));
    }

    #[test]
    fn of_two_proxies_the_higher_leads_one_increment_above_the_other() {
        let (a, max, bids) = run(10_000, &[(BIDDER, 10_000, Some(25_000)), (RIVAL, 11_000, Some(30_000))]);
        assert_eq!(bids, [shown(BIDDER, 10_000, false), shown(RIVAL, 26_000, false)]);
        assert_eq!((a.leader_id, a.current_price, max), (Some(RIVAL), 26_000, 30_000));
        // Capped at the leader's own maximum when the increment would pass it.
        let (a, _, _) = run(10_000, &[(BIDDER, 10_000, Some(25_000)), (RIVAL, 11_000, Some(25_500))]);
        assert_eq!((a.leader_id, a.current_price), (Some(RIVAL), 25_500));
    }

    #[test]
    fn of_equal_maxima_the_earlier_leads_at_that_maximum() {
        let (a, _, bids) = run(10_000, &[(BIDDER, 10_000, Some(20_000)), (RIVAL, 11_000, Some(20_000))]);
        assert_eq!(bids.last(), Some(&shown(BIDDER, 20_000, true)));
        assert_eq!((a.leader_id, a.current_price, a.min_next_bid()), (Some(BIDDER), 20_000, 21_000));
    }

    #[test]
    fn the_answer_uses_the_increment_of_the_tier_it_lands_in() {
        // 9,800 is in the 500 tier: the proxy answers 10,300, and the next minimum is 11,300.
        let (a, _, _) = run(5_000, &[(BIDDER, 5_000, Some(50_000)), (RIVAL, 9_800, None)]);
        assert_eq!((a.current_price, a.min_next_bid()), (10_300, 11_300));
        // 10,000 is in the 1,000 tier.
        let (a, _, _) = run(5_000, &[(BIDDER, 5_000, Some(50_000)), (RIVAL, 10_000, None)]);
        assert_eq!(a.current_price, 11_000);
    }

    #[test]
    fn a_leader_raises_their_maximum_without_moving_the_price() {
        let (a, max, bids) = run(10_000, &[(BIDDER, 10_000, Some(20_000)), (BIDDER, 11_000, Some(40_000))]);
        assert_eq!((bids.len(), a.current_price, max), (1, 10_000, 40_000));
        let refused = decide_bid(
            &a,
            Some(max),
            BidRequest { bidder_id: BIDDER, amount: 11_000, max_amount: Some(40_000) },
            at(10),
        );
        assert_eq!(refused, Err(Refusal::MaximumNotRaised { maximum: 40_000 }));
    }

    #[test]
    fn a_maximum_that_reaches_the_reserve_lifts_the_price_to_it() {
        let a = AuctionState { reserve_price: Some(30_000), ..auction() };
        let d =
            decide_bid(&a, None, BidRequest { bidder_id: BIDDER, amount: 10_000, max_amount: Some(35_000) }, at(10));
        assert_eq!(d.unwrap().price, 30_000);
        let d =
            decide_bid(&a, None, BidRequest { bidder_id: BIDDER, amount: 10_000, max_amount: Some(29_000) }, at(10));
        assert_eq!(d.unwrap().price, 10_000);
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
        assert_eq!(plain(&a, BIDDER, 9_999, at(10)), Err(Refusal::TooLow { minimum: 10_000 }));
        assert!(plain(&a, BIDDER, 10_000, at(10)).is_ok());
        a.bid_count = 1;
        assert_eq!(a.min_next_bid(), 11_000);
        a.bid_increment = Some(3_000);
        assert_eq!(plain(&a, RIVAL, 12_000, at(10)), Err(Refusal::TooLow { minimum: 13_000 }));
    }

    #[test]
    fn sellers_cannot_bid_or_buy_their_own_items() {
        assert_eq!(plain(&auction(), SELLER, 20_000, at(10)), Err(Refusal::OwnAuction));
        assert_eq!(check_buy_now(&auction(), SELLER, at(10)), Err(Refusal::OwnAuction));
    }

    #[test]
    fn nothing_is_accepted_before_the_start_or_from_the_end_on() {
        let a = auction();
        assert_eq!(plain(&a, BIDDER, 10_000, at(-1)), Err(Refusal::NotActive));
        assert_eq!(plain(&a, BIDDER, 10_000, at(3_600)), Err(Refusal::NotActive));
        assert_eq!(
            check_buy_now(&a, BIDDER, at(3_600)),
            Err(Refusal::NotActive),
            "buy-now after the end steals the win"
        );
        for status in [Status::Closed, Status::Settled, Status::Unsold, Status::Cancelled] {
            let ended = AuctionState { status, ..auction() };
            assert_eq!(plain(&ended, BIDDER, 90_000, at(10)), Err(Refusal::NotActive));
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
        assert_eq!(plain(&a, BIDDER, 10_000, at(3_000)).unwrap().extended_to, None);
        assert_eq!(plain(&a, BIDDER, 10_000, at(3_500)).unwrap().extended_to, Some(at(3_620)));
        let no_window = AuctionState { soft_close_seconds: 0, ..auction() };
        assert_eq!(plain(&no_window, BIDDER, 10_000, at(3_599)).unwrap().extended_to, None);
    }

    #[test]
    fn a_scheduled_auction_reads_as_active_once_started() {
        let a = AuctionState { status: Status::Scheduled, ..auction() };
        assert_eq!(a.status_at(at(-5)), Status::Scheduled);
        assert_eq!(a.status_at(at(5)), Status::Active);
        assert!(a.is_open_at(at(5)));
    }
}
