//! Holds end exactly once, whatever is retried or replayed: the earlier version paid a seller twice
//! when a closed auction was re-opened and refunded a hold twice when a user was deleted.

use neighborbid_shared::auctions::release::{ReleaseOutcome, Wait, release_outbid_holds};
use neighborbid_shared::ids::{HoldId, UserId};
use neighborbid_shared::jobs::relay::relay_once;
use neighborbid_shared::jobs::release_hold::ReleaseHold;
use neighborbid_shared::ledger::holds::{self, Ended};
use neighborbid_shared::outbox;
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::json;
use sqlx::{Connection, PgPool};

use crate::helpers::{PASSWORD, TestApp, body, release_outbid_hold};

/// An auction with one bid of 20,000 by `minji`; returns (hold id, seller id, minji's token, seller's token).
async fn one_bid(app: &TestApp) -> (HoldId, UserId, String, String) {
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 50_000).await;
    let auction = app.create_auction(&seller, json!({})).await;
    let id = auction["id"].as_i64().unwrap();
    let receipt = body(app.bid(&minji, id, 20_000).await).await;
    assert_eq!(receipt["bid"]["amount"], 20_000);
    let hold_id: HoldId =
        sqlx::query_scalar("SELECT id FROM holds WHERE auction_id = $1").bind(id).fetch_one(&app.pool).await.unwrap();
    (hold_id, UserId(auction["seller"]["id"].as_i64().unwrap()), minji, seller)
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_hold_is_captured_once_and_then_can_neither_be_captured_nor_released(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (hold_id, seller_id, minji, seller) = one_bid(&app).await;
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(holds::capture(&mut conn, hold_id, seller_id, 20_000, 250).await.unwrap(), Ended::Now);
    assert_eq!(holds::capture(&mut conn, hold_id, seller_id, 20_000, 250).await.unwrap(), Ended::Already);
    sqlx::query("UPDATE auctions SET status = 'settled', ended_at = now()").execute(&app.pool).await.unwrap();
    assert_eq!(release_outbid_hold(&mut conn, hold_id).await, ReleaseOutcome::AlreadyEnded);
    assert_eq!(app.wallet(&minji).await, (30_000, 0));
    assert_eq!(app.wallet(&seller).await, (19_500, 0));
    let report = app.assert_audit_clean().await;
    assert_eq!(report.totals.fees, 500);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_hold_is_released_once_however_often_the_refund_is_delivered(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (hold_id, seller_id, minji, _) = one_bid(&app).await;
    sqlx::query("UPDATE auctions SET status = 'cancelled', ended_at = now()").execute(&app.pool).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(release_outbid_hold(&mut conn, hold_id).await, ReleaseOutcome::Released);
    assert_eq!(release_outbid_hold(&mut conn, hold_id).await, ReleaseOutcome::AlreadyEnded);
    assert_eq!(holds::capture(&mut conn, hold_id, seller_id, 20_000, 0).await.unwrap(), Ended::Already);
    assert_eq!(release_outbid_hold(&mut conn, HoldId(hold_id.0 + 1_000)).await, ReleaseOutcome::Missing);
    assert_eq!(app.wallet(&minji).await, (50_000, 0));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_leading_hold_of_a_live_auction_is_never_refunded(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (hold_id, _, minji, _) = one_bid(&app).await;
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(release_outbid_hold(&mut conn, hold_id).await, ReleaseOutcome::StillLeading);
    assert_eq!(app.wallet(&minji).await, (30_000, 20_000));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn concurrent_release_and_capture_of_one_hold_end_it_exactly_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (hold_id, seller_id, _, _) = one_bid(&app).await;
    sqlx::query("UPDATE auctions SET status = 'cancelled', ended_at = now()").execute(&app.pool).await.unwrap();
    let (mut a, mut b) = (app.pool.acquire().await.unwrap(), app.pool.acquire().await.unwrap());
    // Settlement captures under the auction's row lock, taken first, as every bid and release does.
    let settle = async {
        let mut tx = b.begin().await?;
        sqlx::query("SELECT 1 FROM auctions a JOIN holds h ON h.auction_id = a.id WHERE h.id = $1 FOR UPDATE OF a")
            .bind(hold_id)
            .execute(&mut *tx)
            .await?;
        let captured = holds::capture(&mut tx, hold_id, seller_id, 20_000, 0).await?;
        tx.commit().await?;
        Ok::<_, neighborbid_shared::ledger::LedgerError>(captured)
    };
    let (released, captured) = tokio::join!(release_outbid_hold(&mut a, hold_id), settle);
    let captured = captured.unwrap();
    let ended = usize::from(released == ReleaseOutcome::Released) + usize::from(captured == Ended::Now);
    assert_eq!(ended, 1, "{released:?} {captured:?}");
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn releases_delivered_together_are_batched_and_each_hold_ends_as_it_would_alone(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let bidders = app.quick_users("bidder", 6).await;
    let mut auctions = Vec::new();
    for _ in 0..3 {
        auctions.push(app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap());
    }
    for (_, token) in &bidders {
        app.deposit(token, 100_000).await;
    }
    // Bidder 0 wants no outbid emails.
    let off = app.request(Method::PATCH, "/api/v1/me").bearer_auth(&bidders[0].1);
    let off = off.json(&json!({ "email_preferences": { "outbid": false } })).send().await.unwrap();
    assert_eq!(off.status(), 200);
    // Each auction: bidder k bids 10,000 + 1,000 k, so bidder 5 leads and the others were outbid.
    for &auction in &auctions {
        for (k, (_, token)) in bidders.iter().enumerate() {
            assert_eq!(app.bid(token, auction, 10_000 + 1_000 * k as i64).await.status(), 201);
        }
    }
    let holds: Vec<(HoldId, bool)> = sqlx::query_as(
        "SELECT h.id, h.id = a.leader_hold_id FROM holds h JOIN auctions a ON a.id = h.auction_id ORDER BY h.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(holds.len(), 18);
    // Every hold delivered twice at once (at-least-once delivery), and one hold that does not exist.
    let missing = HoldId(holds.last().unwrap().0.0 + 1_000);
    let deliveries = holds.iter().chain(holds.iter()).map(|(id, _)| *id).chain([missing]);
    let outcomes = futures::future::join_all(deliveries.map(|id| {
        let releases = app.jobs.releases.clone();
        async move { (id, releases.release(id).await.unwrap()) }
    }))
    .await;
    for (hold, leads) in &holds {
        let mut seen: Vec<ReleaseOutcome> =
            outcomes.iter().filter(|(id, _)| id == hold).map(|(_, outcome)| *outcome).collect();
        seen.sort_by_key(|outcome| format!("{outcome:?}"));
        let expected = if *leads {
            vec![ReleaseOutcome::StillLeading, ReleaseOutcome::StillLeading]
        } else {
            vec![ReleaseOutcome::AlreadyEnded, ReleaseOutcome::Released]
        };
        assert_eq!(seen, expected, "hold {hold}");
    }
    assert!(outcomes.contains(&(missing, ReleaseOutcome::Missing)));
    // Only bidder 5's three leading bids are still held.
    for (k, (_, token)) in bidders.iter().enumerate() {
        let held = if k == 5 { 3 * 15_000 } else { 0 };
        assert_eq!(app.wallet(token).await, (100_000 - held, held), "bidder {k}");
    }
    // Each outbid bidder is told once per auction, and their event stream stays numbered 1, 2, 3…
    // however many of their notifications one batch made.
    for (k, (id, token)) in bidders.iter().enumerate() {
        let feed = body(app.get_as(token, "/api/v1/me/notifications").await).await;
        let outbid = feed["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "outbid").count();
        assert_eq!(outbid, if k == 5 { 0 } else { 3 }, "bidder {k}: {feed}");
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM user_events WHERE user_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "bidder {k}");
        // Each notification has its event, in the order the notifications were made, and its email
        // unless the bidder turned outbid emails off.
        let made: Vec<(i64, bool)> = sqlx::query_as(
            "SELECT n.id, EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'send_email' \
                                  AND (o.payload ->> 'notification_id')::bigint = n.id) \
             FROM notifications n WHERE n.recipient_id = $1 AND n.kind = 'outbid' ORDER BY n.id",
        )
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let told: Vec<i64> = sqlx::query_scalar(
            "SELECT (data ->> 'id')::bigint FROM user_events WHERE user_id = $1 AND type = 'notification' ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert_eq!(told, made.iter().map(|(n, _)| *n).collect::<Vec<_>>(), "bidder {k}");
        assert!(made.iter().all(|(_, emailed)| *emailed == (k != 0)), "bidder {k}: {made:?}");
    }
    app.assert_audit_clean().await;
}

/// Two auctions, each with an outbid hold; returns (auction ids, their outbid holds' ids), in the
/// same order, and the outbid bidder's token.
async fn two_outbid_holds(app: &TestApp) -> ([i64; 2], [HoldId; 2], String) {
    let seller = app.user_token("seller").await;
    let (minji, junho) = (app.user_token("minji").await, app.user_token("junho").await);
    app.deposit(&minji, 100_000).await;
    app.deposit(&junho, 100_000).await;
    let mut auctions = [0; 2];
    let mut outbid = [HoldId(0); 2];
    for k in 0..2 {
        auctions[k] = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
        assert_eq!(app.bid(&minji, auctions[k], 10_000).await.status(), 201);
        assert_eq!(app.bid(&junho, auctions[k], 12_000).await.status(), 201);
        outbid[k] = sqlx::query_scalar(
            "SELECT h.id FROM holds h JOIN auctions a ON a.id = h.auction_id \
             WHERE h.auction_id = $1 AND h.id <> a.leader_hold_id",
        )
        .bind(auctions[k])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    }
    (auctions, outbid, minji)
}

/// Seoyeon outbids junho on `auction` (the second of [`two_outbid_holds`]): his hold there is owed a
/// release too. Returns junho's token and that hold.
async fn junho_outbid_on(app: &TestApp, auction: i64) -> (String, HoldId) {
    let (junho, seoyeon) = (app.login("junho", PASSWORD).await, app.user_token("seoyeon").await);
    app.deposit(&seoyeon, 100_000).await;
    assert_eq!(app.bid(&seoyeon, auction, 13_000).await.status(), 201);
    let junhos_hold = sqlx::query_scalar(
        "SELECT h.id FROM holds h JOIN users u ON u.id = h.user_id WHERE h.auction_id = $1 AND u.username = 'junho'",
    )
    .bind(auction)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (junho, junhos_hold)
}

/// A transaction holding `auction`'s row lock, as a bid in progress does, until it commits.
async fn bid_in_progress(app: &TestApp, auction: i64) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut bid = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM auctions WHERE id = $1 FOR UPDATE").bind(auction).execute(&mut *bid).await.unwrap();
    bid
}

/// Returns once a statement containing `statement` waits for a lock; fails with `never` after 5 s.
async fn wait_for_a_lock(app: &TestApp, statement: &str, never: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0";
    while sqlx::query_scalar::<_, i64>(waiting).bind(statement).fetch_one(&app.pool).await.unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "{never}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Releases `holds` in a batch that does not wait ([`Wait::No`]); fails the test if it waits anyway.
async fn release_without_waiting(conn: &mut sqlx::PgConnection, holds: &[HoldId]) -> Vec<ReleaseOutcome> {
    tokio::time::timeout(std::time::Duration::from_secs(5), release_outbid_holds(conn, holds, Wait::No))
        .await
        .expect("the batch waited for another transaction")
        .unwrap()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_release_batch_does_not_wait_for_a_bid_holding_one_of_its_auctions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ([busy_auction, _], [busy_hold, idle_hold], minji) = two_outbid_holds(&app).await;
    let bid = bid_in_progress(&app, busy_auction).await;

    let mut conn = app.pool.acquire().await.unwrap();
    let outcomes = release_without_waiting(&mut conn, &[busy_hold, idle_hold]).await;
    assert_eq!(outcomes, [ReleaseOutcome::Busy, ReleaseOutcome::Released]);
    assert_eq!(app.wallet(&minji).await, (90_000, 10_000), "only the idle auction's hold came back");

    bid.commit().await.unwrap();
    assert_eq!(release_outbid_holds(&mut conn, &[busy_hold], Wait::No).await.unwrap(), [ReleaseOutcome::Released]);
    assert_eq!(app.wallet(&minji).await, (100_000, 0));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_release_batch_does_not_wait_for_a_wallet_another_transaction_holds(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ([_, second_auction], [minjis_hold, _], minji) = two_outbid_holds(&app).await;
    let (junho, junhos_hold) = junho_outbid_on(&app, second_auction).await;
    // Minji's wallet is in use, as it is while her next bid or a deposit moves her money.
    let mut wallet_in_use = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM accounts WHERE user_id = (SELECT user_id FROM holds WHERE id = $1) FOR UPDATE")
        .bind(minjis_hold)
        .execute(&mut *wallet_in_use)
        .await
        .unwrap();

    let mut conn = app.pool.acquire().await.unwrap();
    let outcomes = release_without_waiting(&mut conn, &[minjis_hold, junhos_hold]).await;
    assert_eq!(outcomes, [ReleaseOutcome::Busy, ReleaseOutcome::Released]);
    assert_eq!(app.wallet(&junho).await, (88_000, 12_000), "junho's hold on the second auction came back");
    assert_eq!(app.wallet(&minji).await, (80_000, 20_000), "minji's holds wait for her wallet");

    wallet_in_use.commit().await.unwrap();
    assert_eq!(release_outbid_holds(&mut conn, &[minjis_hold], Wait::No).await.unwrap(), [ReleaseOutcome::Released]);
    assert_eq!(app.wallet(&minji).await, (90_000, 10_000));
    app.assert_audit_clean().await;
}

/// A settlement paying or telling a bidder locks their user row, then their wallet. A release batch
/// that took her wallet first and then waited for her row (for her outbid event) deadlocked with it.
/// Even the release statement that waits ([`Wait::ForBids`]) can leave a hold undecided: one that led
/// its auction when the statement chose whose wallets to take, and that the bid it then waited for
/// outbid. It answers busy (nothing moved), and the next release of that hold releases it; the worker's
/// batcher offers such a hold again instead of dropping it.
#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_hold_outbid_while_the_waiting_release_waited_is_busy_then_released(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ([auction, _], [minjis_hold, _], minji) = two_outbid_holds(&app).await;
    let (junho, seoyeon) = (app.login("junho", PASSWORD).await, app.user_token("seoyeon").await);
    app.deposit(&seoyeon, 100_000).await;
    let junhos_hold: HoldId = sqlx::query_scalar("SELECT leader_hold_id FROM auctions WHERE id = $1")
        .bind(auction)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let seoyeons_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE username = 'seoyeon'").fetch_one(&app.pool).await.unwrap();

    let mut seoyeons_bid = bid_in_progress(&app, auction).await;
    let mut conn = app.pool.acquire().await.unwrap().detach();
    let release =
        tokio::spawn(async move { release_outbid_holds(&mut conn, &[minjis_hold, junhos_hold], Wait::ForBids).await });
    wait_for_a_lock(&app, "release_holds(", "the release never waited for the bid").await;
    // The release chose whose wallets to take while junho led; now seoyeon's bid outbids him.
    sqlx::query("SELECT place_bid($1, $2, 13000, NULL, false, NULL, NULL)")
        .bind(auction)
        .bind(seoyeons_id)
        .execute(&mut *seoyeons_bid)
        .await
        .unwrap();
    seoyeons_bid.commit().await.unwrap();

    let outcomes = release.await.unwrap().unwrap();
    assert_eq!(outcomes, [ReleaseOutcome::Released, ReleaseOutcome::Busy]);
    assert_eq!(app.wallet(&junho).await, (76_000, 24_000), "nothing moved for junho");
    assert_eq!(app.jobs.releases.release(junhos_hold).await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(app.wallet(&junho).await, (88_000, 12_000), "only his lead on the other auction is held");
    assert_eq!(app.wallet(&minji).await, (90_000, 10_000));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_release_batch_does_not_wait_for_a_bidder_a_settlement_holds(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ([_, second_auction], [minjis_hold, _], minji) = two_outbid_holds(&app).await;
    let (junho, junhos_hold) = junho_outbid_on(&app, second_auction).await;
    let minjis_id: i64 = sqlx::query_scalar("SELECT user_id FROM holds WHERE id = $1")
        .bind(minjis_hold)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut settlement = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(minjis_id)
        .execute(&mut *settlement)
        .await
        .unwrap();

    let mut conn = app.pool.acquire().await.unwrap();
    let outcomes = release_without_waiting(&mut conn, &[minjis_hold, junhos_hold]).await;
    assert_eq!(outcomes, [ReleaseOutcome::Busy, ReleaseOutcome::Released]);
    assert_eq!(app.wallet(&junho).await, (88_000, 12_000), "junho's hold on the second auction came back");
    // The settlement goes on to her wallet, which the batch left alone.
    let wallet =
        sqlx::query("SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE").bind(minjis_id).execute(&mut *settlement);
    tokio::time::timeout(std::time::Duration::from_secs(5), wallet)
        .await
        .expect("the settlement waited for the release batch")
        .unwrap();
    settlement.commit().await.unwrap();

    assert_eq!(release_outbid_holds(&mut conn, &[minjis_hold], Wait::No).await.unwrap(), [ReleaseOutcome::Released]);
    assert_eq!(app.wallet(&minji).await, (90_000, 10_000));
    app.assert_audit_clean().await;
}

/// A bid moves its bidder's money with a ledger transfer, which locked the two accounts in the order
/// the heap returned them; a release batch takes a wallet's accounts in id order. After a deposit the
/// available account lies after the held one in the heap, so each took one account and waited for
/// the other, and PostgreSQL failed one of them a second later (the bid, retried by the web, answered
/// late; a failed release waited for its job's retry). Transfers take them in id order now.
#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_bid_and_a_release_taking_the_same_wallet_do_not_deadlock(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 50_000).await;
    let auction = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let (available, held): (i64, i64) = sqlx::query_as(
        "SELECT max(c.id) FILTER (WHERE kind = 'available'), max(c.id) FILTER (WHERE kind = 'held') \
         FROM accounts c JOIN users u ON u.id = c.user_id WHERE u.username = 'minji'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // With its statistics, the small table is scanned in heap order, as a large one is by a bitmap scan.
    sqlx::query("ANALYZE accounts").execute(&app.pool).await.unwrap();
    let first_in_heap: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE id IN ($1, $2) ORDER BY ctid LIMIT 1")
        .bind(available)
        .bind(held)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(available < held && first_in_heap == held, "the deposit moved her available account after the held one");

    // A release batch freeing another of her holds has taken her available account, the first in id order.
    let mut release = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(available)
        .execute(&mut *release)
        .await
        .unwrap();
    let bid = app.request(Method::POST, &format!("/api/v1/auctions/{auction}/bids"));
    let bid = tokio::spawn(bid.bearer_auth(&minji).json(&json!({ "amount": 20_000 })).send());
    wait_for_a_lock(&app, "place_bid(", "the bid never waited for her wallet").await;
    // The batch goes on to her held account, which the waiting bid must not have taken.
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE NOWAIT")
        .bind(held)
        .execute(&mut *release)
        .await
        .expect("the waiting bid holds her held account");
    release.commit().await.unwrap();

    assert_eq!(bid.await.unwrap().unwrap().status(), 201);
    assert_eq!(app.wallet(&minji).await, (30_000, 20_000));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_release_owed_to_a_hold_that_leads_again_or_has_ended_waits_for_no_bid(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ([auction, _], [minjis_hold, ended_hold], minji) = two_outbid_holds(&app).await;
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(release_outbid_hold(&mut conn, ended_hold).await, ReleaseOutcome::Released);
    // Minji comes back before her release ran: her open hold there leads again, raised to 13,000.
    assert_eq!(app.bid(&minji, auction, 13_000).await.status(), 201);
    let bid = bid_in_progress(&app, auction).await;

    // The statement that waits for bids has nothing to wait for: neither hold is decided under a lock.
    let stale = [minjis_hold, ended_hold];
    let outcomes =
        tokio::time::timeout(std::time::Duration::from_secs(5), release_outbid_holds(&mut conn, &stale, Wait::ForBids))
            .await
            .expect("the release waited for the bid")
            .unwrap();
    assert_eq!(outcomes, [ReleaseOutcome::StillLeading, ReleaseOutcome::AlreadyEnded]);
    assert_eq!(release_without_waiting(&mut conn, &stale).await, outcomes);
    bid.commit().await.unwrap();
    assert_eq!(app.wallet(&minji).await, (87_000, 13_000), "only her leading maximum is held");
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_delivery_whose_auction_stays_busy_is_released_once_the_bid_ends(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ([busy_auction, _], [busy_hold, _], minji) = two_outbid_holds(&app).await;
    let bid = bid_in_progress(&app, busy_auction).await;

    // Longer than the batcher's busy retries: the delivery ends up waiting for the bid, and is
    // answered once the bid commits.
    let releases = app.jobs.releases.clone();
    let delivery = tokio::spawn(async move { releases.release(busy_hold).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!delivery.is_finished(), "released while a bid held its auction");
    bid.commit().await.unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), delivery).await;
    assert_eq!(outcome.expect("the delivery was never answered").unwrap(), ReleaseOutcome::Released);
    assert_eq!(app.wallet(&minji).await, (90_000, 10_000), "one hold released, the other still owed");
    app.assert_audit_clean().await;
}

/// Rows of the outbox not yet handed to a queue.
async fn unrelayed(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE relayed_at IS NULL").fetch_one(&app.pool).await.unwrap()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_release_recorded_again_while_its_job_runs_is_queued_once_that_job_is_done(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, [hold, _], _) = two_outbid_holds(&app).await;
    let (mut redis, prefix) = (app.jobs.redis.clone(), app.jobs.prefix.clone());
    let relay = async || relay_once(&mut app.pool.acquire().await.unwrap(), &app.jobs.redis, &prefix).await.unwrap();
    assert_eq!(relay().await, 2, "both outbid holds' releases are queued");
    assert_eq!(unrelayed(&app).await, 0);

    // A worker has taken the job (apalis-redis's lease marks it running) and may already have found
    // the hold leading again, when the hold is outbid once more and its release recorded again.
    let (queue, job) = (format!("{prefix}:release"), format!("release_hold:{}", hold.0));
    let meta = format!("{queue}:meta:{job}");
    let () = redis.hset(&meta, "status", "Running").await.unwrap();
    outbox::record(&mut app.pool.acquire().await.unwrap(), &ReleaseHold { hold_id: hold }).await.unwrap();
    assert_eq!(relay().await, 0, "a push now would be ignored as the running job's");
    assert_eq!(unrelayed(&app).await, 1, "the release waits in the outbox, not for the sweep");

    // The job finishes as apalis-redis records it: the waiting release becomes a job of its own.
    let () = redis.sadd(format!("{queue}:done"), &job).await.unwrap();
    let () = redis.hset(&meta, "status", "Done").await.unwrap();
    assert_eq!(relay().await, 1);
    assert_eq!(unrelayed(&app).await, 0);
    let status: Option<String> = redis.hget(&meta, "status").await.unwrap();
    assert_eq!(status.as_deref(), Some("Pending"), "queued again, to run");
    app.run_pending_releases().await;
    app.assert_audit_clean().await;
}
