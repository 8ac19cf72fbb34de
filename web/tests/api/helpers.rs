//! `TestApp`: the real web app on an ephemeral port, over a fresh database made by `#[sqlx::test]`.

use std::collections::HashMap;

use neighborbid_shared::config::Config;
use neighborbid_web::state::AppState;
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, &[]).await
    }

    /// Starts the app with extra configuration variables on top of the environment's.
    pub async fn spawn_with(pool: PgPool, overrides: &[(&str, &str)]) -> Self {
        neighborbid_shared::telemetry::install_crypto_provider();
        let overrides: HashMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::from_lookup(|name| {
            overrides
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        })
        .expect("test configuration is valid");
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let state = AppState::new(config, pool.clone()).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(neighborbid_web::run(acceptor, state, async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            pool,
            _shutdown: tx,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        self.request(Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
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
        let resp = self
            .post(
                "/api/v1/sessions",
                json!({ "username": username, "password": password }),
            )
            .await;
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
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"].clone()
}
