//! Proxy (maximum) bidding by eBay's rules, through the API; and the database's bid engine held to
//! the Rust rules (`rules::decide_bid`) on random bid sequences.

use std::sync::Arc;

use chrono::Utc;
use neighborbid_shared::auctions::bidding::{self, BidReceipt};
use neighborbid_shared::auctions::closing::close_due;
use neighborbid_shared::auctions::rules::{self, BidRequest, VisibleBid};
use neighborbid_shared::auctions::settlement::settle_auction;
use neighborbid_shared::auctions::{AuctionError, store};
use neighborbid_shared::ids::{AuctionId, UserId};
use neighborbid_shared::money::Krw;
use neighborbid_testkit::db::end_now;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Barrier;

use crate::helpers::{Rivals, TestApp, assert_error, body};

async fn proxy_bid(app: &TestApp, token: &str, auction_id: i64, amount: i64, max_amount: i64) -> Value {
    let path = format!("/api/v1/auctions/{auction_id}/bids");
    let resp = app.post_as(token, &path, json!({ "amount": amount, "max_amount": max_amount })).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    body(resp).await
}

/// The bid history, oldest first, as (bidder username, amount, auto).
async fn history(app: &TestApp, auction_id: i64) -> Vec<(String, i64, bool)> {
    let page = body(app.get(&format!("/api/v1/auctions/{auction_id}/bids")).await).await;
    let mut items: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert!(b.get("max_amount").is_none(), "the history never shows a maximum: {b}");
            (b["bidder"]["username"].as_str().unwrap().to_owned(), b["amount"].as_i64().unwrap(), b["auto"] == true)
        })
        .collect();
    items.reverse();
    items
}

