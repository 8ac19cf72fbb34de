//! Floods cannot take the API down: rate limits per client address, per account name and per user,
//! a bounded password-hashing queue, and no database connection held while hashing.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::{TestApp, assert_error, body};

async fn login_from(app: &TestApp, forwarded_for: Option<&str>, username: impl AsRef<str>) -> Response {
    let username = username.as_ref();
    let mut request = app
        .request(Method::POST, "/api/v1/sessions")
        .json(&json!({ "username": username, "password": "wrong password!" }));
    if let Some(ip) = forwarded_for {
        request = request.header("X-Forwarded-For", ip);
    }
    request.send().await.unwrap()
}

async fn assert_throttled(resp: Response) {
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");
    let error = assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(error["details"]["retry_after_seconds"], retry_after);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn password_guessing_from_one_address_is_answered_429(pool: PgPool) {
    let app = TestApp::spawn_with(pool, &[("RATE_LIMITS", "on"), ("RATE_LIMIT_LOGIN_IP", "3/min")]).await;
    for i in 0..3 {
        let resp = login_from(&app, None, format!("victim{i}")).await;
        assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    assert_throttled(login_from(&app, None, "victim9").await).await;
    // Without TRUSTED_PROXIES the header is the client's own claim and changes nothing.
    assert_throttled(login_from(&app, Some("198.51.100.1"), "victim9").await).await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn one_account_guessed_from_many_addresses_is_answered_429(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        &[("RATE_LIMITS", "on"), ("RATE_LIMIT_LOGIN_ACCOUNT", "2/min"), ("TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    for ip in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(login_from(&app, Some(ip), "Minji").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_throttled(login_from(&app, Some("198.51.100.3"), "minji").await).await;
    let other = login_from(&app, Some("198.51.100.3"), "junho").await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED, "other accounts are not affected");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn sign_ups_per_address_and_writes_per_user_are_limited(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        &[("RATE_LIMITS", "on"), ("RATE_LIMIT_SIGNUP_IP", "2/h"), ("RATE_LIMIT_WRITES_USER", "3/min")],
    )
    .await;
    let minji = app.user_token("minji").await;
    assert_eq!(app.sign_up("junho").await.status(), StatusCode::CREATED);
    assert_throttled(app.sign_up("seoyeon").await).await;
    for _ in 0..3 {
        let resp = app.post_as(&minji, "/api/v1/wallet/deposits", json!({ "amount": 1_000 })).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    assert_throttled(app.post_as(&minji, "/api/v1/wallet/deposits", json!({ "amount": 1_000 })).await).await;
    assert_eq!(app.get_as(&minji, "/api/v1/wallet").await.status(), StatusCode::OK, "reads are not writes");
    assert_eq!(app.wallet(&minji).await, (3_000, 0), "the refused deposit moved nothing");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn one_limit_holds_across_web_replicas(pool: PgPool) {
    let prefix = format!("test-{:016x}", rand::random::<u64>());
    let settings = [("RATE_LIMITS", "on"), ("RATE_LIMIT_LOGIN_IP", "2/min"), ("QUEUE_PREFIX", prefix.as_str())];
    let first = TestApp::spawn_with(pool.clone(), &settings).await;
    let second = TestApp::spawn_with(pool, &settings).await;
    assert_eq!(login_from(&first, None, "minji").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login_from(&second, None, "minji").await.status(), StatusCode::UNAUTHORIZED);
    assert_throttled(login_from(&first, None, "minji").await).await;
    assert_throttled(login_from(&second, None, "minji").await).await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn limits_still_hold_per_process_while_redis_is_down(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        &[("RATE_LIMITS", "on"), ("RATE_LIMIT_LOGIN_IP", "2/min"), ("REDIS_URL", "redis://127.0.0.1:1")],
    )
    .await;
    for _ in 0..2 {
        assert_eq!(login_from(&app, None, "minji").await.status(), StatusCode::UNAUTHORIZED, "not failing closed");
    }
    assert_throttled(login_from(&app, None, "minji").await).await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_full_hashing_queue_sheds_logins_with_503_and_retry_after(pool: PgPool) {
    let app = TestApp::spawn_with(pool, &[("HASHING_QUEUE", "0")]).await;
    let logins = futures::future::join_all((0..24).map(|i| login_from(&app, None, format!("ghost{i}")))).await;
    let mut shed = 0;
    for resp in logins {
        match resp.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(resp.headers()["retry-after"], "1");
                assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
                shed += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(shed > 0, "24 logins at once cannot all fit the hashing slots with no queue");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn logins_waiting_for_hashing_hold_no_database_connection(pool: PgPool) {
    // Two connections in all, given up after a second: a login that kept one while queueing for a
    // hashing slot would starve every other request into 503 `database_unavailable`.
    let small = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let app = TestApp::spawn_with(small, &[("HASHING_QUEUE", "1000")]).await;
    let token = app.user_token("minji").await;
    let flood = futures::future::join_all((0..60).map(|i| login_from(&app, None, format!("ghost{i}"))));
    let reads = async {
        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(app.get_as(&token, "/api/v1/me").await.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        statuses
    };
    let (logins, reads) = tokio::join!(flood, reads);
    assert!(reads.iter().all(|s| *s == StatusCode::OK), "reads during the flood: {reads:?}");
    assert!(logins.iter().all(|r| r.status() == StatusCode::UNAUTHORIZED));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn me_shows_the_wallet(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let minji = app.user_token("minji").await;
    app.deposit(&minji, 25_000).await;
    let me = body(app.get_as(&minji, "/api/v1/me").await).await;
    assert_eq!(me["username"], "minji");
    assert_eq!(me["wallet"]["available"], 25_000);
    assert_eq!(me["wallet"]["held"], 0);
}
