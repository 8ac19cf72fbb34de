//! `Platform`: the real worker pool and schedulers, in-process or as processes, over a fresh
//! database from `#[sqlx::test]`, the machine's Redis (queues under a prefix of the test's own) and
//! an SMTP sink started by the test.

use std::time::Duration;

use neighborbid_scheduler::SchedulerOptions;
use neighborbid_shared::auctions::bidding;
use neighborbid_shared::auctions::new::NewAuctionRequest;
use neighborbid_shared::auctions::{Condition, ShippingPayer, store};
use neighborbid_shared::config::Config;
use neighborbid_shared::ids::{AuctionId, CategoryId, RegionId, UserId};
use neighborbid_shared::jobs::queues::{QUEUES, Queue};
use neighborbid_shared::ledger::wallet;
use neighborbid_shared::money::Krw;
use neighborbid_worker::WorkerOptions;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::oneshot;

use neighborbid_testkit::db::insert_user;
use neighborbid_testkit::smtp::{Inbox, spawn_smtp_sink};

pub struct Platform {
    pub pool: PgPool,
    /// This platform's photo store (`MEDIA_DIR`).
    pub media_dir: std::path::PathBuf,
    pub prefix: String,
    pub smtp_port: u16,
    pub inbox: Inbox,
    pub redis: ConnectionManager,
    stops: Vec<oneshot::Sender<()>>,
    running: Vec<tokio::task::JoinHandle<()>>,
}

/// Sweeps every 2 s for work overdue by 10 s, so tests of lost work finish in seconds.
pub fn fast_sweeps() -> SchedulerOptions {
    let defaults = SchedulerOptions::new(Config::from_lookup(|_| None).unwrap().retention);
    SchedulerOptions { sweep_schedule: "*/2 * * * * *".into(), sweep_grace_secs: 10, ..defaults }
}

impl Platform {
    pub async fn new(pool: PgPool) -> Self {
        let (smtp_port, inbox) = spawn_smtp_sink().await.unwrap();
        Self::with_sink(pool, smtp_port, inbox).await
    }

    pub async fn with_sink(pool: PgPool, smtp_port: u16, inbox: Inbox) -> Self {
        neighborbid_shared::telemetry::install_crypto_provider();
        let prefix = format!("test-{:016x}", rand::random::<u64>());
        let redis = redis::Client::open(redis_url()).unwrap().get_connection_manager().await.unwrap();
        let media_dir = std::env::temp_dir().join(format!("neighborbid-{prefix}-media"));
        Self { pool, media_dir, prefix, smtp_port, inbox, redis, stops: Vec::new(), running: Vec::new() }
    }

