//! Background jobs, run at least once by the worker pool.
//!
//! A job is one file in this folder: its payload (ids only) and its [`Job`] impl, whose `run`
//! calls the domain transaction it stands for (in `auctions/`, `notifications`, …) and is
//! idempotent, because delivery is at-least-once. [`registry::JOBS`] lists every job once; the
//! outbox, the relay, the worker, the sweep and the tests all read it, so a new job is one new file
//! here and one line there.
//!
//! The rule for where code lives: a transaction that changes the domain lives in its domain module
//! (`auctions::settlement`, `auctions::release`, `notifications`), whoever calls it; the job is
//! the thin, retry-aware wrapper that loads nothing but ids.

pub mod monitor;
pub mod process_photo;
pub mod queues;
pub mod registry;
pub mod relay;
pub mod release_hold;
pub mod runner;
pub mod send_email;
pub mod settle_auction;
pub mod sweep;

use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;

use crate::ledger::LedgerError;
use crate::media::MediaStore;
use crate::photos::render::RenderSlots;
pub use queues::Queue;
pub use release_hold::ReleaseBatcher;
pub use send_email::EmailBatcher;

/// One kind of background work.
pub trait Job: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + Unpin + 'static {
    /// The name stored in the outbox's `kind` and in job ids: `release_hold`.
    const NAME: &'static str;
    /// The queue that runs it: a queue of its own, since its workers read every payload on the queue
    /// as theirs.
    const QUEUE: Queue;
    /// The sweep's statement that records, again, every instance overdue by more than `$1`
    /// seconds (an `INSERT INTO outbox (kind, payload) SELECT …`): what PostgreSQL says should have
    /// happened by now and has not.
    const OVERDUE: &'static str;
    /// Deliveries a worker runs at once per unit of its `--concurrency`: 1 for a job that holds a
    /// connection while it runs; more for one that only waits on work shared with others
    /// (`release_hold` and `send_email` wait on a batch).
    const IN_FLIGHT_PER_SLOT: usize = 1;

    /// The row the job concerns. With [`Job::NAME`] it makes the job's id (`release_hold:42`): the
    /// queue holds at most one job per id, so the same follow-up recorded twice runs once at a time.
    fn subject(&self) -> i64;

    /// Does the work. A second run of the same job must change nothing.
    fn run(self, ctx: &JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// The id of `job` in its queue.
pub fn job_id<J: Job>(job: &J) -> String {
    format!("{}:{}", J::NAME, job.subject())
}

/// What every job may use.
#[derive(Clone)]
pub struct JobContext {
    /// PostgreSQL, the truth.
    pub pool: PgPool,
    /// Redis, for publishing events after a commit.
    pub redis: ConnectionManager,
    /// `QUEUE_PREFIX`: the namespace of queues and event channels.
    pub prefix: String,
    /// `PLATFORM_FEE_BPS`.
    pub fee_bps: u16,
    /// Where photos live.
    pub media: MediaStore,
    /// Bounds the photo renders this process runs at once.
    pub render_slots: RenderSlots,
    /// Gathers this process's hold releases into batches.
    pub releases: ReleaseBatcher,
    /// Sends this process's emails, in batches.
    pub emails: EmailBatcher,
}

/// Why a job did not finish, and so what happens to it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try (the database or the mail server is away): retried with backoff in the
    /// worker, then re-scheduled by the queue.
    #[error("{0}")]
    Retry(String),
    /// No retry can help (a refused address, data that breaks an invariant): straight to the dead
    /// set, where an operator sees it.
    #[error("{0}")]
    Abandon(String),
}

impl From<sqlx::Error> for JobError {
    fn from(err: sqlx::Error) -> Self {
        Self::Retry(err.to_string())
    }
}

impl From<LedgerError> for JobError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::Database(e) => Self::Retry(e.to_string()),
            other => Self::Abandon(other.to_string()),
        }
    }
}
