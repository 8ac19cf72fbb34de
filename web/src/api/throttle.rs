//! The rate limits the API applies, by what is limited: logins per client address and per account
//! name, sign-ups per client address, writes per signed-in user. Each answers 429 `rate_limited`
//! with `Retry-After`; all of them are off with `RATE_LIMITS=off`.

use neighborbid_shared::ids::UserId;
use neighborbid_shared::rate_limit::Quota;

use super::error::{ApiError, ErrorSet};
use crate::client_ip::ClientIp;
use crate::state::AppState;

async fn check<E: ErrorSet>(state: &AppState, key: String, quota: Quota) -> Result<(), ApiError<E>> {
    match &state.limiter {
        Some(limiter) => limiter.check(&key, quota).await.map_err(ApiError::throttled),
        None => Ok(()),
    }
}

/// A login attempt from `ip` for `username`. Both limits count every attempt: the address limit
/// stops one client guessing many accounts' passwords, the name limit many clients guessing one.
pub async fn login<E: ErrorSet>(state: &AppState, ip: ClientIp, username: &str) -> Result<(), ApiError<E>> {
    let limits = &state.config.limits;
    check(state, format!("login-ip:{}", ip.0), limits.login_per_ip).await?;
    let account = username.trim().to_lowercase();
    check(state, format!("login-account:{account}"), limits.login_per_account).await
}

/// A sign-up from `ip`.
pub async fn sign_up<E: ErrorSet>(state: &AppState, ip: ClientIp) -> Result<(), ApiError<E>> {
    check(state, format!("signup-ip:{}", ip.0), state.config.limits.signup_per_ip).await
}

/// A write (anything but a read) by `user_id`.
pub async fn write<E: ErrorSet>(state: &AppState, user_id: UserId) -> Result<(), ApiError<E>> {
    check(state, format!("writes-user:{user_id}"), state.config.limits.writes_per_user).await
}

/// A message by `user_id` in a conversation.
pub async fn message<E: ErrorSet>(state: &AppState, user_id: UserId) -> Result<(), ApiError<E>> {
    check(state, format!("messages-user:{user_id}"), state.config.limits.messages_per_user).await
}

/// A public question by `user_id`.
pub async fn question<E: ErrorSet>(state: &AppState, user_id: UserId) -> Result<(), ApiError<E>> {
    check(state, format!("questions-user:{user_id}"), state.config.limits.questions_per_user).await
}
