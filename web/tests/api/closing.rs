//! Closing ended auctions: exactly once, whoever else is closing, and never before the real end.

use neighborbid_shared::auctions::closing::close_due;
use neighborbid_shared::ids::AuctionId;
use neighborbid_testkit::db::end_now;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{TestApp, body};

async fn count(app: &TestApp, sql: &'static str, auction_id: i64) -> i64 {
    sqlx::query_scalar(sql).bind(auction_id).fetch_one(&app.pool).await.unwrap()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn concurrent_closers_close_an_auction_once_with_its_leader_as_winner(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 50_000).await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let bid = body(app.bid(&minji, id, 12_000).await).await;
    end_now(&app.pool, AuctionId(id)).await.unwrap();
    let passes = futures::future::join_all((0..3).map(|_| async {
        let mut conn = app.pool.acquire().await.unwrap();
        close_due(&mut conn, 100).await.unwrap()
    }))
    .await;
    assert_eq!(passes.iter().map(|p| p.closed).sum::<usize>(), 1, "{passes:?}");
    let auction = app.auction(id).await;
    assert_eq!(auction["status"], "closed");
    assert_eq!(auction["winner_id"], bid["bid"]["bidder"]["id"]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM auction_events WHERE auction_id = $1 AND type = 'auction_closed'", id).await,
        1
    );
    let settle =
        "SELECT count(*) FROM outbox WHERE kind = 'settle_auction' AND (payload ->> 'auction_id')::bigint = $1";
    assert_eq!(count(&app, settle, id).await, 1);
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 100).await.unwrap().closed, 0, "a closed auction is not closed again");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn an_auction_whose_reserve_is_not_met_ends_unsold_and_releases_every_hold(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 50_000).await;
    let id = app.create_auction(&seller, json!({ "reserve_price": 40_000 })).await["id"].as_i64().unwrap();
    app.bid(&minji, id, 20_000).await;
    end_now(&app.pool, AuctionId(id)).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 100).await.unwrap().unsold, 1);
    let auction = app.auction(id).await;
    assert_eq!((auction["status"].as_str(), auction["winner_id"].is_null()), (Some("unsold"), true));
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (50_000, 0));
    let unsold_email = "SELECT count(*) FROM notifications WHERE kind = 'unsold' AND auction_id = $1";
    assert_eq!(count(&app, unsold_email, id).await, 1);
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_last_second_bid_extends_the_auction_past_the_closer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 50_000).await;
    let id = app.create_auction(&seller, json!({ "soft_close_seconds": 60 })).await["id"].as_i64().unwrap();
    sqlx::query("UPDATE auctions SET starts_at = now() - interval '2 minutes', ends_at = now() + interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.bid(&minji, id, 10_000).await.status(), reqwest::StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 100).await.unwrap().closed, 0, "the bid moved the end a minute on");
    assert_eq!(app.auction(id).await["status"], "active");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn scheduled_auctions_become_active_at_their_start(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let starts = chrono::Utc::now() + chrono::Duration::minutes(10);
    let auction = app
        .create_auction(
            &seller,
            json!({ "starts_at": starts.to_rfc3339(), "ends_at": (starts + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    let id = auction["id"].as_i64().unwrap();
    sqlx::query("UPDATE auctions SET starts_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 100).await.unwrap().activated, 1);
    let stored: String =
        sqlx::query_scalar("SELECT status FROM auctions WHERE id = $1").bind(id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, "active");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn one_settlement_settles_the_sellers_other_closed_auctions_each_with_its_own_ledger_lines(pool: PgPool) {
    use neighborbid_shared::auctions::settlement::{SettleOutcome, settle_auction};

    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 100_000).await;
    let mut ids = Vec::new();
    for price in [10_000, 12_000, 15_000] {
        let id = app.create_auction(&seller, json!({ "start_price": price })).await["id"].as_i64().unwrap();
        app.bid(&minji, id, price).await;
        end_now(&app.pool, AuctionId(id)).await.unwrap();
        ids.push(id);
    }
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 100).await.unwrap().closed, 3);
    let SettleOutcome::Settled(events) = settle_auction(&mut conn, AuctionId(ids[1]), 250).await.unwrap() else {
        panic!("the auction was closed");
    };
    assert_eq!(events.len(), 3, "one auction_settled event per auction of the batch");
    for &id in &ids {
        assert_eq!(app.auction(id).await["status"], "settled");
        let later = settle_auction(&mut conn, AuctionId(id), 250).await.unwrap();
        assert_eq!(later, SettleOutcome::NotClosed, "each auction's own job finds it settled");
        let captures = "SELECT count(*) FROM transfers WHERE kind = 'capture' AND auction_id = $1";
        assert_eq!(count(&app, captures, id).await, 1);
    }
    assert_eq!(app.wallet(&seller).await, (36_075, 0), "37,000 less 2.5 % fees (rounded down) per sale");
    assert_eq!(app.wallet(&minji).await, (63_000, 0));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn settlements_of_one_seller_running_at_once_with_winners_in_common_all_succeed(pool: PgPool) {
    use neighborbid_shared::auctions::settlement::settle_auction;

    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let mut bidders = Vec::new();
    for name in ["minji", "junho", "seoyeon", "dohyun", "jiwoo"] {
        let token = app.user_token(name).await;
        app.deposit(&token, 1_000_000).await;
        bidders.push(token);
    }
    let mut ids = Vec::new();
    for k in 0..30 {
        let id = app.create_auction(&seller, json!({ "start_price": 10_000 })).await["id"].as_i64().unwrap();
        app.bid(&bidders[k % bidders.len()], id, 10_000).await;
        end_now(&app.pool, AuctionId(id)).await.unwrap();
        ids.push(id);
    }
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 100).await.unwrap().closed, 30);
    drop(conn);
    // Each settlement takes the seller's closed auctions no other holds, so the ones started together
    // split them into batches whose winners overlap: none may fail (a deadlock would, after a second).
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let mut settlements = Vec::new();
    for &id in ids.iter().step_by(3) {
        let mut conn = PgConnection::connect_with(&app.pool.connect_options()).await.unwrap();
        let start = start.clone();
        settlements.push(tokio::spawn(async move {
            start.wait().await;
            settle_auction(&mut conn, AuctionId(id), 0).await
        }));
    }
    for settled in futures::future::join_all(settlements).await {
        let settled = settled.unwrap();
        assert!(settled.is_ok(), "{settled:?}");
    }
    for &id in &ids {
        assert_eq!(app.auction(id).await["status"], "settled");
    }
    assert_eq!(app.wallet(&seller).await, (300_000, 0));
    app.assert_audit_clean().await;
}
