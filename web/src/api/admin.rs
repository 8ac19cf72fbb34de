//! Operator endpoints.

use chrono::{DateTime, Utc};
use neighborbid_shared::ledger::audit;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::auth::BearerAuth;
use super::error::{ApiError, error_set};
use crate::state::AppState;

error_set!(
    /// Errors of operator endpoints.
    AdminErrors {
        401 => "missing, invalid, expired or revoked token",
        403 => "`forbidden`: the caller is not an operator",
        503 => "the database is unavailable",
    }
);

/// One broken ledger invariant.
#[derive(Object)]
pub struct ViolationView {
    /// `balance_mismatch`, `held_mismatch`, `money_not_conserved`, `hold_transfers_mismatch`,
    /// `hold_ended_twice` or `negative_balance`.
    pub kind: String,
    pub message: String,
    pub account_id: Option<i64>,
    pub user_id: Option<i64>,
    pub hold_id: Option<i64>,
}

/// Where the money is.
#[derive(Object)]
pub struct TotalsView {
    /// Every deposit ever, as a decimal string: lifetime sums can outgrow 64 bits.
    pub deposits: String,
    /// Every withdrawal ever, as a decimal string.
    pub withdrawals: String,
    pub available: i64,
    pub held: i64,
    pub fees: i64,
    pub open_holds: i64,
    pub transfers: i64,
}

/// The ledger audit.
#[derive(Object)]
pub struct AuditView {
    /// No violation found.
    pub ok: bool,
    /// Empty when clean.
    pub violations: Vec<ViolationView>,
    pub totals: TotalsView,
    pub checked_at: DateTime<Utc>,
}

/// Operators.
pub struct AdminApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Check every ledger invariant on one consistent snapshot.
    #[oai(path = "/admin/audit", method = "get", operation_id = "get_audit")]
    async fn audit(&self, state: Data<&AppState>, auth: BearerAuth) -> Result<Json<AuditView>, ApiError<AdminErrors>> {
        if !auth.0.user.is_admin {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this endpoint is for operators"));
        }
        let mut conn = state.pool.acquire().await?;
        let report = audit::audit(&mut conn).await?;
        let t = report.totals;
        Ok(Json(AuditView {
            ok: report.ok,
            violations: report
                .violations
                .into_iter()
                .map(|v| ViolationView {
                    kind: v.kind.into(),
                    message: v.message,
                    account_id: v.account_id.map(i64::from),
                    user_id: v.user_id.map(i64::from),
                    hold_id: v.hold_id.map(i64::from),
                })
                .collect(),
            totals: TotalsView {
                deposits: t.deposits.to_string(),
                withdrawals: t.withdrawals.to_string(),
                available: t.available,
                held: t.held,
                fees: t.fees,
                open_holds: t.open_holds,
                transfers: t.transfers,
            },
            checked_at: report.checked_at,
        }))
    }
}
