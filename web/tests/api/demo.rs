//! The demo data of `scripts/up`: loaded once, and topped up when every demo auction has ended.

use sqlx::PgPool;

async fn open_auctions(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM auctions WHERE status = 'active'").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_newcomer_a_day_later_still_finds_auctions_to_bid_on(pool: PgPool) {
    neighborbid_web::demo::seed(&pool).await.unwrap();
    let first = open_auctions(&pool).await;
    assert!(first > 0);
    neighborbid_web::demo::seed(&pool).await.unwrap();
    assert_eq!(open_auctions(&pool).await, first, "a second run changes nothing while auctions are open");

    sqlx::query("UPDATE auctions SET status = 'unsold', starts_at = now() - interval '2 hours', ends_at = now() - interval '1 hour', ended_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    neighborbid_web::demo::seed(&pool).await.unwrap();
    assert_eq!(open_auctions(&pool).await, first, "every ended demo auction is listed afresh");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&pool).await.unwrap();
    assert_eq!(users, 4, "and nobody is signed up twice");
}
