//! `TestApp`: the real web app on an ephemeral port, over a fresh database made by `#[sqlx::test]`.

use std::collections::HashMap;

use neighborbid_shared::auctions::release::{ReleaseOutcome, Wait, release_outbid_holds};
use neighborbid_shared::config::Config;
use neighborbid_shared::email::Mailer;
use neighborbid_shared::ids::{HoldId, UserId};
use neighborbid_shared::jobs::release_hold::ReleaseHold;
use neighborbid_shared::jobs::runner::run_recorded;
use neighborbid_shared::jobs::{EmailBatcher, JobContext, ReleaseBatcher};
use neighborbid_shared::media::MediaStore;
use neighborbid_shared::photos::render::RenderSlots;
use neighborbid_web::state::AppState;
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";
/// The sender of the test apps' emails.
pub const SENDER: &str = "NeighborBid <no-reply@neighborbid.test>";

pub struct TestApp {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// What the app's jobs would run with: this test's database, Redis namespace and a mail folder.
    pub jobs: JobContext,
    /// Where this app's photos are stored.
    pub media_dir: std::path::PathBuf,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, &[]).await
    }

    /// Starts the app with extra configuration variables on top of the environment's. Unless
    /// given, `QUEUE_PREFIX` is the test's own, so tests sharing Redis do not hear each other, and
    /// rate limits are off.
    pub async fn spawn_with(pool: PgPool, overrides: &[(&str, &str)]) -> Self {
        neighborbid_shared::telemetry::install_crypto_provider();
        let mut overrides: HashMap<String, String> =
            overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        overrides.entry("QUEUE_PREFIX".into()).or_insert_with(|| format!("test-{:016x}", rand::random::<u64>()));
        // Tests sign up hundreds of users from one address; the rate-limit tests turn limits on.
        overrides.entry("RATE_LIMITS".into()).or_insert_with(|| "off".into());
        // Photos go to a folder of this test's own unless a test picks the store.
        overrides.entry("MEDIA_DIR".into()).or_insert_with(|| {
            let dir = std::env::temp_dir().join(format!("neighborbid-test-media-{:016x}", rand::random::<u64>()));
            dir.to_string_lossy().into_owned()
        });
        let config = Config::from_lookup(|name| overrides.get(name).cloned().or_else(|| std::env::var(name).ok()))
            .expect("test configuration is valid");
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let mailer = std::sync::Arc::new(
            Mailer::from_settings(None, &std::env::temp_dir().join("neighborbid-test-mail")).unwrap(),
        );
        let jobs = JobContext {
            pool: pool.clone(),
            redis: neighborbid_shared::health::redis_connection(
                &redis::Client::open(config.redis_url.expose()).unwrap(),
            )
            .unwrap(),
            prefix: config.queue_prefix.clone(),
            fee_bps: 0,
            media: MediaStore::open(&config).unwrap(),
            render_slots: RenderSlots::new(2),
            releases: ReleaseBatcher::start(pool.clone()),
            emails: EmailBatcher::start(pool.clone(), mailer, SENDER.parse().unwrap()),
        };
        let media_dir = config.media_dir.clone();
        let state = AppState::new(config, pool.clone()).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(neighborbid_web::run(acceptor, state, async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            pool,
            jobs,
            media_dir,
            _shutdown: tx,
            addr,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        self.request(Method::GET, path).bearer_auth(token).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path).json(&body).send().await.unwrap()
    }

    pub async fn sign_up(&self, username: &str) -> Response {
        self.post(
            "/api/v1/users",
            json!({ "username": username, "email": format!("{username}@example.com"), "password": PASSWORD }),
        )
        .await
    }

    /// Signs up `username` and logs in, returning the bearer token.
    pub async fn user_token(&self, username: &str) -> String {
        assert_eq!(self.sign_up(username).await.status(), StatusCode::CREATED);
        self.login(username, PASSWORD).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let resp = self.post("/api/v1/sessions", json!({ "username": username, "password": password })).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        body(resp).await["token"].as_str().unwrap().to_owned()
    }
}

