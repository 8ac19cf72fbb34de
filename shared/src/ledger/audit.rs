//! The ledger audit: re-derives every balance from the transfers and checks each invariant exactly.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

use crate::ids::{AccountId, HoldId, UserId};

/// One broken invariant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Violation {
    /// Which invariant: `balance_mismatch`, `held_mismatch`, `money_not_conserved`,
    /// `hold_transfers_mismatch`, `hold_ended_twice` or `negative_balance`.
    pub kind: Cow<'static, str>,
    /// What was found, for people.
    pub message: String,
    /// The account concerned, if any.
    pub account_id: Option<AccountId>,
    /// The user concerned, if any.
    pub user_id: Option<UserId>,
    /// The hold concerned, if any.
    pub hold_id: Option<HoldId>,
}

/// Where the money is. Lifetime sums grow without bound (deposit and withdraw in a loop), so they are
/// `i128`, summed as `numeric` in PostgreSQL; balances are bounded by the wallet's total and fit `i64`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Every deposit ever.
    pub deposits: i128,
    /// Every withdrawal ever.
    pub withdrawals: i128,
    /// Sum of users' available balances.
    pub available: i64,
    /// Sum of users' held balances.
    pub held: i64,
    /// The platform's fee account.
    pub fees: i64,
    /// The total of holds still open.
    pub open_holds: i64,
    /// Number of transfers checked.
    pub transfers: i64,
}

/// The audit's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReport {
    /// No violation found.
    pub ok: bool,
    /// Every violation found.
    pub violations: Vec<Violation>,
    /// Where the money is.
    pub totals: Totals,
    /// When the snapshot was taken.
    pub checked_at: DateTime<Utc>,
}

/// A hold with what its transfers put in and took out.
struct HoldTally {
    hold_id: HoldId,
    status: String,
    amount: i64,
    placed: i64,
    released: i64,
    captured: i64,
    releases: i64,
    captures: i64,
}

fn violation(kind: &'static str, message: String) -> Violation {
    Violation { kind: Cow::Borrowed(kind), message, account_id: None, user_id: None, hold_id: None }
}

