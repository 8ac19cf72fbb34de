//! Counts the SQL statements a piece of work runs, from sqlx's own `sqlx::query` log events.
//!
//! One process-wide subscriber (installed once, so tracing's per-callsite interest cache never goes
//! stale) counts those events per thread. `#[sqlx::test]` runs each test on a current-thread
//! runtime, so the app under test runs on the test's thread and its statements land in its count.

use std::cell::Cell;
use std::sync::Once;

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

thread_local! {
    static STATEMENTS: Cell<usize> = const { Cell::new(0) };
}

struct StatementCounter;

impl<S: Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.with(|n| n.set(n.get() + 1));
        }
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE);
        tracing_subscriber::registry().with(StatementCounter.with_filter(filter)).try_init().ok();
    });
}

/// Runs `work` and returns how many statements the database received meanwhile.
pub async fn count<T>(work: impl Future<Output = T>) -> usize {
    install();
    let before = STATEMENTS.with(Cell::get);
    work.await;
    STATEMENTS.with(Cell::get) - before
}
