//! Auctions: the rules, listing and creation, and the bidding transactions.

pub mod bidding;
pub mod closing;
pub mod listing;
pub mod monitor;
pub mod new;
pub mod release;
pub mod rules;
pub mod settlement;
pub mod store;
pub mod watch;

use serde::{Deserialize, Serialize};

use crate::ledger::LedgerError;
use crate::validation::ValidationError;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(type_name = "text")]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] #[sqlx(rename = $text)] $variant),+
        }

        impl $name {
            /// The wire and database spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(
    /// Where an auction is in its life.
    Status {
        /// Created; bidding opens at `starts_at`.
        Scheduled = "scheduled",
        /// Open for bids until `ends_at`.
        Active = "active",
        /// Ended with a winner; the money has not moved yet.
        Closed = "closed",
        /// The winner's money reached the seller.
        Settled = "settled",
        /// Ended without a valid winner.
        Unsold = "unsold",
        /// Withdrawn by the seller before any bid.
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// The item's condition.
    Condition {
        /// Unused, in its packaging.
        New = "new",
        /// Used, no visible wear.
        LikeNew = "like_new",
        /// Light wear.
        Good = "good",
        /// Visible wear, fully working.
        Fair = "fair",
        /// Heavy wear or faults, described.
        Poor = "poor",
    }
);

text_enum!(
    /// Who pays for shipping.
    ShippingPayer {
        /// Included in the price.
        Seller = "seller",
        /// Paid by the winner on top.
        Buyer = "buyer",
    }
);

/// Why an auction operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuctionError {
    /// Input broke a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No such auction.
    #[error("auction not found")]
    NotFound,
    /// The bidding rules refused.
    #[error(transparent)]
    Refused(#[from] rules::Refusal),
    /// Only the seller may do this.
    #[error("only the seller may do this")]
    NotSeller,
    /// Cancelling is only possible before the first bid.
    #[error("the auction has bids")]
    HasBids,
    /// The seller has as many open auctions as one seller may.
    #[error("at most {max} open auctions per seller")]
    TooManyOpen {
        /// The cap.
        max: i64,
    },
    /// The wallet refused (insufficient funds, limits).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The Idempotency-Key was used for a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// The database failed.
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for AuctionError {
    fn from(err: sqlx::Error) -> Self {
        match LedgerError::from(err) {
            LedgerError::Database(err) => Self::Database(err),
            ledger => Self::Ledger(ledger),
        }
    }
}

impl From<crate::idempotency::IdempotencyError> for AuctionError {
    fn from(err: crate::idempotency::IdempotencyError) -> Self {
        use crate::idempotency::IdempotencyError as E;
        match err {
            E::Invalid(v) => Self::Invalid(v),
            E::Reused => Self::IdempotencyKeyReused,
            E::Database(e) => e.into(),
        }
    }
}
