//! Logging in and out.

use chrono::{DateTime, Utc};
use neighborbid_shared::users::{self, UserError};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use neighborbid_shared::validation::refuse_control_chars;

use super::auth::BearerAuth;
use super::error::{ApiError, error_set};
use super::users::{AuthenticatedErrors, UserView};
use super::{ApiTags, throttle};
use crate::client_ip::ClientIp;
use crate::state::AppState;

error_set!(
    /// Errors of login.
    LoginErrors {
        400 => "malformed body",
        401 => "`invalid_credentials`: wrong username or password (the same answer whether or not the user exists)",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`control_character`: the username contains a control character",
        429 => "`rate_limited`: too many logins from this address or for this account; see `Retry-After`",
        503 => "`database_unavailable`, or `overloaded` when too many logins wait for a password check; see `Retry-After`",
    }
);

/// Login details.
#[derive(Object)]
pub struct LoginRequest {
    /// The account's username (any case).
    pub username: String,
    /// The account's password.
    #[oai(write_only)]
    pub password: String,
}

/// A new session.
#[derive(Object)]
pub struct SessionView {
    /// Send as `Authorization: Bearer <token>`. Shown only once.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub user: UserView,
}

#[derive(ApiResponse)]
enum LoginResponse {
    /// Logged in.
    #[oai(status = 201)]
    Created(Json<SessionView>),
}

#[derive(ApiResponse)]
enum LogoutResponse {
    /// The token no longer works.
    #[oai(status = 204)]
    LoggedOut,
}

/// Sessions.
pub struct SessionsApi;

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Log in: exchange a username and password for a bearer token.
    #[oai(path = "/sessions", method = "post", operation_id = "log_in")]
    async fn login(
        &self,
        state: Data<&AppState>,
        ip: Data<&ClientIp>,
        body: Json<LoginRequest>,
    ) -> Result<LoginResponse, ApiError<LoginErrors>> {
        refuse_control_chars("username", &body.username, false)?;
        throttle::login(&state, **ip, &body.username).await?;
        // No connection is held while the password is checked: hashing waits its turn and a flood
        // of logins must not starve every other request of the pool.
        let found = users::find_by_username(&mut *state.pool.acquire().await?, &body.username).await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let valid = state.hashing.verify(&body.password, hash).await?;
        let Some(user) = user.filter(|_| valid) else {
            return Err(UserError::InvalidCredentials.into());
        };
        let mut conn = state.pool.acquire().await?;
        let session = users::create_session(&mut conn, user.id, state.config.session_ttl).await?;
        Ok(LoginResponse::Created(Json(SessionView {
            token: session.token.expose().to_owned(),
            expires_at: session.expires_at,
            user: user.into(),
        })))
    }

    /// Log out: revoke the token used for this request.
    #[oai(path = "/sessions/current", method = "delete", operation_id = "log_out")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<LogoutResponse, ApiError<AuthenticatedErrors>> {
        let mut conn = state.pool.acquire().await?;
        if let Some(revoked) = users::revoke_session(&mut conn, auth.0.session_id).await? {
            state.hub.publish(&[revoked]);
        }
        Ok(LogoutResponse::LoggedOut)
    }
}
