//! Row ids with a type each, so that a function taking `(auction: AuctionId, bidder: UserId)`
//! cannot be called with the two swapped.
//!
//! Each id is its `bigint` column's value and nothing more: stored and read as that `bigint`
//! (`#[sqlx(transparent)]`), written and read as that number in JSON (`#[serde(transparent)]`),
//! and displayed as it, so `format!` prints what the plain number printed.
//!
//! - Checked queries give a column its type with an override (`SELECT id AS "id: AuctionId"`) and
//!   name an argument's type with a cast (`auction_id as AuctionId`).
//! - Logs record the number (`auction.id = auction_id.0`), so fields stay integers in JSON logs.
//!   `#[instrument]` would record an id argument it does not skip by its `Debug` form, so
//!   instrumented functions name those arguments in `fields(auction_id = auction_id.0, …)`.
//! - The HTTP API keeps plain integers and converts at its edge: `AuctionId(id)` in,
//!   `i64::from(id)` (or `.0`) out.

macro_rules! id_types {
    ($($(#[$meta:meta])* $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[derive(
                Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type,
            )]
            #[serde(transparent)]
            #[sqlx(transparent)]
            pub struct $name(pub i64);

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    self.0.fmt(f)
                }
            }

            impl From<$name> for i64 {
                fn from(id: $name) -> Self {
                    id.0
                }
            }
        )+
    };
}

id_types! {
    /// A wallet account's id (`accounts.id`).
    AccountId;
    /// An auction's id (`auctions.id`).
    AuctionId;
    /// A bid's id (`bids.id`).
    BidId;
    /// An item category's id (`categories.id`).
    CategoryId;
    ConversationId;
    /// A hold's id (`holds.id`).
    HoldId;
    MessageId;
    /// An email notification's id (`notifications.id`).
    NotificationId;
    /// An item photo's id (`photos.id`).
    PhotoId;
    QuestionId;
    /// A region's id (`regions.id`).
    RegionId;
    ReviewId;
    /// A login session's id (`sessions.id`).
    SessionId;
    /// A ledger transfer's id (`transfers.id`).
    TransferId;
    /// A user's id (`users.id`).
    UserId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_numbers_in_json_and_text() {
        assert_eq!(serde_json::to_string(&AuctionId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<UserId>("7").unwrap(), UserId(7));
        assert_eq!(serde_json::to_string(&Some(HoldId(3))).unwrap(), "3");
        assert_eq!(format!("release_hold:{}", HoldId(9)), "release_hold:9");
    }
}
