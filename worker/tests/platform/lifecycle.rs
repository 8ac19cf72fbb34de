use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use neighborbid_shared::ids::{AuctionId, HoldId};
use neighborbid_shared::jobs::queues::{self, Queue};
use neighborbid_shared::jobs::release_hold::ReleaseHold;
use neighborbid_shared::outbox;
use sqlx::PgPool;

use crate::harness::{Platform, WorkerProcess, fast_sweeps};
use neighborbid_testkit::db::database_url;
use neighborbid_testkit::smtp::spawn_smtp_sink_with;

const EVERYTHING_DONE: &str = "SELECT NOT EXISTS (SELECT 1 FROM auctions WHERE status NOT IN ('settled', 'unsold', 'cancelled')) \
     AND NOT EXISTS (SELECT 1 FROM holds h JOIN auctions a ON a.id = h.auction_id WHERE h.status = 'open') \
     AND NOT EXISTS (SELECT 1 FROM notifications WHERE sent_at IS NULL)";

/// Every auction ended once and paid once, every loser released, one email per (kind, auction,
/// recipient) received, ledger exact. `resent_at_most` copies of an email may arrive again: only a
/// worker killed between the SMTP exchange and recording it causes that, and the copy carries the
/// same Message-ID so mail systems drop it.
async fn assert_settled_exactly_once(platform: &Platform, auctions: &[AuctionId], resent_at_most: usize) {
    let pool = &platform.pool;
    let settled: i64 = sqlx::query_scalar("SELECT count(*) FROM auctions WHERE id = ANY($1) AND status = 'settled'")
        .bind(auctions)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(settled, auctions.len() as i64);
    let captures_per_auction: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM transfers WHERE kind = 'capture' GROUP BY auction_id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(captures_per_auction.len(), auctions.len());
    assert!(captures_per_auction.iter().all(|c| *c == 1), "an auction was paid twice");
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT type, count(*) FROM auction_events WHERE type IN ('auction_closed', 'auction_settled') GROUP BY type",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (kind, count) in events {
        assert_eq!(count, auctions.len() as i64, "{kind} events");
    }
    let seller_income: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(amount), 0)::bigint FROM transfers WHERE kind IN ('capture', 'fee')")
            .fetch_one(pool)
            .await
            .unwrap();
    let prices: i64 = sqlx::query_scalar("SELECT sum(current_price)::bigint FROM auctions WHERE id = ANY($1)")
        .bind(auctions)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(seller_income, prices, "every winner's money reached the seller exactly once");
    let notifications: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications").fetch_one(pool).await.unwrap();
    let won_and_sold: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE kind IN ('won', 'sold')")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(won_and_sold, 2 * auctions.len() as i64);
    let inbox = platform.inbox.lock().unwrap().clone();
    let message_ids: HashSet<String> = inbox
        .iter()
        .filter_map(|m| m.data.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).map(str::to_owned))
        .collect();
    assert_eq!(message_ids.len() as i64, notifications, "every notification's email arrived");
    let resent = inbox.len() - message_ids.len();
    assert!(resent <= resent_at_most, "{resent} emails arrived twice");
    platform.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn three_schedulers_and_two_workers_end_300_auctions_exactly_once(pool: PgPool) {
    let mut platform = Platform::new(pool).await;
    let sellers = platform.funded_users("seller", 5).await;
    let bidders = platform.funded_users("bidder", 20).await;
    let auctions = platform.auctions_with_bids(300, &sellers, &bidders, Duration::from_secs(3)).await;
    for _ in 0..3 {
        platform.start_scheduler(fast_sweeps());
    }
    platform.start_worker();
    platform.start_worker();
    platform.wait_for("every auction settled and emailed", EVERYTHING_DONE, Duration::from_secs(90)).await;
    assert_settled_exactly_once(&platform, &auctions, 0).await;
    let html_and_text =
        platform.inbox.lock().unwrap().iter().all(|m| m.data.contains("text/plain") && m.data.contains("text/html"));
    assert!(html_and_text, "every email has a text and an HTML body");
    platform.stop().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn work_lost_with_the_queues_is_re_derived_and_completes_once(pool: PgPool) {
    let mut platform = Platform::new(pool).await;
    let sellers = platform.funded_users("seller", 3).await;
    let bidders = platform.funded_users("bidder", 10).await;
    let auctions = platform.auctions_with_bids(60, &sellers, &bidders, Duration::from_secs(2)).await;
    platform.start_scheduler(fast_sweeps());
    // The schedulers relay the closings to the queues, but no worker takes them: then Redis loses them.
    platform
        .wait_for(
            "every settlement relayed",
            "SELECT count(*) = 60 FROM outbox WHERE kind = 'settle_auction' AND relayed_at IS NOT NULL",
            Duration::from_secs(30),
        )
        .await;
    platform.flush_queues().await;
    assert_eq!(platform.depth(Queue::Settlement).await.backlog(), 0);
    platform.start_worker();
    platform.wait_for("every auction settled and emailed", EVERYTHING_DONE, Duration::from_secs(90)).await;
    assert_settled_exactly_once(&platform, &auctions, 0).await;
    platform.stop().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_burst_of_20000_follow_ups_is_processed_with_the_backlog_bounded(pool: PgPool) {
    let mut platform = Platform::new(pool).await;
    // 20,000 open holds (200 bidders × 100 unsold auctions) with their ledger, made in SQL.
    sqlx::raw_sql(include_str!("burst.sql")).execute(&platform.pool).await.unwrap();
    let holds: i64 =
        sqlx::query_scalar("SELECT count(*) FROM holds WHERE status = 'open'").fetch_one(&platform.pool).await.unwrap();
    assert_eq!(holds, 20_000);
    platform.assert_audit_clean().await;
    {
        let mut tx = platform.pool.begin().await.unwrap();
        let ids: Vec<HoldId> = sqlx::query_scalar("SELECT id FROM holds").fetch_all(&mut *tx).await.unwrap();
        for hold_id in ids {
            outbox::record(&mut tx, &ReleaseHold { hold_id }).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    platform.start_scheduler(fast_sweeps());
    platform.start_worker();
    let mut largest_backlog = 0;
    let started = std::time::Instant::now();
    loop {
        largest_backlog = largest_backlog.max(platform.depth(Queue::Release).await.backlog());
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM holds WHERE status = 'open'")
            .fetch_one(&platform.pool)
            .await
            .unwrap();
        if open == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{open} holds still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(largest_backlog <= neighborbid_shared::jobs::relay::MAX_BACKLOG, "backlog reached {largest_backlog}");
    let released: i64 = sqlx::query_scalar("SELECT count(*) FROM transfers WHERE kind = 'release'")
        .fetch_one(&platform.pool)
        .await
        .unwrap();
    assert_eq!(released, 20_000);
    platform.assert_audit_clean().await;
    platform.stop().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_refused_email_goes_to_the_dead_set_and_an_operator_can_retry_it(pool: PgPool) {
    let refuse = Arc::new(AtomicBool::new(true));
    let (port, inbox) = spawn_smtp_sink_with(refuse.clone()).await.unwrap();
    let mut platform = Platform::with_sink(pool, port, inbox).await;
    let sellers = platform.funded_users("seller", 1).await;
    let bidders = platform.funded_users("bidder", 3).await;
    platform.auctions_with_bids(1, &sellers, &bidders, Duration::from_secs(1)).await;
    platform.start_scheduler(fast_sweeps());
    platform.start_worker();
    let started = std::time::Instant::now();
    let dead = loop {
        let dead = queues::dead_jobs(&mut platform.redis, &platform.prefix, Queue::Email, usize::MAX).await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no email job died");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(dead[0].error.as_deref().unwrap_or("").contains("550"), "{:?}", dead[0]);
    assert!(platform.inbox.lock().unwrap().is_empty());
    // Sweeps every 2 s re-record what is overdue by 10 s: while the email stays refused, they must
    // not pile up a dead job per sweep: one dead entry per stuck email.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let dead = queues::dead_jobs(&mut platform.redis, &platform.prefix, Queue::Email, usize::MAX).await.unwrap();
    let mut payloads: Vec<_> = dead.iter().map(|job| job.payload.clone()).collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len(), dead.len(), "one dead job per email: {dead:#?}");

    refuse.store(false, Ordering::SeqCst);
    for job in &dead {
        assert_eq!(
            queues::retry_dead(&mut platform.redis, &platform.prefix, Queue::Email, &job.id).await.unwrap(),
            queues::Retry::Retried
        );
    }
    let started = std::time::Instant::now();
    while platform.inbox.lock().unwrap().len() < dead.len() {
        assert!(started.elapsed() < Duration::from_secs(60), "retried emails were not sent");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    platform.stop().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_worker_killed_mid_settlement_leaves_nothing_undone_or_done_twice(pool: PgPool) {
    let mut platform = Platform::new(pool).await;
    let url = database_url(&platform.pool).await;
    let sellers = platform.funded_users("seller", 5).await;
    let bidders = platform.funded_users("bidder", 20).await;
    let auctions = platform.auctions_with_bids(200, &sellers, &bidders, Duration::from_secs(2)).await;
    platform.start_scheduler(fast_sweeps());
    let mut doomed = WorkerProcess::start(&platform, &url);
    platform
        .wait_for(
            "the first settlements",
            "SELECT count(*) >= 5 FROM auctions WHERE status = 'settled'",
            Duration::from_secs(60),
        )
        .await;
    doomed.kill();
    let settled_at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM auctions WHERE status = 'settled'")
        .fetch_one(&platform.pool)
        .await
        .unwrap();
    assert!(settled_at_kill < 200, "the worker finished before it could be killed");
    let successor = WorkerProcess::start(&platform, &url);
    platform.wait_for("every auction settled and emailed", EVERYTHING_DONE, Duration::from_secs(120)).await;
    drop(successor);
    // The killed worker was sending at most one batch of emails, whose marks it never wrote.
    assert_settled_exactly_once(&platform, &auctions, neighborbid_shared::jobs::send_email::MAX_BATCH).await;
    platform.stop().await;
}

/// The same follow-up recorded again right after its job finished must run again, not wait for the
/// sweep: alice's hold leads when its first release runs (she came back before it ran), and is
/// outbid again a moment later. The sweep is off here, so only the relay can release it.
#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_follow_up_recorded_again_just_after_its_job_finished_runs_again(pool: PgPool) {
    let mut platform = Platform::new(pool).await;
    let users = platform.funded_users("user", 3).await;
    let (seller, alice, bob) = (users[0], users[1], users[2]);
    // Alice 10,000, bob 11,000, alice 12,000 (topping up her hold, whose release is recorded).
    let auction = platform.auctions_with_bids(1, &[seller], &[alice, bob], Duration::from_secs(3600)).await[0];
    let mut no_sweeps = fast_sweeps();
    no_sweeps.sweep_schedule = "0 0 0 1 1 *".into();
    platform.start_scheduler(no_sweeps);
    platform.start_worker();
    // Both recorded releases ran: bob's hold released, alice's found leading (a finished job).
    platform
        .wait_for(
            "the first releases",
            "SELECT count(*) = 1 FROM holds WHERE status = 'released' \
             AND NOT EXISTS (SELECT 1 FROM outbox WHERE relayed_at IS NULL)",
            Duration::from_secs(60),
        )
        .await;
    loop {
        let depth = platform.depth(Queue::Release).await;
        if depth.backlog() + depth.inflight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let amount = neighborbid_shared::money::Krw::parse(13_000, "amount").unwrap();
    neighborbid_shared::auctions::bidding::place_bid(&platform.pool, auction, bob, amount, None, None).await.unwrap();
    platform
        .wait_for(
            "alice's hold to be released",
            "SELECT count(*) = 2 FROM holds WHERE status = 'released'",
            Duration::from_secs(60),
        )
        .await;
    platform.assert_audit_clean().await;
    platform.stop().await;
}
