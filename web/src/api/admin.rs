//! Operator endpoints: the ledger audit and the closing of auctions (the job queues are in
//! `admin_jobs`). The operator console at `/ops` shows what they return.

use chrono::{DateTime, Utc};
use neighborbid_shared::auctions::monitor;
use neighborbid_shared::ledger::audit::{self, AuditReport};
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::auth::BearerAuth;
use super::error::{ApiError, ErrorSet, error_set};
use crate::state::AppState;

error_set!(
    /// Errors of operator endpoints.
    AdminErrors {
        401 => "missing, invalid, expired or revoked token",
        403 => "`forbidden`: the caller is not an operator",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of reading the last audit.
    LastAuditErrors {
        401 => "missing, invalid, expired or revoked token",
        403 => "`forbidden`: the caller is not an operator",
        404 => "`audit_not_run`: no audit has run yet",
        503 => "the database is unavailable",
    }
);

/// Whether the caller is an operator: every admin endpoint refuses anyone else with 403 `forbidden`.
pub(super) fn is_admin(auth: &BearerAuth) -> Option<()> {
    auth.0.user.is_admin.then_some(())
}

/// 403 `forbidden`, for a caller who is not an operator.
pub(super) fn forbidden<E: ErrorSet>() -> ApiError<E> {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this endpoint is for operators")
}

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

/// An auction due to end next.
#[derive(Object)]
pub struct ClosingView {
    pub id: i64,
    /// As the seller wrote it (untrusted text).
    pub title: String,
    /// `scheduled` or `active`.
    pub status: String,
    /// In the past: the closer has not ended it yet.
    pub ends_at: DateTime<Utc>,
    pub bid_count: i32,
    pub current_price: i64,
}

/// An auction that ended, and how long its follow-up took.
#[derive(Object)]
pub struct EndedView {
    pub id: i64,
    /// As the seller wrote it (untrusted text).
    pub title: String,
    /// `closed` (waiting for settlement), `settled` or `unsold`.
    pub status: String,
    pub ends_at: DateTime<Utc>,
    /// When it ended: the closer's pass, or a buy-now before `ends_at`.
    pub closed_at: DateTime<Utc>,
    /// When the winner's money reached the seller; `null` until then (and for unsold auctions).
    pub settled_at: Option<DateTime<Utc>>,
    /// `closed_at` minus when it was due (`ends_at`, or the buy-now), in milliseconds.
    pub close_lag_ms: i64,
    /// `settled_at` minus when it was due, in milliseconds; `null` until settled.
    pub settlement_lag_ms: Option<i64>,
}

/// The closer and the settlement at a glance.
#[derive(Object)]
pub struct ClosingsView {
    /// The 20 open auctions that end next, overdue ones first.
    pub closing_soon: Vec<ClosingView>,
    /// The 20 auctions that ended most recently (cancelled ones aside), newest first.
    pub recently_closed: Vec<EndedView>,
}

fn audit_view(report: AuditReport) -> AuditView {
    let t = report.totals;
    AuditView {
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
    }
}

/// Operators.
pub struct AdminApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Check every ledger invariant on one consistent snapshot; the result is kept as the last audit.
    #[oai(path = "/admin/audit", method = "get", operation_id = "run_audit")]
    async fn run_audit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<AuditView>, ApiError<AdminErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let mut conn = state.pool.acquire().await?;
        let report = audit::audit(&mut conn).await?;
        audit::record_last(&mut conn, &report).await?;
        Ok(Json(audit_view(report)))
    }

    /// The last audit's result (from this endpoint or `neighborbid-web audit`), without running one.
    #[oai(path = "/admin/audit/last", method = "get", operation_id = "get_last_audit")]
    async fn get_last_audit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<AuditView>, ApiError<LastAuditErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let mut conn = state.pool.acquire().await?;
        match audit::last(&mut conn).await? {
            Some(report) => Ok(Json(audit_view(report))),
            None => Err(ApiError::new(StatusCode::NOT_FOUND, "audit_not_run", "no audit has run yet")),
        }
    }

    /// The auctions due to close next and the recently closed ones with their settlement lag.
    #[oai(path = "/admin/closings", method = "get", operation_id = "list_closings")]
    async fn list_closings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<ClosingsView>, ApiError<AdminErrors>> {
        is_admin(&auth).ok_or_else(forbidden)?;
        let mut conn = state.pool.acquire().await?;
        let soon = monitor::closing_next(&mut conn, 20).await?;
        let ended = monitor::recently_ended(&mut conn, 20).await?;
        Ok(Json(ClosingsView {
            closing_soon: soon
                .into_iter()
                .map(|a| ClosingView {
                    id: a.id.0,
                    title: a.title,
                    status: a.status.as_str().into(),
                    ends_at: a.ends_at,
                    bid_count: a.bid_count,
                    current_price: a.current_price,
                })
                .collect(),
            recently_closed: ended
                .into_iter()
                .map(|a| EndedView {
                    close_lag_ms: a.close_lag().num_milliseconds(),
                    settlement_lag_ms: a.settlement_lag().map(|lag| lag.num_milliseconds()),
                    id: a.id.0,
                    title: a.title,
                    status: a.status.as_str().into(),
                    ends_at: a.ends_at,
                    closed_at: a.closed_at,
                    settled_at: a.settled_at,
                })
                .collect(),
        }))
    }
}
