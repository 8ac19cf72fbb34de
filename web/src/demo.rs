//! Demo data for a local stack: a few neighbours with money in their wallets and things to sell.

use anyhow::Context;
use chrono::{Duration, Utc};
use neighborbid_shared::auctions::new::NewAuctionRequest;
use neighborbid_shared::auctions::{Condition, ShippingPayer, store};
use neighborbid_shared::ledger::wallet;
use neighborbid_shared::money::Krw;
use neighborbid_shared::users::{self, NewUser, UserError};
use sqlx::{Connection, PgPool};

/// The password of every demo account; printed by `scripts/up`.
pub const DEMO_PASSWORD: &str = "neighborbid-demo";

/// (username, email, home region id)
const DEMO_USERS: [(&str, &str, i64); 4] = [
    ("minji", "minji@example.com", 111),
    ("junho", "junho@example.com", 121),
    ("seoyeon", "seoyeon@example.com", 141),
    ("dohyun", "dohyun@example.com", 211),
];

/// A demo listing.
struct DemoAuction {
    /// Index into `DEMO_USERS`.
    seller: usize,
    title: &'static str,
    category_id: i64,
    start_price: i64,
    buy_now_price: Option<i64>,
    hours: i64,
}

const DEMO_AUCTIONS: [DemoAuction; 5] = [
    DemoAuction {
        seller: 0,
        title: "Road bike, 54 cm frame",
        category_id: 8,
        start_price: 150_000,
        buy_now_price: Some(320_000),
        hours: 6,
    },
    DemoAuction {
        seller: 1,
        title: "Mechanical keyboard (brown switches)",
        category_id: 1,
        start_price: 30_000,
        buy_now_price: None,
        hours: 3,
    },
    DemoAuction {
        seller: 2,
        title: "Oak dining table for four",
        category_id: 3,
        start_price: 80_000,
        buy_now_price: Some(200_000),
        hours: 24,
    },
    DemoAuction {
        seller: 3,
        title: "Board game bundle: 6 games",
        category_id: 10,
        start_price: 20_000,
        buy_now_price: None,
        hours: 48,
    },
    DemoAuction {
        seller: 0,
        title: "Rice cooker, 6 cups, barely used",
        category_id: 2,
        start_price: 25_000,
        buy_now_price: Some(60_000),
        hours: 12,
    },
];

/// Creates the demo accounts, wallets and auctions in one transaction, once: when a demo user
/// exists already nothing is done, so running it again changes nothing.
pub async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let password_hash = users::hash_password(DEMO_PASSWORD).await?;
    let mut conn = pool.acquire().await.context("failed to connect to the database")?;
    let mut tx = conn.begin().await?;
    let mut user_ids = Vec::new();
    for (username, email, region_id) in DEMO_USERS {
        let new = NewUser::parse(username, email, DEMO_PASSWORD.to_owned(), Some(region_id))?;
        match users::insert_user(&mut tx, &new, &password_hash, false).await {
            Ok(user) => user_ids.push((user.id, region_id)),
            Err(UserError::UsernameTaken | UserError::EmailTaken) => {
                tracing::info!("demo data is already loaded");
                return Ok(());
            }
            Err(err) => return Err(err).context("failed to create a demo user"),
        }
    }
    for (user_id, _) in &user_ids {
        wallet::deposit(&mut tx, *user_id, Krw::parse(1_000_000, "amount")?).await?;
    }
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
        store::create(&mut tx, seller_id, &request.validate(None, now)?, i64::MAX).await?;
    }
    tx.commit().await?;
    tracing::info!(users = user_ids.len(), auctions = DEMO_AUCTIONS.len(), "demo data loaded");
    Ok(())
}
