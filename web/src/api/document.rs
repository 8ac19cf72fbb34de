//! The OpenAPI document as served, with what poem-openapi cannot say by itself added.
//!
//! poem-openapi describes an `Option<T>` field as an optional `T`, but our JSON sends `null` for a
//! missing value (`"next_cursor": null`, `"winner_id": null`) and accepts `null` in requests. A
//! generated client that believes the field is never null mistypes it, so every optional property
//! of a plain type, or of an object wrapped in `allOf`, is marked `nullable` here. (Properties that
//! are bare `$ref`s keep their `$ref`: in OpenAPI 3.0 siblings of a `$ref` are ignored.)

use std::sync::LazyLock;

use serde_json::Value;

/// The document served at `/openapi.json` and committed as `openapi/openapi.json`.
pub fn json() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let mut document: Value = serde_json::from_str(&super::service().spec()).expect("poem-openapi writes JSON");
        mark_optional_properties_nullable(&mut document);
        serde_json::to_string_pretty(&document).expect("a JSON value serializes")
    });
    &DOCUMENT
}

/// Every operation's path template, with the server's base path: `/api/v1/auctions/{id}/bids`.
pub fn path_templates() -> Vec<String> {
    let document: Value = serde_json::from_str(json()).expect("the document is JSON");
    let base = document["servers"][0]["url"].as_str().unwrap_or_default();
    document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.keys())
        .map(|path| format!("{base}{path}"))
        .collect()
}

/// Swagger UI's page, with [`json`] embedded in place of poem-openapi's own document.
pub fn swagger_ui_html() -> &'static str {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        let service = super::service();
        service.swagger_ui_html().replacen(&service.spec(), json(), 1)
    });
    &PAGE
}

fn mark_optional_properties_nullable(document: &mut Value) {
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    for schema in schemas.values_mut() {
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { continue };
        for (name, property) in properties.iter_mut() {
            // A described `$ref` comes wrapped in `allOf`, beside which `nullable` does count.
            if !required.contains(name) && (property.get("type").is_some() || property.get("allOf").is_some()) {
                property["nullable"] = Value::Bool(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn optional_plain_properties_become_nullable_and_required_ones_do_not() {
        let mut document = json!({ "components": { "schemas": { "Page": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": { "type": "array" },
                "next_cursor": { "type": "string" },
                "seller": { "$ref": "#/components/schemas/User" },
            },
        }}}});
        super::mark_optional_properties_nullable(&mut document);
        let properties = &document["components"]["schemas"]["Page"]["properties"];
        assert_eq!(properties["next_cursor"]["nullable"], true);
        assert!(properties["items"].get("nullable").is_none());
        assert!(properties["seller"].get("nullable").is_none());
    }
}
