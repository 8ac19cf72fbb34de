//! Demo data for a local stack: a few neighbours with money in their wallets and things to sell.

use anyhow::Context;
use chrono::{Duration, Utc};
use neighborbid_shared::auctions::new::NewAuctionRequest;
use neighborbid_shared::auctions::{Condition, ShippingPayer, store};
use neighborbid_shared::ids::{CategoryId, RegionId, UserId};
use neighborbid_shared::ledger::wallet;
use neighborbid_shared::money::Krw;
use neighborbid_shared::users::{self, NewUser};
use sqlx::{Connection, PgPool};

/// The password of every demo account; printed by `scripts/up`.
pub const DEMO_PASSWORD: &str = "neighborbid-demo";

/// (username, email, home region id)
const DEMO_USERS: [(&str, &str, RegionId); 4] = [
    ("minji", "minji@example.com", RegionId(111)),
    ("junho", "junho@example.com", RegionId(121)),
    ("seoyeon", "seoyeon@example.com", RegionId(141)),
    ("dohyun", "dohyun@example.com", RegionId(211)),
];

/// A demo listing.
struct DemoAuction {
    /// Index into `DEMO_USERS`.
    seller: usize,
    title: &'static str,
    category_id: CategoryId,
    start_price: i64,
    buy_now_price: Option<i64>,
    hours: i64,
}

const DEMO_AUCTIONS: [DemoAuction; 5] = [
    DemoAuction {
        seller: 0,
        title: "Road bike, 54 cm frame",
        category_id: CategoryId(8),
        start_price: 150_000,
        buy_now_price: Some(320_000),
        hours: 6,
    },
    DemoAuction {
        seller: 1,
        title: "Mechanical keyboard (brown switches)",
        category_id: CategoryId(1),
        start_price: 30_000,
        buy_now_price: None,
        hours: 3,
    },
    DemoAuction {
        seller: 2,
        title: "Oak dining table for four",
        category_id: CategoryId(3),
        start_price: 80_000,
        buy_now_price: Some(200_000),
        hours: 24,
    },
    DemoAuction {
        seller: 3,
        title: "Board game bundle: 6 games",
        category_id: CategoryId(10),
        start_price: 20_000,
        buy_now_price: None,
        hours: 48,
    },
    DemoAuction {
        seller: 0,
        title: "Rice cooker, 6 cups, barely used",
        category_id: CategoryId(2),
        start_price: 25_000,
        buy_now_price: Some(60_000),
        hours: 12,
    },
];

/// Creates the demo accounts, wallets and auctions in one transaction. Run again, it changes
/// nothing while a demo auction is still open; once every one has ended (a day later, say), it lists
/// the demo auctions afresh, so a newcomer always finds something to bid on.
pub async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("failed to connect to the database")?;
    let mut user_ids = existing_demo_users(&mut conn).await?;
    if user_ids.is_empty() {
        // Hashed before the transaction: hashing is slow and needs no connection.
        let password_hash = users::hash_password(DEMO_PASSWORD).await?;
        let mut tx = conn.begin().await?;
        for (username, email, region_id) in DEMO_USERS {
            let new = NewUser::parse(username, email, DEMO_PASSWORD.to_owned(), Some(region_id))?;
            let user = users::insert_user(&mut tx, &new, &password_hash, false)
                .await
                .context("failed to create a demo user (is one of the demo names taken?)")?;
            wallet::deposit(&mut tx, user.id, Krw::parse(1_000_000, "amount")?).await?;
            user_ids.push((user.id, region_id));
        }
        list_demo_auctions(&mut tx, &user_ids).await?;
        tx.commit().await?;
        tracing::info!(users = user_ids.len(), auctions = DEMO_AUCTIONS.len(), "demo data loaded");
        return Ok(());
    }
    let sellers: Vec<UserId> = user_ids.iter().map(|(id, _)| *id).collect();
    let open = sqlx::query_scalar!(
        r#"SELECT count(*) AS "open!" FROM auctions
           WHERE seller_id = ANY($1) AND status IN ('scheduled', 'active') AND ends_at > now()"#,
        &sellers as &[UserId],
    )
    .fetch_one(&mut *conn)
    .await?;
    if open > 0 {
        tracing::info!(open, "demo data is loaded and has open auctions");
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    list_demo_auctions(&mut tx, &user_ids).await?;
    tx.commit().await?;
    tracing::info!(auctions = DEMO_AUCTIONS.len(), "every demo auction had ended; listed fresh ones");
    Ok(())
}

/// The demo users that exist, with their home regions, in [`DEMO_USERS`] order; empty when none do.
async fn existing_demo_users(conn: &mut sqlx::PgConnection) -> anyhow::Result<Vec<(UserId, RegionId)>> {
    let names: Vec<&str> = DEMO_USERS.iter().map(|(name, _, _)| *name).collect();
    let found: Vec<(String, UserId)> =
        sqlx::query!(r#"SELECT username, id AS "id: UserId" FROM users WHERE username = ANY($1)"#, &names as &[&str])
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|row| (row.username, row.id))
            .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }
    DEMO_USERS
        .iter()
        .map(|(name, _, region_id)| {
            let id = found.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
            id.map(|id| (id, *region_id))
                .with_context(|| format!("demo user {name} is missing; the demo data is incomplete"))
        })
        .collect()
}

/// Lists every demo auction, starting now.
async fn list_demo_auctions(conn: &mut sqlx::PgConnection, user_ids: &[(UserId, RegionId)]) -> anyhow::Result<()> {
    let now = Utc::now();
    for DemoAuction { seller, title, category_id, start_price, buy_now_price, hours } in DEMO_AUCTIONS {
        let (seller_id, region_id) = user_ids[seller];
        let request = NewAuctionRequest {
            title: title.to_owned(),
            description: Some(format!("{title}. Pick-up in the neighbourhood, or shipped at the buyer's cost.")),
            category_id,
            region_id: Some(region_id),
            national: false,
            condition: Condition::Good,
            shipping_payer: ShippingPayer::Buyer,
            start_price,
            buy_now_price,
            reserve_price: None,
            bid_increment: None,
            starts_at: None,
            ends_at: now + Duration::hours(hours),
            soft_close_seconds: None,
        };
        store::create(&mut *conn, seller_id, &request.validate(None, now)?, i64::MAX).await?;
    }
    Ok(())
}
