use neighborbid_shared::auctions::AuctionError;
use neighborbid_shared::auctions::bidding::{self, BidOrder};
use neighborbid_shared::auctions::release::ReleaseOutcome;
use neighborbid_shared::auctions::rules::{self, Refusal};
use neighborbid_shared::ids::{AuctionId, HoldId};
use neighborbid_shared::ledger::LedgerError;
use neighborbid_shared::money::Krw;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{Rivals, TestApp, assert_error, body, release_outbid_hold};

async fn ended(app: &TestApp, auction_id: i64) {
    sqlx::query("UPDATE auctions SET starts_at = now() - interval '2 minutes', ends_at = now() - interval '1 second' WHERE id = $1")
        .bind(auction_id)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn an_outbid_leader_gets_the_money_back_and_the_new_leader_holds_theirs(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(50_000, json!({})).await;

    let resp = app.bid(&minji, id, 10_000).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let receipt = body(resp).await;
    assert_eq!(receipt["bid"]["amount"], 10_000);
    assert_eq!(receipt["bid"]["bidder"]["username"], "minji");
    assert_eq!(receipt["auction"]["current_price"], 10_000);
    assert_eq!(receipt["auction"]["min_next_bid"], 11_000);
    assert_eq!(app.wallet(&minji).await, (40_000, 10_000));

    let too_low = assert_error(app.bid(&junho, id, 10_500).await, StatusCode::CONFLICT, "bid_too_low").await;
    assert_eq!(too_low["details"]["minimum"], 11_000);
    let outbid = app.bid(&junho, id, 11_000).await;
    assert_eq!(outbid.status(), StatusCode::CREATED);
    let junho_id = body(outbid).await["bid"]["bidder"]["id"].clone();
    assert_eq!(app.wallet(&junho).await, (39_000, 11_000));
    assert_eq!(app.wallet(&minji).await, (40_000, 10_000), "released by the refund job, not inline");
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (50_000, 0));
    let auction = app.auction(id).await;
    assert_eq!(auction["bid_count"], 2);
    assert_eq!(auction["leader_id"], junho_id);
    let history = body(app.get(&format!("/api/v1/auctions/{id}/bids")).await).await;
    let amounts: Vec<i64> =
        history["items"].as_array().unwrap().iter().map(|b| b["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [11_000, 10_000]);
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_leader_raising_their_own_bid_needs_only_the_difference(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 15_000).await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    assert_eq!(app.bid(&minji, id, 10_000).await.status(), StatusCode::CREATED);
    assert_eq!(app.bid(&minji, id, 15_000).await.status(), StatusCode::CREATED);
    assert_eq!(app.wallet(&minji).await, (0, 15_000));
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (0, 15_000), "the leader's own hold is never released");
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn an_outbid_bidder_may_come_back_before_the_refund_runs(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(30_000, json!({})).await;
    app.bid(&minji, id, 10_000).await;
    app.bid(&junho, id, 11_000).await;
    assert_eq!(app.bid(&minji, id, 12_000).await.status(), StatusCode::CREATED);
    assert_eq!(app.wallet(&minji).await, (18_000, 12_000), "tops up the hold still open");
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (18_000, 12_000));
    assert_eq!(app.wallet(&junho).await, (30_000, 0));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_bidder_outbid_again_after_coming_back_is_told_again(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(50_000, json!({})).await;
    app.bid(&minji, id, 10_000).await;
    app.bid(&junho, id, 11_000).await;
    app.run_pending_releases().await;
    assert_eq!(app.bid(&minji, id, 13_000).await.status(), StatusCode::CREATED, "minji comes back");
    app.bid(&junho, id, 15_000).await;
    app.run_pending_releases().await;
    let minjis_holds: Vec<HoldId> = sqlx::query_scalar(
        "SELECT h.id FROM holds h JOIN users u ON u.id = h.user_id WHERE u.username = 'minji' ORDER BY h.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    for hold in &minjis_holds {
        assert_eq!(release_outbid_hold(&mut conn, *hold).await, ReleaseOutcome::AlreadyEnded, "redelivered");
    }

    let feed = body(app.get_as(&minji, "/api/v1/me/notifications").await).await;
    let kinds: Vec<&str> = feed["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["outbid", "outbid"], "one for each time she was outbid: {feed}");
    let emails: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'send_email'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(emails, 2, "and an email each time");
    assert_eq!(app.wallet(&minji).await, (50_000, 0));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn bids_beyond_the_available_balance_are_refused_without_a_trace(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 9_999).await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    assert_error(app.bid(&minji, id, 10_000).await, StatusCode::CONFLICT, "insufficient_funds").await;
    assert_eq!(app.wallet(&minji).await, (9_999, 0));
    let auction = app.auction(id).await;
    assert_eq!((auction["bid_count"].as_i64(), auction["seq"].as_i64()), (Some(0), Some(0)));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn sellers_cannot_bid_or_buy_their_own_items(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    app.deposit(&seller, 100_000).await;
    let id = app.create_auction(&seller, json!({ "buy_now_price": 50_000 })).await["id"].as_i64().unwrap();
    assert_error(app.bid(&seller, id, 10_000).await, StatusCode::FORBIDDEN, "own_auction").await;
    let buy = app.post_as(&seller, &format!("/api/v1/auctions/{id}/buy-now"), json!({})).await;
    assert_error(buy, StatusCode::FORBIDDEN, "own_auction").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn nothing_is_accepted_after_the_end_not_even_buy_now(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 100_000).await;
    let id = app.create_auction(&seller, json!({ "buy_now_price": 50_000 })).await["id"].as_i64().unwrap();
    ended(&app, id).await;
    assert_error(app.bid(&minji, id, 10_000).await, StatusCode::CONFLICT, "auction_not_active").await;
    let buy = app.post_as(&minji, &format!("/api/v1/auctions/{id}/buy-now"), json!({})).await;
    assert_error(buy, StatusCode::CONFLICT, "auction_not_active").await;
    assert_eq!(app.wallet(&minji).await, (100_000, 0));
    let scheduled = app
        .create_auction(
            &seller,
            json!({ "starts_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
                                         "ends_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339() }),
        )
        .await;
    assert_eq!(scheduled["status"], "scheduled");
    let early = app.bid(&minji, scheduled["id"].as_i64().unwrap(), 10_000).await;
    assert_error(early, StatusCode::CONFLICT, "auction_not_active").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn buy_now_closes_the_auction_for_the_buyer_and_releases_the_leader(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({ "buy_now_price": 50_000 })).await;
    app.bid(&minji, id, 20_000).await;
    let resp = app.post_as(&junho, &format!("/api/v1/auctions/{id}/buy-now"), json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let auction = body(resp).await;
    assert_eq!(auction["status"], "closed");
    assert_eq!(auction["current_price"], 50_000);
    assert_eq!(auction["winner_id"], auction["leader_id"]);
    assert_eq!(app.wallet(&junho).await, (50_000, 50_000));
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (100_000, 0));
    assert_eq!(app.wallet(&junho).await, (50_000, 50_000), "the winner's hold waits for settlement");
    assert_error(app.bid(&minji, id, 60_000).await, StatusCode::CONFLICT, "auction_not_active").await;
    let settle_recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'settle_auction'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(settle_recorded, 1);
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn buy_now_is_refused_once_bidding_reaches_its_price(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({ "buy_now_price": 50_000 })).await;
    app.bid(&minji, id, 60_000).await;
    let buy = app.post_as(&junho, &format!("/api/v1/auctions/{id}/buy-now"), json!({})).await;
    assert_error(buy, StatusCode::CONFLICT, "buy_now_unavailable").await;
    assert_eq!(app.wallet(&junho).await, (100_000, 0));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_late_bid_extends_the_end_and_every_change_is_an_event_in_sequence(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let (minji, junho) = (app.user_token("minji").await, app.user_token("junho").await);
    app.deposit(&minji, 100_000).await;
    app.deposit(&junho, 100_000).await;
    let ends_at = chrono::Utc::now() + chrono::Duration::seconds(90);
    let id =
        app.create_auction(&seller, json!({ "ends_at": ends_at.to_rfc3339(), "soft_close_seconds": 300 })).await["id"]
            .as_i64()
            .unwrap();
    let before = chrono::Utc::now();
    app.bid(&minji, id, 10_000).await;
    app.bid(&junho, id, 11_000).await;
    let auction = app.auction(id).await;
    let new_end: chrono::DateTime<chrono::Utc> = auction["ends_at"].as_str().unwrap().parse().unwrap();
    assert!(new_end >= before + chrono::Duration::seconds(300), "{new_end} not extended");
    let events: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, type FROM auction_events WHERE auction_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let types: Vec<&str> = events.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types, ["bid_placed", "auction_extended", "bid_placed", "auction_extended"]);
    assert_eq!(events.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(auction["seq"], 4);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_repeated_bid_with_the_same_key_is_placed_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 100_000).await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let send = || {
        app.request(Method::POST, &format!("/api/v1/auctions/{id}/bids"))
            .bearer_auth(&minji)
            .header("Idempotency-Key", "tap-1")
            .json(&json!({ "amount": 10_000 }))
            .send()
    };
    let (a, b) = tokio::join!(send(), send());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.status(), b.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(body(a).await["bid"]["id"], body(b).await["bid"]["id"]);
    assert_eq!(app.auction(id).await["bid_count"], 1);
    assert_eq!(app.wallet(&minji).await, (90_000, 10_000));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn bids_decided_together_are_each_decided_as_if_alone_in_turn(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let users = app.quick_users("together", 5).await;
    let [(seller, seller_token), (minji, minji_token), (jun, jun_token), (hana, hana_token), (bora, bora_token)] =
        users.try_into().unwrap();
    for token in [&minji_token, &jun_token, &hana_token] {
        app.deposit(token, 100_000).await;
    }
    app.deposit(&bora_token, 25_000).await;
    let id = app.create_auction(&seller_token, json!({ "start_price": 10_000 })).await["id"].as_i64().unwrap();
    let auction = AuctionId(id);
    let bid =
        |user, amount, key| BidOrder::bid(auction, user, Krw::parse(amount, "amount").unwrap(), None, key).unwrap();
    let orders = [
        bid(seller, 10_000, None),
        bid(minji, 10_000, None),
        bid(jun, 10_000, None),
        bid(hana, 20_000, Some("hana-1")),
        bid(bora, 30_000, None),
        bid(hana, 20_000, Some("hana-1")),
    ];

    let outcomes = bidding::place_together(&app.pool, auction, &orders).await.unwrap();

    let [seller_bid, minji_bid, jun_bid, hana_bid, bora_bid, hana_again] = outcomes.try_into().unwrap();
    assert!(matches!(seller_bid, Err(AuctionError::Refused(Refusal::OwnAuction))), "{seller_bid:?}");
    let minji_bid = minji_bid.unwrap();
    assert_eq!((minji_bid.bid.amount, minji_bid.auction.bid_count, minji_bid.auction.seq), (10_000, 1, 1));
    let minimum = 10_000 + rules::tiered_increment(10_000);
    assert!(
        matches!(jun_bid, Err(AuctionError::Refused(Refusal::TooLow { minimum: m })) if m == minimum),
        "{jun_bid:?}"
    );
    let hana_bid = hana_bid.unwrap();
    assert_eq!((hana_bid.bid.amount, hana_bid.auction.bid_count, hana_bid.auction.seq), (20_000, 2, 2));
    assert_eq!(hana_bid.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    assert!(matches!(bora_bid, Err(AuctionError::Ledger(LedgerError::InsufficientFunds))), "{bora_bid:?}");
    let hana_again = hana_again.unwrap();
    assert_eq!(hana_again.bid.id, hana_bid.bid.id, "the same key answers with the first receipt");
    assert!(hana_again.events.is_empty());

    let after = app.auction(id).await;
    assert_eq!((after["current_price"].as_i64(), after["bid_count"].as_i64()), (Some(20_000), Some(2)));
    assert_eq!(after["leader_id"], hana.0);
    assert_eq!(app.wallet(&bora_token).await, (25_000, 0), "a refused bid leaves no trace");
    assert_eq!(app.wallet(&jun_token).await, (100_000, 0));
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji_token).await, (100_000, 0), "the outbid hold is released");
    assert_eq!(app.wallet(&hana_token).await, (80_000, 20_000));
    app.assert_audit_clean().await;
}
