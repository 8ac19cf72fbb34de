//! Neighbours talking: conversations between the two parties only, questions answered once,
//! reviews after a sale, the notification feed, `/ws/me` across replicas, digests and limits.

use std::time::Duration;

use futures::StreamExt;
use neighborbid_shared::ids::AuctionId;
use neighborbid_shared::jobs::runner::run_recorded;
use neighborbid_shared::jobs::send_email::SendEmail;
use neighborbid_shared::jobs::settle_auction::SettleAuction;
use neighborbid_shared::jobs::sweep::sweep;
use neighborbid_testkit::db::end_now;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Rivals, TestApp, assert_error, body};
use crate::live::{Client, next_events};

/// A seller's auction and a buyer's open conversation about it: (seller, buyer, auction, conversation).
async fn conversation(app: &TestApp) -> (String, String, i64, i64) {
    let seller = app.user_token("seller").await;
    let buyer = app.user_token("buyer").await;
    let auction = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let opened = app.post_as(&buyer, &format!("/api/v1/auctions/{auction}/conversations"), json!({})).await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let id = body(opened).await["id"].as_i64().unwrap();
    (seller, buyer, auction, id)
}

async fn send(app: &TestApp, token: &str, conversation: i64, text: &str) -> reqwest::Response {
    app.post_as(token, &format!("/api/v1/conversations/{conversation}/messages"), json!({ "body": text })).await
}

async fn me_socket(app: &TestApp, token: &str, after_seq: i64) -> Client {
    let mut request = format!("ws://{}/ws/me?after_seq={after_seq}", app.addr).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.expect("the upgrade succeeds").0
}

