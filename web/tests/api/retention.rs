//! The retention sweep deletes what served its purpose and keeps the record of what happened.

use neighborbid_shared::config::Config;
use neighborbid_shared::retention::{Pruned, prune};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::TestApp;

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn old_outbox_rows_keys_sessions_and_sent_emails_are_pruned_and_the_ledger_kept(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let minji = app.user_token("minji").await;
    let old_session = app.login("minji", crate::helpers::PASSWORD).await;
    let keyed = app
        .request(reqwest::Method::POST, "/api/v1/wallet/deposits")
        .bearer_auth(&minji)
        .header("Idempotency-Key", "deposit-0001")
        .json(&json!({ "amount": 5_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::CREATED);
    app.deposit(&minji, 1_000).await;
    sqlx::query(
        "INSERT INTO outbox (kind, payload, relayed_at) VALUES \
           ('release_hold', '{\"kind\": \"release_hold\", \"hold_id\": 1}', now() - interval '8 days'), \
           ('release_hold', '{\"kind\": \"release_hold\", \"hold_id\": 2}', now() - interval '1 day'), \
           ('release_hold', '{\"kind\": \"release_hold\", \"hold_id\": 3}', NULL)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '3 days'").execute(&app.pool).await.unwrap();
    sqlx::query(
        "UPDATE sessions SET expires_at = now() - interval '31 days' WHERE id = (SELECT max(id) FROM sessions)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let transfers_before = count(&app, "SELECT count(*) FROM transfers").await;

    let retention = Config::from_lookup(|_| None).unwrap().retention;
    let mut conn = app.pool.acquire().await.unwrap();
    let pruned = prune(&mut conn, &retention).await.unwrap();
    assert_eq!(pruned, Pruned { outbox: 1, idempotency_keys: 1, sessions: 1, sent_emails: 0 });
    assert_eq!(count(&app, "SELECT count(*) FROM outbox").await, 2, "recent and unrelayed rows stay");
    assert_eq!(count(&app, "SELECT count(*) FROM transfers").await, transfers_before, "the ledger is never pruned");
    assert_eq!(app.get_as(&minji, "/api/v1/me").await.status(), StatusCode::OK, "live sessions stay");
    assert_eq!(app.get_as(&old_session, "/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(prune(&mut conn, &retention).await.unwrap(), Pruned::default(), "a second pass finds nothing");
}
