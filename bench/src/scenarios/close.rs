//! `close`: 1,000 auctions, each led by one bid, all ending at the same second; how fast the
//! scheduler closes them, the workers settle them and the emails go out.
//!
//! Everything is seeded with SQL in one transaction, then PostgreSQL is polled every 50 ms. Times are
//! seconds after the shared `ends_at`, on the database's clock (the one the scheduler uses).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::sql_seed::{self, AuctionState};
use crate::stats::{Check, all_pass, round};
use neighborbid_testkit::smtp::{Inbox, spawn_smtp_sink_at};

const AUCTIONS: i64 = 1_000;
const BIDDERS: i64 = 50;
const DEPOSIT: i64 = 10_000_000;
const POLL: Duration = Duration::from_millis(50);
/// Seconds after `ends_at` to give up.
const GIVE_UP_SECS: f64 = 120.0;
const CLOSE_TARGET_SECS: f64 = 2.0;
const SETTLE_TARGET_SECS: f64 = 10.0;
const EMAIL_TARGET_SECS: f64 = 10.0;

/// One look at the seeded auctions and their notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
struct Snapshot {
    active: i64,
    closed: i64,
    settled: i64,
    notifications: i64,
    sent: i64,
}

impl Snapshot {
    fn emailed(&self) -> bool {
        self.settled == AUCTIONS && self.notifications > 0 && self.sent == self.notifications
    }
}

/// The seeded data.
struct Seeded {
    run_id: String,
    auction_ids: Vec<i64>,
    ends_at: DateTime<Utc>,
    committed_at: DateTime<Utc>,
}

/// Runs the scenario: listens for SMTP on `smtp_listen`, seeds, and watches the auctions end.
pub async fn run(database_url: &str, smtp_listen: &str) -> anyhow::Result<Value> {
    let pool = sql_seed::connect(database_url).await?;
    let run_id = sql_seed::run_id();
    let (_, sink) = spawn_smtp_sink_at(smtp_listen, Default::default())
        .await
        .with_context(|| format!("failed to listen for SMTP on {smtp_listen} (port in use?)"))?;
    let marker = format!("bench_{run_id}_");
    eprintln!("SMTP sink listening on {smtp_listen}; seeding run {run_id}");
    let seeded = seed(&pool, run_id).await?;
    let lead = (seeded.ends_at - seeded.committed_at).as_seconds_f64();
    eprintln!("seeded {AUCTIONS} auctions ending at {} ({lead:.3} s after commit)", seeded.ends_at);
    if lead <= 0.0 {
        eprintln!("warning: seeding committed after ends_at; closing times include the seeding delay");
    }

    let watched = watch(&pool, &seeded, &sink).await?;
    let precise = from_rows(&pool, &seeded).await?;
    pool.close().await;

    let checks = vec![
        Check::at_most("closed_secs", CLOSE_TARGET_SECS, watched.closed_secs.unwrap_or(f64::INFINITY)),
        Check::at_most("settled_secs", SETTLE_TARGET_SECS, watched.settled_secs.unwrap_or(f64::INFINITY)),
        Check::at_most("emailed_secs", EMAIL_TARGET_SECS, watched.emailed_secs.unwrap_or(f64::INFINITY)),
    ];
    let last = watched.last;
    Ok(json!({
        "scenario": "close",
        "run_id": seeded.run_id,
        "auctions": AUCTIONS,
        "bidders": BIDDERS,
        "ends_at": seeded.ends_at.to_rfc3339(),
        "committed_secs_before_ends_at": round(lead),
        "poll_interval_ms": POLL.as_millis() as u64,
        "timed_out": watched.timed_out,
        "gave_up_after_secs": watched.timed_out.then_some(GIVE_UP_SECS),
        "closed_secs": watched.closed_secs,
        "settled_secs": watched.settled_secs,
        "emailed_secs": watched.emailed_secs,
        "from_rows": precise,
        "final": {
            "active": last.active,
            "closed": last.closed,
            "settled": last.settled,
            "other_status": AUCTIONS - last.active - last.closed - last.settled,
            "notifications": last.notifications,
            "notifications_sent": last.sent,
        },
        "smtp_sink": {
            "listen": smtp_listen,
            "messages_when_emailed": watched.sink_when_emailed,
            "messages": sink.lock().expect("inbox lock").len(),
            "messages_to_this_run": sink.lock().expect("inbox lock").iter().filter(|m| m.to.iter().any(|to| to.contains(&marker))).count(),
        },
        "checks": checks,
        "pass": all_pass(&checks),
    }))
}

