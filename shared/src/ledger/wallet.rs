//! A user's wallet: balances, deposits, withdrawals and the statement of their ledger lines.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::transfers::{Movement, TransferKind, transfer};
use super::{EXTERNAL_ACCOUNT, LedgerError, user_accounts};
use crate::ids::{AccountId, AuctionId, HoldId, TransferId, UserId};
use crate::money::Krw;
use crate::pagination::{Cursor, next_page};

/// A user's balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// Spendable.
    pub available: i64,
    /// Committed to bids.
    pub held: i64,
}

/// The user's current balances.
pub async fn balances(conn: &mut PgConnection, user_id: UserId) -> Result<Balances, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT coalesce(sum(balance) FILTER (WHERE kind = 'available'), 0)::bigint AS "available!",
                  coalesce(sum(balance) FILTER (WHERE kind = 'held'), 0)::bigint AS "held!"
           FROM accounts WHERE user_id = $1"#,
        user_id as UserId,
    )
    .fetch_one(conn)
    .await?;
    Ok(Balances { available: row.available, held: row.held })
}

/// The most one wallet may hold after a deposit, available and held together. Only deposits are
/// refused for it: money coming back from a hold or a sale always arrives.
pub const WALLET_CEILING: i64 = 1_000_000_000_000_000;

/// Adds external money to the user's available balance; returns the transfer id. Refused with
/// [`LedgerError::BalanceLimit`] when the wallet would hold more than [`WALLET_CEILING`].
#[tracing::instrument(skip(conn, amount), fields(user_id = user_id.0, user.id = user_id.0, amount = amount.get()))]
pub async fn deposit(conn: &mut PgConnection, user_id: UserId, amount: Krw) -> Result<TransferId, LedgerError> {
    let accounts = user_accounts(conn, user_id).await?;
    // Both accounts locked (in id order, as every transfer locks them), so two deposits cannot both
    // pass the check.
    let balances = sqlx::query_scalar!(
        "SELECT balance FROM accounts WHERE user_id = $1 ORDER BY id FOR UPDATE",
        user_id as UserId
    )
    .fetch_all(&mut *conn)
    .await?;
    if balances.iter().sum::<i64>() > WALLET_CEILING - amount.get() {
        return Err(LedgerError::BalanceLimit);
    }
    transfer(conn, &plain(EXTERNAL_ACCOUNT, accounts.available, amount, TransferKind::Deposit)).await
}

/// Pays available money out of the wallet; fails with insufficient funds beyond `available`.
#[tracing::instrument(skip(conn, amount), fields(user_id = user_id.0, user.id = user_id.0, amount = amount.get()))]
pub async fn withdraw(conn: &mut PgConnection, user_id: UserId, amount: Krw) -> Result<TransferId, LedgerError> {
    let accounts = user_accounts(conn, user_id).await?;
    transfer(conn, &plain(accounts.available, EXTERNAL_ACCOUNT, amount, TransferKind::Withdrawal)).await
}

fn plain(from: AccountId, to: AccountId, amount: Krw, kind: TransferKind) -> Movement {
    Movement { from, to, amount, kind, hold_id: None, auction_id: None, bid_id: None }
}

/// One movement as the user sees it: how it changed each of their balances.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerLine {
    /// The transfer's id.
    pub id: TransferId,
    /// What it was for.
    pub kind: TransferKind,
    /// The amount moved.
    pub amount: i64,
    /// Change to the user's available balance (negative when money left it).
    pub available_delta: i64,
    /// Change to the user's held balance.
    pub held_delta: i64,
    /// The auction concerned, if any.
    pub auction_id: Option<AuctionId>,
    /// The hold concerned, if any.
    pub hold_id: Option<HoldId>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// A page of the user's ledger lines, newest first, after `cursor` when given, with the cursor of
/// the next page.
pub async fn statement(
    conn: &mut PgConnection,
    user_id: UserId,
    cursor: Option<Cursor>,
    limit: u8,
) -> Result<(Vec<LedgerLine>, Option<Cursor>), LedgerError> {
    let accounts = user_accounts(conn, user_id).await?;
    let lines = sqlx::query_as!(
        LedgerLine,
        r#"SELECT id AS "id: TransferId", kind AS "kind: TransferKind", amount,
                  (CASE WHEN to_account = $1 THEN amount ELSE 0 END)
                    - (CASE WHEN from_account = $1 THEN amount ELSE 0 END) AS "available_delta!",
                  (CASE WHEN to_account = $2 THEN amount ELSE 0 END)
                    - (CASE WHEN from_account = $2 THEN amount ELSE 0 END) AS "held_delta!",
                  auction_id AS "auction_id: AuctionId", hold_id AS "hold_id: HoldId", created_at
           FROM transfers
           WHERE (from_account IN ($1, $2) OR to_account IN ($1, $2)) AND ($3::bigint IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4"#,
        accounts.available as AccountId,
        accounts.held as AccountId,
        cursor.map(Cursor::id),
        i64::from(limit) + 1,
    )
    .fetch_all(conn)
    .await?;
    Ok(next_page(lines, limit, |line| Cursor::for_id(line.id.0)))
}
