//! What the handlers check themselves, stated in the document from the same constants; the error
//! `details`; request examples; the servers.
//!
//! Rules stay in the handlers (not in poem-openapi validators) so that breaking one is a 422 naming
//! the field with a stable code, as documented, rather than a parse error.

use neighborbid_shared::auctions::new::TITLE_PATTERN;
use neighborbid_shared::idempotency::KEY_PATTERN;
use neighborbid_shared::money::MAX_AMOUNT;
use neighborbid_shared::users::USERNAME_PATTERN;
use neighborbid_shared::validation::{LINE_PATTERN, MULTILINE_PATTERN, WRITTEN_TEXT_PATTERN};
use serde_json::{Value, json};

/// Applies every rewrite of this module.
pub fn apply(document: &mut Value) {
    for (schema, property, keywords) in property_rules() {
        let Some(target) = document.pointer_mut(&format!("/components/schemas/{schema}/properties/{property}")) else {
            panic!("the document has no property {schema}.{property}: update document/rules.rs");
        };
        merge(target, keywords);
    }
    query_patterns(document);
    idempotency_key_headers(document);
    error_details(document);
    examples(document);
    document["servers"] = json!([
        { "url": "/api/v1", "description": "The deployment that served this document." },
        {
            "url": "{origin}/api/v1",
            "description": "Any deployment, by its origin (generated clients: pass it as the base URL).",
            "variables": { "origin": { "default": "http://127.0.0.1:8080", "description": "Scheme, host and port." } },
        },
    ]);
}

fn property_rules() -> Vec<(&'static str, &'static str, Value)> {
    let amount = json!({ "minimum": 1, "maximum": MAX_AMOUNT });
    let mut rules = vec![
        ("CreateAuctionRequest", "title", json!({ "minLength": 1, "maxLength": 100, "pattern": TITLE_PATTERN })),
        ("CreateAuctionRequest", "description", json!({ "maxLength": 5000, "pattern": MULTILINE_PATTERN })),
        ("LoginRequest", "username", json!({ "pattern": LINE_PATTERN })),
        ("MessageRequest", "body", json!({ "pattern": WRITTEN_TEXT_PATTERN })),
        ("QuestionRequest", "body", json!({ "pattern": WRITTEN_TEXT_PATTERN })),
        ("ReviewRequest", "body", json!({ "pattern": MULTILINE_PATTERN })),
        ("CreateAuctionRequest", "soft_close_seconds", json!({ "minimum": 0, "maximum": 600 })),
        ("SignUpRequest", "username", json!({ "pattern": USERNAME_PATTERN })),
        ("SignUpRequest", "password", json!({ "minLength": 10, "maxLength": 256 })),
    ];
    for (schema, property) in [
        ("AmountRequest", "amount"),
        ("BidRequest", "amount"),
        ("BidRequest", "max_amount"),
        ("CreateAuctionRequest", "start_price"),
        ("CreateAuctionRequest", "buy_now_price"),
        ("CreateAuctionRequest", "reserve_price"),
        ("CreateAuctionRequest", "bid_increment"),
    ] {
        rules.push((schema, property, amount.clone()));
    }
    rules
}

/// Every `Idempotency-Key` header gets the key's pattern.
fn idempotency_key_headers(document: &mut Value) {
    let operations = document["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut());
    for operation in operations.filter_map(Value::as_object_mut).flat_map(|o| o.values_mut()) {
        let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else { continue };
        for parameter in parameters.iter_mut().filter(|p| p["name"] == "Idempotency-Key") {
            merge(&mut parameter["schema"], json!({ "pattern": KEY_PATTERN }));
        }
    }
}

/// Search words refuse control characters like any text on one line.
fn query_patterns(document: &mut Value) {
    let Some(parameters) = document.pointer_mut("/paths/~1auctions/get/parameters").and_then(Value::as_array_mut)
    else {
        panic!("the document has no GET /auctions: update document/rules.rs");
    };
    for parameter in parameters.iter_mut().filter(|p| p["name"] == "q") {
        merge(&mut parameter["schema"], json!({ "pattern": LINE_PATTERN }));
    }
}

/// `details` is an object whose keys depend on the code; the common ones are named.
fn error_details(document: &mut Value) {
    document["components"]["schemas"]["ErrorDetail"]["properties"]["details"] = json!({
        "type": "object",
        "description": "Structured context; which keys appear depends on `code`.",
        "properties": {
            "field": { "type": "string", "description": "The request field at fault (422 and `invalid_parameter`)." },
            "minimum": { "type": "integer", "format": "int64", "description": "The smallest acceptable bid (`bid_too_low`)." },
            "retry_after_seconds": { "type": "integer", "format": "int64", "description": "When to retry (`rate_limited`)." },
        },
        "additionalProperties": true,
    });
}

/// Request body examples, for people reading the document and for schemathesis' example phase.
fn examples(document: &mut Value) {
    let examples = [
        (
            "SignUpRequest",
            json!({ "username": "minji", "email": "minji@example.com", "password": "correct-horse-battery" }),
        ),
        ("LoginRequest", json!({ "username": "minji", "password": "correct-horse-battery" })),
        ("AmountRequest", json!({ "amount": 100000 })),
        ("BidRequest", json!({ "amount": 12000, "max_amount": 20000 })),
        (
            "CreateAuctionRequest",
            json!({
                "title": "Road bicycle, 54 cm", "description": "Ridden for two summers.", "category_id": 1,
                "condition": "good", "shipping_payer": "buyer", "start_price": 10000, "buy_now_price": 90000,
                "ends_at": "2030-01-01T12:00:00Z",
            }),
        ),
        ("UpdateMeRequest", json!({ "email_preferences": { "outbid": false } })),
        ("MessageRequest", json!({ "body": "Is it still available? I could pick it up on Saturday." })),
        ("QuestionRequest", json!({ "body": "Does the bell work?" })),
        ("ReviewRequest", json!({ "rating": 5, "body": "Exactly as described; quick handover." })),
        ("ReadConversationRequest", json!({ "up_to_message_id": 42 })),
        ("ReadNotificationsRequest", json!({ "up_to_id": 17 })),
    ];
    for (schema, example) in examples {
        document["components"]["schemas"][schema]["example"] = example;
    }
}

fn merge(target: &mut Value, keywords: Value) {
    if let (Some(target), Value::Object(keywords)) = (target.as_object_mut(), keywords) {
        target.extend(keywords);
    }
}