async fn events_text(app: &TestApp, auction_id: i64) -> String {
    let events: Vec<Value> = sqlx::query_scalar("SELECT data FROM auction_events WHERE auction_id = $1 ORDER BY seq")
        .bind(auction_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    serde_json::to_string(&events).unwrap()
}

fn entry(who: &str, amount: i64, auto: bool) -> (String, i64, bool) {
    (who.to_owned(), amount, auto)
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_maximum_answers_a_manual_bid_automatically_and_stays_secret(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({})).await;
    let receipt = proxy_bid(&app, &minji, id, 10_000, 25_000).await;
    assert_eq!(
        (receipt["max_amount"].as_i64(), receipt["auction"]["current_price"].as_i64()),
        (Some(25_000), Some(10_000))
    );
    assert_eq!(app.wallet(&minji).await, (75_000, 25_000), "the whole maximum is held");

    let resp = app.bid(&junho, id, 12_000).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let receipt = body(resp).await;
    assert_eq!(receipt["bid"]["amount"], 12_000);
    assert_eq!(receipt["auction"]["current_price"], 13_000, "one increment above the manual bid");
    assert_eq!(receipt["auction"]["leader_id"], app.auction(id).await["leader_id"]);
    assert_ne!(receipt["auction"]["leader_id"], receipt["bid"]["bidder"]["id"], "junho was outbid at once");
    assert_eq!(
        history(&app, id).await,
        [entry("minji", 10_000, false), entry("junho", 12_000, false), entry("minji", 13_000, true)]
    );
    for seen in [
        body(app.get(&format!("/api/v1/auctions/{id}")).await).await.to_string(),
        body(app.get_as(&junho, &format!("/api/v1/auctions/{id}")).await).await.to_string(),
        events_text(&app, id).await,
        receipt.to_string(),
    ] {
        assert!(!seen.contains("25000"), "minji's maximum leaked: {seen}");
    }

    app.run_pending_releases().await;
    assert_eq!(app.wallet(&junho).await, (100_000, 0), "the losing bid is released");
    assert_eq!(app.wallet(&minji).await, (75_000, 25_000));
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_higher_maximum_leads_one_increment_above_the_other_and_pays_only_the_price(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({})).await;
    proxy_bid(&app, &minji, id, 10_000, 25_000).await;
    let receipt = proxy_bid(&app, &junho, id, 11_000, 40_000).await;
    assert_eq!(receipt["auction"]["current_price"], 26_000);
    assert_eq!(receipt["auction"]["leader_id"], receipt["bid"]["bidder"]["id"]);
    assert_eq!(history(&app, id).await, [entry("minji", 10_000, false), entry("junho", 26_000, false)]);
    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (100_000, 0));
    assert_eq!(app.wallet(&junho).await, (60_000, 40_000));

    end_now(&app.pool, AuctionId(id)).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 10).await.unwrap().closed, 1);
    settle_auction(&mut conn, AuctionId(id), 0).await.unwrap();
    assert_eq!(app.wallet(&junho).await, (74_000, 0), "the winner pays 26,000, and the rest of 40,000 comes back");
    let report = app.assert_audit_clean().await;
    assert_eq!(report.totals.held, 0);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn of_equal_maxima_the_earlier_leads(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({})).await;
    proxy_bid(&app, &minji, id, 10_000, 30_000).await;
    let receipt = proxy_bid(&app, &junho, id, 11_000, 30_000).await;
    assert_eq!(receipt["auction"]["current_price"], 30_000);
    assert_eq!(
        history(&app, id).await,
        [entry("minji", 10_000, false), entry("junho", 30_000, false), entry("minji", 30_000, true)]
    );
    let resp = app.bid(&junho, id, 31_000).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "the next minimum is 31,000");
    assert_eq!(body(resp).await["auction"]["current_price"], 31_000);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_leader_raises_their_maximum_holding_only_the_difference(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({})).await;
    proxy_bid(&app, &minji, id, 10_000, 20_000).await;
    let receipt = proxy_bid(&app, &minji, id, 11_000, 45_000).await;
    assert_eq!(
        (receipt["max_amount"].as_i64(), receipt["auction"]["current_price"].as_i64()),
        (Some(45_000), Some(10_000))
    );
    assert_eq!(history(&app, id).await, [entry("minji", 10_000, false)], "raising a maximum is not a visible bid");
    assert_eq!(app.wallet(&minji).await, (55_000, 45_000));
    let path = format!("/api/v1/auctions/{id}/bids");
    let lower = app.post_as(&minji, &path, json!({ "amount": 11_000, "max_amount": 30_000 })).await;
    let refused = assert_error(lower, StatusCode::CONFLICT, "maximum_not_raised").await;
    assert_eq!(refused["details"]["maximum"], 45_000, "told to its owner only");
    proxy_bid(&app, &junho, id, 11_000, 44_000).await;
    assert_eq!(app.auction(id).await["current_price"], 45_000, "capped at the leader's maximum");
    app.run_pending_releases().await;
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_maximum_below_the_amount_or_beyond_the_wallet_is_refused_without_a_trace(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, auction_id: id, .. } = app.rivals(30_000, json!({})).await;
    let path = format!("/api/v1/auctions/{id}/bids");
    let below = app.post_as(&minji, &path, json!({ "amount": 12_000, "max_amount": 11_000 })).await;
    assert_error(below, StatusCode::UNPROCESSABLE_ENTITY, "max_below_amount").await;
    let beyond = app.post_as(&minji, &path, json!({ "amount": 10_000, "max_amount": 30_001 })).await;
    assert_error(beyond, StatusCode::CONFLICT, "insufficient_funds").await;
    assert_eq!(app.wallet(&minji).await, (30_000, 0));
    assert!(history(&app, id).await.is_empty());
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_maximum_that_reaches_the_reserve_lifts_the_price_to_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, auction_id: id, .. } = app.rivals(100_000, json!({ "reserve_price": 40_000 })).await;
    let receipt = proxy_bid(&app, &minji, id, 10_000, 50_000).await;
    assert_eq!(receipt["auction"]["current_price"], 40_000);
    assert_eq!(receipt["auction"]["reserve_price_met"], true);
}

