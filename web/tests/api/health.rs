use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{TestApp, body};

#[sqlx::test(migrations = "../migrations")]
async fn ready_when_postgres_and_redis_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(resp).await["status"], "ready");
}

#[sqlx::test(migrations = "../migrations")]
async fn not_ready_when_redis_is_unreachable(pool: PgPool) {
    // Port 1 on loopback refuses connections: a Redis that is down.
    let app = TestApp::spawn_with(pool, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "alive even when a dependency is down");
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let report = body(resp).await;
    assert_eq!(report["checks"]["postgres"]["ok"], true);
    assert_eq!(report["checks"]["redis"]["ok"], false);
}
