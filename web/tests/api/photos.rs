//! Item photos end to end: uploads answered at once, the `images` job validating and rendering them
//! (run here as the worker runs it), what buyers get served, and everything hostile.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};
use neighborbid_shared::ids::PhotoId;
use neighborbid_shared::jobs::Job;
use neighborbid_shared::jobs::process_photo::ProcessPhoto;
use neighborbid_shared::jobs::runner::run_recorded;
use neighborbid_shared::jobs::sweep;
use reqwest::header::{CONTENT_TYPE, ETAG};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::helpers::{TestApp, assert_error, body};

/// A noisy landscape photo, `width` × `height`, as JPEG bytes.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode(&picture(width, height), ImageFormat::Jpeg)
}

fn picture(width: u32, height: u32) -> RgbImage {
    let mut seed = 7_u32;
    RgbImage::from_fn(width, height, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (seed >> 28) as u8;
        image::Rgb([(x % 256) as u8 ^ noise, (y % 256) as u8, ((x + y) % 256) as u8])
    })
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A JPEG carrying EXIF orientation 6 (turn 90° clockwise to view) and a GPS latitude.
fn jpeg_with_exif_gps_and_orientation_6(width: u32, height: u32) -> Vec<u8> {
    // TIFF, little-endian: IFD0 = {Orientation = 6, GPS IFD pointer}, GPS IFD = {N, 37°33'12.34"}.
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        [&tag.to_le_bytes()[..], &kind.to_le_bytes(), &count.to_le_bytes(), &value].concat()
    };
    tiff.extend(2_u16.to_le_bytes());
    tiff.extend(entry(0x0112, 3, 1, [6, 0, 0, 0]));
    tiff.extend(entry(0x8825, 4, 1, 38_u32.to_le_bytes()));
    tiff.extend(0_u32.to_le_bytes());
    tiff.extend(2_u16.to_le_bytes());
    tiff.extend(entry(0x0001, 2, 2, *b"N\0\0\0"));
    tiff.extend(entry(0x0002, 5, 3, 68_u32.to_le_bytes()));
    tiff.extend(0_u32.to_le_bytes());
    for (numerator, denominator) in [(37_u32, 1_u32), (33, 1), (1234, 100)] {
        tiff.extend(numerator.to_le_bytes());
        tiff.extend(denominator.to_le_bytes());
    }
    let payload = [&b"Exif\0\0"[..], &tiff].concat();
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend(u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    app1.extend(payload);
    let plain = jpeg(width, height);
    [&plain[..2], &app1, &plain[2..]].concat()
}

/// A PNG whose header claims 30,000 × 30,000 pixels (900 megapixels) over a few bytes of data.
fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(30_000_u32.to_be_bytes());
    ihdr.extend(30_000_u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    push_chunk(&mut png, b"IHDR", &ihdr);
    push_chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    push_chunk(&mut png, b"IEND", &[]);
    png
}