/// Checks, on one consistent snapshot: each cached balance equals its transfers; each user's held
/// balance equals their open holds; all money in the wallet equals deposits minus withdrawals; each
/// hold's transfers match its state (a captured hold: one capture, its fee, and the release of any unused
/// maximum, adding up to the hold), and none is both released and captured; no balance is negative.
pub async fn audit(conn: &mut PgConnection) -> Result<AuditReport, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *tx).await?;
    let mut violations = Vec::new();

    let mismatched = sqlx::query!(
        r#"SELECT a.id AS "id: AccountId", a.balance, (coalesce(i.total, 0) - coalesce(o.total, 0))::text AS "derived!"
           FROM accounts a
           LEFT JOIN (SELECT to_account, sum(amount) AS total FROM transfers GROUP BY to_account) i ON i.to_account = a.id
           LEFT JOIN (SELECT from_account, sum(amount) AS total FROM transfers GROUP BY from_account) o ON o.from_account = a.id
           WHERE a.balance <> coalesce(i.total, 0) - coalesce(o.total, 0)"#,
    )
    .fetch_all(&mut *tx)
    .await?;
    for (account_id, cached, derived) in mismatched.into_iter().map(|r| (r.id, r.balance, r.derived)) {
        violations.push(Violation {
            account_id: Some(account_id),
            ..violation(
                "balance_mismatch",
                format!("account {account_id} caches {cached} but its transfers sum to {derived}"),
            )
        });
    }

    let negative =
        sqlx::query!(r#"SELECT id AS "id: AccountId", balance FROM accounts WHERE balance < 0 AND kind <> 'external'"#)
            .fetch_all(&mut *tx)
            .await?;
    for (account_id, balance) in negative.into_iter().map(|r| (r.id, r.balance)) {
        violations.push(Violation {
            account_id: Some(account_id),
            ..violation("negative_balance", format!("account {account_id} has balance {balance}"))
        });
    }

    let held_mismatch = sqlx::query!(
        r#"SELECT a.user_id AS "user_id!: UserId", a.balance, coalesce(h.total, 0)::bigint AS "open!" FROM accounts a
           LEFT JOIN (SELECT user_id, sum(amount) AS total FROM holds WHERE status = 'open' GROUP BY user_id) h
             ON h.user_id = a.user_id
           WHERE a.kind = 'held' AND a.balance <> coalesce(h.total, 0)"#,
    )
    .fetch_all(&mut *tx)
    .await?;
    for (user_id, held, open) in held_mismatch.into_iter().map(|r| (r.user_id, r.balance, r.open)) {
        violations.push(Violation {
            user_id: Some(user_id),
            ..violation("held_mismatch", format!("user {user_id} has {held} held but open holds total {open}"))
        });
    }

    // Per hold: what was put in, what came out by release, by capture (+ fee).
    let bad_holds = sqlx::query_as!(
        HoldTally,
        r#"SELECT h.id AS "hold_id: HoldId", h.status, h.amount,
                  coalesce(sum(t.amount) FILTER (WHERE t.kind = 'hold'), 0)::bigint AS "placed!",
                  coalesce(sum(t.amount) FILTER (WHERE t.kind = 'release'), 0)::bigint AS "released!",
                  coalesce(sum(t.amount) FILTER (WHERE t.kind IN ('capture', 'fee')), 0)::bigint AS "captured!",
                  count(*) FILTER (WHERE t.kind = 'release') AS "releases!",
                  count(*) FILTER (WHERE t.kind = 'capture') AS "captures!"
           FROM holds h LEFT JOIN transfers t ON t.hold_id = h.id
           GROUP BY h.id
           HAVING coalesce(sum(t.amount) FILTER (WHERE t.kind = 'hold'), 0) <> h.amount
               OR (h.status = 'open' AND count(*) FILTER (WHERE t.kind IN ('release', 'capture', 'fee')) > 0)
               OR (h.status = 'released' AND (coalesce(sum(t.amount) FILTER (WHERE t.kind = 'release'), 0) <> h.amount
                                              OR count(*) FILTER (WHERE t.kind IN ('capture', 'fee')) > 0))
               OR (h.status = 'captured' AND (count(*) FILTER (WHERE t.kind = 'capture') <> 1
                                              OR coalesce(sum(t.amount) FILTER (WHERE t.kind <> 'hold'), 0) <> h.amount))"#,
    )
    .fetch_all(&mut *tx)
    .await?;
    for HoldTally { hold_id, status, amount, placed, released, captured, releases, captures } in bad_holds {
        let ended_twice = captures > 0 && (status == "released" || released + captured > amount);
        let kind = if ended_twice { "hold_ended_twice" } else { "hold_transfers_mismatch" };
        violations.push(Violation {
            hold_id: Some(hold_id),
            ..violation(
                kind,
                format!(
                    "hold {hold_id} is {status} for {amount}: {placed} placed, {released} released ({releases}×), \
                     {captured} captured ({captures}×)"
                ),
            )
        });
    }

    // Sums as exact decimals (text, since sqlx decodes `numeric` only with an extra crate); the
    // conservation check itself runs in `numeric` too.
    let totals = sqlx::query!(
        r#"WITH t AS (SELECT
             (SELECT coalesce(sum(amount), 0) FROM transfers WHERE kind = 'deposit') AS deposits,
             (SELECT coalesce(sum(amount), 0) FROM transfers WHERE kind = 'withdrawal') AS withdrawals,
             (SELECT coalesce(sum(balance), 0) FROM accounts WHERE kind = 'available') AS available,
             (SELECT coalesce(sum(balance), 0) FROM accounts WHERE kind = 'held') AS held,
             (SELECT coalesce(sum(balance), 0) FROM accounts WHERE kind = 'fees') AS fees,
             (SELECT coalesce(sum(amount), 0) FROM holds WHERE status = 'open') AS open_holds,
             (SELECT count(*) FROM transfers) AS transfers,
             (SELECT balance FROM accounts WHERE kind = 'external') AS external)
           SELECT deposits::text AS "deposits!", withdrawals::text AS "withdrawals!", available::text AS "available!",
                  held::text AS "held!", fees::text AS "fees!", open_holds::text AS "open_holds!",
                  transfers AS "transfers!",
                  available + held + fees = deposits - withdrawals AND external = withdrawals - deposits AS "conserved!"
           FROM t"#,
    )
    .fetch_one(&mut *tx)
    .await?;
    let (deposits, withdrawals, available, held, fees, open_holds, transfers, conserved) = (
        totals.deposits,
        totals.withdrawals,
        totals.available,
        totals.held,
        totals.fees,
        totals.open_holds,
        totals.transfers,
        totals.conserved,
    );
    let exact = |text: &str| text.parse::<i128>().map_err(|e| sqlx::Error::Decode(Box::new(e)));
    let (deposits, withdrawals) = (exact(&deposits)?, exact(&withdrawals)?);
    let bounded = |text: &str| exact(text).map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let (available, held, fees, open_holds) =
        (bounded(&available)?, bounded(&held)?, bounded(&fees)?, bounded(&open_holds)?);
    if !conserved {
        violations.push(violation(
            "money_not_conserved",
            format!(
                "the wallet holds {available} available, {held} held and {fees} in fees, \
                 but deposits minus withdrawals is {}",
                deposits - withdrawals
            ),
        ));
    }
    tx.commit().await?;
    Ok(AuditReport {
        ok: violations.is_empty(),
        violations,
        totals: Totals { deposits, withdrawals, available, held, fees, open_holds, transfers },
        checked_at: Utc::now(),
    })
}

/// Keeps `report` as the last audit (the operator console shows it), unless a later one is kept
/// already: two audits finishing out of order leave the later snapshot.
pub async fn record_last(conn: &mut PgConnection, report: &AuditReport) -> Result<(), sqlx::Error> {
    // Text, not a JSON value: lifetime totals are i128, beyond what serde_json::Value holds.
    let json = serde_json::to_string(report).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query!(
        "INSERT INTO last_ledger_audit (checked_at, ok, report) VALUES ($1, $2, $3::text::jsonb)
         ON CONFLICT (singleton) DO UPDATE
           SET checked_at = EXCLUDED.checked_at, ok = EXCLUDED.ok, report = EXCLUDED.report, recorded_at = now()
           WHERE last_ledger_audit.checked_at <= EXCLUDED.checked_at",
        report.checked_at,
        report.ok,
        json,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The last audit kept by [`record_last`]; `None` before the first.
pub async fn last(conn: &mut PgConnection) -> Result<Option<AuditReport>, sqlx::Error> {
    let stored =
        sqlx::query_scalar!(r#"SELECT report::text AS "report!" FROM last_ledger_audit"#).fetch_optional(conn).await?;
    stored.map(|text| serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))).transpose()
}
