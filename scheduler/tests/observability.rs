//! The real `neighborbid-scheduler` binary: its `/metrics` after it closed an auction and relayed
//! the follow-up, and a failed closing pass reaching Sentry when the database goes away.

use std::process::Command;
use std::time::{Duration, Instant};

use neighborbid_testkit::db::{database_url, insert_user};
use neighborbid_testkit::process::{Process, metric, scrape};
use neighborbid_testkit::sentry::{SentrySink, message};
use sqlx::{Connection, PgConnection, PgPool};

/// Scrapes `url` until `done` holds for the scrape; panics after 30 s with the last one.
async fn scrape_until(url: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let scraped = scrape(url).await;
        if done(&scraped) {
            return scraped;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no {what} after 30 s:\n{scraped}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_scheduler_binary_measures_closing_and_relaying_and_reports_a_failed_pass(pool: PgPool) {
    let seller = insert_user(&mut pool.acquire().await.unwrap(), "seller").await.unwrap();
    sqlx::query(
        "INSERT INTO auctions (seller_id, title, description, category_id, region_id, national, condition, \
             shipping_payer, start_price, current_price, status, starts_at, ends_at, soft_close_seconds) \
         VALUES ($1, 'Lamp', '', 8, 111, false, 'good', 'buyer', 1000, 1000, 'active', now() - interval '1 minute', \
                 now() - interval '1 second', 0)",
    )
    .bind(seller)
    .execute(&pool)
    .await
    .unwrap();
    let sentry = SentrySink::start().await.unwrap();
    let url = database_url(&pool).await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_neighborbid-scheduler"));
    command
        .env("DATABASE_URL", &url)
        .env("REDIS_URL", std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()))
        .env("QUEUE_PREFIX", format!("test-{:016x}", rand::random::<u64>()))
        .env("SENTRY_DSN", &sentry.dsn)
        .env("METRICS_ADDR", "127.0.0.1:0");
    let mut scheduler = Process::start(command);
    let addr =
        scheduler.wait_for_log("serving metrics", Duration::from_secs(60))["metrics.addr"].as_str().unwrap().to_owned();
    let metrics_url = format!("http://{addr}/metrics");

    // Unsold: the seller's email is recorded, relayed to the email queue (nothing serves it in this
    // test, so it waits there), and the queue and outbox are measured after that.
    let email_jobs = |s: &str, state| metric(s, "neighborbid_queue_jobs", &[("queue", "email"), ("state", state)]);
    let scraped = scrape_until(&metrics_url, "relayed email", |s| {
        metric(s, "neighborbid_relayed_jobs_total", &[("queue", "email")]) == Some(1.0)
            && metric(s, "neighborbid_outbox_backlog", &[]) == Some(0.0)
            && email_jobs(s, "scheduled").zip(email_jobs(s, "active")).map(|(s, a)| s + a) == Some(1.0)
    })
    .await;
    assert_eq!(metric(&scraped, "neighborbid_auctions_ended_total", &[("outcome", "unsold")]), Some(1.0));
    assert_eq!(metric(&scraped, "neighborbid_close_lag_seconds_count", &[]), Some(1.0));
    assert!(metric(&scraped, "neighborbid_close_lag_seconds_sum", &[]) >= Some(1.0), "it ended a second before");
    assert_eq!(metric(&scraped, "neighborbid_closes_per_tick_sum", &[]), Some(1.0));
    assert!(metric(&scraped, "neighborbid_closes_per_tick_count", &[]) >= Some(1.0));
    assert_eq!(metric(&scraped, "neighborbid_relay_lag_seconds", &[]), Some(0.0));
    assert_eq!(email_jobs(&scraped, "dead"), Some(0.0));

    // The database goes away: it refuses connections and drops the ones it had.
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.unwrap();
    let (server, _) = url.rsplit_once('/').unwrap();
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.unwrap();
    let outage = [
        format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ];
    for statement in &outage {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str())).execute(&mut admin).await.unwrap();
    }
    let event = sentry
        .wait_for("a failed closing pass", Duration::from_secs(60), |e| {
            e["server_name"] == "neighborbid-scheduler" && message(e) == "closing pass failed"
        })
        .await;
    let restore = format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true");
    sqlx::raw_sql(sqlx::AssertSqlSafe(restore.as_str())).execute(&mut admin).await.unwrap();
    assert!(event["contexts"].to_string().contains("error"), "the cause travels with it: {event}");
    let scraped = scrape(&metrics_url).await;
    assert!(metric(&scraped, "neighborbid_scheduler_failures_total", &[("task", "close")]) >= Some(1.0));
    drop(scheduler);
}
