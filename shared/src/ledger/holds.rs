//! Holds: two-phase commitments of a bidder's money to one auction, like card authorisations.
//!
//! A bidder has at most one open hold per auction (a database index), placed and topped up by the
//! bid engine (`place_bid`, migrations/20261126000001_bid_engine.sql) to the bidder's maximum. A hold ends exactly once: the conditional `status = 'open'` update lets only one
//! caller win, and unique indexes on the release and capture transfers back that up.

use sqlx::PgConnection;

use super::transfers::{Movement, TransferKind, transfer};
use super::{FEES_ACCOUNT, LedgerError, user_accounts};
use crate::ids::{AuctionId, HoldId, UserId};
use crate::money::Krw;

/// An open hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Stable identifier.
    pub id: HoldId,
    /// Whose money.
    pub user_id: UserId,
    /// For which auction.
    pub auction_id: AuctionId,
    /// How much is held.
    pub amount: i64,
}

/// What ending a hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// This call ended the hold and moved the money.
    Now,
    /// The hold had already ended (released or captured); nothing moved.
    Already,
}

/// Marks an open hold captured and returns it; `None` when it had already ended.
async fn end_captured(conn: &mut PgConnection, hold_id: HoldId) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as!(
        Hold,
        r#"UPDATE holds SET status = 'captured', ended_at = now() WHERE id = $1 AND status = 'open'
           RETURNING id AS "id: HoldId", user_id AS "user_id: UserId", auction_id AS "auction_id: AuctionId", amount"#,
        hold_id as HoldId,
    )
    .fetch_optional(conn)
    .await
}

/// Pays `price` of a hold to the seller, exactly once: `fee_bps` basis points of it go to the
/// platform's fee account and the rest to the seller's available balance. What the hold has above
/// the price (a proxy bidder's unused maximum) goes back to the buyer in the same step. The caller
/// holds the auction's row lock, taken before any account's as every bid and release takes them
/// (settlement does): the transfers' reference to the auction waits for that row, so a capture
/// without it can deadlock with a release.
pub async fn capture(
    conn: &mut PgConnection,
    hold_id: HoldId,
    seller_id: UserId,
    price: i64,
    fee_bps: u16,
) -> Result<Ended, LedgerError> {
    let Some(hold) = end_captured(conn, hold_id).await? else {
        return Ok(Ended::Already);
    };
    let buyer = user_accounts(conn, hold.user_id).await?;
    let seller = user_accounts(conn, seller_id).await?;
    let price = price.min(hold.amount);
    let (to_seller, fee) = split_fee(price, fee_bps);
    let movement = |to, amount, kind| Movement {
        from: buyer.held,
        to,
        amount: Krw::from_trusted(amount),
        kind,
        hold_id: Some(hold.id),
        auction_id: Some(hold.auction_id),
        bid_id: None,
    };
    transfer(conn, &movement(seller.available, to_seller, TransferKind::Capture)).await?;
    if fee > 0 {
        transfer(conn, &movement(FEES_ACCOUNT, fee, TransferKind::Fee)).await?;
    }
    if hold.amount > price {
        transfer(conn, &movement(buyer.available, hold.amount - price, TransferKind::Release)).await?;
    }
    Ok(Ended::Now)
}

/// Splits `amount` into (seller's share, platform fee); the fee rounds down so the seller never
/// gets less than their share, and the seller always gets at least 1 KRW.
pub fn split_fee(amount: i64, fee_bps: u16) -> (i64, i64) {
    let fee = (i128::from(amount) * i128::from(fee_bps.min(9_999)) / 10_000) as i64;
    (amount - fee, fee)
}

#[cfg(test)]
mod tests {
    use super::split_fee;

    #[test]
    fn fees_round_down_and_the_parts_add_up() {
        assert_eq!(split_fee(10_000, 0), (10_000, 0));
        assert_eq!(split_fee(10_000, 250), (9_750, 250));
        assert_eq!(split_fee(999, 100), (990, 9));
        assert_eq!(split_fee(1, 9_999), (1, 0));
        let (seller, fee) = split_fee(1_000_000_000_000, 10_000);
        assert_eq!(seller + fee, 1_000_000_000_000);
        assert!(seller >= 1);
    }
}
