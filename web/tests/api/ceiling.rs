//! The wallet ceiling limits deposits only: money coming back from a hold or a sale always arrives,
//! so no bidder can freeze a settlement by filling their wallet to the brim.

use neighborbid_shared::auctions::closing::close_due;
use neighborbid_shared::auctions::settlement::{SettleOutcome, settle_auction};
use neighborbid_shared::ids::AuctionId;
use neighborbid_shared::ledger::wallet::WALLET_CEILING;
use neighborbid_testkit::db::end_now;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{Rivals, TestApp, assert_error};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_loser_with_a_full_wallet_cannot_block_the_settlement(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id } = app.rivals(100_000, json!({})).await;
    assert_eq!(app.bid(&minji, auction_id, 10_000).await.status(), StatusCode::CREATED);
    assert_eq!(app.bid(&junho, auction_id, 20_000).await.status(), StatusCode::CREATED);
    // Minji, outbid, tops her wallet up to exactly the ceiling while her hold is still open.
    let (available, held) = app.wallet(&minji).await;
    let mut room = WALLET_CEILING - available - held;
    while room > 0 {
        let step = room.min(1_000_000_000_000);
        app.deposit(&minji, step).await;
        room -= step;
    }
    let over = app.post_as(&minji, "/api/v1/wallet/deposits", json!({ "amount": 1 })).await;
    assert_error(over, StatusCode::CONFLICT, "balance_limit_exceeded").await;

    end_now(&app.pool, AuctionId(auction_id)).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(close_due(&mut conn, 10).await.unwrap().closed, 1);
    let settled =
        settle_auction(&mut conn, AuctionId(auction_id), 0).await.expect("settlement never fails for a loser");
    assert!(matches!(settled, SettleOutcome::Settled(_)));
    assert_eq!(app.auction(auction_id).await["status"], "settled");

    app.run_pending_releases().await;
    assert_eq!(app.wallet(&minji).await, (WALLET_CEILING, 0), "her hold came back, past nothing");
    app.assert_audit_clean().await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_audit_sums_lifetime_totals_beyond_64_bits(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 5_000).await;
    // Deposits and withdrawals that cancel out but add up past i64::MAX over the wallet's life.
    sqlx::query(
        "INSERT INTO transfers (from_account, to_account, amount, kind) \
         SELECT CASE WHEN k = 'deposit' THEN 1 ELSE a.id END, CASE WHEN k = 'deposit' THEN a.id ELSE 1 END, \
                5000000000000000000, k \
         FROM accounts a, unnest(ARRAY['deposit', 'withdrawal', 'deposit', 'withdrawal']) k \
         WHERE a.kind = 'available' AND a.user_id IS NOT NULL",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let report = app.assert_audit_clean().await;
    assert_eq!(report.totals.deposits, 10_000_000_000_000_005_000);
    assert_eq!(report.totals.withdrawals, 10_000_000_000_000_000_000);
    assert_eq!(report.totals.available, 5_000);
}
