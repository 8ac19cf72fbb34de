//! Public questions about an auction: anyone signed in but the seller asks, only the seller
//! answers, once. Both appear on the auction for everyone and as events on its stream.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};

use super::{Caused, Person, TalkError};
use crate::email::NotificationKind;
use crate::events::{self, EventType};
use crate::ids::{AuctionId, QuestionId, UserId};
use crate::notifications::{self, NewNotification};
use crate::pagination::{Cursor, next_page};

/// Longest question or answer, in characters.
pub const MAX_QUESTION: usize = 1_000;

/// A question and its answer, as everyone sees them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Question {
    /// Its id.
    pub id: QuestionId,
    /// The auction it is about.
    pub auction_id: AuctionId,
    /// Who asked.
    pub asker: Person,
    /// The question.
    pub body: String,
    /// The seller's answer, once given.
    pub answer: Option<String>,
    /// When it was answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
}

/// `asker` asks the seller of `auction_id` in public.
#[tracing::instrument(skip(pool, body), fields(auction.id = auction_id.0, user.id = asker.0))]
pub async fn ask(
    pool: &PgPool,
    auction_id: AuctionId,
    asker: UserId,
    body: &str,
) -> Result<(Question, Caused), TalkError> {
    let body = super::text("body", body, MAX_QUESTION)?;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let seller = sqlx::query_scalar!(
        r#"SELECT seller_id AS "id: UserId" FROM auctions WHERE id = $1 FOR UPDATE"#,
        auction_id as AuctionId
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TalkError::AuctionNotFound)?;
    if seller == asker {
        return Err(TalkError::OwnAuction);
    }
    let id = sqlx::query_scalar!(
        r#"INSERT INTO questions (auction_id, asker_id, body) VALUES ($1, $2, $3) RETURNING id AS "id: QuestionId""#,
        auction_id as AuctionId,
        asker as UserId,
        body,
    )
    .fetch_one(&mut *tx)
    .await?;
    let question = find(&mut tx, id).await?.ok_or(TalkError::QuestionNotFound)?;
    let data = serde_json::to_value(&question).expect("questions serialize");
    let caused = Caused {
        auction: events::append(&mut tx, auction_id, &[(EventType::QuestionAsked, data)]).await?,
        user: Vec::new(),
    };
    tx.commit().await?;
    Ok((question, caused))
}

/// The seller answers question `id`, once; the asker is notified.
#[tracing::instrument(skip(pool, body), fields(question.id = id.0, user.id = seller.0))]
pub async fn answer(
    pool: &PgPool,
    id: QuestionId,
    seller: UserId,
    body: &str,
) -> Result<(Question, Caused), TalkError> {
    let body = super::text("body", body, MAX_QUESTION)?;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    // The auction's row first, as every writer of its stream locks it.
    let row = sqlx::query!(
        r#"SELECT a.id AS "auction_id: AuctionId", a.seller_id AS "seller_id: UserId", q.asker_id AS "asker_id: UserId",
                  q.answer IS NOT NULL AS "answered!"
           FROM questions q JOIN auctions a ON a.id = q.auction_id WHERE q.id = $1 FOR UPDATE OF a, q"#,
        id as QuestionId,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TalkError::QuestionNotFound)?;
    if row.seller_id != seller {
        return Err(TalkError::NotSeller);
    }
    if row.answered {
        return Err(TalkError::AlreadyAnswered);
    }
    sqlx::query!("UPDATE questions SET answer = $2, answered_at = now() WHERE id = $1", id as QuestionId, body)
        .execute(&mut *tx)
        .await?;
    let question = find(&mut tx, id).await?.ok_or(TalkError::QuestionNotFound)?;
    let data = serde_json::to_value(&question).expect("questions serialize");
    let mut caused = Caused {
        auction: events::append(&mut tx, row.auction_id, &[(EventType::QuestionAnswered, data)]).await?,
        user: Vec::new(),
    };
    let notification = NewNotification {
        kind: NotificationKind::QuestionAnswered,
        auction_id: row.auction_id,
        recipient_id: row.asker_id,
        conversation_id: None,
        subject_id: Some(id.0),
        data: json!({ "question_id": id }),
    };
    caused.user.extend(notifications::record(&mut tx, &notification).await?);
    tx.commit().await?;
    Ok((question, caused))
}

/// The questions of `auction_id`, newest first; `None` when there is no such auction.
pub async fn list(
    pool: &PgPool,
    auction_id: AuctionId,
    cursor: Option<&str>,
    limit: u8,
) -> Result<(Vec<Question>, Option<Cursor>), TalkError> {
    let before = cursor.map(Cursor::decode).transpose()?.map(Cursor::id);
    let mut conn = pool.acquire().await?;
    let exists =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM auctions WHERE id = $1) AS "e!""#, auction_id as AuctionId)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Err(TalkError::AuctionNotFound);
    }
    let rows = select(&mut conn, Some(auction_id), None, before, i64::from(limit) + 1).await?;
    Ok(next_page(rows, limit, |q| Cursor::for_id(q.id.0)))
}

async fn find(conn: &mut PgConnection, id: QuestionId) -> Result<Option<Question>, sqlx::Error> {
    Ok(select(conn, None, Some(id), None, 1).await?.pop())
}

/// The one read of questions: an auction's, newest first, or one by id.
async fn select(
    conn: &mut PgConnection,
    auction_id: Option<AuctionId>,
    id: Option<QuestionId>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Question>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT q.id AS "id: QuestionId", q.auction_id AS "auction_id: AuctionId", q.asker_id AS "asker_id: UserId",
                  u.username, q.body, q.answer, q.answered_at, q.created_at
           FROM questions q JOIN users u ON u.id = q.asker_id
           WHERE ($1::bigint IS NULL OR q.auction_id = $1) AND ($2::bigint IS NULL OR q.id = $2)
             AND ($3::bigint IS NULL OR q.id < $3)
           ORDER BY q.id DESC LIMIT $4"#,
        auction_id as Option<AuctionId>,
        id as Option<QuestionId>,
        before,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Question {
            id: r.id,
            auction_id: r.auction_id,
            asker: Person { id: r.asker_id, username: r.username },
            body: r.body,
            answer: r.answer,
            answered_at: r.answered_at,
            created_at: r.created_at,
        })
        .collect())
}
