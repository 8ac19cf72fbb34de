//! Login sessions: opaque random bearer tokens of which only a SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::User;
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

/// Revokes a session; revoking twice is harmless.
pub async fn revoke_session(conn: &mut PgConnection, session_id: SessionId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        session_id as SessionId,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every live session of a user (their password changed hands).
pub async fn revoke_all_sessions(conn: &mut PgConnection, user_id: UserId) -> Result<u64, sqlx::Error> {
    let revoked = sqlx::query!(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id as UserId,
    )
    .execute(conn)
    .await?;
    Ok(revoked.rows_affected())
}
