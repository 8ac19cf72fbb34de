use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{TestApp, body};

const COMMITTED_SPEC: &str = include_str!("../../../openapi/openapi.json");

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn served_spec_matches_the_committed_snapshot(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let served = body(resp).await;
    let committed: serde_json::Value = serde_json::from_str(COMMITTED_SPEC).unwrap();
    assert!(
        served == committed,
        "the API changed: regenerate the snapshot with `scripts/update-openapi` and commit openapi/openapi.json"
    );
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn swagger_ui_is_served(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("swagger"));
}
