//! How each domain's errors reach HTTP, written once: handlers use a bare `?`.
//!
//! Each endpoint's `ErrorSet` documents which of these statuses it can answer; the mapping from a
//! domain refusal to a status and a stable `code` lives only here.

use neighborbid_shared::auctions::AuctionError;
use neighborbid_shared::auctions::listing::ListError;
use neighborbid_shared::auctions::rules::Refusal;
use neighborbid_shared::idempotency::IdempotencyError;
use neighborbid_shared::ledger::LedgerError;
use neighborbid_shared::pagination::CursorError;
use neighborbid_shared::photos::{MAX_PHOTOS_PER_AUCTION, PhotoError};
use neighborbid_shared::talk::TalkError;
use neighborbid_shared::users::UserError;
use poem::http::StatusCode;
use serde_json::json;

use super::error::{ApiError, ErrorSet};

impl<E: ErrorSet> From<AuctionError> for ApiError<E> {
    fn from(err: AuctionError) -> Self {
        match err {
            AuctionError::Invalid(v) => v.into(),
            AuctionError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "auction_not_found", "no auction has that id")
            }
            AuctionError::Refused(Refusal::NotActive) => {
                ApiError::new(StatusCode::CONFLICT, "auction_not_active", "the auction is not open for bids")
            }
            AuctionError::Refused(Refusal::OwnAuction) => {
                ApiError::new(StatusCode::FORBIDDEN, "own_auction", "you cannot bid on or buy your own auction")
            }
            AuctionError::Refused(Refusal::TooLow { minimum }) => {
                ApiError::new(StatusCode::CONFLICT, "bid_too_low", format!("the bid must be at least {minimum} KRW"))
                    .with_details(json!({ "minimum": minimum }))
            }
            AuctionError::Refused(Refusal::MaximumNotRaised { maximum }) => ApiError::new(
                StatusCode::CONFLICT,
                "maximum_not_raised",
                format!("you lead with a maximum of {maximum} KRW; a new maximum must be higher"),
            )
            .with_details(json!({ "maximum": maximum })),
            AuctionError::Refused(Refusal::BuyNowUnavailable) => ApiError::new(
                StatusCode::CONFLICT,
                "buy_now_unavailable",
                "this auction has no buy-now price, or bidding has reached it",
            ),
            AuctionError::NotSeller => {
                ApiError::new(StatusCode::FORBIDDEN, "not_seller", "only the seller may do this")
            }
            AuctionError::HasBids => {
                ApiError::new(StatusCode::CONFLICT, "auction_has_bids", "an auction with bids cannot be cancelled")
            }
            AuctionError::TooManyOpen { max } => ApiError::new(
                StatusCode::CONFLICT,
                "too_many_open_auctions",
                format!("you have {max} scheduled or active auctions, the most allowed; wait for one to end"),
            )
            .with_details(json!({ "maximum": max })),
            AuctionError::Ledger(e) => e.into(),
            AuctionError::IdempotencyKeyReused => IdempotencyError::Reused.into(),
            AuctionError::Database(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl<E: ErrorSet> From<UserError> for ApiError<E> {
    fn from(err: UserError) -> Self {
        match err {
            UserError::Invalid(v) => v.into(),
            UserError::UsernameTaken => ApiError::new(StatusCode::CONFLICT, "username_taken", "that username is taken")
                .with_details(json!({ "field": "username" })),
            UserError::EmailTaken => {
                ApiError::new(StatusCode::CONFLICT, "email_taken", "an account with that email exists")
                    .with_details(json!({ "field": "email" }))
            }
            UserError::UnknownRegion => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_region", "no region has that id")
                    .with_details(json!({ "field": "region_id" }))
            }
            UserError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong username or password")
            }
            UserError::Overloaded => ApiError::overloaded(),
            UserError::Database(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl<E: ErrorSet> From<LedgerError> for ApiError<E> {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::InsufficientFunds => {
                ApiError::new(StatusCode::CONFLICT, "insufficient_funds", "not enough available money")
            }
            LedgerError::BalanceLimit => {
                ApiError::new(StatusCode::CONFLICT, "balance_limit_exceeded", "the wallet cannot hold that much")
            }
            LedgerError::Database(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl<E: ErrorSet> From<IdempotencyError> for ApiError<E> {
    fn from(err: IdempotencyError) -> Self {
        match err {
            IdempotencyError::Invalid(v) => v.into(),
            IdempotencyError::Reused => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
            ),
            IdempotencyError::Database(e) => e.into(),
        }
    }
}

impl<E: ErrorSet> From<CursorError> for ApiError<E> {
    fn from(err: CursorError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", err.to_string())
            .with_details(json!({ "field": "cursor" }))
    }
}

impl<E: ErrorSet> From<ListError> for ApiError<E> {
    fn from(err: ListError) -> Self {
        match err {
            ListError::Cursor(err) => err.into(),
            ListError::Database(err) => err.into(),
        }
    }
}

impl<E: ErrorSet> From<PhotoError> for ApiError<E> {
    fn from(err: PhotoError) -> Self {
        match err {
            PhotoError::Auction(e) => e.into(),
            PhotoError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "photo_not_found", "no photo has that id"),
            PhotoError::AuctionClosed => ApiError::new(
                StatusCode::CONFLICT,
                "auction_not_open",
                "photos can only be added while the auction is scheduled or active",
            ),
            PhotoError::TooMany => ApiError::new(
                StatusCode::CONFLICT,
                "too_many_photos",
                format!("an auction carries at most {MAX_PHOTOS_PER_AUCTION} photos; remove one first"),
            )
            .with_details(json!({ "maximum": MAX_PHOTOS_PER_AUCTION })),
        }
    }
}

impl<E: ErrorSet> From<TalkError> for ApiError<E> {
    fn from(err: TalkError) -> Self {
        let (status, code, message) = match err {
            TalkError::Invalid(v) => return v.into(),
            TalkError::Cursor(c) => return c.into(),
            TalkError::Database(e) => return e.into(),
            TalkError::AuctionNotFound => (StatusCode::NOT_FOUND, "auction_not_found", "no auction has that id"),
            TalkError::ConversationNotFound => {
                (StatusCode::NOT_FOUND, "conversation_not_found", "no conversation of yours has that id")
            }
            TalkError::QuestionNotFound => (StatusCode::NOT_FOUND, "question_not_found", "no question has that id"),
            TalkError::UserNotFound => (StatusCode::NOT_FOUND, "user_not_found", "no user has that id"),
            TalkError::OwnAuction => (StatusCode::FORBIDDEN, "own_auction", "this is your own auction"),
            TalkError::Blocked => (StatusCode::FORBIDDEN, "blocked", "this user does not accept your messages"),
            TalkError::NotSeller => (StatusCode::FORBIDDEN, "not_seller", "only the seller may do this"),
            TalkError::NotAParty => {
                (StatusCode::FORBIDDEN, "not_a_party", "only the winner and the seller review each other")
            }
            TalkError::AlreadyAnswered => (StatusCode::CONFLICT, "already_answered", "this question has its answer"),
            TalkError::AlreadyReviewed => (StatusCode::CONFLICT, "already_reviewed", "you reviewed this sale already"),
            TalkError::AuctionNotSettled => {
                (StatusCode::CONFLICT, "auction_not_settled", "reviews open once the auction is settled")
            }
            TalkError::SelfBlock => {
                (StatusCode::UNPROCESSABLE_ENTITY, "cannot_block_yourself", "you cannot block yourself")
            }
        };
        ApiError::new(status, code, message)
    }
}
