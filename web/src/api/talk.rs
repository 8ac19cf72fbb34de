//! Neighbours talking: conversations, public questions, reviews and profiles, blocks, and the
//! notification feed. Thin handlers over `neighborbid_shared::talk` and `notifications`.

use chrono::{DateTime, Utc};
use neighborbid_shared::email::NotificationKind;
use neighborbid_shared::ids::{AuctionId, ConversationId, MessageId, NotificationId, QuestionId, UserId};
use neighborbid_shared::notifications::{self, FeedItem};
use neighborbid_shared::pagination::Cursor;
use neighborbid_shared::talk::conversations::{self, Conversation, Message};
use neighborbid_shared::talk::questions::{self, Question};
use neighborbid_shared::talk::reviews::{self, Profile, Review};
use neighborbid_shared::talk::{Caused, Person, blocks};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::auth::BearerAuth;
use super::error::{ApiError, error_set};
use super::strict::StrictString;
use super::{ApiTags, Page, throttle};
use crate::state::AppState;

error_set!(
    /// Errors of reading a conversation or its messages.
    ConversationReadErrors {
        400 => "`invalid_cursor`",
        401 => "missing, invalid, expired or revoked token",
        404 => "`conversation_not_found`: no conversation of yours has that id",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of opening a conversation.
    OpenConversationErrors {
        400 => "malformed parameter",
        401 => "missing, invalid, expired or revoked token",
        403 => "`own_auction`, or `blocked`: the seller blocked you",
        404 => "`auction_not_found`",
        429 => "`rate_limited`; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of writing in a conversation.
    MessageErrors {
        400 => "malformed body",
        401 => "missing, invalid, expired or revoked token",
        403 => "`blocked`: the other party blocked you",
        404 => "`conversation_not_found`: no conversation of yours has that id",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`invalid_length` (1–2,000 characters) or `control_character`; `details.field` names the field",
        429 => "`rate_limited`: too many messages; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of reading public questions.
    QuestionReadErrors {
        400 => "`invalid_cursor`",
        404 => "`auction_not_found`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of asking or answering a question.
    QuestionErrors {
        400 => "malformed body",
        401 => "missing, invalid, expired or revoked token",
        403 => "`own_auction` (asking about your own auction) or `not_seller` (answering someone else's)",
        404 => "`auction_not_found` or `question_not_found`",
        409 => "`already_answered`",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`invalid_length` (1–1,000 characters) or `control_character`; `details.field` names the field",
        429 => "`rate_limited`: too many questions; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of writing a review.
    ReviewErrors {
        400 => "malformed body",
        401 => "missing, invalid, expired or revoked token",
        403 => "`not_a_party`: only the winner and the seller review each other",
        404 => "`auction_not_found`",
        409 => "`auction_not_settled` or `already_reviewed`",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`invalid_rating` (1–5), `invalid_length` (at most 2,000 characters) or `control_character`",
        429 => "`rate_limited`; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of reading a public profile or its reviews.
    ProfileErrors {
        400 => "`invalid_cursor`",
        404 => "`user_not_found`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of blocking.
    BlockErrors {
        400 => "malformed parameter",
        401 => "missing, invalid, expired or revoked token",
        404 => "`user_not_found`",
        422 => "`cannot_block_yourself`",
        429 => "`rate_limited`; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of the notification feed.
    FeedErrors {
        400 => "`invalid_cursor` or malformed body",
        401 => "missing, invalid, expired or revoked token",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        429 => "`rate_limited`; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

/// Someone as others see them.
#[derive(Object)]
#[oai(rename = "Person")]
pub struct PersonView {
    /// Their id.
    pub id: i64,
    /// Their username.
    pub username: String,
}

impl From<Person> for PersonView {
    fn from(p: Person) -> Self {
        Self { id: p.id.0, username: p.username }
    }
}

/// A message.
#[derive(Object)]
#[oai(rename = "Message")]
pub struct MessageView {
    /// Its id, rising within the conversation.
    pub id: i64,
    /// Its conversation.
    pub conversation_id: i64,
    /// Who wrote it; `null` for the platform's own (who won at what price).
    pub sender: Option<PersonView>,
    /// Plain text as written; render it as text, never as HTML.
    pub body: String,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.0,
            conversation_id: m.conversation_id.0,
            sender: m.sender.map(Into::into),
            body: m.body,
            created_at: m.created_at,
        }
    }
}

/// A conversation, as one of its two parties sees it.
#[derive(Object)]
#[oai(rename = "Conversation")]
pub struct ConversationView {
    /// Its id.
    pub id: i64,
    /// The auction it is about.
    pub auction_id: i64,
    /// The party who is not the seller.
    pub buyer: PersonView,
    /// The auction's seller.
    pub seller: PersonView,
    /// The newest message; `null` before the first.
    pub last_message: Option<MessageView>,
    /// Messages from the other party after your read mark.
    pub unread_count: i64,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it was opened or last written to.
    pub last_activity_at: DateTime<Utc>,
}

impl From<Conversation> for ConversationView {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id.0,
            auction_id: c.auction_id.0,
            buyer: c.buyer.into(),
            seller: c.seller.into(),
            last_message: c.last_message.map(Into::into),
            unread_count: c.unread_count,
            created_at: c.created_at,
            last_activity_at: c.last_activity_at,
        }
    }
}

/// A message to send.
#[derive(Object)]
pub struct MessageRequest {
    /// 1–2,000 characters of plain text; line breaks and tabs are kept, other control characters refused.
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub body: StrictString,
}

/// How far you have read.
#[derive(Object)]
pub struct ReadConversationRequest {
    /// The last message you have read; marks never move back.
    #[oai(validator(minimum(value = "1")))]
    pub up_to_message_id: i64,
}

/// A public question and its answer.
#[derive(Object)]
#[oai(rename = "Question")]
pub struct QuestionView {
    /// Its id.
    pub id: i64,
    /// The auction it is about.
    pub auction_id: i64,
    /// Who asked.
    pub asker: PersonView,
    /// The question, plain text.
    pub body: String,
    /// The seller's answer; `null` until given.
    pub answer: Option<String>,
    /// When it was answered; `null` until then.
    pub answered_at: Option<DateTime<Utc>>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
}

impl From<Question> for QuestionView {
    fn from(q: Question) -> Self {
        Self {
            id: q.id.0,
            auction_id: q.auction_id.0,
            asker: q.asker.into(),
            body: q.body,
            answer: q.answer,
            answered_at: q.answered_at,
            created_at: q.created_at,
        }
    }
}

/// A question, or an answer.
#[derive(Object)]
pub struct QuestionRequest {
    /// 1–1,000 characters of plain text.
    #[oai(validator(min_length = 1, max_length = 1000))]
    pub body: StrictString,
}

/// A review of the other party of a sale.
#[derive(Object)]
pub struct ReviewRequest {
    /// 1 (poor) to 5 (excellent).
    #[oai(validator(minimum(value = "1"), maximum(value = "5")))]
    pub rating: i16,
    /// At most 2,000 characters of plain text; may be empty.
    #[oai(default, validator(max_length = 2000))]
    pub body: StrictString,
}

/// A review.
#[derive(Object)]
#[oai(rename = "Review")]
pub struct ReviewView {
    /// Its id.
    pub id: i64,
    /// The sale it is about.
    pub auction_id: i64,
    /// Who wrote it.
    pub reviewer: PersonView,
    /// Who it is about.
    pub reviewee_id: i64,
    /// 1 to 5.
    pub rating: i16,
    /// What they wrote.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<Review> for ReviewView {
    fn from(r: Review) -> Self {
        Self {
            id: r.id.0,
            auction_id: r.auction_id.0,
            reviewer: r.reviewer.into(),
            reviewee_id: r.reviewee_id.0,
            rating: r.rating,
            body: r.body,
            created_at: r.created_at,
        }
    }
}

/// Ratings received.
#[derive(Object)]
#[oai(rename = "Rating")]
pub struct RatingView {
    /// Mean of the ratings; `null` without any.
    pub average: Option<f64>,
    /// How many reviews.
    pub count: i64,
}

/// A user as anyone may see them.
#[derive(Object)]
#[oai(rename = "Profile")]
pub struct ProfileView {
    /// Their id.
    pub id: i64,
    /// Their username.
    pub username: String,
    /// Their home region's name; `null` if unset.
    pub region: Option<String>,
    /// Reviews they received.
    pub rating: RatingView,
    /// Their auctions that sold.
    pub sold_count: i64,
    /// When they signed up.
    pub member_since: DateTime<Utc>,
}

impl From<Profile> for ProfileView {
    fn from(p: Profile) -> Self {
        Self {
            id: p.id.0,
            username: p.username,
            region: p.region,
            rating: RatingView { average: p.rating_average, count: p.rating_count },
            sold_count: p.sold_count,
            member_since: p.member_since,
        }
    }
}

/// What a notification tells.
#[derive(Enum)]
#[oai(rename_all = "snake_case", rename = "NotificationKind")]
pub enum NotificationKindView {
    /// You won an auction.
    Won,
    /// Your auction sold.
    Sold,
    /// Someone outbid you.
    Outbid,
    /// Your auction ended without a sale.
    Unsold,
    /// A message arrived.
    Message,
    /// The seller answered your question.
    QuestionAnswered,
}

impl From<NotificationKind> for NotificationKindView {
    fn from(kind: NotificationKind) -> Self {
        match kind {
            NotificationKind::Won => Self::Won,
            NotificationKind::Sold => Self::Sold,
            NotificationKind::Outbid => Self::Outbid,
            NotificationKind::Unsold => Self::Unsold,
            NotificationKind::Message => Self::Message,
            NotificationKind::QuestionAnswered => Self::QuestionAnswered,
        }
    }
}

/// A notification in your feed.
#[derive(Object)]
#[oai(rename = "Notification")]
pub struct NotificationView {
    /// Its id; the feed is newest first.
    pub id: i64,
    /// What happened.
    pub kind: NotificationKindView,
    /// The auction concerned.
    pub auction_id: i64,
    /// The conversation, for `message`; otherwise `null`.
    pub conversation_id: Option<i64>,
    /// Details by kind: `price` (won, sold), `message_id`, `sender`, `excerpt` (message), `question_id`.
    pub data: serde_json::Value,
    /// When you read it; `null` while unread.
    pub read_at: Option<DateTime<Utc>>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl From<FeedItem> for NotificationView {
    fn from(n: FeedItem) -> Self {
        Self {
            id: n.id.0,
            kind: n.kind.into(),
            auction_id: n.auction_id.0,
            conversation_id: n.conversation_id.map(|c| c.0),
            data: n.data,
            read_at: n.read_at,
            created_at: n.created_at,
        }
    }
}

/// How far you have read your notifications.
#[derive(Object)]
pub struct ReadNotificationsRequest {
    /// Every notification up to this id is marked read.
    #[oai(validator(minimum(value = "1")))]
    pub up_to_id: i64,
}

/// Opening a conversation.
#[derive(ApiResponse)]
enum OpenConversationResponse {
    /// Opened now.
    #[oai(status = 201)]
    Created(Json<ConversationView>),
    /// You had it already.
    #[oai(status = 200)]
    Existing(Json<ConversationView>),
}

/// A new message.
#[derive(ApiResponse)]
enum MessageResponse {
    /// Sent; the other party gets `message_received` on `/ws/me`.
    #[oai(status = 201)]
    Created(Json<MessageView>),
}

/// A new question.
#[derive(ApiResponse)]
enum QuestionResponse {
    /// Asked; watchers of the auction get `question_asked`.
    #[oai(status = 201)]
    Created(Json<QuestionView>),
}

/// A new review.
#[derive(ApiResponse)]
enum ReviewResponse {
    /// Recorded.
    #[oai(status = 201)]
    Created(Json<ReviewView>),
}

/// A write with nothing to return.
#[derive(ApiResponse)]
enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

fn page<T, V>(items: Vec<T>, next: Option<Cursor>) -> Json<Page<V>>
where
    V: From<T> + poem_openapi::types::ParseFromJSON + poem_openapi::types::ToJSON,
{
    Json(Page { items: items.into_iter().map(Into::into).collect(), next_cursor: next.map(Cursor::encode) })
}

fn publish(state: &AppState, caused: &Caused) {
    state.hub.publish(&caused.auction);
    state.hub.publish(&caused.user);
}

/// Conversations, questions, reviews, profiles, blocks and notifications.
pub struct TalkApi;

#[OpenApi(tag = "ApiTags::Talk")]
impl TalkApi {
    /// Open your conversation with the seller of an auction (or get the one you have).
    #[oai(path = "/auctions/:id/conversations", method = "post", operation_id = "open_conversation")]
    async fn open_conversation(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<OpenConversationResponse, ApiError<OpenConversationErrors>> {
        let (conversation, opened) = conversations::open(&state.pool, AuctionId(id.0), auth.0.user.id).await?;
        Ok(match opened {
            true => OpenConversationResponse::Created(Json(conversation.into())),
            false => OpenConversationResponse::Existing(Json(conversation.into())),
        })
    }

    /// Your conversations, most recent activity first.
    #[oai(path = "/conversations", method = "get", operation_id = "list_conversations")]
    async fn list_conversations(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<ConversationView>>, ApiError<ConversationReadErrors>> {
        let (items, next) = conversations::list(&state.pool, auth.0.user.id, cursor.0.as_deref(), limit.0).await?;
        Ok(page(items, next))
    }

    /// A conversation's messages, newest first; only its two parties may read them.
    #[oai(path = "/conversations/:id/messages", method = "get", operation_id = "list_messages")]
    async fn list_messages(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<MessageView>>, ApiError<ConversationReadErrors>> {
        let (items, next) =
            conversations::messages(&state.pool, ConversationId(id.0), auth.0.user.id, cursor.0.as_deref(), limit.0)
                .await?;
        Ok(page(items, next))
    }

    /// Write to the other party of a conversation.
    #[oai(path = "/conversations/:id/messages", method = "post", operation_id = "send_message")]
    async fn send_message(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        body: Json<MessageRequest>,
    ) -> Result<MessageResponse, ApiError<MessageErrors>> {
        throttle::message(&state, auth.0.user.id).await?;
        let (message, caused) =
            conversations::post(&state.pool, ConversationId(id.0), auth.0.user.id, &body.0.body.0).await?;
        publish(&state, &caused);
        Ok(MessageResponse::Created(Json(message.into())))
    }

    /// Mark a conversation read up to a message (its notifications too, so no digest email follows).
    #[oai(path = "/conversations/:id/read", method = "post", operation_id = "mark_conversation_read")]
    async fn mark_conversation_read(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        body: Json<ReadConversationRequest>,
    ) -> Result<Done, ApiError<MessageErrors>> {
        let up_to = MessageId(body.0.up_to_message_id);
        conversations::mark_read(&state.pool, ConversationId(id.0), auth.0.user.id, up_to).await?;
        Ok(Done::NoContent)
    }

    /// An auction's public questions and answers, newest first.
    #[oai(path = "/auctions/:id/questions", method = "get", operation_id = "list_questions")]
    async fn list_questions(
        &self,
        state: Data<&AppState>,
        id: Path<i64>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<QuestionView>>, ApiError<QuestionReadErrors>> {
        let (items, next) = questions::list(&state.pool, AuctionId(id.0), cursor.0.as_deref(), limit.0).await?;
        Ok(page(items, next))
    }

    /// Ask the seller a question, in public.
    #[oai(path = "/auctions/:id/questions", method = "post", operation_id = "ask_question")]
    async fn ask_question(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        body: Json<QuestionRequest>,
    ) -> Result<QuestionResponse, ApiError<QuestionErrors>> {
        throttle::question(&state, auth.0.user.id).await?;
        let (question, caused) = questions::ask(&state.pool, AuctionId(id.0), auth.0.user.id, &body.0.body.0).await?;
        publish(&state, &caused);
        Ok(QuestionResponse::Created(Json(question.into())))
    }

    /// Answer a question about your auction, once; the asker is notified.
    #[oai(path = "/questions/:id/answer", method = "post", operation_id = "answer_question")]
    async fn answer_question(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        body: Json<QuestionRequest>,
    ) -> Result<Json<QuestionView>, ApiError<QuestionErrors>> {
        let (question, caused) =
            questions::answer(&state.pool, QuestionId(id.0), auth.0.user.id, &body.0.body.0).await?;
        publish(&state, &caused);
        Ok(Json(question.into()))
    }

    /// Review the other party of a settled sale (the winner the seller, the seller the winner), once.
    #[oai(path = "/auctions/:id/reviews", method = "post", operation_id = "create_review")]
    async fn create_review(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        body: Json<ReviewRequest>,
    ) -> Result<ReviewResponse, ApiError<ReviewErrors>> {
        let review =
            reviews::create(&state.pool, AuctionId(id.0), auth.0.user.id, body.0.rating, &body.0.body.0).await?;
        Ok(ReviewResponse::Created(Json(review.into())))
    }

    /// A user's public profile: rating, sales, membership.
    #[oai(path = "/users/:id", method = "get", operation_id = "get_profile")]
    async fn get_profile(
        &self,
        state: Data<&AppState>,
        id: Path<i64>,
    ) -> Result<Json<ProfileView>, ApiError<ProfileErrors>> {
        Ok(Json(reviews::profile(&state.pool, UserId(id.0)).await?.into()))
    }

    /// Reviews a user received, newest first.
    #[oai(path = "/users/:id/reviews", method = "get", operation_id = "list_reviews")]
    async fn list_reviews(
        &self,
        state: Data<&AppState>,
        id: Path<i64>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<ReviewView>>, ApiError<ProfileErrors>> {
        let (items, next) = reviews::received(&state.pool, UserId(id.0), cursor.0.as_deref(), limit.0).await?;
        Ok(page(items, next))
    }

    /// Block a user: they can no longer open conversations with you or write in yours.
    #[oai(path = "/users/:id/block", method = "put", operation_id = "block_user")]
    async fn block_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<Done, ApiError<BlockErrors>> {
        blocks::block(&state.pool, auth.0.user.id, UserId(id.0)).await?;
        Ok(Done::NoContent)
    }

    /// Lift a block.
    #[oai(path = "/users/:id/block", method = "delete", operation_id = "unblock_user")]
    async fn unblock_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<Done, ApiError<BlockErrors>> {
        blocks::unblock(&state.pool, auth.0.user.id, UserId(id.0)).await?;
        Ok(Done::NoContent)
    }

    /// Your notifications, newest first; each new one also arrives on `/ws/me`.
    #[oai(path = "/me/notifications", method = "get", operation_id = "list_notifications")]
    async fn list_notifications(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only the unread ones.
        #[oai(default)]
        unread: Query<bool>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<NotificationView>>, ApiError<FeedErrors>> {
        let (items, next) =
            notifications::feed(&state.pool, auth.0.user.id, unread.0, cursor.0.as_deref(), limit.0).await?;
        Ok(page(items, next))
    }

    /// Mark your notifications read up to an id.
    #[oai(path = "/me/notifications/read", method = "post", operation_id = "mark_notifications_read")]
    async fn mark_notifications_read(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<ReadNotificationsRequest>,
    ) -> Result<Done, ApiError<FeedErrors>> {
        notifications::mark_read(&state.pool, auth.0.user.id, NotificationId(body.0.up_to_id)).await?;
        Ok(Done::NoContent)
    }
}
