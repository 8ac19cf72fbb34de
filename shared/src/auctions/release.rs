//! Releasing holds that no longer lead their auction (outbid, lost, cancelled), and telling their
//! bidders they were outbid. The `release_hold` job runs it, many holds per statement.

use sqlx::PgConnection;

use crate::ids::HoldId;

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The hold's money went back to the bidder's available balance.
    Released,
    /// Already released or captured: a repeated delivery; nothing moved.
    AlreadyEnded,
    /// The hold leads its live or closed auction again (its owner re-bid): it must stay.
    StillLeading,
    /// No such hold.
    Missing,
    /// Nothing was decided: another transaction (a bid, a deposit, a settlement, another batch) held
    /// the hold's auction, its bidder's user row or their wallet at that moment and the batch did not
    /// wait for it ([`Wait::No`]), or the hold led its auction when the batch chose whose wallets to
    /// take and was outbid while the batch waited for that auction ([`Wait::ForBids`]).
    Busy,
}

impl ReleaseOutcome {
    fn parse(outcome: &str) -> Result<Self, sqlx::Error> {
        Ok(match outcome {
            "released" => Self::Released,
            "already_ended" => Self::AlreadyEnded,
            "still_leading" => Self::StillLeading,
            "missing" => Self::Missing,
            "busy" => Self::Busy,
            other => return Err(sqlx::Error::Protocol(format!("a release answered {other:?}"))),
        })
    }
}

/// Whether a release waits for the bids holding its holds' auctions and bidders' wallets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait for them: every hold is decided, except one outbid while the batch waited (see
    /// [`ReleaseOutcome::Busy`]).
    ForBids,
    /// Do not: the holds whose auction, bidder or bidder's wallet another transaction holds at that moment
    /// come back [`ReleaseOutcome::Busy`], undecided, so a batch never keeps what it took locked
    /// while it waits for something else.
    No,
}

/// Releases each of `hold_ids` that is not the leading hold of an auction still live or awaiting
/// settlement, and tells outbid bidders, in one statement and one commit: the SQL function
/// `release_holds`, or with [`Wait::No`] `release_idle_holds`
/// (migrations/20261206000001_release_takes_bidders_first.sql), which take every lock in the order
/// bids and settlements take them (auctions, then user rows, which bids do not take, then
/// accounts), so they cannot deadlock with either, then end the releasable holds as a set with
/// `release_locked_holds` (migrations/20261204000001_notifications_as_a_set.sql), which also makes
/// their outbid notifications as a set. Answers each element of `hold_ids` in order: a hold given twice is
/// released by the first and `AlreadyEnded` for the second, as two calls would find it.
#[tracing::instrument(skip_all, fields(holds = hold_ids.len(), ?wait))]
pub async fn release_outbid_holds(
    conn: &mut PgConnection,
    hold_ids: &[HoldId],
    wait: Wait,
) -> Result<Vec<ReleaseOutcome>, sqlx::Error> {
    let ids: Vec<i64> = hold_ids.iter().map(|id| id.0).collect();
    let rows = match wait {
        Wait::ForBids => {
            sqlx::query_scalar!(r#"SELECT outcome AS "outcome!" FROM release_holds($1) ORDER BY ordinal"#, &ids)
                .fetch_all(conn)
                .await?
        }
        Wait::No => {
            sqlx::query_scalar!(r#"SELECT outcome AS "outcome!" FROM release_idle_holds($1) ORDER BY ordinal"#, &ids)
                .fetch_all(conn)
                .await?
        }
    };
    if rows.len() != hold_ids.len() {
        return Err(sqlx::Error::Protocol(format!("release answered {} of {} holds", rows.len(), hold_ids.len())));
    }
    let outcomes = rows.iter().map(|outcome| ReleaseOutcome::parse(outcome)).collect::<Result<Vec<_>, _>>()?;
    for (hold_id, outcome) in hold_ids.iter().zip(&outcomes) {
        if *outcome == ReleaseOutcome::Missing {
            tracing::warn!(hold.id = hold_id.0, "release of a hold that does not exist");
        }
    }
    Ok(outcomes)
}
