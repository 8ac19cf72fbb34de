use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp, assert_error, body};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn login_returns_a_token_that_expires_in_a_week(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_up("minji").await;
    let resp = app.post("/api/v1/sessions", json!({ "username": "MINJI", "password": PASSWORD })).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let session = body(resp).await;
    assert_eq!(session["user"]["username"], "minji");
    let expires_at: chrono::DateTime<chrono::Utc> = session["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires_at - chrono::Utc::now();
    assert!(
        ttl > chrono::Duration::days(7) - chrono::Duration::minutes(1) && ttl <= chrono::Duration::days(7),
        "{ttl}"
    );
    let token = session["token"].as_str().unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE token_hash = sha256($1::text::bytea)")
        .bind(token)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the token's hash is stored");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn failed_logins_do_not_reveal_whether_the_user_exists(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_up("minji").await;
    let wrong_password =
        app.post("/api/v1/sessions", json!({ "username": "minji", "password": "wrong password" })).await;
    let no_such_user =
        app.post("/api/v1/sessions", json!({ "username": "nobody", "password": "wrong password" })).await;
    let a = assert_error(wrong_password, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let b = assert_error(no_such_user, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(a, b);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn logout_revokes_only_the_token_it_was_called_with(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let phone = app.user_token("minji").await;
    let laptop = app.login("minji", PASSWORD).await;
    let resp = app.request(Method::DELETE, "/api/v1/sessions/current").bearer_auth(&phone).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(app.get_as(&phone, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(app.get_as(&laptop, "/api/v1/me").await.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn expired_tokens_stop_working(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    assert_error(app.get_as(&token, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