    /// The settings a worker or scheduler of this platform runs with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REDIS_URL", redis_url()),
            ("QUEUE_PREFIX", self.prefix.clone()),
            ("MAIL_URL", format!("smtp://127.0.0.1:{}", self.smtp_port)),
            ("MAIL_FROM", "NeighborBid <no-reply@neighborbid.test>".into()),
            ("PLATFORM_FEE_BPS", "250".into()),
            ("MEDIA_DIR", self.media_dir.to_string_lossy().into_owned()),
        ]
    }

    pub fn config(&self) -> Config {
        let env = self.env();
        Config::from_lookup(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap()
    }

    /// Starts an in-process worker serving every queue.
    pub fn start_worker(&mut self) {
        let (stop, stopped) = oneshot::channel::<()>();
        let (config, pool, redis) = (self.config(), self.pool.clone(), self.redis.clone());
        let options = WorkerOptions { queues: QUEUES.to_vec(), concurrency: 8 };
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            neighborbid_worker::run(&config, pool, redis, options, shutdown)
                .await
                .expect("the worker runs until stopped");
        });
        self.stops.push(stop);
    }

    /// Starts an in-process scheduler replica.
    pub fn start_scheduler(&mut self, options: SchedulerOptions) {
        let (stop, stopped) = oneshot::channel::<()>();
        let (pool, redis, prefix) = (self.pool.clone(), self.redis.clone(), self.prefix.clone());
        self.running.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            neighborbid_scheduler::run(pool, redis, prefix, options, shutdown).await.expect("the scheduler runs");
        }));
        self.stops.push(stop);
    }

    /// Users with 10,000,000 KRW each; returns their ids.
    pub async fn funded_users(&self, prefix: &str, n: usize) -> Vec<UserId> {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = insert_user(&mut conn, &format!("{prefix}{i}")).await.unwrap();
            wallet::deposit(&mut conn, id, Krw::parse(10_000_000, "amount").unwrap()).await.unwrap();
            ids.push(id);
        }
        ids
    }

    /// `n` auctions by `sellers` with a few bids each from `bidders`, all ending `ends_in` from now.
    pub async fn auctions_with_bids(
        &self,
        n: usize,
        sellers: &[UserId],
        bidders: &[UserId],
        ends_in: Duration,
    ) -> Vec<AuctionId> {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut ids = Vec::with_capacity(n);
        let now = chrono::Utc::now();
        for i in 0..n {
            let request = NewAuctionRequest {
                title: format!("Item {i}"),
                description: None,
                category_id: CategoryId(1),
                region_id: Some(RegionId(111)),
                national: false,
                condition: Condition::Good,
                shipping_payer: ShippingPayer::Buyer,
                start_price: 10_000,
                buy_now_price: None,
                reserve_price: None,
                bid_increment: Some(1_000),
                starts_at: None,
                ends_at: now + chrono::Duration::hours(1),
                soft_close_seconds: Some(0),
            };
            let auction =
                store::create(&mut conn, sellers[i % sellers.len()], &request.validate(None, now).unwrap(), i64::MAX)
                    .await
                    .unwrap();
            for round in 0..3 {
                let bidder = bidders[(i + round) % bidders.len()];
                let amount = Krw::parse(10_000 + 1_000 * round as i64, "amount").unwrap();
                bidding::place_bid(&self.pool, auction.id, bidder, amount, None, None).await.unwrap();
            }
            ids.push(auction.id);
        }
        sqlx::query(
            "UPDATE auctions SET starts_at = now() - interval '1 minute', ends_at = now() + $2 WHERE id = ANY($1)",
        )
        .bind(&ids)
        .bind(ends_in)
        .execute(&mut *conn)
        .await
        .unwrap();
        ids
    }

    /// Polls `done` (a SQL query returning a boolean) until it is true; panics after `limit`.
    pub async fn wait_for(&self, what: &str, done: &'static str, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            let ok: bool = sqlx::query_scalar(done).fetch_one(&self.pool).await.unwrap();
            if ok {
                return;
            }
            assert!(started.elapsed() < limit, "gave up waiting for {what} after {limit:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Deletes every key of this platform's queues: what a Redis flush does to them.
    pub async fn flush_queues(&mut self) {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query_async(&mut self.redis).await.unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query_async::<()>(&mut self.redis).await.unwrap();
        }
    }

    pub async fn depth(&mut self, queue: Queue) -> neighborbid_shared::jobs::queues::Depth {
        neighborbid_shared::jobs::queues::depth(&mut self.redis, &self.prefix, queue).await.unwrap()
    }

    pub async fn assert_audit_clean(&self) {
        let mut conn = self.pool.acquire().await.unwrap();
        let report = neighborbid_shared::ledger::audit::audit(&mut conn).await.unwrap();
        assert!(report.ok, "audit found violations: {:#?}", report.violations);
    }
}

impl Platform {
    /// Stops every worker and scheduler and waits until they have let go of the database, which the
    /// test harness drops next.
    pub async fn stop(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.running.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

/// A `neighborbid-worker` process, killed when dropped so a failing test leaves none behind.
pub struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    pub fn start(platform: &Platform, database_url: &str) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_neighborbid-worker"))
            .args(["--concurrency", "2"])
            .envs(platform.env())
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the worker binary starts");
        Self(child)
    }

    /// SIGKILL: no shutdown, in-flight jobs abandoned.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
