//! The `images` queue under failure: a worker killed mid-batch and the queues flushed, with every
//! photo still rendered exactly once.

use std::io::Cursor;
use std::time::Duration;

use image::{ImageFormat, RgbImage};
use neighborbid_shared::media::{MediaKey, MediaStore};
use neighborbid_shared::photos;
use sqlx::PgPool;

use crate::harness::{Platform, WorkerProcess, fast_sweeps};
use neighborbid_testkit::db::database_url;

const PHOTOS: usize = 60;

fn two_megapixel_jpeg() -> Vec<u8> {
    let picture =
        RgbImage::from_fn(1732, 1155, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8]));
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
    bytes.into_inner()
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries.flatten().map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 }).sum()
    })
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_worker_killed_mid_batch_and_a_flushed_queue_still_render_every_photo_once(pool: PgPool) {
    let mut platform = Platform::new(pool).await;
    let url = database_url(&platform.pool).await;
    let media = MediaStore::open(&platform.config()).unwrap();
    let sellers = platform.funded_users("seller", 1).await;
    let bidders = platform.funded_users("bidder", 2).await;
    let auctions = platform.auctions_with_bids(PHOTOS / 10, &sellers, &bidders, Duration::from_secs(3600)).await;
    let upload = two_megapixel_jpeg();
    let mut conn = platform.pool.acquire().await.unwrap();
    for n in 0..PHOTOS {
        let original = MediaKey::original();
        media.put(&original, upload.clone().into()).await.unwrap();
        let bytes = i64::try_from(upload.len()).unwrap();
        photos::record_upload(&mut conn, auctions[n / 10], sellers[0], &original, bytes).await.unwrap();
    }
    drop(conn);

    platform.start_scheduler(fast_sweeps());
    let mut doomed = WorkerProcess::start(&platform, &url);
    platform
        .wait_for(
            "the first photos",
            "SELECT count(*) >= 3 FROM photos WHERE status = 'ready'",
            Duration::from_secs(60),
        )
        .await;
    doomed.kill();
    let ready_at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM photos WHERE status = 'ready'")
        .fetch_one(&platform.pool)
        .await
        .unwrap();
    assert!(ready_at_kill < PHOTOS as i64, "the worker finished before it could be killed");
    // Whatever the killed worker held, and everything queued, is lost with Redis.
    platform.flush_queues().await;

    let successor = WorkerProcess::start(&platform, &url);
    platform
        .wait_for(
            "every photo rendered and its upload deleted",
            "SELECT count(*) = 60 FROM photos WHERE status = 'ready' AND original_key IS NULL",
            Duration::from_secs(120),
        )
        .await;
    drop(successor);
    let added: i64 = sqlx::query_scalar("SELECT count(*) FROM auction_events WHERE type = 'photo_added'")
        .fetch_one(&platform.pool)
        .await
        .unwrap();
    assert_eq!(added, PHOTOS as i64, "one photo_added per photo, none twice");
    assert_eq!(files_under(&platform.media_dir.join("originals")), 0, "every upload deleted");
    assert_eq!(files_under(&platform.media_dir.join("photos")), 2 * PHOTOS, "two renditions per photo");
    platform.stop().await;
}
