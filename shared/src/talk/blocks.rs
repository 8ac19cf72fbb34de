//! Blocks: a user refuses conversations (new ones and messages in existing ones) from another.

use sqlx::{PgConnection, PgPool};

use super::TalkError;
use crate::ids::UserId;

/// Whether `blocker` blocked `blocked`.
pub async fn blocked(conn: &mut PgConnection, blocker: UserId, blocked: UserId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2) AS "blocked!""#,
        blocker as UserId,
        blocked as UserId,
    )
    .fetch_one(conn)
    .await
}

/// `blocker` blocks `blocked`; blocking twice is harmless.
pub async fn block(pool: &PgPool, blocker: UserId, blocked: UserId) -> Result<(), TalkError> {
    if blocker == blocked {
        return Err(TalkError::SelfBlock);
    }
    let done = sqlx::query!(
        "INSERT INTO blocks (blocker_id, blocked_id) SELECT $1, id FROM users WHERE id = $2 ON CONFLICT DO NOTHING",
        blocker as UserId,
        blocked as UserId,
    )
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        user_exists(pool, blocked).await?;
    }
    Ok(())
}

/// `UserNotFound` unless `user_id` exists.
pub(super) async fn user_exists(pool: &PgPool, user_id: UserId) -> Result<(), TalkError> {
    let exists = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS "e!""#, user_id as UserId)
        .fetch_one(pool)
        .await?;
    if exists { Ok(()) } else { Err(TalkError::UserNotFound) }
}

/// `blocker` lifts their block of `blocked`, if any.
pub async fn unblock(pool: &PgPool, blocker: UserId, blocked: UserId) -> Result<(), TalkError> {
    let done = sqlx::query!(
        "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
        blocker as UserId,
        blocked as UserId
    )
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        user_exists(pool, blocked).await?;
    }
    Ok(())
}
