//! The operator endpoints behind `/ops`: queues, dead jobs, workers, closings and the last audit,
//! against a real worker pool and a real SMTP server that refuses mail until told otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use neighborbid_shared::auctions::closing::close_due;
use neighborbid_shared::config::Config;
use neighborbid_shared::ids::AuctionId;
use neighborbid_shared::jobs::queues::Queue;
use neighborbid_shared::jobs::relay::relay_once;
use neighborbid_shared::jobs::runner::run_recorded;
use neighborbid_shared::jobs::settle_auction::SettleAuction;
use neighborbid_testkit::db::end_now;
use neighborbid_testkit::smtp::spawn_smtp_sink_with;
use neighborbid_worker::WorkerOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::helpers::{TestApp, assert_error, body};

async fn operator(app: &TestApp, username: &str) -> String {
    let token = app.user_token(username).await;
    sqlx::query("UPDATE users SET is_admin = TRUE WHERE username = $1")
        .bind(username)
        .execute(&app.pool)
        .await
        .unwrap();
    token
}

/// Polls `GET path` as `token` until `done` holds for the body (60 s at most).
async fn wait_for(app: &TestApp, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let resp = app.get_as(token, path).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let found = body(resp).await;
        if done(&found) {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{path} never got there: {found}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn email_queue(queues: &Value) -> &Value {
    queues["queues"].as_array().unwrap().iter().find(|q| q["name"] == "email").unwrap()
}

/// Starts a real worker pool on the email queue of `app`'s Redis namespace, sending to `smtp_port`.
fn start_email_worker(app: &TestApp, smtp_port: u16) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let env = [
        ("QUEUE_PREFIX", app.jobs.prefix.clone()),
        ("MAIL_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("MEDIA_DIR", app.media_dir.to_string_lossy().into_owned()),
    ];
    let config = Config::from_lookup(|name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(name).ok())
    })
    .unwrap();
    let (pool, redis) = (app.pool.clone(), app.jobs.redis.clone());
    let options = WorkerOptions { queues: vec![Queue::Email], concurrency: 2 };
    let worker = tokio::spawn(async move {
        neighborbid_worker::run(&config, pool, redis, options, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (stop, worker)
}

/// `junho` outbids `outbid` on a new auction: the release it records will email `outbid`.
async fn outbid_email(app: &TestApp, seller: &str, junho: &str, outbid: &str) {
    let id = app.create_auction(seller, json!({})).await["id"].as_i64().unwrap();
    let token = app.user_token(outbid).await;
    app.deposit(&token, 100_000).await;
    assert_eq!(app.bid(&token, id, 10_000).await.status(), StatusCode::CREATED);
    assert_eq!(app.bid(junho, id, 11_000).await.status(), StatusCode::CREATED);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn operator_endpoints_refuse_anonymous_callers_and_other_users(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let user = app.user_token("minji").await;
    let endpoints = [
        (Method::GET, "/api/v1/admin/queues"),
        (Method::GET, "/api/v1/admin/queues/email/dead"),
        (Method::POST, "/api/v1/admin/queues/email/dead/send_email:1/retry"),
        (Method::DELETE, "/api/v1/admin/queues/email/dead/send_email:1"),
        (Method::GET, "/api/v1/admin/workers"),
        (Method::GET, "/api/v1/admin/closings"),
        (Method::GET, "/api/v1/admin/audit"),
        (Method::GET, "/api/v1/admin/audit/last"),
    ];
    for (method, path) in endpoints {
        let anonymous = app.request(method.clone(), path).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let resp = app.request(method.clone(), path).bearer_auth(&user).send().await.unwrap();
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    }
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn unknown_queues_and_jobs_are_404s(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ops = operator(&app, "ops").await;
    assert_error(app.get_as(&ops, "/api/v1/admin/queues/mailbox/dead").await, StatusCode::NOT_FOUND, "queue_not_found")
        .await;
    for (method, path, code) in [
        (Method::POST, "/api/v1/admin/queues/mailbox/dead/send_email:1/retry", "queue_not_found"),
        (Method::DELETE, "/api/v1/admin/queues/mailbox/dead/send_email:1", "queue_not_found"),
        (Method::POST, "/api/v1/admin/queues/email/dead/send_email:1/retry", "dead_job_not_found"),
        (Method::DELETE, "/api/v1/admin/queues/email/dead/%3Cscript%3E", "dead_job_not_found"),
    ] {
        let resp = app.request(method, path).bearer_auth(&ops).send().await.unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, code).await;
    }
    let long = format!("/api/v1/admin/queues/email/dead/{}", "x".repeat(201));
    let resp = app.request(Method::DELETE, &long).bearer_auth(&ops).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    let empty = body(app.get_as(&ops, "/api/v1/admin/queues/email/dead").await).await;
    assert_eq!(empty, json!({ "queue": "email", "total": 0, "items": [] }));
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn refused_emails_die_and_an_operator_retries_one_and_discards_the_other(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ops = operator(&app, "ops").await;
    let seller = app.user_token("seller").await;
    let junho = app.user_token("junho").await;
    app.deposit(&junho, 100_000).await;
    // Two auctions on which junho outbids someone: two outbid emails, which the refusing server kills.
    for outbid in ["minji", "dohyun"] {
        outbid_email(&app, &seller, &junho, outbid).await;
    }
    app.run_pending_releases().await;
    relay_once(&mut app.pool.acquire().await.unwrap(), &app.jobs.redis, &app.jobs.prefix).await.unwrap();

    let refuse = Arc::new(AtomicBool::new(true));
    let (smtp_port, inbox) = spawn_smtp_sink_with(refuse.clone()).await.unwrap();
    let (stop, worker) = start_email_worker(&app, smtp_port);

    let queues = wait_for(&app, &ops, "/api/v1/admin/queues", |q| email_queue(q)["dead"] == 2).await;
    assert_eq!(email_queue(&queues)["workers_alive"], 1);
    let names: Vec<_> = queues["queues"].as_array().unwrap().iter().map(|q| q["name"].clone()).collect();
    assert_eq!(names, ["release", "settlement", "email", "images"]);
    assert_eq!(email_queue(&queues)["throughput"].as_array().unwrap().len(), 15);
    let dead = body(app.get_as(&ops, "/api/v1/admin/queues/email/dead").await).await;
    assert_eq!(dead["total"], 2);
    let items = dead["items"].as_array().unwrap();
    assert!(items.iter().all(|job| job["id"].as_str().unwrap().starts_with("send_email:")), "{dead}");
    assert!(items.iter().all(|job| job["error"].as_str().unwrap().contains("550")), "{dead}");
    assert!(items.iter().all(|job| job["payload"].as_str().unwrap().contains("notification_id")), "{dead}");

    let workers = body(app.get_as(&ops, "/api/v1/admin/workers").await).await;
    let email_workers: Vec<_> = workers["items"].as_array().unwrap().iter().filter(|w| w["queue"] == "email").collect();
    assert_eq!(email_workers.len(), 1, "{workers}");
    assert_eq!(email_workers[0]["alive"], true);
    assert!(email_workers[0]["name"].as_str().unwrap().starts_with("email-"), "{workers}");

    // The mail server takes mail again: the retried job is sent and counted as finished.
    refuse.store(false, Ordering::SeqCst);
    let (retried, discarded) = (items[0]["id"].as_str().unwrap(), items[1]["id"].as_str().unwrap());
    let retry = format!("/api/v1/admin/queues/email/dead/{retried}/retry");
    let resp = app.request(Method::POST, &retry).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let queues = wait_for(&app, &ops, "/api/v1/admin/queues", |q| {
        let finished: u64 =
            email_queue(q)["throughput"].as_array().unwrap().iter().map(|m| m["finished"].as_u64().unwrap()).sum();
        finished == 1
    })
    .await;
    assert_eq!(email_queue(&queues)["dead"], 1);
    assert_eq!(inbox.lock().unwrap().len(), 1);
    let resp = app.request(Method::POST, &retry).bearer_auth(&ops).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "dead_job_not_found").await;

    // A dead job whose payload Redis lost cannot run again: it stays dead until discarded.
    redis::cmd("HDEL")
        .arg(format!("{}:email:data", app.jobs.prefix))
        .arg(discarded)
        .query_async::<()>(&mut app.jobs.redis.clone())
        .await
        .unwrap();
    let resp = app
        .request(Method::POST, &format!("/api/v1/admin/queues/email/dead/{discarded}/retry"))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::CONFLICT, "payload_missing").await;
    let dead = body(app.get_as(&ops, "/api/v1/admin/queues/email/dead").await).await;
    assert_eq!(
        (&dead["total"], &dead["items"][0]["id"], &dead["items"][0]["payload"]),
        (&json!(1), &json!(discarded), &Value::Null)
    );

    let discard = format!("/api/v1/admin/queues/email/dead/{discarded}");
    let resp = app.request(Method::DELETE, &discard).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let dead = body(app.get_as(&ops, "/api/v1/admin/queues/email/dead").await).await;
    assert_eq!(dead["total"], 0);
    let resp = app.request(Method::DELETE, &discard).bearer_auth(&ops).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "dead_job_not_found").await;
    assert_eq!(inbox.lock().unwrap().len(), 1, "a discarded job never runs");

    let _ = stop.send(());
    worker.await.unwrap();
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn closings_show_what_ends_next_and_how_long_settlement_took(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ops = operator(&app, "ops").await;
    let (seller, minji) = (app.user_token("seller").await, app.user_token("minji").await);
    app.deposit(&minji, 100_000).await;
    let later = app.create_auction(&seller, json!({ "title": "Ends later" })).await["id"].as_i64().unwrap();
    let sold = app.create_auction(&seller, json!({ "title": "<b>Sold</b>" })).await["id"].as_i64().unwrap();
    assert_eq!(app.bid(&minji, sold, 10_000).await.status(), StatusCode::CREATED);
    end_now(&app.pool, AuctionId(sold)).await.unwrap();

    let closings = body(app.get_as(&ops, "/api/v1/admin/closings").await).await;
    let soon: Vec<_> = closings["closing_soon"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(soon, [sold, later], "the overdue auction first");
    assert_eq!(closings["recently_closed"], json!([]));

    close_due(&mut app.pool.acquire().await.unwrap(), 100).await.unwrap();
    let closings = body(app.get_as(&ops, "/api/v1/admin/closings").await).await;
    let ended = &closings["recently_closed"][0];
    assert_eq!((ended["id"].as_i64(), &ended["status"]), (Some(sold), &json!("closed")));
    assert!(ended["settled_at"].is_null() && ended["settlement_lag_ms"].is_null(), "{ended}");
    assert!(ended["close_lag_ms"].as_i64().unwrap() >= 0, "{ended}");

    run_recorded::<SettleAuction>(&app.jobs).await.unwrap();
    let closings = body(app.get_as(&ops, "/api/v1/admin/closings").await).await;
    let ended = &closings["recently_closed"][0];
    assert_eq!(ended["status"], "settled");
    assert_eq!(ended["title"], "<b>Sold</b>");
    let lag = ended["settlement_lag_ms"].as_i64().unwrap();
    assert!(lag >= ended["close_lag_ms"].as_i64().unwrap(), "settled after it closed: {ended}");
    let soon: Vec<_> = closings["closing_soon"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(soon, [later]);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_last_audit_is_kept_until_the_next(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ops = operator(&app, "ops").await;
    assert_error(app.get_as(&ops, "/api/v1/admin/audit/last").await, StatusCode::NOT_FOUND, "audit_not_run").await;
    let first = body(app.get_as(&ops, "/api/v1/admin/audit").await).await;
    let last = body(app.get_as(&ops, "/api/v1/admin/audit/last").await).await;
    assert_eq!(last, first);
    // A tampered balance: the next audit replaces the clean one.
    app.deposit(&ops, 5_000).await;
    sqlx::query("UPDATE accounts SET balance = balance + 1 WHERE kind = 'available'").execute(&app.pool).await.unwrap();
    let second = body(app.get_as(&ops, "/api/v1/admin/audit").await).await;
    assert_eq!(second["ok"], false);
    let last = body(app.get_as(&ops, "/api/v1/admin/audit/last").await).await;
    assert_eq!(last, second);
    assert_ne!(last["checked_at"], first["checked_at"]);
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn the_console_page_is_served_with_a_strict_content_security_policy(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (path, content_type) in [
        ("/ops", "text/html; charset=utf-8"),
        ("/ops/console.js", "text/javascript; charset=utf-8"),
        ("/ops/console.css", "text/css; charset=utf-8"),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), content_type);
        let csp = header("content-security-policy");
        assert!(csp.starts_with("default-src 'none'; script-src 'self';"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    // The page's data comes from the API, which only an operator's token opens: the page itself is public.
    let page = app.get("/ops").await.text().await.unwrap();
    assert!(page.contains(r#"<script src="/ops/console.js" defer></script>"#), "{page}");
    assert!(!page.contains("<script>"), "no inline script: the CSP would refuse it");
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn a_job_being_run_counts_in_flight_for_its_queue_and_its_worker(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ops = operator(&app, "ops").await;
    let (seller, junho) = (app.user_token("seller").await, app.user_token("junho").await);
    app.deposit(&junho, 100_000).await;
    outbid_email(&app, &seller, &junho, "minji").await;
    app.run_pending_releases().await;
    relay_once(&mut app.pool.acquire().await.unwrap(), &app.jobs.redis, &app.jobs.prefix).await.unwrap();
    // A mail server that accepts connections and never greets: the send waits (up to lettre's
    // timeout), with the job in flight meanwhile.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            connections.push(socket);
        }
    });
    let (stop, worker) = start_email_worker(&app, port);
    let queues = wait_for(&app, &ops, "/api/v1/admin/queues", |q| email_queue(q)["inflight"] == 1).await;
    assert_eq!(email_queue(&queues)["dead"], 0);
    let workers = body(app.get_as(&ops, "/api/v1/admin/workers").await).await;
    let inflight: Vec<_> = workers["items"].as_array().unwrap().iter().map(|w| w["inflight"].clone()).collect();
    assert_eq!(inflight, [json!(1)], "{workers}");
    let _ = stop.send(());
    held.abort();
    worker.await.unwrap();
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn without_redis_the_queue_endpoints_are_503_and_the_rest_still_answer(pool: PgPool) {
    let app = TestApp::spawn_with(pool, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let ops = operator(&app, "ops").await;
    for path in ["/api/v1/admin/queues", "/api/v1/admin/queues/email/dead", "/api/v1/admin/workers"] {
        assert_error(app.get_as(&ops, path).await, StatusCode::SERVICE_UNAVAILABLE, "queues_unavailable").await;
    }
    let resp = app
        .request(Method::POST, "/api/v1/admin/queues/email/dead/send_email:1/retry")
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "queues_unavailable").await;
    assert_eq!(app.get_as(&ops, "/api/v1/admin/closings").await.status(), StatusCode::OK);
    assert_eq!(app.get_as(&ops, "/api/v1/admin/audit").await.status(), StatusCode::OK);
}
