//! Neighbours talking: 1:1 conversations between a buyer and the seller about an auction, public
//! questions the seller answers, reviews after a sale, and blocks. Each write runs in one
//! transaction with the events and notifications it causes, and returns the events to publish
//! once committed.

pub mod blocks;
pub mod conversations;
pub mod questions;
pub mod reviews;

use crate::events::{StoredEvent, UserEvent};
use crate::ids::UserId;
use crate::pagination::CursorError;
use crate::validation::{ValidationError, refuse_control_chars};

/// Why a talking request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TalkError {
    /// No such auction.
    #[error("no such auction")]
    AuctionNotFound,
    /// No such conversation, or the caller is not one of its two parties.
    #[error("no such conversation")]
    ConversationNotFound,
    /// No such question.
    #[error("no such question")]
    QuestionNotFound,
    /// No such user.
    #[error("no such user")]
    UserNotFound,
    /// A seller cannot open a conversation about, or ask a question on, their own auction.
    #[error("this is your own auction")]
    OwnAuction,
    /// The other party blocked the caller.
    #[error("blocked")]
    Blocked,
    /// Only the auction's seller may answer.
    #[error("only the seller may answer")]
    NotSeller,
    /// Only the winner and the seller of an auction review each other.
    #[error("not the winner or the seller")]
    NotAParty,
    /// The question has its answer.
    #[error("already answered")]
    AlreadyAnswered,
    /// The caller reviewed this auction before.
    #[error("already reviewed")]
    AlreadyReviewed,
    /// Reviews open when the auction is settled.
    #[error("auction not settled")]
    AuctionNotSettled,
    /// A user cannot block themselves.
    #[error("cannot block yourself")]
    SelfBlock,
    /// A rule broken by the request.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A cursor this API did not hand out.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Someone as conversations, questions and reviews show them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Person {
    /// Their id.
    pub id: UserId,
    /// Their username.
    pub username: String,
}

/// Events a write caused, for publishing once it committed.
#[derive(Debug, Clone, Default)]
pub struct Caused {
    /// On auction streams.
    pub auction: Vec<StoredEvent>,
    /// On users' own streams.
    pub user: Vec<UserEvent>,
}

/// Text people write to each other: 1 to `max` characters, not only spaces, no control
/// characters but line breaks and tabs. Stored as sent; never rendered as HTML by us.
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    refuse_control_chars(field, raw, true)?;
    let length = raw.chars().count();
    if raw.trim().is_empty() || length > max {
        return Err(ValidationError::new(field, "invalid_length", format!("{field} must be 1 to {max} characters")));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn text_is_kept_as_sent_within_its_bounds() {
        assert_eq!(text("body", "  <b>hi</b>\nthere ", 20).unwrap(), "  <b>hi</b>\nthere ");
        assert_eq!(text("body", "   ", 20).unwrap_err().code, "invalid_length");
        assert_eq!(text("body", "", 20).unwrap_err().code, "invalid_length");
        assert_eq!(text("body", &"가".repeat(21), 20).unwrap_err().code, "invalid_length");
        assert!(text("body", &"가".repeat(20), 20).is_ok());
        assert_eq!(text("body", "a\0b", 20).unwrap_err().code, "control_character");
    }
}
