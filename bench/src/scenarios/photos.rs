//! `photos`: uploads at the web while the `images` workers render them.
//!
//! Setup signs in [`SELLERS`] sellers over the API and gives them active auctions (SQL), enough for
//! `count` photos at 10 per auction. Then `count` copies of one 2-megapixel JPEG are uploaded open
//! loop, one starting every `1/rate` s whatever the earlier ones do, each timed; the relay and the
//! workers start rendering as soon as the first upload is recorded, so the uploads are measured while
//! the workers are busy. (Closed-loop uploads would measure the web's saturation instead.)
//! PostgreSQL is polled until every photo is settled; the processing rate comes from the rows' own
//! timestamps (first upload to last settled). Each `neighborbid-worker` process's peak RSS (VmHWM)
//! is read from /proc, so run the bench on the workers' host.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use image::{ImageFormat, RgbImage};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::task::JoinSet;

use crate::client::Api;
use crate::sql_seed::{self, AuctionState};
use crate::stats::{Check, LatencySummary, all_pass, rate, round};

/// Sellers the photos are spread over.
const SELLERS: usize = 10;
/// The photo: 1,732 × 1,155, two megapixels.
const WIDTH: u32 = 1_732;
const HEIGHT: u32 = 1_155;
const UPLOAD_P99_TARGET_MS: f64 = 50.0;
const PROCESSED_TARGET_PER_SEC: f64 = 40.0;
const WORKER_RSS_TARGET_MB: f64 = 300.0;
const POLL: Duration = Duration::from_millis(100);

/// Runs the scenario: `count` uploads, `rate_per_sec` of them started each second.
pub async fn run(
    api: &Api,
    base_url: &str,
    database_url: &str,
    count: usize,
    rate_per_sec: u32,
) -> anyhow::Result<Value> {
    let pool = sql_seed::connect(database_url).await?;
    let run_id = sql_seed::run_id();
    let photo = Arc::new(two_megapixel_jpeg());
    eprintln!("photo: {WIDTH}×{HEIGHT} JPEG, {} bytes", photo.len());
    let targets = seed(api, &pool, &run_id, count).await?;
    let auction_ids: Vec<i64> =
        targets.iter().map(|(_, auction)| *auction).collect::<std::collections::BTreeSet<_>>().into_iter().collect();

    eprintln!("uploading {count} photos, {rate_per_sec} a second");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).tcp_nodelay(true).build()?;
    let root = format!("{}/api/v1", base_url.trim_end_matches('/'));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate_per_sec)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut uploads = JoinSet::new();
    for (token, auction) in targets {
        ticker.tick().await;
        let (client, root, photo) = (client.clone(), root.clone(), Arc::clone(&photo));
        uploads.spawn(async move { upload(&client, &root, &token, auction, photo.as_ref().clone()).await });
    }
    let mut outcomes: Vec<(StatusCode, Duration)> = Vec::with_capacity(count);
    while let Some(outcome) = uploads.join_next().await {
        outcomes.push(outcome??);
    }
    let upload_secs = started.elapsed();
    let accepted = outcomes.iter().filter(|(status, _)| *status == StatusCode::ACCEPTED).count();
    let mut latencies: Vec<Duration> = outcomes.iter().map(|(_, latency)| *latency).collect();
    let uploads = LatencySummary::from_samples(&mut latencies);
    eprintln!("{accepted}/{count} accepted in {:.2} s; p99 {} ms", upload_secs.as_secs_f64(), uploads.p99_ms);

    let give_up = Duration::from_secs(300);
    wait_until_settled(&pool, &auction_ids, accepted, started, give_up).await?;
    let processed = from_rows(&pool, &auction_ids).await?;
    let workers = worker_peak_rss_mb();
    pool.close().await;

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let per_sec = processed["photos_per_sec"].as_f64().unwrap_or(0.0);
    let peak_mb = workers.iter().map(|(_, mb)| *mb).fold(0.0, f64::max);
    let checks = vec![
        Check::at_most("upload_p99_ms", UPLOAD_P99_TARGET_MS, uploads.p99_ms),
        Check::at_least("photos_processed_per_sec", PROCESSED_TARGET_PER_SEC, per_sec),
        Check::at_most("worker_peak_rss_mb", WORKER_RSS_TARGET_MB, peak_mb),
    ];
    Ok(json!({
        "scenario": "photos",
        "run_id": run_id,
        "photo": { "width": WIDTH, "height": HEIGHT, "bytes": photo.len() },
        "uploads": count,
        "accepted": accepted,
        "upload_errors": count - accepted,
        "rate_per_sec": rate_per_sec,
        "upload_secs": round(upload_secs.as_secs_f64()),
        "uploads_per_sec": rate(accepted as u64, upload_secs),
        "upload_latency": uploads,
        "processed": processed,
        "cores": cores,
        "photos_per_sec_per_core": round(per_sec / cores as f64),
        "worker_processes": workers.iter().map(|(pid, mb)| json!({ "pid": pid, "peak_rss_mb": mb })).collect::<Vec<_>>(),
        "checks": checks,
        "pass": all_pass(&checks) && accepted == count,
    }))
}

