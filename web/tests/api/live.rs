//! Real WebSocket clients against real web instances sharing one Redis.

use std::time::Duration;

use futures::StreamExt;
use neighborbid_shared::ids::AuctionId;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Rivals, TestApp};

pub type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, auction_id: i64, after_seq: i64) -> Client {
    let url = format!("ws://{}/ws/auctions/{auction_id}?after_seq={after_seq}", app.addr);
    tokio_tungstenite::connect_async(url).await.expect("the upgrade succeeds").0
}

/// The next `n` events, failing if they take more than 10 s.
pub async fn next_events(client: &mut Client, n: usize) -> Vec<Value> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", events.len()))
            .expect("the socket stays open")
            .expect("no socket error");
        if let Message::Text(text) = message {
            events.push(serde_json::from_str(&text).unwrap());
        }
    }
    events
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_watcher_gets_missed_events_first_then_live_ones_without_gaps_or_repeats(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(1_000_000, json!({ "bid_increment": 1_000 })).await;
    for amount in [10_000, 11_000, 12_000] {
        app.bid(if amount == 11_000 { &junho } else { &minji }, id, amount).await;
    }
    let mut client = connect(&app, id, 1).await;
    let replayed = next_events(&mut client, 2).await;
    assert_eq!(seqs(&replayed), [2, 3]);
    assert_eq!(replayed[1]["type"], "bid_placed");
    assert_eq!(replayed[1]["auction_id"], id);
    assert_eq!(replayed[1]["data"]["amount"], 12_000);
    for amount in [13_000, 14_000] {
        app.bid(if amount == 13_000 { &junho } else { &minji }, id, amount).await;
    }
    let live = next_events(&mut client, 2).await;
    assert_eq!(seqs(&live), [4, 5]);
    assert_eq!(live[1]["data"]["min_next_bid"], 15_000);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn bids_on_one_instance_reach_watchers_on_another(pool: PgPool) {
    let prefix = format!("test-{:016x}", rand::random::<u64>());
    let one = TestApp::spawn_with(pool.clone(), &[("QUEUE_PREFIX", &prefix)]).await;
    let two = TestApp::spawn_with(pool, &[("QUEUE_PREFIX", &prefix)]).await;
    let Rivals { minji, junho, auction_id: id } = one.rivals(1_000_000, json!({ "bid_increment": 1_000 })).await;
    let (mut on_one, mut on_two) = (connect(&one, id, 0).await, connect(&two, id, 0).await);
    for i in 0..10 {
        let bidder = if i % 2 == 0 { &minji } else { &junho };
        assert_eq!(one.bid(bidder, id, 10_000 + 1_000 * i).await.status(), reqwest::StatusCode::CREATED);
    }
    let expected: Vec<i64> = (1..=10).collect();
    assert_eq!(seqs(&next_events(&mut on_one, 10).await), expected);
    assert_eq!(seqs(&next_events(&mut on_two, 10).await), expected);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_client_that_reconnects_after_missing_fifty_events_ends_with_the_full_sequence(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000_000, json!({ "bid_increment": 1_000 })).await;
    let mut client = connect(&app, id, 0).await;
    app.bid(&minji, id, 10_000).await;
    let mut seen = seqs(&next_events(&mut client, 1).await);
    drop(client);
    for i in 1..=50 {
        app.bid(if i % 2 == 0 { &minji } else { &junho }, id, 10_000 + 1_000 * i).await;
    }
    let mut client = connect(&app, id, *seen.last().unwrap()).await;
    seen.extend(seqs(&next_events(&mut client, 50).await));
    assert_eq!(seen, (1..=51).collect::<Vec<i64>>());
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn events_survive_killed_pubsub_connections(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(100_000_000, json!({ "bid_increment": 1_000 })).await;
    let mut client = connect(&app, id, 0).await;
    let mut redis =
        redis::Client::open(crate::helpers::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    for i in 0..20_i64 {
        if i == 10 {
            let _: redis::Value =
                redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut redis).await.unwrap();
        }
        app.bid(if i % 2 == 0 { &minji } else { &junho }, id, 10_000 + 1_000 * i).await;
    }
    assert_eq!(seqs(&next_events(&mut client, 20).await), (1..=20).collect::<Vec<i64>>());
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn an_unknown_auction_is_a_404_before_the_upgrade(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let url = format!("ws://{}/ws/auctions/999999", app.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected a 404, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn an_oversized_client_message_closes_the_connection_with_policy_violation(pool: PgPool) {
    use futures::SinkExt;
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let mut client = connect(&app, id, 0).await;
    client.send(Message::text("x".repeat(10_000))).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = client.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1008));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_client_too_slow_to_read_is_cut_off_while_a_fast_one_gets_everything(pool: PgPool) {
    let prefix = format!("test-{:016x}", rand::random::<u64>());
    let app = TestApp::spawn_with(pool, &[("QUEUE_PREFIX", &prefix)]).await;
    let seller = app.user_token("seller").await;
    let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let mut fast = connect(&app, id, 0).await;
    // A client that reads nothing, with a tiny receive window so the server's sends back up quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4_096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let url = format!("ws://{}/ws/auctions/{id}", app.addr);
    let (mut slow, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A writer publishing a flood of events for the auction (seq 1..=N, 1 KiB of data each).
    const N: i64 = 3_000;
    let mut redis =
        redis::Client::open(crate::helpers::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    for seq in 1..=N {
        let event = json!({ "type": "bid_placed", "auction_id": id, "seq": seq, "at": chrono::Utc::now(), "data": { "pad": "x".repeat(1_024) } });
        pipe.cmd("PUBLISH").arg(format!("{prefix}:auction:{id}")).arg(event.to_string()).ignore();
    }
    let (published, fast_got) = tokio::join!(pipe.query_async::<()>(&mut redis), next_events(&mut fast, N as usize));
    published.unwrap();
    assert_eq!(seqs(&fast_got), (1..=N).collect::<Vec<i64>>());
    let mut slow_got = 0;
    let mut close_code = None;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(15), slow.next()).await {
        match message {
            Ok(Message::Text(_)) => slow_got += 1,
            Ok(Message::Close(frame)) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(slow_got < N, "the slow client was never cut off ({slow_got} events)");
    assert!(close_code.is_none_or(|code| code == 1013), "closed with {close_code:?}");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_client_claiming_a_future_seq_cannot_blind_the_other_watchers(pool: PgPool) {
    // No Redis: every live event reaches watchers through the database catch-up alone.
    let app = TestApp::spawn_with(pool, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let Rivals { minji, junho, auction_id: id } = app.rivals(1_000_000, json!({ "bid_increment": 1_000 })).await;
    app.bid(&minji, id, 10_000).await;
    let mut liar = connect(&app, id, 1_000_000_000).await;
    let mut honest = connect(&app, id, 0).await;
    assert_eq!(seqs(&next_events(&mut honest, 1).await), [1]);
    app.bid(&junho, id, 11_000).await;
    assert_eq!(seqs(&next_events(&mut honest, 1).await), [2], "the catch-up still serves the auction");
    assert_eq!(seqs(&next_events(&mut liar, 1).await), [2], "the claim is clamped to what exists");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_first_watcher_of_an_auction_with_a_long_history_is_not_flooded_with_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let Rivals { minji, auction_id: id, .. } = app.rivals(1_000_000, json!({ "bid_increment": 1_000 })).await;
    // More stored events than a connection's buffer holds, and no one watching.
    let history = i64::try_from(neighborbid_web::live::CONNECTION_BUFFER).unwrap() + 100;
    sqlx::query(
        "WITH stored AS (INSERT INTO auction_events (auction_id, seq, type, data) \
                         SELECT $1, n, 'bid_placed', '{}' FROM generate_series(1, $2) AS n) \
         UPDATE auctions SET seq = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(history)
    .execute(&app.pool)
    .await
    .unwrap();

    let mut client = connect(&app, id, history).await;
    // Past two passes of the database catch-up, which must not take that history as undelivered.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    app.bid(&minji, id, 10_000).await;
    assert_eq!(seqs(&next_events(&mut client, 1).await), [history + 1], "the connection stayed open and current");
}

/// Subscribes to an auction's Redis channel, as every web replica does.
async fn subscribe(prefix: &str, auction_id: i64) -> redis::aio::PubSub {
    let mut pubsub = redis::Client::open(crate::helpers::redis_url()).unwrap().get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(neighborbid_shared::events::channel(
            prefix,
            neighborbid_shared::events::Stream::Auction(AuctionId(auction_id)),
        ))
        .await
        .unwrap();
    pubsub
}

async fn next_published(pubsub: &mut redis::aio::PubSub) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(10), pubsub.on_message().next())
        .await
        .expect("an event is published")
        .unwrap();
    serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn buy_now_and_cancel_are_published_to_every_replica(pool: PgPool) {
    let prefix = format!("test-{:016x}", rand::random::<u64>());
    let app = TestApp::spawn_with(pool, &[("QUEUE_PREFIX", prefix.as_str())]).await;
    let Rivals { minji, auction_id, .. } = app.rivals(1_000_000, json!({ "buy_now_price": 50_000 })).await;
    let mut channel = subscribe(&prefix, auction_id).await;
    let bought = app.post_as(&minji, &format!("/api/v1/auctions/{auction_id}/buy-now"), json!({})).await;
    assert_eq!(bought.status(), reqwest::StatusCode::OK);
    let types: Vec<Value> =
        vec![next_published(&mut channel).await["type"].clone(), next_published(&mut channel).await["type"].clone()];
    assert_eq!(types, [json!("bid_placed"), json!("auction_closed")]);

    let seller = app.user_token("seller2").await;
    let other = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let mut channel = subscribe(&prefix, other).await;
    let cancelled = app.post_as(&seller, &format!("/api/v1/auctions/{other}/cancel"), json!({})).await;
    assert_eq!(cancelled.status(), reqwest::StatusCode::OK);
    assert_eq!(next_published(&mut channel).await["type"], "auction_cancelled");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn websockets_per_client_address_are_bounded(pool: PgPool) {
    let app = TestApp::spawn_with(pool, &[("WS_MAX_CONNECTIONS_PER_IP", "2")]).await;
    let Rivals { auction_id: id, .. } = app.rivals(1_000, json!({})).await;
    let first = connect(&app, id, 0).await;
    let _second = connect(&app, id, 0).await;
    let url = format!("ws://{}/ws/auctions/{id}", app.addr);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("a third socket from one address must be refused, got {:?}", other.map(|_| ())),
    }
    drop(first);
    // The server notices the closed socket and frees its place.
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(&url).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a freed place was never reused");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_server_full_of_websockets_answers_503_before_the_upgrade(pool: PgPool) {
    let app = TestApp::spawn_with(pool, &[("WS_MAX_CONNECTIONS", "1")]).await;
    let Rivals { auction_id: id, .. } = app.rivals(1_000, json!({})).await;
    let _only = connect(&app, id, 0).await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws/auctions/{id}", app.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        other => panic!("a socket past the server's maximum must be refused, got {:?}", other.map(|_| ())),
    }
}
