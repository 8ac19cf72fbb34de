//! `Idempotency-Key` for requests that move money: a repeat with the same key gets the first result.
//!
//! The key is claimed inside the request's own transaction, so the result is stored if and only if
//! the effect commits. A concurrent repeat waits on the key's row until the first finishes. Only
//! successes are stored: a refused request (say, insufficient funds) may be retried with its key.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::ids::UserId;
use crate::validation::ValidationError;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim<T> {
    /// First use: do the work, then [`complete`].
    New,
    /// Seen before with the same request: answer with this.
    Replay(T),
}

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// Empty or too long.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Used before for a different request.
    #[error("this Idempotency-Key was used for a different request")]
    Reused,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A fingerprint of the request: endpoint and canonical body.
pub fn fingerprint(endpoint: &str, request: &impl Serialize) -> Vec<u8> {
    let body = serde_json::to_vec(request).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(endpoint.as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    hasher.finalize().to_vec()
}

/// The rule [`check_key`] applies, as the ECMA-262 pattern the OpenAPI document states: 1 to
/// [`MAX_KEY_LEN`] visible ASCII characters (a UUID fits; spaces and non-ASCII do not).
pub const KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// Refuses a key that is empty, longer than [`MAX_KEY_LEN`], or not visible ASCII.
pub fn check_key(key: &str) -> Result<(), ValidationError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            "Idempotency-Key",
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// Claims `key` for `user_id` in the current transaction.
pub async fn claim<T: DeserializeOwned>(
    conn: &mut PgConnection,
    user_id: UserId,
    key: &str,
    request_hash: &[u8],
) -> Result<Claim<T>, IdempotencyError> {
    check_key(key)?;
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        user_id as UserId,
        key,
        request_hash,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let stored = sqlx::query!(
        "SELECT request_hash, response FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        user_id as UserId,
        key
    )
    .fetch_one(&mut *conn)
    .await?;
    match stored.response.map(serde_json::from_value::<T>) {
        Some(Ok(result)) if stored.request_hash == request_hash => Ok(Claim::Replay(result)),
        _ => Err(IdempotencyError::Reused),
    }
}

/// Stores the result for a key claimed in this transaction.
pub async fn complete(
    conn: &mut PgConnection,
    user_id: UserId,
    key: &str,
    result: &impl Serialize,
) -> Result<(), sqlx::Error> {
    let response = serde_json::to_value(result).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query!(
        "UPDATE idempotency_keys SET response = $3 WHERE user_id = $1 AND key = $2",
        user_id as UserId,
        key,
        response
    )
    .execute(conn)
    .await?;
    Ok(())
}
