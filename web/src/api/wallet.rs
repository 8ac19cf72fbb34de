//! The caller's wallet: balances, deposits, withdrawals and the ledger statement.

use chrono::{DateTime, Utc};
use neighborbid_shared::idempotency::{self, Claim};
use neighborbid_shared::ids::UserId;
use neighborbid_shared::ledger::transfers::TransferKind;
use neighborbid_shared::ledger::wallet;
use neighborbid_shared::money::Krw;
use neighborbid_shared::pagination::Cursor;
use poem::web::Data;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::{Deserialize, Serialize};
use sqlx::Connection;

use super::auth::BearerAuth;
use super::error::{ApiError, error_set};
use super::{ApiTags, Page};
use crate::state::AppState;

error_set!(
    /// Errors of deposits and withdrawals.
    MoneyErrors {
        400 => "malformed body",
        401 => "missing, invalid, expired or revoked token",
        409 => "`insufficient_funds` (withdrawal beyond `available`), `balance_limit_exceeded`, or `idempotency_key_reused`",
        413 => "body too large",
        415 => "`unsupported_content_type`: send the body as `application/json`",
        422 => "`amount_not_positive`, `amount_too_large` or `invalid_idempotency_key`",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

error_set!(
    /// Errors of reading the wallet.
    WalletReadErrors {
        400 => "malformed parameter or `invalid_cursor`",
        401 => "missing, invalid, expired or revoked token",
        503 => "the database is unavailable",
    }
);

/// Balances in KRW.
#[derive(Object, Serialize, Deserialize)]
pub struct WalletView {
    /// Spendable now.
    pub available: i64,
    /// Committed to bids you lead or that await release.
    pub held: i64,
    /// Always `KRW`.
    pub currency: String,
}

impl From<wallet::Balances> for WalletView {
    fn from(b: wallet::Balances) -> Self {
        Self { available: b.available, held: b.held, currency: "KRW".into() }
    }
}

/// An amount to move.
#[derive(Object, Serialize)]
pub struct AmountRequest {
    /// Whole KRW, 1 to 1,000,000,000,000.
    pub amount: i64,
}

/// A completed deposit or withdrawal.
#[derive(Object, Serialize, Deserialize)]
pub struct MovementReceipt {
    /// The ledger transfer recorded.
    pub transfer_id: i64,
    /// Balances right after it.
    pub wallet: WalletView,
}

#[derive(ApiResponse)]
enum MovementResponse {
    /// Done (or, for a repeated Idempotency-Key, done before: the first result).
    #[oai(status = 201)]
    Created(Json<MovementReceipt>),
}

/// What a ledger line was for.
#[derive(Enum)]
#[oai(rename_all = "snake_case")]
pub enum TransferKindView {
    Deposit,
    Withdrawal,
    Hold,
    Release,
    Capture,
    Fee,
}

/// One movement that touched your wallet.
#[derive(Object)]
pub struct LedgerLineView {
    /// The transfer's id.
    pub id: i64,
    /// What it was for.
    pub kind: TransferKindView,
    /// The amount moved.
    pub amount: i64,
    /// Change to your available balance.
    pub available_delta: i64,
    /// Change to your held balance.
    pub held_delta: i64,
    /// The auction concerned.
    pub auction_id: Option<i64>,
    /// The hold concerned.
    pub hold_id: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Which way money moves.
#[derive(Clone, Copy)]
enum Direction {
    In,
    Out,
}

async fn move_money(
    state: &AppState,
    user_id: UserId,
    direction: Direction,
    amount: i64,
    key: Option<String>,
) -> Result<MovementReceipt, ApiError<MoneyErrors>> {
    let amount = Krw::parse(amount, "amount")?;
    let endpoint = match direction {
        Direction::In => "deposit",
        Direction::Out => "withdrawal",
    };
    let mut conn = state.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    if let Some(key) = &key {
        let hash = idempotency::fingerprint(endpoint, &amount);
        if let Claim::Replay(receipt) = idempotency::claim(&mut tx, user_id, key, &hash).await? {
            return Ok(receipt);
        }
    }
    let moved = match direction {
        Direction::In => wallet::deposit(&mut tx, user_id, amount).await,
        Direction::Out => wallet::withdraw(&mut tx, user_id, amount).await,
    };
    let transfer_id = moved?;
    let receipt =
        MovementReceipt { transfer_id: transfer_id.0, wallet: wallet::balances(&mut tx, user_id).await?.into() };
    if let Some(key) = &key {
        idempotency::complete(&mut tx, user_id, key, &receipt).await?;
    }
    tx.commit().await?;
    Ok(receipt)
}

/// Wallet.
pub struct WalletApi;

#[OpenApi(tag = "ApiTags::Wallet")]
impl WalletApi {
    /// Your balances.
    #[oai(path = "/wallet", method = "get", operation_id = "get_wallet")]
    async fn wallet(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<WalletView>, ApiError<WalletReadErrors>> {
        let mut conn = state.pool.acquire().await?;
        Ok(Json(wallet::balances(&mut conn, auth.0.user.id).await?.into()))
    }

    /// Add money to your available balance.
    #[oai(path = "/wallet/deposits", method = "post", operation_id = "deposit")]
    async fn deposit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Repeat a request with the same key to get the first result instead of a second deposit.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<AmountRequest>,
    ) -> Result<MovementResponse, ApiError<MoneyErrors>> {
        let receipt = move_money(&state, auth.0.user.id, Direction::In, body.amount, key.0).await?;
        Ok(MovementResponse::Created(Json(receipt)))
    }

    /// Take money out of your available balance (held money cannot be withdrawn).
    #[oai(path = "/wallet/withdrawals", method = "post", operation_id = "withdraw")]
    async fn withdraw(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Repeat a request with the same key to get the first result instead of a second withdrawal.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<AmountRequest>,
    ) -> Result<MovementResponse, ApiError<MoneyErrors>> {
        let receipt = move_money(&state, auth.0.user.id, Direction::Out, body.amount, key.0).await?;
        Ok(MovementResponse::Created(Json(receipt)))
    }

    /// Your ledger lines, newest first.
    #[oai(path = "/wallet/transfers", method = "get", operation_id = "list_transfers")]
    async fn transfers(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–100.
        #[oai(default = "super::default_limit", validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<u8>,
    ) -> Result<Json<Page<LedgerLineView>>, ApiError<WalletReadErrors>> {
        let cursor = cursor.0.as_deref().map(Cursor::decode).transpose()?;
        let mut conn = state.pool.acquire().await?;
        let (lines, next) = wallet::statement(&mut conn, auth.0.user.id, cursor, limit.0).await?;
        let items = lines
            .into_iter()
            .map(|l| LedgerLineView {
                id: l.id.0,
                kind: match l.kind {
                    TransferKind::Deposit => TransferKindView::Deposit,
                    TransferKind::Withdrawal => TransferKindView::Withdrawal,
                    TransferKind::Hold => TransferKindView::Hold,
                    TransferKind::Release => TransferKindView::Release,
                    TransferKind::Capture => TransferKindView::Capture,
                    TransferKind::Fee => TransferKindView::Fee,
                },
                amount: l.amount,
                available_delta: l.available_delta,
                held_delta: l.held_delta,
                auction_id: l.auction_id.map(i64::from),
                hold_id: l.hold_id.map(i64::from),
                created_at: l.created_at,
            })
            .collect();
        Ok(Json(Page { items, next_cursor: next.map(Cursor::encode) }))
    }
}
