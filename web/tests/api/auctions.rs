use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_error, body};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_new_auction_shows_its_seller_category_region_and_next_minimum(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let auction = app.create_auction(&seller, json!({ "buy_now_price": 90_000, "reserve_price": 30_000 })).await;
    assert_eq!(auction["seller"]["username"], "seller");
    assert_eq!(auction["category"]["slug"], "sports");
    assert_eq!(auction["region"]["name"], "역삼동");
    assert_eq!(auction["status"], "active");
    assert_eq!(auction["current_price"], 10_000);
    assert_eq!(auction["min_next_bid"], 10_000);
    assert_eq!(auction["bid_increment"], 1_000);
    assert_eq!(auction["reserve_price_met"], false);
    assert_eq!(auction["soft_close_seconds"], 120);
    assert_eq!(auction["shipping_payer"], "buyer");
    assert!(auction.get("reserve_price").is_none(), "the reserve stays secret");
    let id = auction["id"].as_i64().unwrap();
    assert_eq!(app.auction(id).await["title"], "Vintage bicycle");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn invalid_auctions_name_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let cases = [
        (json!({ "title": "" }), "title"),
        (json!({ "ends_at": soon }), "ends_at"),
        (json!({ "buy_now_price": 1_000 }), "buy_now_price"),
        (json!({ "category_id": 999 }), "category_id"),
        (json!({ "region_id": 999 }), "region_id"),
        (json!({ "soft_close_seconds": 601 }), "soft_close_seconds"),
        (json!({ "start_price": 0 }), "start_price"),
    ];
    for (overrides, field) in cases {
        let mut request = json!({
            "title": "Lamp", "category_id": 3, "region_id": 111, "condition": "good", "start_price": 1_000,
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        });
        for (k, v) in overrides.as_object().unwrap() {
            request[k] = v.clone();
        }
        let resp = app.post_as(&seller, "/api/v1/auctions", request).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(body(resp).await["error"]["details"]["field"], field);
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_region_filter_covers_the_subtree_and_national_auctions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    app.create_auction(&seller, json!({ "title": "Gangnam lamp", "region_id": 111 })).await;
    app.create_auction(&seller, json!({ "title": "Mapo desk", "region_id": 121 })).await;
    app.create_auction(&seller, json!({ "title": "Busan national chair", "region_id": 211, "national": true })).await;
    app.create_auction(&seller, json!({ "title": "Busan sofa", "region_id": 212 })).await;
    let titles = |page: serde_json::Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap().to_owned()).collect()
    };
    let seoul = titles(body(app.get("/api/v1/auctions?region_id=1&sort=newest").await).await);
    assert_eq!(seoul, ["Busan national chair", "Mapo desk", "Gangnam lamp"]);
    let gangnam = titles(body(app.get("/api/v1/auctions?region_id=11").await).await);
    assert!(gangnam.contains(&"Gangnam lamp".to_owned()) && !gangnam.contains(&"Mapo desk".to_owned()));
    let search = titles(body(app.get("/api/v1/auctions?q=SOFA").await).await);
    assert_eq!(search, ["Busan sofa"]);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn sorts_and_cursors_walk_every_auction_exactly_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let bidder = app.user_token("bidder").await;
    app.deposit(&bidder, 10_000_000).await;
    for i in 0..7_i64 {
        let auction = app
            .create_auction(&seller, json!({ "start_price": 1_000 * (i % 3 + 1), "ends_at": (chrono::Utc::now() + chrono::Duration::minutes(10 + i % 2)).to_rfc3339() }))
            .await;
        if i % 2 == 0 {
            app.bid(&bidder, auction["id"].as_i64().unwrap(), 1_000 * (i % 3 + 1)).await;
        }
    }
    for sort in ["ending_soon", "newest", "price_asc", "price_desc", "most_bids"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("/api/v1/auctions?sort={sort}&limit=3&cursor={c}"),
                None => format!("/api/v1/auctions?sort={sort}&limit=3"),
            };
            let page = body(app.get(&url).await).await;
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let ids: std::collections::HashSet<i64> = seen.iter().map(|a| a["id"].as_i64().unwrap()).collect();
        assert_eq!((seen.len(), ids.len()), (7, 7), "{sort}");
        let keys: Vec<i64> = seen
            .iter()
            .map(|a| match sort {
                "ending_soon" => {
                    chrono::DateTime::parse_from_rfc3339(a["ends_at"].as_str().unwrap()).unwrap().timestamp_micros()
                }
                "newest" => -a["id"].as_i64().unwrap(),
                "price_asc" => a["current_price"].as_i64().unwrap(),
                "price_desc" => -a["current_price"].as_i64().unwrap(),
                _ => -a["bid_count"].as_i64().unwrap(),
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{sort}: {keys:?}");
    }
    let garbage = app.get("/api/v1/auctions?cursor=not-a-cursor").await;
    assert_error(garbage, StatusCode::BAD_REQUEST, "invalid_cursor").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn price_and_category_filters_and_the_callers_own_lists(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let bidder = app.user_token("bidder").await;
    app.deposit(&bidder, 100_000).await;
    let cheap = app.create_auction(&seller, json!({ "start_price": 1_000, "category_id": 1 })).await;
    let dear = app.create_auction(&seller, json!({ "start_price": 50_000, "category_id": 3 })).await;
    let count = |page: serde_json::Value| page["items"].as_array().unwrap().len();
    assert_eq!(count(body(app.get("/api/v1/auctions?max_price=10000").await).await), 1);
    assert_eq!(count(body(app.get("/api/v1/auctions?min_price=10000&category_id=3").await).await), 1);
    assert_eq!(count(body(app.get("/api/v1/auctions?category_id=1&min_price=2000").await).await), 0);
    app.bid(&bidder, cheap["id"].as_i64().unwrap(), 1_000).await;
    let dear_id = dear["id"].as_i64().unwrap();
    let watch = app
        .request(Method::PUT, &format!("/api/v1/auctions/{dear_id}/watch"))
        .bearer_auth(&bidder)
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), StatusCode::NO_CONTENT);
    let again = app
        .request(Method::PUT, &format!("/api/v1/auctions/{dear_id}/watch"))
        .bearer_auth(&bidder)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.auction(dear_id).await["watchers_count"], 1, "watching twice counts once");
    let first_id = |page: serde_json::Value| page["items"][0]["id"].clone();
    assert_eq!(first_id(body(app.get_as(&bidder, "/api/v1/me/auctions?view=bidding").await).await), cheap["id"]);
    assert_eq!(first_id(body(app.get_as(&bidder, "/api/v1/me/auctions?view=watching").await).await), dear["id"]);
    assert_eq!(count(body(app.get_as(&seller, "/api/v1/me/auctions").await).await), 2);
    let unwatch = app
        .request(Method::DELETE, &format!("/api/v1/auctions/{dear_id}/watch"))
        .bearer_auth(&bidder)
        .send()
        .await
        .unwrap();
    assert_eq!(unwatch.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.auction(dear_id).await["watchers_count"], 0);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn only_the_seller_may_cancel_and_only_before_any_bid(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let bidder = app.user_token("bidder").await;
    app.deposit(&bidder, 100_000).await;
    let quiet = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    let busy = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
    app.bid(&bidder, busy, 10_000).await;
    let by_other = app.post_as(&bidder, &format!("/api/v1/auctions/{quiet}/cancel"), json!({})).await;
    assert_error(by_other, StatusCode::FORBIDDEN, "not_seller").await;
    let with_bids = app.post_as(&seller, &format!("/api/v1/auctions/{busy}/cancel"), json!({})).await;
    assert_error(with_bids, StatusCode::CONFLICT, "auction_has_bids").await;
    let resp = app.post_as(&seller, &format!("/api/v1/auctions/{quiet}/cancel"), json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(resp).await["status"], "cancelled");
    let bid_on_cancelled = app.bid(&bidder, quiet, 10_000).await;
    assert_error(bid_on_cancelled, StatusCode::CONFLICT, "auction_not_active").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn listing_costs_the_same_statements_for_one_item_or_a_hundred(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let seller = app.user_token("seller").await;
    let bidder = app.user_token("bidder").await;
    app.deposit(&bidder, 100_000_000).await;
    for _ in 0..100 {
        let id = app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap();
        app.bid(&bidder, id, 10_000).await;
        let watch = format!("/api/v1/auctions/{id}/watch");
        app.request(Method::PUT, &watch).bearer_auth(&bidder).send().await.unwrap();
    }
    let one = crate::statements::count(app.get("/api/v1/auctions?limit=1")).await;
    let hundred = crate::statements::count(app.get("/api/v1/auctions?limit=100")).await;
    assert_eq!(one, hundred, "statements per page must not grow with its size");
    assert!(hundred <= 2, "{hundred} statements for one page");
    assert!(hundred >= 1, "the counter saw no statement at all");
}
