//! Running jobs: the apalis worker for one kind of job, and the same work run in-process for tests.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::layers::retry::backoff::{ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::{BackoffRetryPolicy, HasherRng, RetryPolicy};
use apalis::prelude::*;
use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy, PollWith};
use sqlx::Connection;

use super::{Job, JobContext, JobError, Queue, job_id, queues};
use crate::metrics::{JOB_DURATION, JOBS};
use crate::outbox;

/// How often idle workers look for new jobs (apalis otherwise polls only on its heartbeat).
const POLL: Duration = Duration::from_millis(50);
/// A job running longer than this is cut off and retried.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Wakes a worker every [`POLL`] to look for jobs. apalis-core 1.0's own interval strategy
/// (`poll_with_interval`) starts each next delay without polling it, so once a worker is idle
/// nothing wakes it until its heartbeat: a bids bench saw the release queue hold 2,000 jobs due for
/// 4.5 s with none fetched, then a burst of refunds that stalled the bids. This one registers the
/// next wake-up as it starts it.
struct EveryPoll {
    next: Pin<Box<tokio::time::Sleep>>,
}

impl EveryPoll {
    fn new() -> Self {
        Self { next: Box::pin(tokio::time::sleep(POLL)) }
    }
}

impl PollStrategy for EveryPoll {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        if self.next.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.next.as_mut().reset(tokio::time::Instant::now() + POLL);
        // Polled now so that its timer wakes the worker, whatever else does or does not.
        let _ = self.next.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

/// Adds to `monitor` a worker running `J` with `concurrency` jobs at once, restarted by the monitor
/// whenever its stream fails.
pub fn register<J: Job>(monitor: Monitor, ctx: &JobContext, concurrency: usize) -> Monitor {
    let (ctx, name) = (ctx.clone(), worker_name(J::QUEUE));
    let in_flight = concurrency * J::IN_FLIGHT_PER_SLOT;
    monitor.register(move |_restarts: usize| {
        let storage = PollWith::new(
            queues::worker_storage::<J>(ctx.redis.clone(), &ctx.prefix, J::QUEUE, in_flight),
            EveryPoll::new(),
        );
        // Retry outermost, as in apalis' examples: each attempt gets its own span, and a panic or a
        // timeout inside is one failed attempt.
        WorkerBuilder::new(name.clone())
            .backend(storage)
            .retry(retry_policy())
            .enable_tracing()
            .catch_panic()
            .timeout(TIMEOUT)
            .concurrency(in_flight)
            .data(ctx.clone())
            .build(handle::<J>)
    })
}

/// Runs one delivery of `job`: `Retry` errors go back to the retry layer and the queue, `Abandon`
/// goes straight to the dead set. Every run is counted and timed by its outcome; a job given up for
/// good is an error event carrying its queue and id as tags, so Sentry can group and find it.
#[tracing::instrument(skip_all, fields(job = J::NAME, job.subject = job.subject()))]
async fn handle<J: Job>(job: J, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let mut run = Run::start(J::QUEUE);
    let id = job_id(&job);
    match job.run(&ctx).await {
        Ok(()) => {
            run.end("succeeded");
            Ok(())
        }
        Err(JobError::Retry(reason)) => {
            run.end("retried");
            tracing::warn!(%reason, "job failed; it will be retried");
            Err(reason.into())
        }
        Err(JobError::Abandon(reason)) => {
            run.end("abandoned");
            tracing::error!(%reason, tags.queue = J::QUEUE.as_str(), tags.job_id = %id, "job failed for good; it goes to the dead set");
            Err(AbortError::new(reason).into())
        }
    }
}

/// One job run being measured. A run that never reaches [`Run::end`] was cut short: by a panic
/// (`panicked`) or by the timeout or a shutdown dropping it (`cancelled`); dropping records that.
struct Run {
    queue: Queue,
    started: Instant,
    ended: bool,
}

impl Run {
    fn start(queue: Queue) -> Self {
        Self { queue, started: Instant::now(), ended: false }
    }

    fn end(&mut self, outcome: &'static str) {
        self.ended = true;
        let labels = [("queue", self.queue.as_str()), ("outcome", outcome)];
        metrics::counter!(JOBS, &labels).increment(1);
        metrics::histogram!(JOB_DURATION, &labels).record(self.started.elapsed());
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if !self.ended {
            self.end(if std::thread::panicking() { "panicked" } else { "cancelled" });
        }
    }
}

/// A name no other worker process uses: apalis refuses a name whose registration still looks alive.
fn worker_name(queue: queues::Queue) -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into());
    format!("{}-{host}-{}-{:08x}", queue.as_str(), std::process::id(), rand::random::<u32>())
}

/// Three quick retries (200 ms to 5 s apart) before the queue's own re-scheduling takes over.
fn retry_policy() -> BackoffRetryPolicy<ExponentialBackoff> {
    let backoff =
        ExponentialBackoffMaker::new(Duration::from_millis(200), Duration::from_secs(5), 0.5, HasherRng::default())
            .expect("the backoff bounds are valid")
            .make_backoff();
    RetryPolicy::retries(3).with_backoff(backoff)
}

/// Runs every recorded, unrelayed `J` in this process, as a worker would, marking the rows relayed;
/// returns how many ran. Tests drain work with it deterministically.
pub async fn run_recorded<J: Job>(ctx: &JobContext) -> Result<usize, JobError> {
    let mut ran = 0;
    loop {
        let batch = {
            let mut conn = ctx.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            let batch = outbox::claim_unrelayed::<J>(&mut tx, 1_000).await?;
            outbox::mark_relayed(&mut tx, &batch.iter().map(|(id, _)| *id).collect::<Vec<_>>()).await?;
            tx.commit().await?;
            batch
        };
        if batch.is_empty() {
            return Ok(ran);
        }
        for (_, job) in batch {
            job.run(ctx).await?;
            ran += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::*;

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A worker with nothing to do is woken every period, not just once: apalis-core's interval
    /// strategy woke it once, and then not again until its heartbeat.
    #[tokio::test]
    async fn an_idle_worker_is_woken_every_poll_period() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let (mut strategy, snapshot) = (EveryPoll::new(), PollSnapshot::default());
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
        for period in 1..=3 {
            // Timers fire in deadline order: once this sleep ends, the strategy's earlier one has fired.
            tokio::time::sleep(POLL * 3).await;
            assert_eq!(wakes.0.load(Ordering::SeqCst), period, "the worker was not woken in period {period}");
            assert!(strategy.poll_drive(&mut cx, &snapshot).is_ready());
        }
    }
}
