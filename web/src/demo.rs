//! Demo data for a local stack: a few neighbours to log in as.

use anyhow::Context;
use neighborbid_shared::users::{self, NewUser, UserError};
use sqlx::PgPool;

/// The password of every demo account; printed by `scripts/up`.
pub const DEMO_PASSWORD: &str = "neighborbid-demo";

/// (username, email, home region id)
const DEMO_USERS: [(&str, &str, i64); 4] = [
    ("minji", "minji@example.com", 111),
    ("junho", "junho@example.com", 121),
    ("seoyeon", "seoyeon@example.com", 141),
    ("dohyun", "dohyun@example.com", 211),
];

/// Creates the demo accounts that do not exist yet; safe to run any number of times.
pub async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool
        .acquire()
        .await
        .context("failed to connect to the database")?;
    let mut created = 0;
    for (username, email, region_id) in DEMO_USERS {
        let new = NewUser::parse(username, email, DEMO_PASSWORD.to_owned(), Some(region_id))?;
        match users::insert_user(&mut conn, &new, false).await {
            Ok(_) => created += 1,
            Err(UserError::UsernameTaken | UserError::EmailTaken) => {}
            Err(err) => return Err(err).context("failed to create a demo user"),
        }
    }
    tracing::info!(created, "demo data loaded");
    Ok(())
}