async fn settle(app: &TestApp, auction: i64) {
    end_now(&app.pool, AuctionId(auction)).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    neighborbid_shared::auctions::closing::close_due(&mut conn, 100).await.unwrap();
    run_recorded::<SettleAuction>(&app.jobs).await.unwrap();
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn only_the_two_parties_can_read_or_write_a_conversation(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, buyer, auction, id) = conversation(&app).await;
    let again = app.post_as(&buyer, &format!("/api/v1/auctions/{auction}/conversations"), json!({})).await;
    assert_eq!(again.status(), StatusCode::OK, "one conversation per buyer and auction");
    assert_eq!(body(again).await["id"], id);
    let own = app.post_as(&seller, &format!("/api/v1/auctions/{auction}/conversations"), json!({})).await;
    assert_error(own, StatusCode::FORBIDDEN, "own_auction").await;

    assert_eq!(send(&app, &buyer, id, "Is the inner pot included?").await.status(), StatusCode::CREATED);
    assert_eq!(send(&app, &seller, id, "Yes, and the manual.").await.status(), StatusCode::CREATED);
    let stranger = app.user_token("stranger").await;
    let admin = app.user_token("admin_like").await;
    sqlx::query("UPDATE users SET is_admin = true WHERE username = 'admin_like'").execute(&app.pool).await.unwrap();
    for outsider in [&stranger, &admin] {
        let read = app.get_as(outsider, &format!("/api/v1/conversations/{id}/messages")).await;
        assert_error(read, StatusCode::NOT_FOUND, "conversation_not_found").await;
        assert_error(send(&app, outsider, id, "hello").await, StatusCode::NOT_FOUND, "conversation_not_found").await;
        let mark =
            app.post_as(outsider, &format!("/api/v1/conversations/{id}/read"), json!({ "up_to_message_id": 1 })).await;
        assert_error(mark, StatusCode::NOT_FOUND, "conversation_not_found").await;
        let listed = body(app.get_as(outsider, "/api/v1/conversations").await).await;
        assert_eq!(listed["items"], json!([]));
    }
    for party in [&buyer, &seller] {
        let messages = body(app.get_as(party, &format!("/api/v1/conversations/{id}/messages")).await).await;
        let bodies: Vec<&str> =
            messages["items"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["Yes, and the manual.", "Is the inner pot included?"], "newest first");
    }
    let blank = send(&app, &buyer, id, "   ").await;
    assert_error(blank, StatusCode::UNPROCESSABLE_ENTITY, "invalid_length").await;
    let nul = send(&app, &buyer, id, "a\u{0}b").await;
    assert_error(nul, StatusCode::UNPROCESSABLE_ENTITY, "control_character").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn unread_counts_follow_read_marks_and_pages_follow_cursors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, buyer, _, id) = conversation(&app).await;
    let mut last = 0;
    for n in 1..=3 {
        last = body(send(&app, &buyer, id, &format!("message {n}")).await).await["id"].as_i64().unwrap();
    }
    let unread = |token: String| {
        let app = &app;
        async move { body(app.get_as(&token, "/api/v1/conversations").await).await["items"][0]["unread_count"].clone() }
    };
    assert_eq!(unread(seller.clone()).await, 3);
    assert_eq!(unread(buyer.clone()).await, 0, "your own messages are read");
    let me = body(app.get_as(&seller, "/api/v1/me").await).await;
    assert_eq!(me["unread_notifications"], 3);
    let mark = app
        .post_as(&seller, &format!("/api/v1/conversations/{id}/read"), json!({ "up_to_message_id": last - 1 }))
        .await;
    assert_eq!(mark.status(), StatusCode::NO_CONTENT);
    assert_eq!(unread(seller.clone()).await, 1);
    assert_eq!(body(app.get_as(&seller, "/api/v1/me").await).await["unread_notifications"], 1);
    let page = body(app.get_as(&seller, &format!("/api/v1/conversations/{id}/messages?limit=2")).await).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest =
        body(app.get_as(&seller, &format!("/api/v1/conversations/{id}/messages?limit=2&cursor={cursor}")).await).await;
    assert_eq!(rest["items"][0]["body"], "message 1");
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_settled_sale_opens_the_winner_s_conversation_and_opens_reviews(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000, json!({})).await;
    let seller = app.login("seller", crate::helpers::PASSWORD).await;
    app.bid(&minji, id, 10_000).await;
    let early = app.post_as(&minji, &format!("/api/v1/auctions/{id}/reviews"), json!({ "rating": 5 })).await;
    assert_error(early, StatusCode::CONFLICT, "auction_not_settled").await;
    settle(&app, id).await;
    assert_eq!(app.auction(id).await["status"], "settled");

    let conversations = body(app.get_as(&minji, "/api/v1/conversations").await).await;
    let opened = &conversations["items"][0];
    assert_eq!(opened["auction_id"], id);
    assert_eq!(opened["last_message"]["sender"], Value::Null, "the platform's message");
    let said = opened["last_message"]["body"].as_str().unwrap();
    assert!(said.contains("minji") && said.contains("10000 KRW"), "{said}");

    let outsider = app.post_as(&junho, &format!("/api/v1/auctions/{id}/reviews"), json!({ "rating": 1 })).await;
    assert_error(outsider, StatusCode::FORBIDDEN, "not_a_party").await;
    let review = json!({ "rating": 4, "body": "Smooth hand-over." });
    let first = app.post_as(&minji, &format!("/api/v1/auctions/{id}/reviews"), review.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let twice = app.post_as(&minji, &format!("/api/v1/auctions/{id}/reviews"), review).await;
    assert_error(twice, StatusCode::CONFLICT, "already_reviewed").await;
    let back = app.post_as(&seller, &format!("/api/v1/auctions/{id}/reviews"), json!({ "rating": 5 })).await;
    assert_eq!(back.status(), StatusCode::CREATED);
    let zero = app.post_as(&seller, &format!("/api/v1/auctions/{id}/reviews"), json!({ "rating": 0 })).await;
    assert_eq!(zero.status(), StatusCode::BAD_REQUEST, "outside 1-5 by the schema");

    let seller_id = app.auction(id).await["seller"]["id"].as_i64().unwrap();
    let profile = body(app.get(&format!("/api/v1/users/{seller_id}")).await).await;
    assert_eq!((profile["rating"]["average"].as_f64(), profile["rating"]["count"].as_i64()), (Some(4.0), Some(1)));
    assert_eq!(profile["sold_count"], 1);
    assert_eq!(app.auction(id).await["seller"]["rating"]["count"], 1, "buyers see it on the auction");
    let reviews = body(app.get(&format!("/api/v1/users/{seller_id}/reviews")).await).await;
    assert_eq!(reviews["items"][0]["body"], "Smooth hand-over.");
    let kinds = body(app.get_as(&minji, "/api/v1/me/notifications").await).await;
    assert!(kinds["items"].as_array().unwrap().iter().any(|n| n["kind"] == "won"), "{kinds}");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn only_the_seller_answers_a_question_and_only_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let asker = app.user_token("asker").await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let own = app.post_as(&seller, &format!("/api/v1/auctions/{id}/questions"), json!({ "body": "Mine?" })).await;
    assert_error(own, StatusCode::FORBIDDEN, "own_auction").await;
    let asked = app.post_as(&asker, &format!("/api/v1/auctions/{id}/questions"), json!({ "body": "Inner pot?" })).await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    let question = body(asked).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/questions/{question}/answer");
    assert_error(app.post_as(&asker, &path, json!({ "body": "Yes" })).await, StatusCode::FORBIDDEN, "not_seller").await;
    assert_eq!(app.post_as(&seller, &path, json!({ "body": "Yes, included." })).await.status(), StatusCode::OK);
    let again = app.post_as(&seller, &path, json!({ "body": "Really." })).await;
    assert_error(again, StatusCode::CONFLICT, "already_answered").await;
    let listed = body(app.get(&format!("/api/v1/auctions/{id}/questions")).await).await;
    assert_eq!(listed["items"][0]["answer"], "Yes, included.");
    let events: Vec<String> = sqlx::query_scalar("SELECT type FROM auction_events WHERE auction_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, ["question_asked", "question_answered"]);
    let feed = body(app.get_as(&asker, "/api/v1/me/notifications?unread=true").await).await;
    assert_eq!(feed["items"][0]["kind"], "question_answered");
    let up_to = feed["items"][0]["id"].as_i64().unwrap();
    let read = app.post_as(&asker, "/api/v1/me/notifications/read", json!({ "up_to_id": up_to })).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let unread = body(app.get_as(&asker, "/api/v1/me/notifications?unread=true").await).await;
    assert_eq!(unread["items"], json!([]));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_message_reaches_the_recipient_s_socket_on_another_replica_and_resumes_after_a_gap(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let prefix = app.jobs.prefix.clone();
    let other = TestApp::spawn_with(pool, &[("QUEUE_PREFIX", prefix.as_str())]).await;
    let (seller, buyer, _, id) = conversation(&app).await;
    let mut socket = me_socket(&other, &seller, 0).await;
    send(&app, &buyer, id, "first").await;
    let live = next_events(&mut socket, 2).await;
    assert_eq!(live.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(live[0]["type"], "message_received");
    assert_eq!(live[0]["data"]["body"], "first");
    assert_eq!(live[1]["type"], "notification");
    assert_eq!(live[1]["data"]["kind"], "message");
    drop(socket);
    send(&app, &buyer, id, "second").await;
    send(&app, &buyer, id, "third").await;
    let mut resumed = me_socket(&other, &seller, 2).await;
    let missed = next_events(&mut resumed, 4).await;
    assert_eq!(missed.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 4, 5, 6]);
    assert_eq!(missed[2]["data"]["body"], "third");
    let me = body(app.get_as(&seller, "/api/v1/me").await).await;
    assert_eq!(me["event_seq"], 6, "where a new socket starts to get only what happens next");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_socket_needs_a_token_and_closes_when_its_session_logs_out(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.user_token("minji").await;
    let anonymous = tokio_tungstenite::connect_async(format!("ws://{}/ws/me", app.addr)).await;
    assert!(anonymous.is_err(), "401 before the upgrade");
    // Browsers offer the token as a subprotocol.
    let mut request = format!("ws://{}/ws/me", app.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", format!("neighborbid, {token}").parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.expect("the upgrade succeeds");
    assert_eq!(response.headers()["sec-websocket-protocol"], "neighborbid");
    let logout = app.request(Method::DELETE, "/api/v1/sessions/current").bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let revoked = next_events(&mut socket, 1).await;
    assert_eq!(revoked[0]["type"], "session_revoked");
    let closed = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("closed promptly");
    assert!(matches!(closed, Some(Ok(Message::Close(_))) | None), "{closed:?}");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn one_digest_is_emailed_for_an_unread_conversation_and_none_for_a_read_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, buyer, _, id) = conversation(&app).await;
    for text in ["one", "two"] {
        send(&app, &buyer, id, text).await;
    }
    let last = body(send(&app, &seller, id, "reply").await).await["id"].as_i64().unwrap();
    let digests = "SELECT count(*) FROM notifications WHERE kind = 'message' AND email_due_at IS NOT NULL";
    let scheduled: i64 = sqlx::query_scalar(digests).fetch_one(&app.pool).await.unwrap();
    assert_eq!(scheduled, 2, "one per recipient's unread streak, not one per message");
    let buyer_reads =
        app.post_as(&buyer, &format!("/api/v1/conversations/{id}/read"), json!({ "up_to_message_id": last })).await;
    assert_eq!(buyer_reads.status(), StatusCode::NO_CONTENT);
    // Ten minutes later, as far as the sweep can tell.
    sqlx::query("UPDATE notifications SET email_due_at = now() - interval '11 minutes' WHERE email_due_at IS NOT NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    sweep(&mut conn, 30).await.unwrap();
    run_recorded::<SendEmail>(&app.jobs).await.unwrap();
    sweep(&mut conn, 30).await.unwrap();
    run_recorded::<SendEmail>(&app.jobs).await.unwrap();
    let sent: Vec<(String, bool)> = sqlx::query_as(
        "SELECT u.username, n.sent_at IS NOT NULL FROM notifications n JOIN users u ON u.id = n.recipient_id
         WHERE n.kind = 'message' AND n.email_due_at IS NOT NULL ORDER BY u.username",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(sent, [("buyer".to_owned(), false), ("seller".to_owned(), true)]);
    let emails: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(emails, 1);
    let off = app.request(Method::PATCH, "/api/v1/me").bearer_auth(&seller);
    let off = off.json(&json!({ "email_preferences": { "messages": false } })).send().await.unwrap();
    assert_eq!(body(off).await["email_preferences"], json!({ "outbid": true, "messages": false }));
    send(&app, &buyer, id, "three").await;
    let due: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT email_due_at FROM notifications WHERE kind = 'message' ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(due, None, "digests turned off");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_blocked_user_can_neither_open_nor_write(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (seller, buyer, _, id) = conversation(&app).await;
    let buyer_id = body(app.get_as(&buyer, "/api/v1/me").await).await["id"].as_i64().unwrap();
    let block = app.request(Method::PUT, &format!("/api/v1/users/{buyer_id}/block")).bearer_auth(&seller);
    assert_eq!(block.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_error(send(&app, &buyer, id, "hello?").await, StatusCode::FORBIDDEN, "blocked").await;
    let second = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let open = app.post_as(&buyer, &format!("/api/v1/auctions/{second}/conversations"), json!({})).await;
    assert_error(open, StatusCode::FORBIDDEN, "blocked").await;
    let unblock = app.request(Method::DELETE, &format!("/api/v1/users/{buyer_id}/block")).bearer_auth(&seller);
    assert_eq!(unblock.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(send(&app, &buyer, id, "hello?").await.status(), StatusCode::CREATED);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn too_many_messages_or_questions_are_answered_429_with_retry_after(pool: PgPool) {
    let limits = [("RATE_LIMITS", "on"), ("RATE_LIMIT_MESSAGES_USER", "2/min"), ("RATE_LIMIT_QUESTIONS_USER", "1/h")];
    let app = TestApp::spawn_with(pool, &limits).await;
    let (_, buyer, auction, id) = conversation(&app).await;
    for _ in 0..2 {
        assert_eq!(send(&app, &buyer, id, "hi").await.status(), StatusCode::CREATED);
    }
    let limited = send(&app, &buyer, id, "hi").await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    let questions = format!("/api/v1/auctions/{auction}/questions");
    let ask = || app.post_as(&buyer, &questions, json!({ "body": "Inner pot?" }));
    assert_eq!(ask().await.status(), StatusCode::CREATED);
    let limited = ask().await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 60, "an hourly limit waits for more than a minute: {retry_after}");
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
