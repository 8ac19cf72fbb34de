//! People who buy and sell: sign-up rules, stored accounts, passwords and login sessions.

/// A [`User`] from a `query!` record that selected the user's columns (`id`, `username`, `email`,
/// `region_id`, `is_admin`, `created_at`) beside others.
macro_rules! user_from_row {
    ($row:expr) => {
        $crate::users::User {
            id: $row.id,
            username: $row.username,
            email: $row.email,
            region_id: $row.region_id,
            is_admin: $row.is_admin,
            created_at: $row.created_at,
        }
    };
}

mod credentials;
mod password;
mod sessions;
mod store;

pub use credentials::{Email, NewUser, Password, USERNAME_PATTERN, Username};
pub use password::{HashingQueue, hash_password, verify_password};
pub use sessions::{NewSession, SessionToken, authenticate, create_session, revoke_all_sessions, revoke_session};
pub use store::{ExistingAccount, create_admin, find_by_id, find_by_username, insert_user};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{RegionId, UserId};
use crate::validation::ValidationError;

/// A registered account as other code sees it (never with its password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Stable identifier.
    pub id: UserId,
    /// Lower-case handle, unique.
    pub username: String,
    /// Contact address, unique.
    pub email: String,
    /// Home region, the default for the user's auctions.
    pub region_id: Option<RegionId>,
    /// Operators may call the admin endpoints.
    pub is_admin: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// Input broke a sign-up rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Another account has this username (compared case-insensitively).
    #[error("username is taken")]
    UsernameTaken,
    /// Another account has this email address.
    #[error("email is already registered")]
    EmailTaken,
    /// The home region does not exist.
    #[error("unknown region")]
    UnknownRegion,
    /// Wrong username or password; deliberately does not say which.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Too many password checks are waiting already; try again in a moment.
    #[error("too many logins and sign-ups at once")]
    Overloaded,
    /// Hashing failed (out of memory or a broken stored hash).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}
