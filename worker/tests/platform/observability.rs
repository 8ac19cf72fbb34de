//! The real `neighborbid-worker` binary: its `/metrics` after real jobs ran, and a job that failed
//! for good reaching Sentry with its queue and id.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use neighborbid_shared::jobs::queues::{self, Queue};
use neighborbid_testkit::db::database_url;
use neighborbid_testkit::process::{Process, metric, scrape};
use neighborbid_testkit::sentry::SentrySink;
use neighborbid_testkit::smtp::spawn_smtp_sink_with;
use sqlx::PgPool;

use crate::harness::{Platform, fast_sweeps};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_worker_binary_counts_its_jobs_and_reports_one_that_failed_for_good(pool: PgPool) {
    // Every address is refused: the sale's emails fail for good.
    let (port, inbox) = spawn_smtp_sink_with(Arc::new(AtomicBool::new(true))).await.unwrap();
    let mut platform = Platform::with_sink(pool, port, inbox).await;
    let sentry = SentrySink::start().await.unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_neighborbid-worker"));
    command
        .envs(platform.env())
        .env("DATABASE_URL", database_url(&platform.pool).await)
        .env("SENTRY_DSN", &sentry.dsn)
        .env("METRICS_ADDR", "127.0.0.1:0");
    let mut worker = Process::start(command);
    let metrics_addr =
        worker.wait_for_log("serving metrics", Duration::from_secs(60))["metrics.addr"].as_str().unwrap().to_owned();

    let sellers = platform.funded_users("seller", 1).await;
    let bidders = platform.funded_users("bidder", 2).await;
    platform.auctions_with_bids(1, &sellers, &bidders, Duration::from_secs(1)).await;
    platform.start_scheduler(fast_sweeps());

    let event = sentry
        .wait_for("a dead email job", Duration::from_secs(60), |e| {
            e["server_name"] == "neighborbid-worker" && e["tags"]["queue"] == "email"
        })
        .await;
    let job_id = event["tags"]["job_id"].as_str().expect("the job id is a tag").to_owned();
    assert!(job_id.starts_with("send_email:"), "{event}");
    platform.wait_for("the sale", "SELECT bool_and(status = 'settled') FROM auctions", Duration::from_secs(60)).await;
    let dead = queues::dead_jobs(&mut platform.redis, &platform.prefix, Queue::Email, usize::MAX).await.unwrap();
    assert!(dead.iter().any(|job| job.id == job_id), "the reported job is the dead one: {dead:?}");

    let url = format!("http://{metrics_addr}/metrics");
    let settled = [("queue", "settlement"), ("outcome", "succeeded")];
    let mut scraped = scrape(&url).await;
    // The settlement's success is counted just after its commit, which the test saw.
    for _ in 0..50 {
        if metric(&scraped, "neighborbid_jobs_total", &settled).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        scraped = scrape(&url).await;
    }
    assert_eq!(metric(&scraped, "neighborbid_jobs_total", &settled), Some(1.0), "{scraped}");
    assert_eq!(metric(&scraped, "neighborbid_job_duration_seconds_count", &settled), Some(1.0));
    let abandoned = [("queue", "email"), ("outcome", "abandoned")];
    assert!(metric(&scraped, "neighborbid_jobs_total", &abandoned) >= Some(1.0), "{scraped}");
    assert_eq!(metric(&scraped, "neighborbid_settlement_lag_seconds_count", &[]), Some(1.0));
    drop(worker);
    platform.stop().await;
}