/// The model's view of one auction as the engine runs it.
struct Model {
    state: rules::AuctionState,
    leader_max: Option<i64>,
}

/// Random bid sequences, each applied to the database engine and to the Rust rules: the same
/// refusals, the same visible bids, prices, leaders and maxima, step by step.
#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_database_engine_and_the_rust_rules_agree_on_random_bid_sequences(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let bidders = app.quick_users("bidder", 4).await;
    for (_, token) in &bidders {
        app.deposit(token, 1_000_000_000).await;
    }
    let mut rng = StdRng::seed_from_u64(20_261_124);
    for sequence in 0..60 {
        let mut overrides = json!({ "start_price": rng.random_range(1..200) * 500 });
        if rng.random_bool(0.3) {
            overrides["bid_increment"] = json!(rng.random_range(1..20) * 100);
        }
        if rng.random_bool(0.3) {
            overrides["reserve_price"] = json!(overrides["start_price"].as_i64().unwrap() * rng.random_range(1..6));
        }
        let id = AuctionId(app.create_auction(&seller, overrides).await["id"].as_i64().unwrap());
        let mut conn = app.pool.acquire().await.unwrap();
        let mut model = Model { state: store::find(&mut conn, id).await.unwrap().unwrap().state(), leader_max: None };
        for step in 0..12 {
            let bidder_id = bidders[rng.random_range(0..bidders.len())].0;
            let minimum = model.state.min_next_bid();
            let amount = match rng.random_range(0..10) {
                0 => minimum - 1,
                1..=5 => minimum,
                _ => minimum + rng.random_range(0..40) * 500,
            };
            let max_amount = rng.random_bool(0.6).then(|| amount + rng.random_range(0..60) * 250);
            let request = BidRequest { bidder_id, amount, max_amount };
            let expected = rules::decide_bid(&model.state, model.leader_max, request, Utc::now());
            let before = model.state.bid_count;
            let actual = bidding::place_bid(
                &app.pool,
                id,
                bidder_id,
                Krw::parse(amount, "amount").unwrap(),
                max_amount.map(|max| Krw::parse(max, "max_amount").unwrap()),
                None,
            )
            .await;
            let context = format!("sequence {sequence} step {step}: {request:?} on {:?}", model.state);
            match (expected, actual) {
                (Ok(decision), Ok(receipt)) => {
                    assert_eq!(shown_since(&app, id, before).await, decision.bids, "{context}");
                    assert_eq!(receipt.auction.current_price, decision.price, "{context}");
                    assert_eq!(receipt.auction.leader_id, Some(decision.leader_id), "{context}");
                    assert_eq!(leader_hold(&app, id).await, decision.leader_max, "{context}");
                    model.state = receipt.auction.state();
                    model.leader_max = Some(decision.leader_max);
                }
                (Err(refusal), Err(AuctionError::Refused(actual))) => assert_eq!(refusal, actual, "{context}"),
                (expected, actual) => panic!("{context}: rules say {expected:?}, the engine {}", describe(&actual)),
            }
        }
    }
    app.run_pending_releases().await;
    app.assert_audit_clean().await;
}

fn describe(result: &Result<BidReceipt, AuctionError>) -> String {
    match result {
        Ok(receipt) => format!("accepted at {}", receipt.auction.current_price),
        Err(err) => format!("refused: {err:?}"),
    }
}

/// The visible bids after the first `skip` of an auction, in order.
async fn shown_since(app: &TestApp, id: AuctionId, skip: i32) -> Vec<VisibleBid> {
    let rows: Vec<(i64, i64, bool)> =
        sqlx::query_as("SELECT bidder_id, amount, auto FROM bids WHERE auction_id = $1 ORDER BY id OFFSET $2")
            .bind(id)
            .bind(i64::from(skip))
            .fetch_all(&app.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(bidder, amount, auto)| VisibleBid { bidder_id: UserId(bidder), amount, auto }).collect()
}

