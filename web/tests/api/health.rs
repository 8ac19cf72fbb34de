use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{TestApp, body};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn ready_when_postgres_and_redis_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(resp).await["status"], "ready");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn still_ready_without_redis_which_rest_does_not_need(pool: PgPool) {
    // Port 1 on loopback refuses connections: a Redis that is down. REST needs only PostgreSQL, so
    // a load balancer must keep sending traffic; the body still tells operators what is missing.
    let app = TestApp::spawn_with(pool, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "alive even when a dependency is down");
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let report = body(resp).await;
    assert_eq!(report["status"], "ready");
    assert_eq!(report["checks"]["postgres"], serde_json::json!({ "ok": true, "required": true }));
    assert_eq!(report["checks"]["redis"]["ok"], false);
    assert_eq!(report["checks"]["redis"]["required"], false);
    let token = app.user_token("minji").await;
    assert_eq!(app.get_as(&token, "/api/v1/me").await.status(), StatusCode::OK, "REST works without Redis");
}
