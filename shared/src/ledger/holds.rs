//! Holds: two-phase commitments of a bidder's money to one auction, like card authorisations.
//!
//! A bidder has at most one open hold per auction (a database index); raising a bid tops it up by
//! the difference. A hold ends exactly once: the conditional `status = 'open'` update lets only one
//! caller win, and unique indexes on the release and capture transfers back that up.

use sqlx::PgConnection;

use super::transfers::{Movement, TransferKind, transfer};
use super::{FEES_ACCOUNT, LedgerError, UserAccounts, user_accounts};
use crate::ids::{AuctionId, BidId, HoldId, UserId};
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

/// The bidder's open hold on an auction. Holds of an auction change only under its row lock, so
/// a caller holding that lock may rely on the answer for the rest of its transaction.
pub async fn open_hold(
    conn: &mut PgConnection,
    user_id: UserId,
    auction_id: AuctionId,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as!(
        Hold,
        r#"SELECT id AS "id: HoldId", user_id AS "user_id: UserId", auction_id AS "auction_id: AuctionId", amount
           FROM holds WHERE user_id = $1 AND auction_id = $2 AND status = 'open'"#,
        user_id as UserId,
        auction_id as AuctionId,
    )
    .fetch_optional(conn)
    .await
}

/// The bid a hold is placed or raised for.
#[derive(Debug, Clone, Copy)]
pub struct ForBid {
    /// Whose money.
    pub bidder_id: UserId,
    /// Which auction.
    pub auction_id: AuctionId,
    /// Which bid.
    pub bid_id: BidId,
}

/// Makes the bidder's hold on the bid's auction equal `total`, moving only the difference from
/// available to held. `existing` is the bidder's open hold on that auction, read under the auction's
/// row lock; `total` must be larger than it.
pub async fn hold_up_to(
    conn: &mut PgConnection,
    accounts: UserAccounts,
    existing: Option<Hold>,
    bid: ForBid,
    total: Krw,
) -> Result<Hold, LedgerError> {
    let hold: Hold = match existing {
        Some(hold) => {
            sqlx::query_as!(
                Hold,
                r#"UPDATE holds SET amount = $2 WHERE id = $1
                   RETURNING id AS "id: HoldId", user_id AS "user_id: UserId", auction_id AS "auction_id: AuctionId",
                             amount"#,
                hold.id as HoldId,
                total.get(),
            )
            .fetch_one(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as!(
                Hold,
                r#"INSERT INTO holds (user_id, auction_id, amount) VALUES ($1, $2, $3)
                   RETURNING id AS "id: HoldId", user_id AS "user_id: UserId", auction_id AS "auction_id: AuctionId",
                             amount"#,
                bid.bidder_id as UserId,
                bid.auction_id as AuctionId,
                total.get(),
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    let additional = total.get() - existing.map_or(0, |h| h.amount);
    debug_assert!(additional > 0, "a hold only grows");
    transfer(
        conn,
        &Movement {
            from: accounts.available,
            to: accounts.held,
            amount: Krw::from_trusted(additional),
            kind: TransferKind::Hold,
            hold_id: Some(hold.id),
            auction_id: Some(bid.auction_id),
            bid_id: Some(bid.bid_id),
        },
    )
    .await?;
    Ok(hold)
}

/// What ending a hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// This call ended the hold and moved the money.
    Now,
    /// The hold had already ended (released or captured); nothing moved.
    Already,
}

async fn end_hold(conn: &mut PgConnection, hold_id: HoldId, status: &str) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as!(
        Hold,
        r#"UPDATE holds SET status = $2, ended_at = now() WHERE id = $1 AND status = 'open'
           RETURNING id AS "id: HoldId", user_id AS "user_id: UserId", auction_id AS "auction_id: AuctionId", amount"#,
        hold_id as HoldId,
        status,
    )
    .fetch_optional(conn)
    .await
}

/// Returns a hold's money to the bidder's available balance, exactly once.
pub async fn release(conn: &mut PgConnection, hold_id: HoldId) -> Result<Ended, LedgerError> {
    let Some(hold) = end_hold(conn, hold_id, "released").await? else {
        return Ok(Ended::Already);
    };
    let accounts = user_accounts(conn, hold.user_id).await?;
    transfer(
        conn,
        &Movement {
            from: accounts.held,
            to: accounts.available,
            amount: Krw::from_trusted(hold.amount),
            kind: TransferKind::Release,
            hold_id: Some(hold.id),
            auction_id: Some(hold.auction_id),
            bid_id: None,
        },
    )
    .await?;
    Ok(Ended::Now)
}

/// Pays a hold to the seller, exactly once: `fee_bps` basis points of it go to the platform's fee
/// account and the rest to the seller's available balance.
pub async fn capture(
    conn: &mut PgConnection,
    hold_id: HoldId,
    seller_id: UserId,
    fee_bps: u16,
) -> Result<Ended, LedgerError> {
    let Some(hold) = end_hold(conn, hold_id, "captured").await? else {
        return Ok(Ended::Already);
    };
    let buyer = user_accounts(conn, hold.user_id).await?;
    let seller = user_accounts(conn, seller_id).await?;
    let (to_seller, fee) = split_fee(hold.amount, fee_bps);
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
