//! A sweep of every endpoint in the spec with malformed, mistyped, missing, oversized and
//! unauthorised input: every answer must be a 4xx in the documented error shape, never a 5xx.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_error, body};

const SPEC: &str = include_str!("../../../openapi/openapi.json");

struct Operation {
    method: Method,
    /// Path with `{param}` placeholders, relative to /api/v1.
    path: String,
    secured: bool,
    query_params: Vec<String>,
    body_schema: Option<Value>,
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let schema_ref = &op["requestBody"]["content"]["application/json; charset=utf-8"]["schema"]["$ref"];
            ops.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                secured: op.get("security").is_some(),
                query_params: params
                    .iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect(),
                body_schema: schema_ref.as_str().map(|r| resolve(spec, r)),
            });
        }
    }
    ops
}

fn resolve(spec: &Value, reference: &str) -> Value {
    let name = reference.trim_start_matches("#/components/schemas/");
    spec["components"]["schemas"][name].clone()
}

/// A value of the wrong JSON type for a property of the given schema.
fn wrong_type(property: &Value) -> Value {
    match property["type"].as_str() {
        Some("string") => json!(12345),
        Some("integer") | Some("number") => json!("not a number"),
        Some("boolean") => json!("yes"),
        Some("array") => json!({ "not": "an array" }),
        _ => json!([1, 2, 3]),
    }
}

/// Request bodies a careless or hostile client might send for an object schema.
fn bad_bodies(schema: &Value) -> Vec<(String, String)> {
    let mut bodies = vec![
        ("truncated JSON".into(), "{\"amount\": ".into()),
        ("not JSON".into(), "amount=5".into()),
        ("JSON null".into(), "null".into()),
        ("an array".into(), "[]".into()),
    ];
    // A body whose fields are all optional (a PATCH) may be empty, and ignores names it lacks.
    if schema["required"].as_array().is_some_and(|required| !required.is_empty()) {
        bodies.push(("an empty object".into(), "{}".into()));
        bodies.push(("a huge number".into(), "{\"amount\": 1e400}".into()));
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            let mut object = serde_json::Map::new();
            for (other, other_prop) in props {
                object.insert(other.clone(), if other == name { wrong_type(prop) } else { plausible(other_prop) });
            }
            bodies.push((format!("{name} of the wrong type"), Value::Object(object).to_string()));
            if prop["type"] == "integer" {
                let mut object = serde_json::Map::new();
                for (other, other_prop) in props {
                    let value = if other == name { json!(u64::MAX) } else { plausible(other_prop) };
                    object.insert(other.clone(), value);
                }
                bodies.push((format!("{name} beyond 64 bits"), Value::Object(object).to_string()));
            }
        }
    }
    bodies
}

fn plausible(property: &Value) -> Value {
    match property["type"].as_str() {
        Some("string") => json!("plausible"),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(true),
        _ => Value::Null,
    }
}

/// The path with every `{parameter}` replaced by `value`.
fn fill_path(template: &str, value: &str) -> String {
    let mut filled = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("balanced braces") + open;
        filled.push_str(&rest[..open]);
        filled.push_str(value);
        rest = &rest[close + 1..];
    }
    filled.push_str(rest);
    filled
}

async fn assert_client_error(resp: Response, what: &str) {
    let status = resp.status();
    assert!(status.is_client_error(), "{what}: expected a 4xx, got {status}");
    let body: Value = resp.json().await.unwrap_or_else(|_| panic!("{what}: error body is not JSON"));
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("{what}: no error code in {body}"));
    assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{what}: code {code:?}");
    assert!(body["error"]["message"].is_string(), "{what}: no message in {body}");
}

