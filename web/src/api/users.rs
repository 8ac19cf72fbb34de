//! Sign-up and the caller's own profile.

use chrono::{DateTime, Utc};
use neighborbid_shared::events;
use neighborbid_shared::ids::RegionId;
use neighborbid_shared::ledger::wallet;
use neighborbid_shared::notifications;
use neighborbid_shared::users::{self, NewUser, User};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::auth::BearerAuth;
use super::error::{ApiError, error_set};
use super::wallet::WalletView;
use super::{ApiTags, throttle};
use crate::client_ip::ClientIp;
use crate::state::AppState;

error_set!(
    /// Errors of sign-up.
    SignUpErrors {
        400 => "malformed body",
        409 => "`username_taken` or `email_taken`",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`invalid_username`, `invalid_email`, `control_character`, `password_too_short`, `password_too_long` or `unknown_region`; `details.field` names the field",
        429 => "`rate_limited`: too many sign-ups from this address; see `Retry-After`",
        503 => "`database_unavailable`, or `overloaded` when too many sign-ups wait for password hashing; see `Retry-After`",
    }
);

error_set!(
    /// Errors of endpoints that only need a valid token.
    AuthenticatedErrors {
        401 => "missing, invalid, expired or revoked token",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

/// Sign-up details.
#[derive(Object)]
pub struct SignUpRequest {
    /// 3–30 characters of a-z, 0-9 and `_`; case is ignored (`Minji` is `minji`).
    pub username: String,
    /// Contact address; winners and sellers are emailed here.
    pub email: String,
    /// At least 10 characters.
    #[oai(write_only)]
    pub password: String,
    /// Home region: the default region of the user's auctions.
    pub region_id: Option<i64>,
}

/// A user's account as its owner sees it.
#[derive(Object)]
pub struct UserView {
    /// Stable identifier.
    pub id: i64,
    /// Lower-case handle.
    pub username: String,
    /// Contact address.
    pub email: String,
    /// Home region.
    pub region_id: Option<i64>,
    /// Operators may call the admin endpoints.
    pub is_admin: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            username: u.username,
            email: u.email,
            region_id: u.region_id.map(i64::from),
            is_admin: u.is_admin,
            created_at: u.created_at,
        }
    }
}

/// The caller's own account and wallet.
#[derive(Object)]
pub struct MeView {
    #[oai(flatten)]
    pub user: UserView,
    /// The wallet's balances.
    pub wallet: WalletView,
    /// Notifications not yet read (`GET /me/notifications?unread=true`).
    pub unread_notifications: i64,
    /// Which optional emails you get.
    pub email_preferences: EmailPreferencesView,
    /// The `seq` of your last event: connect to `/ws/me?after_seq=` this for only what happens next.
    pub event_seq: i64,
}

/// Optional emails (those about your wins and sales are always sent).
#[derive(Object)]
#[oai(rename = "EmailPreferences")]
pub struct EmailPreferencesView {
    /// An email when someone outbids you.
    pub outbid: bool,
    /// One digest per conversation when a message stays unread for ten minutes.
    pub messages: bool,
}

/// Settings to change; what is left out stays as it is.
#[derive(Object)]
pub struct UpdateMeRequest {
    /// Optional emails to turn on or off.
    pub email_preferences: Option<EmailPreferencesPatch>,
}

/// Optional emails to turn on or off.
#[derive(Object)]
pub struct EmailPreferencesPatch {
    /// An email when someone outbids you.
    pub outbid: Option<bool>,
    /// Digests of unread messages.
    pub messages: Option<bool>,
}

error_set!(
    /// Errors of changing your settings.
    UpdateMeErrors {
        400 => "malformed body",
        401 => "missing, invalid, expired or revoked token",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

/// The result of a sign-up.
#[derive(ApiResponse)]
enum SignUpResponse {
    /// The account exists; log in with `POST /sessions`.
    #[oai(status = 201)]
    Created(Json<UserView>),
}

/// Accounts.
pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Create an account.
    #[oai(path = "/users", method = "post", operation_id = "sign_up")]
    async fn sign_up(
        &self,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        body: Json<SignUpRequest>,
    ) -> Result<SignUpResponse, ApiError<SignUpErrors>> {
        let body = body.0;
        let new = NewUser::parse(&body.username, &body.email, body.password, body.region_id.map(RegionId))?;
        throttle::sign_up(&state, **ip).await?;
        let password_hash = state.hashing.hash(new.password.expose()).await?;
        let mut conn = state.pool.acquire().await?;
        let user = users::insert_user(&mut conn, &new, &password_hash, false).await?;
        Ok(SignUpResponse::Created(Json(user.into())))
    }

    /// The caller's profile, wallet balances, unread notifications and email preferences.
    #[oai(path = "/me", method = "get", operation_id = "get_me")]
    async fn me(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<MeView>, ApiError<AuthenticatedErrors>> {
        Ok(Json(me_view(&state, auth.0.user, None).await?))
    }

    /// Change your settings (email preferences); answers your profile as `GET /me` does.
    #[oai(path = "/me", method = "patch", operation_id = "update_me")]
    async fn update_me(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<UpdateMeRequest>,
    ) -> Result<Json<MeView>, ApiError<UpdateMeErrors>> {
        let patch = body.0.email_preferences.unwrap_or(EmailPreferencesPatch { outbid: None, messages: None });
        Ok(Json(me_view(&state, auth.0.user, Some(patch)).await?))
    }
}

/// `GET /me`'s answer, after changing the email preferences `patch` names.
async fn me_view(state: &AppState, user: User, patch: Option<EmailPreferencesPatch>) -> Result<MeView, sqlx::Error> {
    let mut conn = state.pool.acquire().await?;
    let balances = wallet::balances(&mut conn, user.id).await?;
    let patch = patch.unwrap_or(EmailPreferencesPatch { outbid: None, messages: None });
    let preferences = notifications::email_preferences(&mut conn, user.id, patch.outbid, patch.messages).await?;
    let unread_notifications = notifications::unread_count(&mut conn, user.id).await?;
    let event_seq = events::user_seq(&mut conn, user.id).await?;
    Ok(MeView {
        user: user.into(),
        wallet: balances.into(),
        unread_notifications,
        email_preferences: EmailPreferencesView { outbid: preferences.outbid, messages: preferences.messages },
        event_seq,
    })
}