pub async fn body(resp: Response) -> Value {
    resp.json().await.expect("response body is JSON")
}

/// Asserts the status and the documented error shape, returning the error object.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body = body(resp).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["error"].clone()
}

impl TestApp {
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Response {
        self.request(Method::POST, path).bearer_auth(token).json(&body).send().await.unwrap()
    }

    /// Deposits `amount` into the user's wallet, asserting success.
    pub async fn deposit(&self, token: &str, amount: i64) {
        let resp = self.post_as(token, "/api/v1/wallet/deposits", json!({ "amount": amount })).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    pub async fn wallet(&self, token: &str) -> (i64, i64) {
        let wallet = body(self.get_as(token, "/api/v1/wallet").await).await;
        (wallet["available"].as_i64().unwrap(), wallet["held"].as_i64().unwrap())
    }

    /// Creates an auction ending in an hour (start price 10,000 KRW) with `overrides` applied.
    pub async fn create_auction(&self, token: &str, overrides: Value) -> Value {
        let mut request = json!({
            "title": "Vintage bicycle",
            "description": "Rides well.",
            "category_id": 8,
            "region_id": 111,
            "condition": "good",
            "start_price": 10_000,
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        });
        for (key, value) in overrides.as_object().unwrap() {
            request[key] = value.clone();
        }
        let resp = self.post_as(token, "/api/v1/auctions", request).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        body(resp).await
    }

    pub async fn bid(&self, token: &str, auction_id: i64, amount: i64) -> Response {
        self.post_as(token, &format!("/api/v1/auctions/{auction_id}/bids"), json!({ "amount": amount })).await
    }

    pub async fn auction(&self, auction_id: i64) -> Value {
        body(self.get(&format!("/api/v1/auctions/{auction_id}")).await).await
    }

    /// Runs every recorded hold release in this process, as the release workers will.
    pub async fn run_pending_releases(&self) {
        run_recorded::<ReleaseHold>(&self.jobs).await.unwrap();
    }

    /// Asserts the ledger audit is clean, returning its report.
    pub async fn assert_audit_clean(&self) -> neighborbid_shared::ledger::audit::AuditReport {
        let mut conn = self.pool.acquire().await.unwrap();
        let report = neighborbid_shared::ledger::audit::audit(&mut conn).await.unwrap();
        assert!(report.ok, "audit found violations: {:#?}", report.violations);
        report
    }
}

impl TestApp {
    /// `n` users named `{prefix}{i}` with sessions, made directly in the database (sign-up's
    /// deliberately slow password hashing would dominate tests that need hundreds of users).
    /// Returns (user id, bearer token) pairs.
    pub async fn quick_users(&self, prefix: &str, n: usize) -> Vec<(UserId, String)> {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let id = neighborbid_testkit::db::insert_user(&mut conn, &format!("{prefix}{i}")).await.unwrap();
            let session =
                neighborbid_shared::users::create_session(&mut conn, id, std::time::Duration::from_secs(3600))
                    .await
                    .unwrap();
            users.push((id, session.token.expose().to_owned()));
        }
        users
    }
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A seller's auction and two bidders competing on it.
pub struct Rivals {
    pub minji: String,
    pub junho: String,
    pub auction_id: i64,
}

impl TestApp {
    /// Signs up a seller and two bidders, minji and junho, with `funds` each, and creates the
    /// seller's auction with `overrides`.
    pub async fn rivals(&self, funds: i64, overrides: Value) -> Rivals {
        let seller = self.user_token("seller").await;
        let (minji, junho) = (self.user_token("minji").await, self.user_token("junho").await);
        self.deposit(&minji, funds).await;
        self.deposit(&junho, funds).await;
        let auction_id = self.create_auction(&seller, overrides).await["id"].as_i64().unwrap();
        Rivals { minji, junho, auction_id }
    }
}

/// Releases one hold as the release job would, waiting for any bid that holds its auction or wallet.
pub async fn release_outbid_hold(conn: &mut PgConnection, hold_id: HoldId) -> ReleaseOutcome {
    release_outbid_holds(conn, &[hold_id], Wait::ForBids).await.expect("the release ran")[0]
}
