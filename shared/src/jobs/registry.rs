//! Every job, once. A new job is a file in this folder and one line in [`JOBS`].
//!
//! The outbox relay, the worker, the reconciliation sweep and the tests need to do something for
//! each kind of job without naming them; [`JobKind`] is that something, behind one object per job.

use std::marker::PhantomData;

use apalis::prelude::Monitor;
use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::process_photo::ProcessPhoto;
use super::relay::{self, RelayError};
use super::release_hold::ReleaseHold;
use super::send_email::SendEmail;
use super::settle_auction::SettleAuction;
use super::{Job, JobContext, JobError, Queue, runner};

/// Every job the platform runs.
pub static JOBS: [&dyn JobKind; 4] =
    [&Kind::<ReleaseHold>::NEW, &Kind::<SettleAuction>::NEW, &Kind::<SendEmail>::NEW, &Kind::<ProcessPhoto>::NEW];

/// One kind of job, as the platform's machinery sees it.
pub trait JobKind: Sync {
    /// [`Job::NAME`].
    fn name(&self) -> &'static str;
    /// [`Job::QUEUE`].
    fn queue(&self) -> Queue;
    /// [`Job::OVERDUE`].
    fn overdue(&self) -> &'static str;
    /// Moves up to `limit` recorded jobs of this kind from the outbox to the queue.
    fn relay<'a>(
        &'a self,
        db: &'a mut PgConnection,
        redis: &'a redis::aio::ConnectionManager,
        prefix: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<usize, RelayError>>;
    /// Adds a worker for this kind to `monitor`.
    fn register(&self, monitor: Monitor, ctx: &JobContext, concurrency: usize) -> Monitor;
    /// Runs every recorded, unrelayed job of this kind right here, as a worker would (tests use it
    /// to drain work deterministically); returns how many ran.
    fn run_recorded<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<usize, JobError>>;
}

struct Kind<J>(PhantomData<fn() -> J>);

impl<J> Kind<J> {
    const NEW: Self = Self(PhantomData);
}

impl<J: Job> JobKind for Kind<J> {
    fn name(&self) -> &'static str {
        J::NAME
    }

    fn queue(&self) -> Queue {
        J::QUEUE
    }

    fn overdue(&self) -> &'static str {
        J::OVERDUE
    }

    fn relay<'a>(
        &'a self,
        db: &'a mut PgConnection,
        redis: &'a redis::aio::ConnectionManager,
        prefix: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<usize, RelayError>> {
        Box::pin(relay::relay_batch::<J>(db, redis, prefix, limit))
    }

    fn register(&self, monitor: Monitor, ctx: &JobContext, concurrency: usize) -> Monitor {
        runner::register::<J>(monitor, ctx, concurrency)
    }

    fn run_recorded<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<usize, JobError>> {
        Box::pin(runner::run_recorded::<J>(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_queue_has_exactly_one_job() {
        let mut names: Vec<_> = JOBS.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), JOBS.len());
        // Each job's workers decode whatever its queue holds as their own payload: a second job on a
        // queue would have its jobs taken, and dropped, by the first one's workers.
        for queue in super::super::queues::QUEUES {
            assert_eq!(JOBS.iter().filter(|k| k.queue() == queue).count(), 1, "{queue:?}");
        }
    }
}
