use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp, assert_error, body};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn sign_up_returns_the_new_account_without_its_password(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let resp = app
        .post(
            "/api/v1/users",
            json!({ "username": "Minji_01", "email": "minji@example.com", "password": PASSWORD, "region_id": 111 }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let user = body(resp).await;
    assert_eq!(user["username"], "minji_01");
    assert_eq!(user["email"], "minji@example.com");
    assert_eq!(user["region_id"], 111);
    assert_eq!(user["is_admin"], false);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none(), "{user}");
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'minji_01'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn usernames_are_unique_whatever_their_case(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.sign_up("junho").await.status(), StatusCode::CREATED);
    let resp = app
        .post("/api/v1/users", json!({ "username": "JunHo", "email": "other@example.com", "password": PASSWORD }))
        .await;
    let error = assert_error(resp, StatusCode::CONFLICT, "username_taken").await;
    assert_eq!(error["details"]["field"], "username");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_second_account_cannot_reuse_an_email(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.sign_up("junho").await.status(), StatusCode::CREATED);
    let resp = app
        .post("/api/v1/users", json!({ "username": "junho2", "email": "JUNHO@example.com", "password": PASSWORD }))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "email_taken").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn concurrent_sign_ups_for_one_name_produce_exactly_one_account(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let attempts = (0..8).map(|i| {
        app.post(
            "/api/v1/users",
            json!({ "username": "seoyeon", "email": format!("s{i}@example.com"), "password": PASSWORD }),
        )
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn invalid_sign_ups_name_the_rule_and_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let cases = [
        (json!({ "username": "ab", "email": "a@example.com", "password": PASSWORD }), "invalid_username", "username"),
        (
            json!({ "username": "bad-name", "email": "a@example.com", "password": PASSWORD }),
            "invalid_username",
            "username",
        ),
        (json!({ "username": "dohyun", "email": "not-an-email", "password": PASSWORD }), "invalid_email", "email"),
        (
            json!({ "username": "dohyun", "email": "d@example.com", "password": "short" }),
            "password_too_short",
            "password",
        ),
        (
            json!({ "username": "dohyun", "email": "d@example.com", "password": PASSWORD, "region_id": 999_999 }),
            "unknown_region",
            "region_id",
        ),
    ];
    for (request, code, field) in cases {
        let error =
            assert_error(app.post("/api/v1/users", request).await, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert_eq!(error["details"]["field"], field);
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn me_shows_the_callers_profile(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("hana").await;
    let resp = app.get_as(&token, "/api/v1/me").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(resp).await["username"], "hana");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn me_requires_a_valid_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_error(app.get("/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forged = app.get_as("nbs_not-a-real-token", "/api/v1/me").await;
    assert_error(forged, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn create_admin_refuses_a_squatted_name_unless_told_to_promote(pool: PgPool) {
    use neighborbid_shared::users::{self, ExistingAccount, NewUser, UserError};
    let app = TestApp::spawn(pool).await;
    let squatter = app.user_token("ops").await;
    let new = NewUser::parse("ops", "ops@neighborbid.test", "operator password".into(), None).unwrap();
    let hash = users::hash_password(new.password.expose()).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let refused = users::create_admin(&mut conn, &new, &hash, ExistingAccount::Refuse).await;
    assert!(matches!(refused, Err(UserError::UsernameTaken)), "{refused:?}");
    assert_eq!(app.get_as(&squatter, "/api/v1/me").await.status(), StatusCode::OK, "nothing changed");

    let admin = users::create_admin(&mut conn, &new, &hash, ExistingAccount::Promote).await.unwrap();
    assert!(admin.is_admin);
    assert_eq!(admin.email, "ops@neighborbid.test", "the operator's email replaces the squatter's");
    assert_eq!(app.get_as(&squatter, "/api/v1/me").await.status(), StatusCode::UNAUTHORIZED, "the squatter is out");
    app.login("ops", "operator password").await;
}
