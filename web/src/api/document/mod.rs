//! The OpenAPI document as served, with what poem-openapi cannot say by itself added, so that
//! standard generators (openapi-python-client, @hey-api/openapi-ts) and schemathesis read it cleanly.
//!
//! - Nullability: poem-openapi describes an `Option<T>` field as an optional `T`, but our JSON sends
//!   `null` for a missing value and accepts `null` in requests. Every optional property is marked
//!   `nullable`, and every property of a schema that only appears in responses is `required`: the
//!   server always sends it, as a value or `null` ([`schemas`]).
//! - Described references: poem-openapi attaches a field's doc comment to a `$ref` by wrapping it in
//!   `allOf: [{$ref}, {description}]`, which generators refuse around an enum and copy into
//!   duplicate models around an object. They become plain `$ref`s ([`schemas`]).
//! - Rules the handlers check themselves (so that breaking them is a 422 with a field, not a parse
//!   error): `minimum`, `maxLength`, `pattern`… taken from the same constants as the rules
//!   ([`rules`]), the error `details` shape, request examples and the servers.
//! - `links` from creating operations to the operations on what they created ([`links`]).

mod links;
pub mod routes;
mod rules;
mod schemas;

use std::sync::LazyLock;

use serde_json::Value;

/// The document served at `/openapi.json` and committed as `openapi/openapi.json`.
pub fn json() -> &'static str {
    static DOCUMENT: LazyLock<String> =
        LazyLock::new(|| serde_json::to_string_pretty(value()).expect("a JSON value serializes"));
    &DOCUMENT
}

/// [`json`] as a value.
pub fn value() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        let mut document: Value = serde_json::from_str(&super::service().spec()).expect("poem-openapi writes JSON");
        schemas::mark_optional_properties_nullable(&mut document);
        schemas::unwrap_described_refs(&mut document);
        schemas::require_response_properties(&mut document);
        rules::apply(&mut document);
        links::add(&mut document);
        document
    });
    &DOCUMENT
}

/// Every operation's path template, with the API's base path: `/api/v1/auctions/{id}/bids`.
pub fn path_templates() -> Vec<String> {
    value()["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.keys())
        .map(|path| format!("/api/v1{path}"))
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