fn push_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
    let typed = [&kind[..], data].concat();
    png.extend(&typed);
    png.extend(crc32(&typed).to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

impl TestApp {
    /// Uploads `bytes` as the `file` part.
    pub async fn upload_photo(&self, token: &str, auction_id: i64, bytes: Vec<u8>) -> reqwest::Response {
        let part = Part::bytes(bytes).file_name("photo.jpg").mime_str("image/jpeg").unwrap();
        self.request(Method::POST, &format!("/api/v1/auctions/{auction_id}/photos"))
            .bearer_auth(token)
            .multipart(Form::new().part("file", part))
            .send()
            .await
            .unwrap()
    }

    /// Runs every recorded `images` job, as the worker would.
    pub async fn run_image_jobs(&self) {
        run_recorded::<ProcessPhoto>(&self.jobs).await.unwrap();
    }

    /// Uploads `bytes`, lets the worker process it, and returns the photo as its seller sees it.
    async fn processed(&self, token: &str, auction_id: i64, bytes: Vec<u8>) -> Value {
        let resp = self.upload_photo(token, auction_id, bytes).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let id = body(resp).await["id"].as_i64().unwrap();
        self.run_image_jobs().await;
        body(self.get_as(token, &format!("/api/v1/photos/{id}")).await).await
    }

    async fn fetch(&self, url: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
        let resp = self.get(url).await;
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let headers = resp.headers().clone();
        (headers, resp.bytes().await.unwrap().to_vec())
    }
}

async fn seller_with_auction(app: &TestApp) -> (String, i64) {
    let token = app.user_token("seller").await;
    let auction = app.create_auction(&token, json!({})).await;
    (token, auction["id"].as_i64().unwrap())
}

async fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let dir = app.media_dir.clone();
    let mut files = Vec::new();
    let mut pending = vec![dir];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() { pending.push(path) } else { files.push(path) }
        }
    }
    files
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn an_upload_is_accepted_pending_then_rendered_and_served_safely(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;

    let resp = app.upload_photo(&token, auction_id, jpeg(2000, 1500)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let pending = body(resp).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["position"], 0);
    assert!(pending["urls"].is_null());
    // Nobody but the seller sees a pending photo.
    let id = pending["id"].as_i64().unwrap();
    assert_error(app.get(&format!("/api/v1/photos/{id}")).await, StatusCode::NOT_FOUND, "photo_not_found").await;

    app.run_image_jobs().await;
    let photo = body(app.get(&format!("/api/v1/photos/{id}")).await).await;
    assert_eq!(photo["status"], "ready");
    assert_eq!((photo["width"].as_i64(), photo["height"].as_i64()), (Some(2000), Some(1500)));

    let (headers, large) = app.fetch(photo["urls"]["large"].as_str().unwrap()).await;
    assert_eq!(headers[CONTENT_TYPE], "image/jpeg");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(headers[ETAG].to_str().unwrap().starts_with('"'));
    let large = image::load_from_memory(&large).unwrap();
    assert_eq!((large.width(), large.height()), (1600, 1200));
    let (_, thumb) = app.fetch(photo["urls"]["thumb"].as_str().unwrap()).await;
    let thumb = image::load_from_memory(&thumb).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (640, 480));

    // The auction and the list carry it; the upload itself is gone from storage.
    let auction = app.auction(auction_id).await;
    assert_eq!(auction["photos"][0]["id"], id);
    assert_eq!(auction["cover_url"], photo["urls"]["thumb"]);
    let listed = body(app.get("/api/v1/auctions").await).await;
    assert_eq!(listed["items"][0]["cover_url"], photo["urls"]["thumb"]);
    let files = stored_files(&app).await;
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.to_string_lossy().contains("/photos/")), "{files:?}");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn exif_orientation_is_applied_and_no_metadata_survives(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;
    let upload = jpeg_with_exif_gps_and_orientation_6(300, 200);
    assert!(upload.windows(4).any(|w| w == b"Exif"));

    let photo = app.processed(&token, auction_id, upload).await;
    assert_eq!(photo["status"], "ready");
    assert_eq!((photo["width"].as_i64(), photo["height"].as_i64()), (Some(200), Some(300)), "turned upright");
    for url in [&photo["urls"]["large"], &photo["urls"]["thumb"]] {
        let (_, served) = app.fetch(url.as_str().unwrap()).await;
        assert!(!served.windows(4).any(|w| w == b"Exif"), "EXIF survived in {url}");
        assert!(
            !served
                .windows(8)
                .any(|w| w == 1234_u32.to_le_bytes().iter().chain(&100_u32.to_le_bytes()).copied().collect::<Vec<_>>()),
            "GPS survived"
        );
    }
    let (_, large) = app.fetch(photo["urls"]["large"].as_str().unwrap()).await;
    let large = image::load_from_memory(&large).unwrap();
    assert_eq!((large.width(), large.height()), (200, 300));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn hostile_files_are_rejected_with_a_reason_or_never_served_as_sent(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;

    // A valid JPEG with an HTML page glued after it: only the decoded pixels are ever served.
    let mut polyglot = jpeg(400, 300);
    polyglot.extend(b"<html><script>alert('stored xss')</script></html>");
    let photo = app.processed(&token, auction_id, polyglot).await;
    assert_eq!(photo["status"], "ready");
    let (_, served) = app.fetch(photo["urls"]["large"].as_str().unwrap()).await;
    assert!(!served.windows(6).any(|w| w == b"<html>"));

    let mut truncated_png = encode(&picture(400, 300), ImageFormat::Png);
    truncated_png.truncate(truncated_png.len() / 2);
    let mut truncated_jpeg = jpeg(400, 300);
    truncated_jpeg.truncate(600);
    let gif = b"GIF89a\xc8\x00\xc8\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("html named photo.jpg", b"<html><body>not a photo</body></html>".to_vec(), "unsupported_format"),
        ("a GIF", gif, "unsupported_format"),
        ("a truncated PNG", truncated_png, "corrupt_image"),
        ("a truncated JPEG", truncated_jpeg, "corrupt_image"),
        ("a decompression bomb", png_bomb(), "dimensions_too_large"),
        ("a 50 × 50 icon", jpeg(50, 50), "too_small"),
    ];
    for (what, bytes, reason) in cases {
        let photo = app.processed(&token, auction_id, bytes).await;
        assert_eq!((photo["status"].as_str(), photo["reason"].as_str()), (Some("rejected"), Some(reason)), "{what}");
        assert!(photo["urls"].is_null(), "{what}");
    }
    // Rejected photos are not shown to buyers, and their uploads are deleted.
    let shown = body(app.get(&format!("/api/v1/auctions/{auction_id}/photos")).await).await;
    assert_eq!(shown["items"].as_array().unwrap().len(), 1);
    let everything = body(app.get_as(&token, &format!("/api/v1/auctions/{auction_id}/photos")).await).await;
    assert_eq!(everything["items"].as_array().unwrap().len(), 7);
    assert_eq!(stored_files(&app).await.len(), 2, "only the polyglot's renditions remain");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn uploads_are_refused_when_too_big_too_many_not_yours_or_too_late(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;
    let stranger = app.user_token("stranger").await;
    let path = format!("/api/v1/auctions/{auction_id}/photos");

    let eleven_mib = vec![0xFF; 11 * 1024 * 1024];
    assert_error(
        app.upload_photo(&token, auction_id, eleven_mib).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let just_over = vec![0xFF; 10 * 1024 * 1024 + 1];
    assert_error(
        app.upload_photo(&token, auction_id, just_over).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "photo_too_large",
    )
    .await;
    assert_error(
        app.upload_photo(&token, auction_id, Vec::new()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_file",
    )
    .await;
    assert_error(app.upload_photo(&stranger, auction_id, jpeg(200, 200)).await, StatusCode::FORBIDDEN, "not_seller")
        .await;
    assert_error(app.upload_photo(&token, 999_999, jpeg(200, 200)).await, StatusCode::NOT_FOUND, "auction_not_found")
        .await;
    let anonymous = app
        .request(Method::POST, &path)
        .multipart(Form::new().part("file", Part::bytes(jpeg(200, 200))))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let chunked = app
        .request(Method::POST, &path)
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "multipart/form-data; boundary=x")
        .body(reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>(b"--x\r\n".to_vec())])))
        .send()
        .await
        .unwrap();
    assert_error(chunked, StatusCode::LENGTH_REQUIRED, "length_required").await;

    for _ in 0..10 {
        assert_eq!(app.upload_photo(&token, auction_id, jpeg(200, 200)).await.status(), StatusCode::ACCEPTED);
    }
    assert_error(app.upload_photo(&token, auction_id, jpeg(200, 200)).await, StatusCode::CONFLICT, "too_many_photos")
        .await;
    assert_eq!(stored_files(&app).await.len(), 10, "refused uploads leave no file behind");

    let other = app.create_auction(&token, json!({})).await["id"].as_i64().unwrap();
    let cancelled = app.post_as(&token, &format!("/api/v1/auctions/{other}/cancel"), json!({})).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_error(app.upload_photo(&token, other, jpeg(200, 200)).await, StatusCode::CONFLICT, "auction_not_open").await;
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_removed_photo_disappears_and_its_files_are_purged(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;
    let stranger = app.user_token("stranger").await;
    let photo = app.processed(&token, auction_id, jpeg(800, 600)).await;
    let id = photo["id"].as_i64().unwrap();
    let url = photo["urls"]["thumb"].as_str().unwrap().to_owned();

    let delete = |token: String| app.request(Method::DELETE, &format!("/api/v1/photos/{id}")).bearer_auth(token).send();
    assert_error(delete(stranger).await.unwrap(), StatusCode::FORBIDDEN, "not_seller").await;
    assert_eq!(delete(token.clone()).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_error(app.get(&format!("/api/v1/photos/{id}")).await, StatusCode::NOT_FOUND, "photo_not_found").await;
    assert_eq!(app.auction(auction_id).await["photos"], json!([]));
    let events: Vec<String> = sqlx::query_scalar("SELECT type FROM auction_events WHERE auction_id = $1 ORDER BY seq")
        .bind(auction_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, ["photo_added", "photo_removed"]);

    app.run_image_jobs().await;
    assert_eq!(app.get(&url).await.status(), StatusCode::NOT_FOUND);
    assert!(stored_files(&app).await.is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM photos").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 0);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_repeated_job_changes_nothing_and_lost_jobs_are_re_derived(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;
    let id = body(app.upload_photo(&token, auction_id, jpeg(640, 480)).await).await["id"].as_i64().unwrap();

    // The job was handed to Redis and the queue then lost (a flush, a worker killed mid-decode):
    // the photo is still pending, and the sweep records its job again.
    sqlx::query("UPDATE outbox SET relayed_at = now() - interval '1 hour'").execute(&app.pool).await.unwrap();
    app.run_image_jobs().await;
    let pending = body(app.get_as(&token, &format!("/api/v1/photos/{id}")).await).await;
    assert_eq!(pending["status"], "pending");
    let swept = sweep::sweep(&mut app.pool.acquire().await.unwrap(), 60).await.unwrap();
    assert_eq!(swept, [("process_photo", 1)]);
    app.run_image_jobs().await;
    let ready = body(app.get(&format!("/api/v1/photos/{id}")).await).await;
    assert_eq!(ready["status"], "ready");

    // A second delivery of the same job: nothing changes, no second event.
    ProcessPhoto { photo_id: PhotoId(id) }.run(&app.jobs).await.unwrap();
    assert_eq!(body(app.get(&format!("/api/v1/photos/{id}")).await).await, ready);
    let added: i64 = sqlx::query_scalar("SELECT count(*) FROM auction_events WHERE type = 'photo_added'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(added, 1);
    assert_eq!(sweep::sweep(&mut app.pool.acquire().await.unwrap(), 0).await.unwrap(), []);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn served_files_answer_ranges_head_and_revalidation_and_nothing_else(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (token, auction_id) = seller_with_auction(&app).await;
    let photo = app.processed(&token, auction_id, jpeg(800, 600)).await;
    let url = photo["urls"]["large"].as_str().unwrap().to_owned();
    let (headers, whole) = app.fetch(&url).await;
    let etag = headers[ETAG].to_str().unwrap().to_owned();

    let part = app.request(Method::GET, &url).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], format!("bytes 10-19/{}", whole.len()));
    assert_eq!(part.bytes().await.unwrap(), whole[10..20]);
    let tail = app.request(Method::GET, &url).header("range", "bytes=-5").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap(), whole[whole.len() - 5..]);
    let beyond =
        app.request(Method::GET, &url).header("range", format!("bytes={}-", whole.len())).send().await.unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let head = app.request(Method::HEAD, &url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], whole.len().to_string());
    assert_eq!(head.headers()[CONTENT_TYPE], "image/jpeg");
    let revalidated = app.request(Method::GET, &url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    // A pending upload's original is on disk, and still not reachable.
    assert_eq!(app.upload_photo(&token, auction_id, jpeg(300, 300)).await.status(), StatusCode::ACCEPTED);
    let original: String = sqlx::query_scalar("SELECT original_key FROM photos WHERE status = 'pending'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(app.media_dir.join(&original).is_file());
    for path in [
        format!("/media/{original}"),
        "/media/../Cargo.toml".to_owned(),
        "/media/photos/1/..%2F..%2F..%2FCargo.toml".to_owned(),
        "/media/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/media/photos/1/00000000000000000000000000000000-thumb.jpg".to_owned(),
        format!("{url}.bak"),
    ] {
        let resp = app.get(&path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// The S3-compatible server `scripts/test` starts (`scripts/s3-server`).
fn s3_endpoint() -> String {
    std::env::var("NB_TEST_S3_ENDPOINT").expect(
        "NB_TEST_S3_ENDPOINT is not set: run scripts/test, or export NB_TEST_S3_ENDPOINT=\"$(scripts/s3-server)\"",
    )
}

async fn bucket_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let listing = reqwest::get(format!("{endpoint}/{bucket}?list-type=2")).await.unwrap().text().await.unwrap();
    listing.split("<Key>").skip(1).filter_map(|s| s.split_once("</Key>")).map(|(key, _)| key.to_owned()).collect()
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn photos_live_in_s3_compatible_storage_when_configured(pool: PgPool) {
    let endpoint = s3_endpoint();
    let bucket = format!("photos-{:016x}", rand::random::<u64>());
    let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert!(created.status().is_success(), "creating the bucket: {}", created.status());
    let url = format!("s3://{bucket}");
    let app = TestApp::spawn_with(
        pool,
        &[
            ("MEDIA_URL", &url),
            ("AWS_ENDPOINT", &endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    )
    .await;
    let (token, auction_id) = seller_with_auction(&app).await;

    let resp = app.upload_photo(&token, auction_id, jpeg(1200, 900)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let keys = bucket_keys(&endpoint, &bucket).await;
    assert!(keys.len() == 1 && keys[0].starts_with("originals/"), "{keys:?}");

    app.run_image_jobs().await;
    let id = body(resp).await["id"].as_i64().unwrap();
    let photo = body(app.get(&format!("/api/v1/photos/{id}")).await).await;
    assert_eq!(photo["status"], "ready");
    let (headers, large) = app.fetch(photo["urls"]["large"].as_str().unwrap()).await;
    assert_eq!(headers[CONTENT_TYPE], "image/jpeg");
    assert_eq!(image::load_from_memory(&large).unwrap().width(), 1200);
    let part = app
        .request(Method::GET, photo["urls"]["large"].as_str().unwrap())
        .header("range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap(), large[..2]);
    let mut keys = bucket_keys(&endpoint, &bucket).await;
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(&format!("photos/{id}/"))), "the upload is deleted: {keys:?}");

    let removed =
        app.request(Method::DELETE, &format!("/api/v1/photos/{id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    app.run_image_jobs().await;
    assert_eq!(bucket_keys(&endpoint, &bucket).await, Vec::<String>::new());
}
