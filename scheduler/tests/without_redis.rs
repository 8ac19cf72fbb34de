//! The scheduler closes auctions with Redis down: closing needs only PostgreSQL.

use std::time::{Duration, Instant};

use neighborbid_testkit::db::{database_url, insert_user};
use sqlx::PgPool;

/// Killed when dropped, so a failing test leaves no process behind.
struct Scheduler(std::process::Child);

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn auctions_close_while_redis_is_down(pool: PgPool) {
    let seller = insert_user(&mut pool.acquire().await.unwrap(), "seller").await.unwrap();
    let auction: i64 = sqlx::query_scalar(
        "INSERT INTO auctions (seller_id, title, description, category_id, region_id, national, condition, \
             shipping_payer, start_price, current_price, status, starts_at, ends_at, soft_close_seconds) \
         VALUES ($1, 'Lamp', '', 8, 111, false, 'good', 'buyer', 1000, 1000, 'active', now() - interval '1 minute', \
                 now() + interval '1 second', 0) RETURNING id",
    )
    .bind(seller)
    .fetch_one(&pool)
    .await
    .unwrap();
    let _scheduler = Scheduler(
        std::process::Command::new(env!("CARGO_BIN_EXE_neighborbid-scheduler"))
            .env("DATABASE_URL", database_url(&pool).await)
            // Port 1 on loopback refuses connections: Redis is down for the whole test.
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("QUEUE_PREFIX", format!("test-{:016x}", rand::random::<u64>()))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the scheduler binary starts"),
    );
    let started = Instant::now();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM auctions WHERE id = $1")
            .bind(auction)
            .fetch_one(&pool)
            .await
            .unwrap();
        if status == "unsold" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still {status} after 30 s without Redis");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The unsold follow-up waits in the outbox for Redis to return: nothing is lost.
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL").fetch_one(&pool).await.unwrap();
    assert!(waiting >= 1, "the seller's unsold email is recorded for when Redis returns");
}
