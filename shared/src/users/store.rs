//! Stored accounts.

use sqlx::{Connection, PgConnection};

use super::sessions::revoke_all_sessions;
use super::{NewUser, User, UserError};
use crate::db::violates;
use crate::ids::{RegionId, UserId};

/// Stores a new account whose password the caller hashed (before taking a connection: hashing is
/// slow). Uniqueness is left to the database's indexes, so two sign-ups racing for one name cannot
/// both win.
pub async fn insert_user(
    conn: &mut PgConnection,
    new: &NewUser,
    password_hash: &str,
    is_admin: bool,
) -> Result<User, UserError> {
    // The user's two wallet accounts are created by the same statement: no account-less user exists.
    sqlx::query_as!(
        User,
        r#"WITH new_user AS (
             INSERT INTO users (username, email, password_hash, region_id, is_admin) VALUES ($1, $2, $3, $4, $5)
             RETURNING id, username, email, region_id, is_admin, created_at),
         wallet AS (
             INSERT INTO accounts (user_id, kind) SELECT id, kind FROM new_user, unnest(ARRAY['available', 'held']) AS kind)
         SELECT id AS "id!: UserId", username AS "username!", email AS "email!", region_id AS "region_id: RegionId",
                is_admin AS "is_admin!", created_at AS "created_at!"
         FROM new_user"#,
        new.username.as_str(),
        new.email.as_str(),
        password_hash,
        new.region_id as Option<RegionId>,
        is_admin,
    )
    .fetch_one(conn)
    .await
    .map_err(|err| {
        if violates(&err, "users_username_key") {
            UserError::UsernameTaken
        } else if violates(&err, "users_email_key") {
            UserError::EmailTaken
        } else if violates(&err, "users_region_id_fkey") {
            UserError::UnknownRegion
        } else {
            UserError::Database(err)
        }
    })
}

/// What `create-admin` does with a username that is already registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingAccount {
    /// Refuse: anyone could have signed that name up first (`UsernameTaken`).
    Refuse,
    /// Promote it: the operator said `--promote` and so vouches that the account is theirs. Its
    /// password and email become the given ones and all its sessions are revoked, so whoever held
    /// the account before is signed out.
    Promote,
}

/// Creates an operator account, or (only with [`ExistingAccount::Promote`]) takes over an existing
/// one with that username, in one transaction.
pub async fn create_admin(
    conn: &mut PgConnection,
    new: &NewUser,
    password_hash: &str,
    existing: ExistingAccount,
) -> Result<User, UserError> {
    let mut tx = conn.begin().await?;
    let promoted: Option<User> = match existing {
        ExistingAccount::Refuse => None,
        ExistingAccount::Promote => sqlx::query_as!(
            User,
            r#"UPDATE users SET is_admin = TRUE, password_hash = $2, email = $3 WHERE lower(username) = $1
               RETURNING id AS "id: UserId", username, email, region_id AS "region_id: RegionId", is_admin,
                         created_at"#,
            new.username.as_str(),
            password_hash,
            new.email.as_str(),
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| if violates(&err, "users_email_key") { UserError::EmailTaken } else { err.into() })?,
    };
    let user = match promoted {
        Some(user) => {
            revoke_all_sessions(&mut tx, user.id).await?;
            user
        }
        None => insert_user(&mut tx, new, password_hash, true).await?,
    };
    tx.commit().await?;
    Ok(user)
}

/// The account with this id.
pub async fn find_by_id(conn: &mut PgConnection, id: UserId) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", username, email, region_id AS "region_id: RegionId", is_admin, created_at
           FROM users WHERE id = $1"#,
        id as UserId,
    )
    .fetch_optional(conn)
    .await
}

/// The account with this username (any case) and its password hash, for login.
pub async fn find_by_username(conn: &mut PgConnection, username: &str) -> Result<Option<(User, String)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT id AS "id: UserId", username, email, region_id AS "region_id: RegionId", is_admin, created_at,
                  password_hash
           FROM users WHERE lower(username) = lower($1)"#,
        username.trim(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| (user_from_row!(row), row.password_hash)))
}
