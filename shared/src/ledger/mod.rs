//! The wallet ledger, double-entry like a bank's.
//!
//! Every movement of money is one append-only row in `transfers`, written by [`transfers::transfer`]
//! together with the cached balances of its two accounts, in the caller's transaction. Balances can
//! never go below zero (a database constraint); holds end exactly once (a conditional update plus
//! unique indexes); [`audit::audit`] re-derives everything from the transfers and reports any
//! difference.

pub mod audit;
pub mod holds;
pub mod transfers;
pub mod wallet;

use crate::db::violates;
use crate::ids::{AccountId, UserId};

/// The platform account for money outside the wallet (deposits come from it, withdrawals go to it).
pub const EXTERNAL_ACCOUNT: AccountId = AccountId(1);
/// The platform account that collects fees.
pub const FEES_ACCOUNT: AccountId = AccountId(2);

/// A user's two accounts.
#[derive(Debug, Clone, Copy)]
pub struct UserAccounts {
    /// Spendable money.
    pub available: AccountId,
    /// Money committed to bids.
    pub held: AccountId,
}

/// Why a movement of money was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The paying account does not have enough money.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// A deposit would take the wallet past its ceiling, or the platform past the most money it
    /// holds in all.
    #[error("balance limit exceeded")]
    BalanceLimit,
    /// A user without wallet accounts (cannot happen for users created by sign-up).
    #[error("no wallet for user {0}")]
    NoWallet(UserId),
    /// The database failed.
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for LedgerError {
    fn from(err: sqlx::Error) -> Self {
        if violates(&err, "accounts_balance_non_negative") {
            Self::InsufficientFunds
        } else if violates(&err, "accounts_external_floor") {
            Self::BalanceLimit
        } else {
            Self::Database(err)
        }
    }
}

/// The wallet accounts of `user_id`.
pub async fn user_accounts(conn: &mut sqlx::PgConnection, user_id: UserId) -> Result<UserAccounts, LedgerError> {
    let accounts = sqlx::query!(
        r#"SELECT max(id) FILTER (WHERE kind = 'available') AS "available: AccountId",
                  max(id) FILTER (WHERE kind = 'held') AS "held: AccountId"
           FROM accounts WHERE user_id = $1"#,
        user_id as UserId,
    )
    .fetch_one(conn)
    .await?;
    match (accounts.available, accounts.held) {
        (Some(available), Some(held)) => Ok(UserAccounts { available, held }),
        _ => Err(LedgerError::NoWallet(user_id)),
    }
}
