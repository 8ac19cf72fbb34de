//! OpenAPI `links` from each creating operation to the operations on what it created, so that
//! stateful testing (schemathesis) and readers know how calls chain.
//!
//! The rule is mechanical, so new endpoints get links by following the URL conventions: a `POST`
//! to `…/things` whose success answer has an `id` links to every operation under `/things/{id}`
//! (`POST /auctions` → `get_auction`, `place_bid`…; `POST /auctions/{id}/photos` → `get_photo`…).

use serde_json::{Map, Value, json};

/// Adds the links to every creating operation's success responses.
pub fn add(document: &mut Value) {
    let targets = operations(document);
    let mut additions = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        let Some(collection) = path.rsplit('/').next().filter(|last| !last.starts_with('{')) else { continue };
        let prefix = format!("/{collection}/{{id}}");
        let links: Map<String, Value> = targets
            .iter()
            .filter(|(target, _)| *target == prefix || target.starts_with(&format!("{prefix}/")))
            .map(|(_, id)| (id.clone(), json!({ "operationId": id, "parameters": { "id": "$response.body#/id" } })))
            .collect();
        let responses = item.pointer("/post/responses").and_then(Value::as_object).into_iter().flatten();
        for (status, response) in responses.filter(|(status, _)| status.starts_with('2')) {
            if !links.is_empty() && returns_an_id(document, response) {
                additions.push((format!("/paths/{}/post/responses/{status}", escape(path)), links.clone()));
            }
        }
    }
    for (pointer, links) in additions {
        if let Some(response) = document.pointer_mut(&pointer) {
            response["links"] = Value::Object(links);
        }
    }
}

/// (path, operationId) of every operation.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().into_iter().flatten();
    paths
        .flat_map(|(path, item)| {
            let operations = item.as_object().into_iter().flat_map(|o| o.values());
            operations.filter_map(|op| Some((path.clone(), op["operationId"].as_str()?.to_owned()))).collect::<Vec<_>>()
        })
        .collect()
}

/// Whether the response's body is a component schema with an `id` property.
fn returns_an_id(document: &Value, response: &Value) -> bool {
    response["content"].as_object().into_iter().flat_map(|c| c.values()).any(|media| {
        let reference = media["schema"]["$ref"].as_str().unwrap_or_default();
        reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer))
            .is_some_and(|schema| schema["properties"].get("id").is_some())
    })
}

/// A path as one JSON pointer token.
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_creating_post_links_to_the_operations_on_what_it_created() {
        let created =
            json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Photo" } } } });
        let mut document = json!({
            "paths": {
                "/auctions/{id}/photos": { "post": { "operationId": "upload_photo", "responses": { "202": created } } },
                "/photos/{id}": { "get": { "operationId": "get_photo" }, "delete": { "operationId": "delete_photo" } },
                "/photosets": { "get": { "operationId": "other" } },
            },
            "components": { "schemas": { "Photo": { "properties": { "id": { "type": "integer" } } } } },
        });
        super::add(&mut document);
        let links = &document["paths"]["/auctions/{id}/photos"]["post"]["responses"]["202"]["links"];
        assert_eq!(links["get_photo"]["parameters"]["id"], "$response.body#/id");
        assert_eq!(links.as_object().unwrap().len(), 2);
    }
}