/// Seeds sellers, funded bidders and the led auctions in one transaction.
async fn seed(pool: &PgPool, run_id: String) -> anyhow::Result<Seeded> {
    let mut tx = pool.begin().await?;
    let seller = sql_seed::create_users(&mut tx, &format!("bench_{run_id}_s"), 1, 0).await?[0];
    let bidders = sql_seed::create_users(&mut tx, &format!("bench_{run_id}_b"), BIDDERS, DEPOSIT).await?;
    let ends_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT date_trunc('second', clock_timestamp() + interval '5 seconds')")
            .fetch_one(&mut *tx)
            .await?;
    let title = format!("bench close {run_id}");
    let auction_ids =
        sql_seed::create_auctions(&mut tx, seller, AUCTIONS, &title, AuctionState::ActiveUntil(ends_at)).await?;
    let leaders: Vec<i64> = (0..auction_ids.len()).map(|i| bidders[i % bidders.len()]).collect();
    sqlx::query("INSERT INTO bids (auction_id, bidder_id, amount) SELECT a, u, 1000 FROM unnest($1::bigint[], $2::bigint[]) AS p(a, u)")
        .bind(&auction_ids)
        .bind(&leaders)
        .execute(&mut *tx)
        .await
        .context("failed to insert bids")?;
    let holds = sql_seed::open_holds(&mut tx, &leaders, &auction_ids).await?;
    // The leader, its hold and the price, plus the `bid_placed` event the bid would have appended.
    sqlx::query(
        "WITH led AS ( \
             UPDATE auctions a SET leader_id = h.user_id, leader_hold_id = h.id, current_price = h.amount, \
                                   bid_count = 1, seq = a.seq + 1 \
             FROM holds h WHERE h.id = ANY($1) AND a.id = h.auction_id \
             RETURNING a.id, a.seq, a.ends_at, a.bid_increment) \
         INSERT INTO auction_events (auction_id, seq, type, data) \
         SELECT led.id, led.seq, 'bid_placed', jsonb_build_object( \
                    'bid_id', b.id, 'amount', b.amount, \
                    'bidder', jsonb_build_object('id', u.id, 'username', u.username), \
                    'buy_now', false, 'bid_count', 1, 'min_next_bid', b.amount + led.bid_increment, \
                    'ends_at', led.ends_at) \
         FROM led JOIN bids b ON b.auction_id = led.id JOIN users u ON u.id = b.bidder_id",
    )
    .bind(&holds)
    .execute(&mut *tx)
    .await
    .context("failed to set the leaders")?;
    tx.commit().await.context("failed to commit the seed")?;
    let committed_at = sql_seed::db_now(&mut *pool.acquire().await?).await?;
    Ok(Seeded { run_id, auction_ids, ends_at, committed_at })
}

/// When each milestone was first seen, in seconds after `ends_at`.
struct Watched {
    closed_secs: Option<f64>,
    settled_secs: Option<f64>,
    emailed_secs: Option<f64>,
    sink_when_emailed: Option<u64>,
    timed_out: bool,
    last: Snapshot,
}

