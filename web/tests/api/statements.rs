//! Counts the SQL statements a piece of work runs, from sqlx's own `sqlx::query` log events.
//!
//! `#[sqlx::test]` runs each test on a current-thread runtime, so the app under test runs on the
//! test's thread and a thread-local subscriber sees exactly its statements.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

struct StatementCounter(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Runs `work` and returns how many statements the database received meanwhile.
pub async fn count<T>(work: impl Future<Output = T>) -> usize {
    let counter = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(StatementCounter(counter.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    // Callsites first reached while no subscriber listened have cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();
    work.await;
    drop(guard);
    counter.load(Ordering::SeqCst)
}
