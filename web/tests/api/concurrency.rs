//! The proofs that money never appears or disappears under real concurrency: many tasks released
//! together behind a barrier, then the invariants checked exactly.

use std::sync::Arc;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Barrier;

use crate::helpers::{TestApp, body};

async fn error_code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn two_hundred_bidders_at_once_leave_exactly_the_valid_bids_and_only_the_leader_holding(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let seller = app.user_token("seller").await;
    let auction_id = app.create_auction(&seller, json!({ "start_price": 10_000 })).await["id"].as_i64().unwrap();
    let bidders = app.quick_users("bidder", 200).await;
    for (_, token) in &bidders {
        app.deposit(token, 2_000_000).await;
    }
    let barrier = Arc::new(Barrier::new(bidders.len()));
    let tasks: Vec<_> = bidders
        .iter()
        .map(|(_, token)| {
            let (app, barrier, token) = (app.clone(), barrier.clone(), token.clone());
            let amount = rand::rng().random_range(10_000..=1_000_000_i64);
            tokio::spawn(async move {
                barrier.wait().await;
                (amount, app.bid(&token, auction_id, amount).await)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut max_attempted = 0;
    for task in tasks {
        let (amount, resp) = task.await.unwrap();
        max_attempted = max_attempted.max(amount);
        match resp.status() {
            StatusCode::CREATED => accepted.push(body(resp).await["bid"]["id"].as_i64().unwrap()),
            _ => assert_eq!(error_code(resp).await, (StatusCode::CONFLICT, "bid_too_low".to_owned())),
        }
    }
    assert!(!accepted.is_empty());

    // Replaying the accepted bids in commit (id) order, each obeys the rules against its predecessor.
    let bids: Vec<(i64, i64)> = sqlx::query_as("SELECT bidder_id, amount FROM bids WHERE auction_id = $1 ORDER BY id")
        .bind(auction_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(bids.len(), accepted.len());
    assert!(bids[0].1 >= 10_000);
    for pair in bids.windows(2) {
        let minimum = pair[0].1 + neighborbid_shared::auctions::rules::tiered_increment(pair[0].1);
        assert!(pair[1].1 >= minimum, "{} accepted after {}", pair[1].1, pair[0].1);
    }
    let (leader_id, final_price) = *bids.last().unwrap();
    let auction = app.auction(auction_id).await;
    assert_eq!(auction["current_price"], final_price);
    assert_eq!(auction["bid_count"], bids.len() as i64);
    assert_eq!(auction["leader_id"], leader_id);
    assert!(final_price + neighborbid_shared::auctions::rules::tiered_increment(final_price) > max_attempted);

    app.run_pending_releases().await;
    let report = app.assert_audit_clean().await;
    assert_eq!(report.totals.held, final_price, "only the leader holds money");
    for (id, token) in &bidders {
        let expected = if id.0 == leader_id { (2_000_000 - final_price, final_price) } else { (2_000_000, 0) };
        assert_eq!(app.wallet(token).await, expected, "bidder {id}");
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn crossing_outbids_across_auctions_never_fail_and_never_leak(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let seller = app.user_token("seller").await;
    const PAIRS: usize = 4;
    const ROUNDS: usize = 60;
    let users = app.quick_users("crosser", PAIRS * 2).await;
    for (_, token) in &users {
        app.deposit(token, 1_000_000_000).await;
    }
    let mut auctions = Vec::new();
    for _ in 0..PAIRS * 2 {
        auctions.push(
            app.create_auction(&seller, json!({ "start_price": 1_000, "bid_increment": 1_000 })).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let barrier = Arc::new(Barrier::new(PAIRS * 2 + 1));
    let mut tasks = Vec::new();
    for pair in 0..PAIRS {
        let (a, b) = (auctions[2 * pair], auctions[2 * pair + 1]);
        for side in 0..2 {
            let token = users[2 * pair + side].1.clone();
            // X bids A then B, Y bids B then A: each outbids the other on both, in crossing order.
            let order = if side == 0 { [a, b] } else { [b, a] };
            let (app, barrier) = (app.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut statuses = Vec::new();
                for round in 0..ROUNDS {
                    for auction in order {
                        let amount = 1_000 * (2 * round as i64 + 1 + side as i64 * 7);
                        let resp = app.bid(&token, auction, amount).await;
                        statuses.push(if resp.status().is_success() {
                            (resp.status(), String::new())
                        } else {
                            error_code(resp).await
                        });
                    }
                }
                statuses
            }));
        }
    }
    // Refunds run all along, locking auctions and accounts while the bids do.
    let refunder = {
        let (app, barrier) = (app.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..ROUNDS {
                app.run_pending_releases().await;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut rounds = 0;
    for task in tasks {
        for (status, code) in task.await.unwrap() {
            rounds += 1;
            assert!(
                status == StatusCode::CREATED || (status == StatusCode::CONFLICT && code == "bid_too_low"),
                "{status} {code}"
            );
        }
    }
    refunder.await.unwrap();
    assert_eq!(rounds, PAIRS * 2 * ROUNDS * 2);
    app.run_pending_releases().await;
    let report = app.assert_audit_clean().await;
    // A leader's later bid raised their maximum (held in full) without moving the price: what stays
    // held is exactly every leader's maximum, and each covers its auction's price.
    let (leaders_hold, covered): (i64, bool) = sqlx::query_as(
        "SELECT sum(h.amount)::bigint, bool_and(h.status = 'open' AND h.amount >= a.current_price) \
         FROM auctions a JOIN holds h ON h.id = a.leader_hold_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(report.totals.held, leaders_hold);
    assert!(covered);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn money_for_one_bid_cannot_win_two_auctions_at_once(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let seller = app.user_token("seller").await;
    let spenders = app.quick_users("spender", 20).await;
    for (_, token) in &spenders {
        app.deposit(token, 10_000).await;
    }
    for (_, token) in &spenders {
        let a = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
        let b = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
        let (ra, rb) = tokio::join!(app.bid(token, a, 10_000), app.bid(token, b, 10_000));
        let mut outcomes = [error_code(ra).await, error_code(rb).await];
        outcomes.sort();
        assert_eq!(
            outcomes,
            [(StatusCode::CREATED, String::new()), (StatusCode::CONFLICT, "insufficient_funds".to_owned())]
        );
        assert_eq!(app.wallet(token).await, (0, 10_000));
    }
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn deposits_and_withdrawals_racing_bids_keep_the_ledger_exact(pool: PgPool) {
    let app = Arc::new(TestApp::spawn(pool).await);
    let seller = app.user_token("seller").await;
    let users = app.quick_users("racer", 12).await;
    let mut auctions = Vec::new();
    for _ in 0..3 {
        auctions.push(
            app.create_auction(&seller, json!({ "start_price": 1_000, "bid_increment": 500 })).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let barrier = Arc::new(Barrier::new(users.len()));
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, (_, token))| {
            let (app, barrier, token, auctions) = (app.clone(), barrier.clone(), token.clone(), auctions.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut unexpected = Vec::new();
                for step in 0..40_usize {
                    let resp = match (i + step) % 4 {
                        0 => app.post_as(&token, "/api/v1/wallet/deposits", json!({ "amount": 5_000 })).await,
                        1 => app.post_as(&token, "/api/v1/wallet/withdrawals", json!({ "amount": 3_000 })).await,
                        _ => {
                            let auction = auctions[(i + step) % auctions.len()];
                            let price = app.auction(auction).await["min_next_bid"].as_i64().unwrap();
                            app.bid(&token, auction, price).await
                        }
                    };
                    if !resp.status().is_success() {
                        let (status, code) = error_code(resp).await;
                        // A leader whose earlier bid already covers the next minimum raises nothing.
                        if !(status == StatusCode::CONFLICT
                            && ["insufficient_funds", "bid_too_low", "maximum_not_raised"].contains(&code.as_str()))
                        {
                            unexpected.push((status, code));
                        }
                    }
                    if step % 10 == 0 {
                        app.run_pending_releases().await;
                    }
                }
                unexpected
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Vec::<(StatusCode, String)>::new());
    }
    app.run_pending_releases().await;
    let report = app.assert_audit_clean().await;
    assert!(report.totals.deposits > 0 && report.totals.withdrawals > 0);
    let ids = users.iter().map(|(id, _)| *id).collect::<Vec<_>>();
    let negative: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE user_id = ANY($1) AND balance < 0")
        .bind(&ids)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(negative, 0);
}
