//! A thin HTTP client for the NeighborBid v1 API, plus sign-up and login helpers.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// The password every bench user shares.
pub const BENCH_PASSWORD: &str = "bench-password-1";
/// The largest amount one deposit (or bid) may carry.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// A shared, keep-alive connection pool to one server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// `{base_url}/api/v1`, without a trailing slash.
    root: String,
}

/// A status and a parsed body (`Null` when empty, a string when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The stable `error.code`, if the body is an error.
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    /// `error.details.minimum`, which a `bid_too_low` answer carries.
    pub fn minimum(&self) -> Option<i64> {
        self.body.pointer("/error/details/minimum").and_then(Value::as_i64)
    }

    /// Fails with the status and body unless the status is 2xx.
    pub fn ok(self, what: &str) -> anyhow::Result<Value> {
        if self.status.is_success() { Ok(self.body) } else { bail!("{what} failed: {} {}", self.status, self.body) }
    }
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: i64,
    pub username: String,
    pub token: String,
}

/// The auction fields the bench relies on; the rest are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Auction {
    pub id: i64,
    pub status: String,
    pub min_next_bid: i64,
    pub bid_count: i64,
    #[serde(default)]
    pub leader_id: Option<i64>,
    #[serde(default)]
    pub seq: i64,
}

/// One page of `GET /auctions`.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub items: Vec<Auction>,
    pub next_cursor: Option<String>,
}

impl Api {
    /// A client whose pool keeps up to `connections` idle keep-alive connections.
    pub fn new(base_url: &str, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self { http, root: format!("{}/api/v1", base_url.trim_end_matches('/')) })
    }

    /// `GET {root}{path}` reading the whole body without parsing it; returns the status.
    pub async fn get_discard(&self, path: &str) -> reqwest::Result<StatusCode> {
        let resp = self.http.get(format!("{}{path}", self.root)).send().await?;
        let status = resp.status();
        resp.bytes().await?;
        Ok(status)
    }

    /// Sends one request and parses the answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Result<Reply> {
        let mut req = self.http.request(method, format!("{}{path}", self.root));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply { status, body })
    }

    /// Signs `username` up (an existing account is fine) and logs in.
    pub async fn ensure_user(&self, username: &str) -> anyhow::Result<Session> {
        let signup = json!({
            "username": username,
            "email": format!("{username}@bench.example.com"),
            "password": BENCH_PASSWORD,
        });
        let reply = self
            .call(Method::POST, "/users", None, Some(&signup), None)
            .await
            .with_context(|| format!("failed to sign up {username}"))?;
        let taken = matches!(reply.error_code(), Some("username_taken" | "email_taken"));
        if !reply.status.is_success() && !taken {
            bail!("sign-up of {username} failed: {} {}", reply.status, reply.body);
        }
        self.login(username).await
    }

    /// Logs `username` in with the bench password.
    pub async fn login(&self, username: &str) -> anyhow::Result<Session> {
        let body = json!({ "username": username, "password": BENCH_PASSWORD });
        let value = self
            .call(Method::POST, "/sessions", None, Some(&body), None)
            .await
            .with_context(|| format!("failed to log in {username}"))?
            .ok(&format!("login of {username}"))?;
        let token = value["token"].as_str().context("login answer has no token")?;
        let user_id = value.pointer("/user/id").and_then(Value::as_i64).context("login answer has no user.id")?;
        Ok(Session { user_id, username: username.to_owned(), token: token.to_owned() })
    }

    /// Deposits [`MAX_AMOUNT`] unless `available` is already at least `min_available`.
    pub async fn ensure_funds(&self, session: &Session, min_available: i64) -> anyhow::Result<()> {
        let wallet = self
            .call(Method::GET, "/wallet", Some(&session.token), None, None)
            .await
            .context("failed to read the wallet")?
            .ok("reading the wallet")?;
        if wallet["available"].as_i64().unwrap_or(0) >= min_available {
            return Ok(());
        }
        let key = format!("bench-{}-{}", session.username, rand::random::<u64>());
        self.call(
            Method::POST,
            "/wallet/deposits",
            Some(&session.token),
            Some(&json!({ "amount": MAX_AMOUNT })),
            Some(&key),
        )
        .await
        .context("failed to deposit")?
        .ok(&format!("deposit for {}", session.username))?;
        Ok(())
    }

    /// Creates an auction described by `body` as `seller`.
    pub async fn create_auction(&self, seller: &Session, body: &Value) -> anyhow::Result<Auction> {
        let value = self
            .call(Method::POST, "/auctions", Some(&seller.token), Some(body), None)
            .await
            .context("failed to create an auction")?
            .ok("creating an auction")?;
        serde_json::from_value(value).context("unexpected auction JSON")
    }

    /// `GET /auctions/{id}`.
    pub async fn get_auction(&self, id: i64) -> reqwest::Result<Reply> {
        self.call(Method::GET, &format!("/auctions/{id}"), None, None, None).await
    }

    /// `POST /auctions/{id}/bids` with `amount`.
    pub async fn place_bid(&self, bidder: &Session, id: i64, amount: i64) -> reqwest::Result<Reply> {
        let body = json!({ "amount": amount });
        self.call(Method::POST, &format!("/auctions/{id}/bids"), Some(&bidder.token), Some(&body), None).await
    }

    /// One page of `GET /auctions?{query}`.
    pub async fn list_auctions(&self, query: &str) -> anyhow::Result<Page> {
        let value = self
            .call(Method::GET, &format!("/auctions?{query}"), None, None, None)
            .await
            .context("failed to list auctions")?
            .ok("listing auctions")?;
        serde_json::from_value(value).context("unexpected auction list JSON")
    }

    /// `GET /admin/audit` with an admin token.
    pub async fn audit(&self, admin_token: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, "/admin/audit", Some(admin_token), None, None)
            .await
            .context("failed to call the audit")?
            .ok("the audit")
    }
}