async fn leader_hold(app: &TestApp, id: AuctionId) -> i64 {
    sqlx::query_scalar("SELECT h.amount FROM auctions a JOIN holds h ON h.id = a.leader_hold_id WHERE a.id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// 200 bidders at once, half of them with maxima: the accepted requests, replayed through the
/// rules in the order the engine took them, give exactly the bids, the price and the leader
/// recorded; only the leader holds money, exactly their maximum; the audit is clean.
#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn two_hundred_bidders_with_maxima_at_once_leave_a_price_derivable_from_the_maxima(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let seller = app.user_token("seller").await;
    let auction_id = app.create_auction(&seller, json!({ "start_price": 10_000 })).await["id"].as_i64().unwrap();
    let bidders = app.quick_users("bidder", 200).await;
    for (_, token) in &bidders {
        app.deposit(token, 3_000_000).await;
    }
    let barrier = Arc::new(Barrier::new(bidders.len()));
    let tasks: Vec<_> = bidders
        .iter()
        .enumerate()
        .map(|(i, (user_id, token))| {
            let (app, barrier, token, user_id) = (app.clone(), barrier.clone(), token.clone(), *user_id);
            let amount = rand::rng().random_range(10_000..=1_000_000_i64);
            let max_amount = (i % 2 == 0).then(|| amount + rand::rng().random_range(0..=1_000_000_i64));
            tokio::spawn(async move {
                barrier.wait().await;
                let path = format!("/api/v1/auctions/{auction_id}/bids");
                let resp = app.post_as(&token, &path, json!({ "amount": amount, "max_amount": max_amount })).await;
                (BidRequest { bidder_id: user_id, amount, max_amount }, resp)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        let (request, resp) = task.await.unwrap();
        match resp.status() {
            StatusCode::CREATED => accepted.push((body(resp).await["bid"]["id"].as_i64().unwrap(), request)),
            _ => {
                assert_error(resp, StatusCode::CONFLICT, "bid_too_low").await;
            }
        }
    }
    // Each accepted request's own bid was recorded under the auction's lock: id order is the
    // order the engine applied them in.
    accepted.sort_by_key(|(bid_id, _)| *bid_id);
    let mut conn = app.pool.acquire().await.unwrap();
    let mut state = store::find(&mut conn, AuctionId(auction_id)).await.unwrap().unwrap().state();
    state.current_price = 10_000;
    state.bid_count = 0;
    state.leader_id = None;
    let (mut leader_max, mut expected_bids) = (None, Vec::new());
    for (_, request) in &accepted {
        let decision = rules::decide_bid(&state, leader_max, *request, Utc::now()).unwrap();
        state.bid_count += decision.bids.len() as i32;
        (state.current_price, state.leader_id, leader_max) =
            (decision.price, Some(decision.leader_id), Some(decision.leader_max));
        expected_bids.extend(decision.bids);
    }
    assert_eq!(shown_since(&app, AuctionId(auction_id), 0).await, expected_bids);
    let auction = app.auction(auction_id).await;
    assert_eq!(auction["current_price"], state.current_price);
    assert_eq!(auction["leader_id"], state.leader_id.unwrap().0);
    let highest = accepted.iter().map(|(_, r)| r.maximum()).max().unwrap();
    assert_eq!(leader_max, Some(highest), "the highest maximum leads");

    app.run_pending_releases().await;
    let report = app.assert_audit_clean().await;
    assert_eq!(report.totals.held, highest, "only the leader holds money: their maximum");
    for (id, token) in bidders.iter() {
        let expected = if Some(*id) == state.leader_id { (3_000_000 - highest, highest) } else { (3_000_000, 0) };
        assert_eq!(app.wallet(token).await, expected, "bidder {id}");
    }
}
