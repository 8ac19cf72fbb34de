//! Reviews after a sale, and the public profile they build: once an auction is settled its winner
//! reviews the seller and the seller the winner, once each.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgPool};

use super::{Person, TalkError};
use crate::auctions::Status;
use crate::ids::{AuctionId, ReviewId, UserId};
use crate::pagination::{Cursor, next_page};

/// Longest review text, in characters.
pub const MAX_REVIEW: usize = 2_000;

/// A review as everyone sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Its id.
    pub id: ReviewId,
    /// The sale it is about.
    pub auction_id: AuctionId,
    /// Who wrote it.
    pub reviewer: Person,
    /// Who it is about.
    pub reviewee_id: UserId,
    /// 1 to 5.
    pub rating: i16,
    /// What they wrote (may be empty).
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A user as anyone may see them.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Their id.
    pub id: UserId,
    /// Their username.
    pub username: String,
    /// Their home region's name, if they set one.
    pub region: Option<String>,
    /// Mean rating of the reviews they received, if any.
    pub rating_average: Option<f64>,
    /// How many reviews they received.
    pub rating_count: i64,
    /// Auctions of theirs that sold and settled.
    pub sold_count: i64,
    /// When they signed up.
    pub member_since: DateTime<Utc>,
}

/// `reviewer`, the winner or the seller of settled auction `auction_id`, reviews the other.
#[tracing::instrument(skip(pool, body), fields(auction.id = auction_id.0, user.id = reviewer.0))]
pub async fn create(
    pool: &PgPool,
    auction_id: AuctionId,
    reviewer: UserId,
    rating: i16,
    body: &str,
) -> Result<Review, TalkError> {
    if !(1..=5).contains(&rating) {
        return Err(crate::validation::ValidationError::new("rating", "invalid_rating", "rating must be 1 to 5").into());
    }
    crate::validation::refuse_control_chars("body", body, true)?;
    if body.chars().count() > MAX_REVIEW {
        return Err(crate::validation::ValidationError::new(
            "body",
            "invalid_length",
            format!("body must be at most {MAX_REVIEW} characters"),
        )
        .into());
    }
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let auction = sqlx::query!(
        r#"SELECT status AS "status: Status", seller_id AS "seller_id: UserId", winner_id AS "winner_id: UserId"
           FROM auctions WHERE id = $1"#,
        auction_id as AuctionId,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TalkError::AuctionNotFound)?;
    // Until it is settled, who the parties are is not final.
    let winner = auction.winner_id.filter(|_| auction.status == Status::Settled).ok_or(TalkError::AuctionNotSettled)?;
    if reviewer != auction.seller_id && reviewer != winner {
        return Err(TalkError::NotAParty);
    }
    let reviewee = if reviewer == auction.seller_id { winner } else { auction.seller_id };
    let id = sqlx::query_scalar!(
        r#"INSERT INTO reviews (auction_id, reviewer_id, reviewee_id, rating, body) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT ON CONSTRAINT reviews_once DO NOTHING RETURNING id AS "id: ReviewId""#,
        auction_id as AuctionId,
        reviewer as UserId,
        reviewee as UserId,
        rating,
        body,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TalkError::AlreadyReviewed)?;
    let review = select(&mut tx, None, Some(id), None, 1).await?.pop().ok_or(TalkError::NotAParty)?;
    tx.commit().await?;
    Ok(review)
}

/// Reviews `user_id` received, newest first.
pub async fn received(
    pool: &PgPool,
    user_id: UserId,
    cursor: Option<&str>,
    limit: u8,
) -> Result<(Vec<Review>, Option<Cursor>), TalkError> {
    let before = cursor.map(Cursor::decode).transpose()?.map(Cursor::id);
    super::blocks::user_exists(pool, user_id).await?;
    let mut conn = pool.acquire().await?;
    let rows = select(&mut conn, Some(user_id), None, before, i64::from(limit) + 1).await?;
    Ok(next_page(rows, limit, |r| Cursor::for_id(r.id.0)))
}

/// The one read of reviews: those a user received, newest first, or one by id.
async fn select(
    conn: &mut sqlx::PgConnection,
    reviewee: Option<UserId>,
    id: Option<ReviewId>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Review>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT r.id AS "id: ReviewId", r.auction_id AS "auction_id: AuctionId", r.reviewer_id AS "reviewer_id: UserId",
                  u.username, r.reviewee_id AS "reviewee_id: UserId", r.rating, r.body, r.created_at
           FROM reviews r JOIN users u ON u.id = r.reviewer_id
           WHERE ($1::bigint IS NULL OR r.reviewee_id = $1) AND ($2::bigint IS NULL OR r.id = $2)
             AND ($3::bigint IS NULL OR r.id < $3)
           ORDER BY r.id DESC LIMIT $4"#,
        reviewee as Option<UserId>,
        id as Option<ReviewId>,
        before,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Review {
            id: r.id,
            auction_id: r.auction_id,
            reviewer: Person { id: r.reviewer_id, username: r.username },
            reviewee_id: r.reviewee_id,
            rating: r.rating,
            body: r.body,
            created_at: r.created_at,
        })
        .collect())
}

/// `user_id`'s public profile.
pub async fn profile(pool: &PgPool, user_id: UserId) -> Result<Profile, TalkError> {
    sqlx::query_as!(
        Profile,
        r#"SELECT u.id AS "id: UserId", u.username, r.name AS "region?",
                  (SELECT avg(rating)::float8 FROM reviews WHERE reviewee_id = u.id) AS rating_average,
                  (SELECT count(*) FROM reviews WHERE reviewee_id = u.id) AS "rating_count!",
                  (SELECT count(*) FROM auctions WHERE seller_id = u.id AND status = 'settled') AS "sold_count!",
                  u.created_at AS member_since
           FROM users u LEFT JOIN regions r ON r.id = u.region_id WHERE u.id = $1"#,
        user_id as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(TalkError::UserNotFound)
}
