//! argon2id password hashing, off the async threads because it is deliberately slow.
//!
//! Each hash takes ~19 MiB and a core for a few milliseconds, so hashing runs on all cores but one
//! (one on a single core): a burst of logins waits its turn instead of taking gigabytes of memory,
//! and one core stays free for every other request while a flood of logins hashes. The web's
//! [`HashingQueue`] also bounds the line in front of those slots: when it is full a request is
//! refused at once with [`UserError::Overloaded`] instead of waiting behind a flood. Callers never
//! hold a database connection while they hash.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

use super::UserError;

/// Hashes that may run at once: every core but one, at least one.
fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

static HASHING_SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(hashing_slots()));

/// A bounded line for hashing: at most `waiting` requests queue for a slot (`HASHING_QUEUE`);
/// beyond that, [`UserError::Overloaded`] at once. One per web process.
pub struct HashingQueue {
    admitted: Semaphore,
}

impl HashingQueue {
    /// Admits the slots' worth of hashing plus `waiting` more in line.
    pub fn new(waiting: usize) -> Self {
        Self { admitted: Semaphore::new(hashing_slots() + waiting) }
    }

    /// [`hash_password`], or `Overloaded` when the line is full.
    pub async fn hash(&self, password: &str) -> Result<String, UserError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| UserError::Overloaded)?;
        hash_password(password).await
    }

    /// [`verify_password`], or `Overloaded` when the line is full.
    pub async fn verify(&self, password: &str, stored_hash: Option<String>) -> Result<bool, UserError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| UserError::Overloaded)?;
        verify_password(password, stored_hash).await
    }
}

/// Runs one hashing job on the blocking pool once a hashing slot is free.
async fn run_hashing<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, UserError> + Send + 'static,
) -> Result<T, UserError> {
    let _slot = HASHING_SLOTS.acquire().await.map_err(|e| UserError::Hashing(e.to_string()))?;
    tokio::task::spawn_blocking(job).await.map_err(|e| UserError::Hashing(e.to_string()))?
}

/// Hashes `password` with argon2id and a random salt, in PHC string form.
pub async fn hash_password(password: &str) -> Result<String, UserError> {
    let password = password.to_owned();
    run_hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| UserError::Hashing(e.to_string()))
    })
    .await
}

/// A hash of a password nobody has, verified when the user does not exist so that a failed login
/// takes as long whether or not the username is registered.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"no-such-user-password", &salt)
        .expect("hashing a constant cannot fail")
        .to_string()
});

/// Whether `password` matches `stored_hash`; with no hash, spends the same time and says no.
pub async fn verify_password(password: &str, stored_hash: Option<String>) -> Result<bool, UserError> {
    let password = password.to_owned();
    run_hashing(move || {
        let known_user = stored_hash.is_some();
        let hash_text = stored_hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let hash = PasswordHash::new(&hash_text).map_err(|e| UserError::Hashing(e.to_string()))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &hash).is_ok();
        Ok(known_user && matches)
    })
    .await
}
