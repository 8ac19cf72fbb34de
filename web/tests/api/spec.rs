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

/// The conventions every operation follows, so that generated SDKs stay usable and new endpoints
/// cannot drift: read the failure message for what to add.
#[test]
fn every_operation_follows_the_sdk_conventions() {
    let spec: serde_json::Value = serde_json::from_str(COMMITTED_SPEC).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let mut need = |ok: bool, what: &str| {
                if !ok {
                    problems.push(format!("{name}: {what}"));
                }
            };
            let id = op["operationId"].as_str().unwrap_or_default();
            need(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c == '_') && ids.insert(id.to_owned()),
                "a unique snake_case operationId (#[oai(operation_id = \"verb_noun\")])",
            );
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                if !status.starts_with('2') {
                    let schema = &response["content"]["application/json; charset=utf-8"]["schema"]["$ref"];
                    need(schema == "#/components/schemas/ErrorBody", &format!("{status} must carry ErrorBody"));
                }
            }
            let documents = |status: &str| responses.contains_key(status);
            need(documents("500") && documents("503"), "500 and 503 (return ApiError<…> with a 503 in its set)");
            if let Some(body) = op.get("requestBody") {
                need(["400", "413", "415"].iter().all(|s| documents(s)), "400, 413 and 415 for its body");
                let json_schema = body["content"]["application/json; charset=utf-8"]["schema"]["$ref"].as_str();
                let example = json_schema.and_then(|r| spec.pointer(&format!("{}/example", &r[1..])));
                need(json_schema.is_none() || example.is_some(), "an example for its JSON body (document/rules.rs)");
            }
            // (`{}` among the requirements: the token is optional, and a bad one counts as none.)
            let required_token = op["security"]
                .as_array()
                .is_some_and(|s| !s.iter().any(|r| r.as_object().is_some_and(|r| r.is_empty())));
            if required_token {
                need(documents("401"), "401 for its bearer token");
            }
            if path.contains('{') {
                need(documents("400") && documents("404"), "400 and 404 for its path parameter");
            }
        }
    }
    let text = COMMITTED_SPEC;
    if text.contains("\"allOf\"") {
        problems.push("an `allOf` (document/schemas.rs unwraps described $refs; generators refuse the rest)".into());
    }
    assert!(problems.is_empty(), "operations break the SDK conventions:\n{}", problems.join("\n"));
}
