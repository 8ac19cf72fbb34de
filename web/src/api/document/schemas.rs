//! Schema rewrites: nullability, required response properties, plain `$ref`s.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Marks every optional property of a plain type, or of an object wrapped in `allOf`, `nullable`.
/// (Properties that are bare `$ref`s keep their `$ref`: in OpenAPI 3.0 siblings of a `$ref` are
/// ignored.)
pub fn mark_optional_properties_nullable(document: &mut Value) {
    for schema in schemas_mut(document) {
        let required = required_names(schema);
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { continue };
        for (name, property) in properties.iter_mut() {
            if !required.contains(name) && (property.get("type").is_some() || property.get("allOf").is_some()) {
                property["nullable"] = Value::Bool(true);
            }
        }
    }
}

/// Replaces `allOf: [{$ref}, {description}]` by `{$ref, description}`, or, when nullable, by
/// `{oneOf: [{$ref}], nullable, description}` (a `$ref` cannot carry `nullable`).
pub fn unwrap_described_refs(document: &mut Value) {
    for schema in schemas_mut(document) {
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { continue };
        for property in properties.values_mut() {
            let Some([first, rest @ ..]) = property.get("allOf").and_then(Value::as_array).map(Vec::as_slice) else {
                continue;
            };
            let Some(reference) = first.get("$ref").cloned() else { continue };
            if rest.iter().any(|part| part.as_object().is_none_or(|part| part.keys().any(|k| k != "description"))) {
                continue;
            }
            let description = property.get("description").cloned();
            let mut plain = if property.get("nullable") == Some(&Value::Bool(true)) {
                json!({ "oneOf": [{ "$ref": reference }], "nullable": true })
            } else {
                json!({ "$ref": reference })
            };
            if let Some(description) = description {
                plain["description"] = description;
            }
            *property = plain;
        }
    }
}

/// Makes every property of a schema that only responses use `required`: poem-openapi sends each
/// one, `null` included, so a generated client must not type it as possibly absent.
pub fn require_response_properties(document: &mut Value) {
    let requests = reachable(document, "requestBody");
    let responses = reachable(document, "responses");
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        if !responses.contains(name) || requests.contains(name) {
            continue;
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { continue };
        let names: Vec<Value> = properties.keys().map(|name| Value::String(name.clone())).collect();
        if !names.is_empty() {
            schema["required"] = Value::Array(names);
        }
    }
}

/// The component schemas reachable from every operation's `key` (`requestBody` or `responses`).
fn reachable(document: &Value, key: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending: Vec<&Value> = document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|operations| operations.values())
        .filter_map(|operation| operation.get(key))
        .collect();
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(schema_name)
                    && found.insert(name.to_owned())
                    && let Some(target) = document.pointer(&format!("/components/schemas/{name}"))
                {
                    pending.push(target);
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

fn schema_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/components/schemas/")
}

fn schemas_mut(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document.pointer_mut("/components/schemas").and_then(Value::as_object_mut).into_iter().flat_map(|s| s.values_mut())
}

fn required_names(schema: &Value) -> Vec<String> {
    schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
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

    #[test]
    fn described_refs_become_plain_refs_and_nullable_ones_a_one_of() {
        let user = json!({ "$ref": "#/components/schemas/User" });
        let mut document = json!({ "components": { "schemas": { "Thing": {
            "type": "object",
            "properties": {
                "owner": { "description": "Who", "allOf": [user, { "description": "Who" }] },
                "last": { "description": "Last", "allOf": [user, { "description": "Last" }], "nullable": true },
            },
        }}}});
        super::unwrap_described_refs(&mut document);
        let properties = &document["components"]["schemas"]["Thing"]["properties"];
        assert_eq!(properties["owner"], json!({ "$ref": "#/components/schemas/User", "description": "Who" }));
        assert_eq!(properties["last"], json!({ "oneOf": [user], "nullable": true, "description": "Last" }));
    }

    #[test]
    fn only_response_schemas_get_every_property_required() {
        let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
        let content = |name: &str| json!({ "content": { "application/json": { "schema": schema(name) } } });
        let object = json!({ "type": "object", "properties": { "a": { "type": "string" } } });
        let mut document = json!({
            "paths": { "/x": { "post": { "requestBody": content("In"), "responses": { "200": content("Out") } } } },
            "components": { "schemas": {
                "In": object, "Out": { "type": "object", "properties": { "inner": schema("Inner") } }, "Inner": object,
            }},
        });
        super::require_response_properties(&mut document);
        let schemas = &document["components"]["schemas"];
        assert!(schemas["In"].get("required").is_none());
        assert_eq!(schemas["Out"]["required"], json!(["inner"]));
        assert_eq!(schemas["Inner"]["required"], json!(["a"]));
    }
}
