//! Releasing a hold that no longer leads its auction (outbid, lost, cancelled), and telling its
//! bidder they were outbid. The `release_hold` job runs it.

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
}

/// Releases `hold_id` unless it is the leading hold of an auction that is still live or awaiting
/// settlement, and tells an outbid bidder. One statement, the SQL function `release_hold`
/// (migrations/20261126000001_bid_engine.sql): it locks the auction row first, the order every bid
/// uses, so it cannot deadlock with bids, and a second run is a no-op.
#[tracing::instrument(skip_all, fields(hold.id = hold_id.0))]
pub async fn release_outbid_hold(conn: &mut PgConnection, hold_id: HoldId) -> Result<ReleaseOutcome, sqlx::Error> {
    let outcome =
        sqlx::query_scalar!(r#"SELECT release_hold($1) AS "outcome!""#, hold_id as HoldId).fetch_one(conn).await?;
    Ok(match outcome.as_str() {
        "released" => ReleaseOutcome::Released,
        "already_ended" => ReleaseOutcome::AlreadyEnded,
        "still_leading" => ReleaseOutcome::StillLeading,
        "missing" => {
            tracing::warn!(hold.id = hold_id.0, "release of a hold that does not exist");
            ReleaseOutcome::Missing
        }
        other => return Err(sqlx::Error::Protocol(format!("release_hold answered {other:?}"))),
    })
}
