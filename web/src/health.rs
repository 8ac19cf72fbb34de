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

/// Ready to serve traffic: PostgreSQL answers (503 otherwise). Redis is reported but not required:
/// without it REST works, live events fall back to the database catch-up and rate limits to a
/// per-process table, so a Redis blip must not make a load balancer drain every replica.
#[handler]
pub async fn readyz(state: Data<&AppState>) -> Response {
    let (postgres, redis) = tokio::join!(check_postgres(&state.pool), check_redis(&state.redis_conn));
    let ready = postgres.is_ok();
    let describe = |r: &Result<(), String>, required: bool| match r {
        Ok(()) => json!({ "ok": true, "required": required }),
        Err(e) => json!({ "ok": false, "required": required, "error": e }),
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {
            "postgres": describe(&postgres, true),
            "redis": describe(&redis, false),
        },
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Json(body).with_status(status).into_response()
}
