//! Liveness and readiness, for load balancers and orchestrators.

use neighborbid_shared::health::{check_postgres, check_redis};
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::state::AppState;

/// The process is alive and serving HTTP.
#[handler]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready to serve traffic: PostgreSQL and Redis both answer; 503 otherwise, naming which failed.
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    let (postgres, redis) = tokio::join!(check_postgres(&state.pool), check_redis(&state.redis));
    let ready = postgres.is_ok() && redis.is_ok();
    let describe = |r: &Result<(), String>| match r {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "error": e }),
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": { "postgres": describe(&postgres), "redis": describe(&redis) },
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Json(body).with_status(status).into_response()
}
