//! 1:1 conversations between a buyer and the seller about one auction. Only the two parties see
//! one; to anyone else it does not exist. Each party's read mark is the last message id they read.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};

use super::{Caused, Person, TalkError, blocks};
use crate::email::NotificationKind;
use crate::events::{self, UserEventType};
use crate::ids::{AuctionId, ConversationId, MessageId, UserId};
use crate::notifications::{self, NewNotification};
use crate::pagination::{Cursor, next_page};

/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 2_000;

/// A message as its two parties see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    /// Its id, rising within the conversation.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it; `None` for the platform's own (the sale's "who won at what price").
    pub sender: Option<Person>,
    /// What it says, as written.
    pub body: String,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
}

/// A conversation as one of its parties sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// The auction it is about.
    pub auction_id: AuctionId,
    /// The party who is not the seller.
    pub buyer: Person,
    /// The auction's seller.
    pub seller: Person,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// Messages from the other party (or the platform) after the viewer's read mark.
    pub unread_count: i64,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it was opened or last written to; lists are ordered by it, newest first.
    pub last_activity_at: DateTime<Utc>,
}

/// Opens `buyer_id`'s conversation with the seller of `auction_id`, or finds the one they have;
/// `true` when it was opened now.
#[tracing::instrument(skip(pool), fields(auction.id = auction_id.0, user.id = buyer_id.0))]
pub async fn open(pool: &PgPool, auction_id: AuctionId, buyer_id: UserId) -> Result<(Conversation, bool), TalkError> {
    let mut conn = pool.acquire().await?;
    let seller_id =
        sqlx::query_scalar!(r#"SELECT seller_id AS "id: UserId" FROM auctions WHERE id = $1"#, auction_id as AuctionId)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(TalkError::AuctionNotFound)?;
    if seller_id == buyer_id {
        return Err(TalkError::OwnAuction);
    }
    if blocks::blocked(&mut conn, seller_id, buyer_id).await? {
        return Err(TalkError::Blocked);
    }
    let opened = sqlx::query_scalar!(
        r#"INSERT INTO conversations (auction_id, buyer_id, seller_id) VALUES ($1, $2, $3)
           ON CONFLICT ON CONSTRAINT conversations_one_per_buyer DO NOTHING RETURNING id AS "id: ConversationId""#,
        auction_id as AuctionId,
        buyer_id as UserId,
        seller_id as UserId,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let id = match opened {
        Some(id) => id,
        None => {
            sqlx::query_scalar!(
                r#"SELECT id AS "id: ConversationId" FROM conversations WHERE auction_id = $1 AND buyer_id = $2"#,
                auction_id as AuctionId,
                buyer_id as UserId,
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    let conversation = find(&mut conn, id, buyer_id).await?.ok_or(TalkError::ConversationNotFound)?;
    Ok((conversation, opened.is_some()))
}

/// The winner's conversation with the seller, opened (or found) by the settlement in its
/// transaction, with the platform's message saying who won at what price.
pub async fn open_after_sale(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    winner_id: UserId,
    seller_id: UserId,
    price: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"WITH opened AS (
             INSERT INTO conversations (auction_id, buyer_id, seller_id) VALUES ($1, $2, $3)
             ON CONFLICT ON CONSTRAINT conversations_one_per_buyer DO UPDATE SET last_activity_at = now()
             RETURNING id)
           INSERT INTO messages (conversation_id, sender_id, body)
           SELECT opened.id, NULL, u.username || ' won this auction for ' || $4::bigint || ' KRW. '
                                   || 'Use this conversation to agree on the hand-over.'
           FROM opened, users u WHERE u.id = $2"#,
        auction_id as AuctionId,
        winner_id as UserId,
        seller_id as UserId,
        price,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `viewer`'s conversations, most recent activity first.
pub async fn list(
    pool: &PgPool,
    viewer: UserId,
    cursor: Option<&str>,
    limit: u8,
) -> Result<(Vec<Conversation>, Option<Cursor>), TalkError> {
    let after = cursor.map(Cursor::decode).transpose()?;
    let after_time = after.map(Cursor::time_key).transpose()?;
    let mut conn = pool.acquire().await?;
    let rows = select(&mut conn, viewer, None, after_time, after.map(Cursor::id), i64::from(limit) + 1).await?;
    Ok(next_page(rows, limit, |c| Cursor::for_time(c.last_activity_at, c.id.0)))
}

/// Conversation `id` as `viewer` sees it; `None` unless they are one of its parties.
pub async fn find(
    conn: &mut PgConnection,
    id: ConversationId,
    viewer: UserId,
) -> Result<Option<Conversation>, sqlx::Error> {
    Ok(select(conn, viewer, Some(id), None, None, 1).await?.pop())
}

/// The one read of conversations: `viewer`'s, or only `only` among them, keyset-paged.
async fn select(
    conn: &mut PgConnection,
    viewer: UserId,
    only: Option<ConversationId>,
    before_time: Option<DateTime<Utc>>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Conversation>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT c.id AS "id: ConversationId", c.auction_id AS "auction_id: AuctionId",
                  c.buyer_id AS "buyer_id: UserId", b.username AS buyer_username,
                  c.seller_id AS "seller_id: UserId", s.username AS seller_username,
                  c.created_at, c.last_activity_at,
                  lm.id AS "message_id?: MessageId", lm.sender_id AS "message_sender_id?: UserId",
                  lu.username AS "message_sender_username?", lm.body AS "message_body?",
                  lm.created_at AS "message_created_at?",
                  (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.sender_id IS DISTINCT FROM $1
                     AND m.id > CASE c.buyer_id WHEN $1 THEN c.buyer_read_up_to ELSE c.seller_read_up_to END)
                    AS "unread_count!"
           FROM conversations c
           JOIN users b ON b.id = c.buyer_id
           JOIN users s ON s.id = c.seller_id
           LEFT JOIN LATERAL (SELECT * FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1) lm
             ON true
           LEFT JOIN users lu ON lu.id = lm.sender_id
           WHERE (c.buyer_id = $1 OR c.seller_id = $1)
             AND ($2::bigint IS NULL OR c.id = $2)
             AND ($3::timestamptz IS NULL OR (c.last_activity_at, c.id) < ($3, $4))
           ORDER BY c.last_activity_at DESC, c.id DESC
           LIMIT $5"#,
        viewer as UserId,
        only as Option<ConversationId>,
        before_time,
        before_id,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Conversation {
            id: r.id,
            auction_id: r.auction_id,
            buyer: Person { id: r.buyer_id, username: r.buyer_username },
            seller: Person { id: r.seller_id, username: r.seller_username },
            last_message: match (r.message_id, r.message_body, r.message_created_at) {
                (Some(id), Some(body), Some(created_at)) => Some(Message {
                    id,
                    conversation_id: r.id,
                    sender: r
                        .message_sender_id
                        .zip(r.message_sender_username)
                        .map(|(id, username)| Person { id, username }),
                    body,
                    created_at,
                }),
                _ => None,
            },
            unread_count: r.unread_count,
            created_at: r.created_at,
            last_activity_at: r.last_activity_at,
        })
        .collect())
}

/// The parties of conversation `id` if `viewer` is one of them: (buyer, seller).
async fn parties(
    conn: &mut PgConnection,
    id: ConversationId,
    viewer: UserId,
    lock: bool,
) -> Result<(UserId, UserId), TalkError> {
    let row = if lock {
        sqlx::query!(
            r#"SELECT buyer_id AS "buyer: UserId", seller_id AS "seller: UserId" FROM conversations WHERE id = $1
               FOR UPDATE"#,
            id as ConversationId,
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| (r.buyer, r.seller))
    } else {
        sqlx::query!(
            r#"SELECT buyer_id AS "buyer: UserId", seller_id AS "seller: UserId" FROM conversations WHERE id = $1"#,
            id as ConversationId,
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| (r.buyer, r.seller))
    };
    row.filter(|(buyer, seller)| viewer == *buyer || viewer == *seller).ok_or(TalkError::ConversationNotFound)
}

/// The messages of conversation `id`, newest first; only its parties may read them.
pub async fn messages(
    pool: &PgPool,
    id: ConversationId,
    viewer: UserId,
    cursor: Option<&str>,
    limit: u8,
) -> Result<(Vec<Message>, Option<Cursor>), TalkError> {
    let before = cursor.map(Cursor::decode).transpose()?.map(Cursor::id);
    let mut conn = pool.acquire().await?;
    parties(&mut conn, id, viewer, false).await?;
    let rows = sqlx::query!(
        r#"SELECT m.id AS "id: MessageId", m.sender_id AS "sender_id: UserId", u.username AS "sender_username?",
                  m.body, m.created_at
           FROM messages m LEFT JOIN users u ON u.id = m.sender_id
           WHERE m.conversation_id = $1 AND ($2::bigint IS NULL OR m.id < $2)
           ORDER BY m.id DESC LIMIT $3"#,
        id as ConversationId,
        before,
        i64::from(limit) + 1,
    )
    .fetch_all(&mut *conn)
    .await?;
    let messages = rows
        .into_iter()
        .map(|r| Message {
            id: r.id,
            conversation_id: id,
            sender: r.sender_id.zip(r.sender_username).map(|(id, username)| Person { id, username }),
            body: r.body,
            created_at: r.created_at,
        })
        .collect();
    Ok(next_page(messages, limit, |m| Cursor::for_id(m.id.0)))
}

/// `sender` writes `body` to the other party: the message, its `message_received` event and the
/// recipient's notification (whose digest email follows if it stays unread), in one transaction.
#[tracing::instrument(skip(pool, body), fields(conversation.id = id.0, user.id = sender.0))]
pub async fn post(
    pool: &PgPool,
    id: ConversationId,
    sender: UserId,
    body: &str,
) -> Result<(Message, Caused), TalkError> {
    let body = super::text("body", body, MAX_MESSAGE)?;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let (buyer, seller) = parties(&mut tx, id, sender, true).await?;
    let recipient = if sender == buyer { seller } else { buyer };
    if blocks::blocked(&mut tx, recipient, sender).await? {
        return Err(TalkError::Blocked);
    }
    let row = sqlx::query!(
        r#"WITH sent AS (INSERT INTO messages (conversation_id, sender_id, body) VALUES ($1, $2, $3)
                         RETURNING id, created_at),
                touched AS (UPDATE conversations c
                            SET last_activity_at = now(),
                                buyer_read_up_to = CASE c.buyer_id WHEN $2 THEN (SELECT id FROM sent) ELSE buyer_read_up_to END,
                                seller_read_up_to = CASE c.seller_id WHEN $2 THEN (SELECT id FROM sent) ELSE seller_read_up_to END
                            WHERE c.id = $1 RETURNING c.auction_id)
           SELECT sent.id AS "id!: MessageId", sent.created_at AS "created_at!",
                  touched.auction_id AS "auction_id!: AuctionId", u.username AS "sender_username!"
           FROM sent, touched, users u WHERE u.id = $2"#,
        id as ConversationId,
        sender as UserId,
        body,
    )
    .fetch_one(&mut *tx)
    .await?;
    let message = Message {
        id: row.id,
        conversation_id: id,
        sender: Some(Person { id: sender, username: row.sender_username }),
        body,
        created_at: row.created_at,
    };
    let data = serde_json::to_value(&message).expect("messages serialize");
    let mut caused = Caused::default();
    caused.user.push(events::append_user_event(&mut tx, recipient, UserEventType::MessageReceived, &data).await?);
    let excerpt: String = message.body.chars().take(100).collect();
    let notification = NewNotification {
        kind: NotificationKind::Message,
        auction_id: row.auction_id,
        recipient_id: recipient,
        conversation_id: Some(id),
        subject_id: Some(message.id.0),
        data: json!({ "message_id": message.id, "sender": message.sender, "excerpt": excerpt }),
    };
    caused.user.extend(notifications::record(&mut tx, &notification).await?);
    tx.commit().await?;
    Ok((message, caused))
}

/// `reader` has read conversation `id` up to message `up_to` (a mark never moves back, nor past
/// the last message); the notifications of those messages are read too, so no digest follows.
pub async fn mark_read(pool: &PgPool, id: ConversationId, reader: UserId, up_to: MessageId) -> Result<(), TalkError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let (buyer, _) = parties(&mut tx, id, reader, true).await?;
    sqlx::query!(
        r#"WITH mark AS (SELECT least($2, coalesce(max(id), 0)) AS up_to FROM messages WHERE conversation_id = $1)
           UPDATE conversations c
           SET buyer_read_up_to = CASE WHEN $3 THEN greatest(buyer_read_up_to, mark.up_to) ELSE buyer_read_up_to END,
               seller_read_up_to = CASE WHEN $3 THEN seller_read_up_to ELSE greatest(seller_read_up_to, mark.up_to) END
           FROM mark WHERE c.id = $1"#,
        id as ConversationId,
        up_to.0,
        reader == buyer,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE notifications SET read_at = now()
         WHERE recipient_id = $2 AND conversation_id = $1 AND kind = 'message' AND subject_id <= $3 AND read_at IS NULL",
        id as ConversationId,
        reader as UserId,
        up_to.0,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
