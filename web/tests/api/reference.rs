use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{TestApp, body};

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn regions_form_a_tree_of_cities_districts_and_neighbourhoods(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let resp = app.get("/api/v1/regions").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = body(resp).await;
    assert!(page["next_cursor"].is_null());
    let regions = page["items"].as_array().unwrap();
    let by_id = |id: i64| regions.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("region {id}"));
    assert_eq!(by_id(1)["name"], "서울특별시");
    assert_eq!(by_id(1)["depth"], 0);
    assert_eq!(by_id(11)["name"], "강남구");
    assert_eq!(by_id(11)["parent_id"], 1);
    assert_eq!(by_id(111)["name"], "역삼동");
    assert_eq!(by_id(111)["depth"], 2);
    assert_eq!(by_id(2)["name"], "부산광역시");
    for region in regions {
        if let Some(parent) = region["parent_id"].as_i64() {
            assert_eq!(by_id(parent)["depth"].as_i64().unwrap() + 1, region["depth"].as_i64().unwrap(), "{region}");
        }
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn categories_have_slugs_and_names(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let page = body(app.get("/api/v1/categories").await).await;
    let slugs: Vec<&str> = page["items"].as_array().unwrap().iter().map(|c| c["slug"].as_str().unwrap()).collect();
    assert!(slugs.contains(&"electronics") && slugs.contains(&"furniture"), "{slugs:?}");
}