/// Polls every [`POLL`] until every email is sent or [`GIVE_UP_SECS`] after `ends_at`.
async fn watch(pool: &PgPool, seeded: &Seeded, sink: &Inbox) -> anyhow::Result<Watched> {
    let mut w = Watched {
        closed_secs: None,
        settled_secs: None,
        emailed_secs: None,
        sink_when_emailed: None,
        timed_out: false,
        last: Snapshot { active: AUCTIONS, closed: 0, settled: 0, notifications: 0, sent: 0 },
    };
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_report = f64::NEG_INFINITY;
    loop {
        ticker.tick().await;
        let (now, snap) = snapshot(pool, &seeded.auction_ids).await?;
        let secs = round((now - seeded.ends_at).as_seconds_f64());
        if secs >= 0.0 {
            if w.closed_secs.is_none() && snap.active == 0 {
                w.closed_secs = Some(secs);
                eprintln!("{secs:>7.3} s: all {AUCTIONS} auctions out of active");
            }
            if w.settled_secs.is_none() && snap.settled == AUCTIONS {
                w.settled_secs = Some(secs);
                eprintln!("{secs:>7.3} s: all {AUCTIONS} auctions settled");
            }
            if snap.emailed() {
                w.emailed_secs = Some(secs);
                w.sink_when_emailed = Some(sink.lock().expect("inbox lock").len() as u64);
                eprintln!("{secs:>7.3} s: all {} notifications sent", snap.notifications);
                w.last = snap;
                return Ok(w);
            }
        }
        if snap != w.last && secs - last_report >= 1.0 {
            last_report = secs;
            eprintln!(
                "{secs:>7.3} s: active {} closed {} settled {} notifications {}/{} sink {}",
                snap.active,
                snap.closed,
                snap.settled,
                snap.sent,
                snap.notifications,
                sink.lock().expect("inbox lock").len()
            );
        }
        w.last = snap;
        if secs > GIVE_UP_SECS {
            eprintln!("giving up {GIVE_UP_SECS} s after ends_at");
            w.timed_out = true;
            return Ok(w);
        }
    }
}

async fn snapshot(pool: &PgPool, ids: &[i64]) -> anyhow::Result<(DateTime<Utc>, Snapshot)> {
    let now = sql_seed::db_now(&mut *pool.acquire().await?).await?;
    let snap = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'active') AS active, \
                count(*) FILTER (WHERE status = 'closed') AS closed, \
                count(*) FILTER (WHERE status = 'settled') AS settled, \
                (SELECT count(*) FROM notifications WHERE auction_id = ANY($1)) AS notifications, \
                (SELECT count(*) FROM notifications WHERE auction_id = ANY($1) AND sent_at IS NOT NULL) AS sent \
         FROM auctions WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(pool)
    .await
    .context("failed to poll the auctions")?;
    Ok((now, snap))
}

/// The rows' own timestamps, in seconds after `ends_at` (no poll granularity): the last `ended_at`
/// (the closing transaction's `now()`, i.e. when it *started*; the auctions leave `active` for
/// readers at its commit, which `closed_secs` observes), the last `auction_settled` event and the
/// last `sent_at`.
async fn from_rows(pool: &PgPool, seeded: &Seeded) -> anyhow::Result<Value> {
    let (ended, settled, sent, failed): (Option<f64>, Option<f64>, Option<f64>, i64) = sqlx::query_as(
        "SELECT (SELECT extract(epoch FROM max(ended_at) - $2)::float8 FROM auctions WHERE id = ANY($1)), \
                (SELECT extract(epoch FROM max(at) - $2)::float8 FROM auction_events \
                 WHERE auction_id = ANY($1) AND type = 'auction_settled'), \
                (SELECT extract(epoch FROM max(sent_at) - $2)::float8 FROM notifications WHERE auction_id = ANY($1)), \
                (SELECT count(*) FROM notifications WHERE auction_id = ANY($1) AND last_error IS NOT NULL)",
    )
    .bind(&seeded.auction_ids)
    .bind(seeded.ends_at)
    .fetch_one(pool)
    .await
    .context("failed to read the final timestamps")?;
    Ok(json!({
        "last_close_started_secs": ended.map(round),
        "last_settled_event_secs": settled.map(round),
        "last_sent_at_secs": sent.map(round),
        "notifications_with_errors": failed,
    }))
}
