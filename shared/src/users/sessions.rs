//! Login sessions: opaque random bearer tokens of which only a SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

use super::User;
use crate::events::{self, UserEvent, UserEventType};
use crate::ids::{RegionId, SessionId, UserId};

/// A bearer token as the client holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// 32 random bytes, URL-safe base64, with a recognisable prefix for secret scanners.
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("nbs_{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a token received from a client.
    pub fn from_client(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// The token to hand to the client, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// A freshly opened session.
#[derive(Debug)]
pub struct NewSession {
    /// The bearer token, shown to the client only now.
    pub token: SessionToken,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// Opens a session for `user_id` valid for `ttl`.
pub async fn create_session(
    conn: &mut PgConnection,
    user_id: UserId,
    ttl: std::time::Duration,
) -> Result<NewSession, sqlx::Error> {
    let token = SessionToken::generate();
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7));
    let expires_at = sqlx::query_scalar!(
        "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + $3::interval) RETURNING expires_at",
        user_id as UserId,
        token.digest(),
        sqlx::postgres::types::PgInterval::try_from(ttl).map_err(|e| sqlx::Error::Encode(e))?,
    )
    .fetch_one(conn)
    .await?;
    Ok(NewSession { token, expires_at })
}

/// The user behind a live (unexpired, unrevoked) token, with the session's id; one query.
pub async fn authenticate(
    conn: &mut PgConnection,
    token: &SessionToken,
) -> Result<Option<(SessionId, User)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT s.id AS "session_id: SessionId", u.id AS "id: UserId", u.username, u.email,
                  u.region_id AS "region_id: RegionId", u.is_admin, u.created_at
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"#,
        token.digest(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| (row.session_id, user_from_row!(row))))
}

/// Revokes a session and tells its WebSockets: a `session_revoked` event on the user's stream, for
/// publishing once committed. Revoking twice is harmless and tells no one.
pub async fn revoke_session(conn: &mut PgConnection, session_id: SessionId) -> Result<Option<UserEvent>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let user_id = sqlx::query_scalar!(
        r#"UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
           RETURNING user_id AS "user_id: UserId""#,
        session_id as SessionId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let event = match user_id {
        Some(user_id) => Some(revoked(&mut tx, user_id, Some(session_id)).await?),
        None => None,
    };
    tx.commit().await?;
    Ok(event)
}

/// Revokes every live session of a user (their password changed hands), in the caller's
/// transaction; their WebSockets close (within the hub's catch-up interval: nothing publishes it).
pub async fn revoke_all_sessions(conn: &mut PgConnection, user_id: UserId) -> Result<u64, sqlx::Error> {
    let revoked_count = sqlx::query!(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id as UserId,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if revoked_count > 0 {
        revoked(conn, user_id, None).await?;
    }
    Ok(revoked_count)
}

/// The `session_revoked` event: one session, or every one (`session_id: null`).
async fn revoked(
    conn: &mut PgConnection,
    user_id: UserId,
    session: Option<SessionId>,
) -> Result<UserEvent, sqlx::Error> {
    events::append_user_event(conn, user_id, UserEventType::SessionRevoked, &json!({ "session_id": session })).await
}