async fn admin_token(app: &TestApp) -> String {
    let token = app.user_token("sweeper").await;
    sqlx::query("UPDATE users SET is_admin = TRUE WHERE username = 'sweeper'").execute(&app.pool).await.unwrap();
    token
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn every_endpoint_answers_bad_input_with_a_4xx_error_body(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = admin_token(&app).await;
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let ops = operations(&spec);
    assert!(ops.len() >= 6, "the sweep found only {} operations", ops.len());

    for op in &ops {
        let label = format!("{} {}", op.method, op.path);
        let url = format!("/api/v1{}", fill_path(&op.path, "1"));

        if op.secured {
            let resp = app.request(op.method.clone(), &url).send().await.unwrap();
            assert_client_error(resp, &format!("{label} without a token")).await;
            let resp = app.request(op.method.clone(), &url).bearer_auth("nbs_forged").send().await.unwrap();
            assert_client_error(resp, &format!("{label} with a forged token")).await;
            let resp = app.request(op.method.clone(), &url).header("Authorization", "Basic abc").send().await.unwrap();
            assert_client_error(resp, &format!("{label} with a non-bearer scheme")).await;
        }

        if op.path.contains('{') {
            for bad_id in ["abc", "99999999999999999999999", "-1", "0", "%00"] {
                let url = format!("/api/v1{}", fill_path(&op.path, bad_id));
                let resp =
                    app.request(op.method.clone(), &url).bearer_auth(&token).json(&json!({})).send().await.unwrap();
                assert_client_error(resp, &format!("{label} with id {bad_id:?}")).await;
            }
        }

        for param in &op.query_params {
            for bad in ["abc", "99999999999999999999999", "-1", ""] {
                let resp = app
                    .request(op.method.clone(), &format!("{url}?{param}={bad}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().as_u16() < 500, "{label} ?{param}={bad:?}: {}", resp.status());
                if !resp.status().is_success() {
                    assert_client_error(resp, &format!("{label} ?{param}={bad:?}")).await;
                }
            }
        }

        if let Some(schema) = &op.body_schema {
            for (what, raw) in bad_bodies(schema) {
                let resp = app
                    .request(op.method.clone(), &url)
                    .bearer_auth(&token)
                    .header("Content-Type", "application/json")
                    .body(raw)
                    .send()
                    .await
                    .unwrap();
                assert_client_error(resp, &format!("{label} with {what}")).await;
            }
            let resp = app.request(op.method.clone(), &url).bearer_auth(&token).body("").send().await.unwrap();
            assert_client_error(resp, &format!("{label} with no body or content type")).await;
            let resp = app
                .request(op.method.clone(), &url)
                .bearer_auth(&token)
                .header("Content-Type", "text/plain")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_client_error(resp, &format!("{label} as text/plain")).await;
            let huge = format!("{{\"padding\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
            let resp = app
                .request(op.method.clone(), &url)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .body(huge)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{label} with a 2 MiB body");
            assert_client_error(resp, &format!("{label} with a 2 MiB body")).await;
        }
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn streamed_bodies_over_the_limit_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let chunks: Vec<Result<String, std::io::Error>> = (0..300).map(|_| Ok("x".repeat(1024))).collect();
    let resp = app
        .request(Method::POST, "/api/v1/users")
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body(resp).await["error"]["code"], "payload_too_large");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn unknown_routes_and_methods_get_json_errors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_client_error(app.get("/api/v1/no-such-thing").await, "unknown route").await;
    assert_client_error(app.get("/nowhere").await, "unknown top-level route").await;
    let resp = app.request(Method::PUT, "/api/v1/users").json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    assert_client_error(resp, "wrong method").await;
    let resp = app.request(Method::PATCH, "/api/v1/auctions/7/bids").send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, HEAD, POST");
    let resp = app.request(Method::OPTIONS, "/healthz").send().await.unwrap();
    assert_eq!(
        (resp.status(), &resp.headers()["allow"]),
        (StatusCode::METHOD_NOT_ALLOWED, &"GET, HEAD".parse().unwrap())
    );
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn malformed_parameters_are_invalid_parameter_naming_the_documented_name(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for path in ["/api/v1/auctions/abc", "/api/v1/auctions/1.5/bids", "/api/v1/users/99999999999999999999"] {
        let details = assert_error(app.get(path).await, StatusCode::BAD_REQUEST, "invalid_parameter").await;
        assert_eq!(details["details"]["field"], "id", "{path}");
    }
    let details =
        assert_error(app.get("/api/v1/auctions?limit=x").await, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    assert_eq!(details["details"]["field"], "limit");
}
