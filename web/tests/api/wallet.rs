use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_error, body};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn deposits_and_withdrawals_move_available_money(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    assert_eq!(app.wallet(&token).await, (0, 0));
    let resp = app.post_as(&token, "/api/v1/wallet/deposits", json!({ "amount": 50_000 })).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let receipt = body(resp).await;
    assert!(receipt["transfer_id"].as_i64().is_some());
    assert_eq!(receipt["wallet"], json!({ "available": 50_000, "held": 0, "currency": "KRW" }));
    let resp = app.post_as(&token, "/api/v1/wallet/withdrawals", json!({ "amount": 20_000 })).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(app.wallet(&token).await, (30_000, 0));
    let report = app.assert_audit_clean().await;
    assert_eq!((report.totals.deposits, report.totals.withdrawals), (50_000, 20_000));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn withdrawals_cannot_overdraw(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    app.deposit(&token, 1_000).await;
    let resp = app.post_as(&token, "/api/v1/wallet/withdrawals", json!({ "amount": 1_001 })).await;
    assert_error(resp, StatusCode::CONFLICT, "insufficient_funds").await;
    assert_eq!(app.wallet(&token).await, (1_000, 0));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn amounts_must_be_positive_and_at_most_a_trillion(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    for (amount, code) in
        [(0_i64, "amount_not_positive"), (-5, "amount_not_positive"), (1_000_000_000_001, "amount_too_large")]
    {
        let resp = app.post_as(&token, "/api/v1/wallet/deposits", json!({ "amount": amount })).await;
        let error = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert_eq!(error["details"]["field"], "amount");
    }
    let resp = app
        .request(Method::POST, "/api/v1/wallet/deposits")
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(r#"{"amount": 99999999999999999999999}"#)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "malformed_body").await;
    assert_eq!(app.wallet(&token).await, (0, 0));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_repeated_idempotency_key_returns_the_first_result_and_moves_money_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    let deposit = || {
        app.request(Method::POST, "/api/v1/wallet/deposits")
            .bearer_auth(&token)
            .header("Idempotency-Key", "dep-1")
            .json(&json!({ "amount": 7_000 }))
            .send()
    };
    let responses = futures::future::join_all((0..5).map(|_| deposit())).await;
    let mut receipts = Vec::new();
    for resp in responses {
        let resp = resp.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        receipts.push(body(resp).await);
    }
    assert!(receipts.iter().all(|r| r == &receipts[0]), "{receipts:?}");
    assert_eq!(app.wallet(&token).await, (7_000, 0));

    let reused = app
        .request(Method::POST, "/api/v1/wallet/deposits")
        .bearer_auth(&token)
        .header("Idempotency-Key", "dep-1")
        .json(&json!({ "amount": 8_000 }))
        .send()
        .await
        .unwrap();
    assert_error(reused, StatusCode::CONFLICT, "idempotency_key_reused").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_statement_lists_each_movement_with_its_effect_newest_first(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    for amount in [1_000, 2_000, 3_000] {
        app.deposit(&token, amount).await;
    }
    let page = body(app.get_as(&token, "/api/v1/wallet/transfers?limit=2").await).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["amount"], 3_000);
    assert_eq!(items[0]["kind"], "deposit");
    assert_eq!(items[0]["available_delta"], 3_000);
    assert_eq!(items[0]["held_delta"], 0);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = body(app.get_as(&token, &format!("/api/v1/wallet/transfers?limit=2&cursor={next}")).await).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["amount"], 1_000);
    assert!(rest["next_cursor"].is_null());
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_audit_is_for_operators_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    assert_error(app.get_as(&token, "/api/v1/admin/audit").await, StatusCode::FORBIDDEN, "forbidden").await;
    sqlx::query("UPDATE users SET is_admin = TRUE WHERE username = 'minji'").execute(&app.pool).await.unwrap();
    let resp = app.get_as(&token, "/api/v1/admin/audit").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let report = body(resp).await;
    assert_eq!(report["ok"], true);
    assert_eq!(report["violations"], json!([]));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_audit_reports_a_tampered_balance(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    app.deposit(&token, 5_000).await;
    // Money appearing from nowhere: a cached balance changed without a transfer.
    sqlx::query("UPDATE accounts SET balance = balance + 1 WHERE kind = 'available'").execute(&app.pool).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let report = neighborbid_shared::ledger::audit::audit(&mut conn).await.unwrap();
    assert!(!report.ok);
    let kinds: Vec<&str> = report.violations.iter().map(|v| v.kind.as_ref()).collect();
    assert!(kinds.contains(&"balance_mismatch") && kinds.contains(&"money_not_conserved"), "{kinds:?}");
}