/// A noisy photo-like picture: flat colours would compress to nothing and decode too fast.
fn two_megapixel_jpeg() -> Vec<u8> {
    let mut seed = 1_u32;
    let picture = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (seed >> 27) as u8;
        image::Rgb([
            ((x * 255 / WIDTH) as u8).wrapping_add(noise),
            ((y * 255 / HEIGHT) as u8).wrapping_add(noise),
            (((x + y) / 8) as u8).wrapping_add(noise),
        ])
    });
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, ImageFormat::Jpeg).expect("encoding to memory");
    bytes.into_inner()
}

/// Signs the sellers in and gives them active auctions; returns one (token, auction) per upload.
async fn seed(api: &Api, pool: &PgPool, run_id: &str, count: usize) -> anyhow::Result<Vec<(String, i64)>> {
    let auctions = count.div_ceil(10);
    let per_seller = auctions.div_ceil(SELLERS);
    let mut targets = Vec::with_capacity(count);
    let mut tx = pool.begin().await?;
    let ends = chrono::Utc::now() + chrono::Duration::hours(2);
    for n in 0..SELLERS {
        let seller = api.ensure_user(&format!("bench_photo_{n}")).await?;
        let title = format!("bench photos {run_id}");
        let ids = sql_seed::create_auctions(
            &mut tx,
            seller.user_id,
            i64::try_from(per_seller)?,
            &title,
            AuctionState::ActiveUntil(ends),
        )
        .await?;
        for id in ids {
            for _ in 0..10 {
                targets.push((seller.token.clone(), id));
            }
        }
    }
    tx.commit().await?;
    targets.truncate(count);
    if targets.len() < count {
        bail!("seeded room for {} photos, wanted {count}", targets.len());
    }
    // Interleave sellers so that uploads to one auction are spread over the run.
    targets.sort_by_key(|(_, auction)| *auction % 10);
    Ok(targets)
}

async fn upload(
    client: &reqwest::Client,
    root: &str,
    token: &str,
    auction: i64,
    photo: Vec<u8>,
) -> anyhow::Result<(StatusCode, Duration)> {
    let part = Part::bytes(photo).file_name("photo.jpg").mime_str("image/jpeg")?;
    let started = Instant::now();
    let resp = client
        .post(format!("{root}/auctions/{auction}/photos"))
        .bearer_auth(token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .context("upload failed")?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let latency = started.elapsed();
    if status != StatusCode::ACCEPTED {
        eprintln!("upload to auction {auction}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok((status, latency))
}

async fn wait_until_settled(
    pool: &PgPool,
    auctions: &[i64],
    expected: usize,
    started: Instant,
    give_up: Duration,
) -> anyhow::Result<()> {
    let mut next_report = Duration::from_secs(1);
    loop {
        let settled: i64 =
            sqlx::query_scalar("SELECT count(*) FROM photos WHERE auction_id = ANY($1) AND status <> 'pending'")
                .bind(auctions)
                .fetch_one(pool)
                .await?;
        let elapsed = started.elapsed();
        if settled as usize >= expected {
            eprintln!("{:>7.2} s: all {expected} photos settled", elapsed.as_secs_f64());
            return Ok(());
        }
        if elapsed >= next_report {
            next_report += Duration::from_secs(1);
            eprintln!("{:>7.2} s: {settled}/{expected} settled", elapsed.as_secs_f64());
        }
        if elapsed >= give_up {
            bail!("gave up after {give_up:?} with {settled}/{expected} photos settled");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Exact counts and rates from the rows' own timestamps.
async fn from_rows(pool: &PgPool, auctions: &[i64]) -> anyhow::Result<Value> {
    let (ready, rejected, span_secs): (i64, i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'ready'), count(*) FILTER (WHERE status = 'rejected'), \
                extract(epoch FROM max(processed_at) - min(created_at))::float8 \
         FROM photos WHERE auction_id = ANY($1)",
    )
    .bind(auctions)
    .fetch_one(pool)
    .await?;
    let per_sec = span_secs.filter(|s| *s > 0.0).map_or(0.0, |s| round((ready + rejected) as f64 / s));
    Ok(json!({
        "ready": ready,
        "rejected": rejected,
        "first_upload_to_last_settled_secs": span_secs.map(round),
        "photos_per_sec": per_sec,
    }))
}

/// Peak resident memory (VmHWM) of every `neighborbid-worker` process on this host, in MB.
fn worker_peak_rss_mb() -> Vec<(u32, f64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        // The kernel keeps 15 characters of the name.
        if !status.lines().any(|line| line.starts_with("Name:") && line.contains("neighborbid-wor")) {
            continue;
        }
        let peak_kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
        if let Some(kb) = peak_kb {
            found.push((pid, round(kb / 1024.0)));
        }
    }
    found.sort_by_key(|(pid, _)| *pid);
    found
}
