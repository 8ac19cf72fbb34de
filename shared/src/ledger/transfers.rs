//! The one way money moves: a transfer row and both cached balances, in one statement (the
//! `ledger_transfer` function, which the bid engine calls too).

use serde::Serialize;
use sqlx::PgConnection;

use super::LedgerError;
use crate::ids::{AccountId, AuctionId, BidId, HoldId, TransferId};
use crate::money::Krw;

/// What a movement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// External money into a user's available balance.
    Deposit,
    /// A user's available money out to the external world.
    Withdrawal,
    /// Available to held, for a bid.
    Hold,
    /// Held back to available: outbid, lost, or cancelled.
    Release,
    /// Held to the seller: the winner pays.
    Capture,
    /// Held to the platform's fee account, alongside a capture.
    Fee,
}

/// One movement of money.
#[derive(Debug, Clone, Copy)]
pub struct Movement {
    /// The paying account.
    pub from: AccountId,
    /// The receiving account.
    pub to: AccountId,
    /// How much.
    pub amount: Krw,
    /// Why.
    pub kind: TransferKind,
    /// The hold this movement places, releases or captures.
    pub hold_id: Option<HoldId>,
    /// The auction it concerns.
    pub auction_id: Option<AuctionId>,
    /// The bid it concerns.
    pub bid_id: Option<BidId>,
}

/// Records `movement` and applies it to both cached balances. A paying account without enough
/// money fails with [`LedgerError::InsufficientFunds`] through the balance constraint, so no
/// check-then-act race exists; the caller's transaction must then be rolled back.
pub async fn transfer(conn: &mut PgConnection, movement: &Movement) -> Result<TransferId, LedgerError> {
    // `ledger_transfer` (migrations/20261126000001_bid_engine.sql) is the one definition, shared
    // with the bid engine.
    let id = sqlx::query_scalar!(
        r#"SELECT ledger_transfer($1, $2, $3, $4, $5, $6, $7) AS "id: TransferId""#,
        movement.from as AccountId,
        movement.to as AccountId,
        movement.amount.get(),
        movement.kind as TransferKind,
        movement.hold_id as Option<HoldId>,
        movement.auction_id as Option<AuctionId>,
        movement.bid_id as Option<BidId>,
    )
    .fetch_one(conn)
    .await?;
    id.ok_or(LedgerError::Database(sqlx::Error::RowNotFound))
}
