//! `GET /ws/auctions/{id}?after_seq=N` and `GET /ws/me?after_seq=N`: stored events after N first,
//! then live ones, in order, without duplicates or gaps across that seam.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use metrics::{Counter, Gauge};
use neighborbid_shared::events::{self, Published, Stream};
use neighborbid_shared::ids::{AuctionId, SessionId};
use neighborbid_shared::metrics::{WS_CONNECTIONS, WS_EVENTS_SENT};
use neighborbid_shared::users::{self, SessionToken};
use poem::http::StatusCode;
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use sqlx::PgPool;

use super::Hub;
use super::caps::Refused;
use crate::api::error::{ApiError, ErrorSet};
use crate::client_ip::ClientIp;
use crate::state::AppState;

/// A page of stored events read at once.
const PAGE: i64 = 500;
/// How often an idle connection is pinged; two missed pongs close it.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients have nothing to say; anything longer than this is a protocol violation.
const MAX_CLIENT_MESSAGE: usize = 1_024;

#[derive(Deserialize)]
pub struct WatchParams {
    /// The last `seq` the client has; events after it are sent first.
    after_seq: Option<i64>,
}

struct WatchErrors;
impl ErrorSet for WatchErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (404, "no such auction"),
        (422, "negative after_seq"),
        (429, "too many WebSockets from this address"),
        (503, "this server holds its maximum of WebSockets"),
    ];
}

/// Upgrades to a WebSocket of the auction's events; 404 before the upgrade for an unknown auction.
#[handler]
pub async fn watch_auction(
    Path(auction_id): Path<i64>,
    Query(params): Query<WatchParams>,
    ws: WebSocket,
    state: Data<&AppState>,
    ip: Data<&ClientIp>,
) -> Result<Response, poem::Error> {
    let auction_id = AuctionId(auction_id);
    let after_seq = params.after_seq.unwrap_or(0);
    if after_seq < 0 {
        return Err(ApiError::<WatchErrors>::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_after_seq",
            "after_seq must be 0 or more",
        )
        .into());
    }
    let slot = state.sockets.open(ip.0.0).map_err(|refused| match refused {
        Refused::PerIp => ApiError::<WatchErrors>::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "this address holds the most WebSockets allowed; close one first",
        ),
        Refused::Total => ApiError::<WatchErrors>::overloaded(),
    })?;
    let current_seq = sqlx::query_scalar!("SELECT seq FROM auctions WHERE id = $1", auction_id as AuctionId)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::<WatchErrors>::from)?;
    let Some(current_seq) = current_seq else {
        return Err(
            ApiError::<WatchErrors>::new(StatusCode::NOT_FOUND, "auction_not_found", "no auction has that id").into()
        );
    };
    // A client cannot have seen what does not exist yet; past the current `seq` it would only wait
    // for events it will then drop as repeats.
    let after_seq = after_seq.min(current_seq);
    let (hub, pool) = (state.hub.clone(), state.pool.clone());
    Ok(ws
        .config(socket_config())
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let watched = Watched::new(hub, pool, Stream::Auction(auction_id), None);
            serve(socket, watched, after_seq).await;
        })
        .into_response())
}

/// The subprotocol a browser names, beside its token, to authenticate a WebSocket:
/// `new WebSocket(url, ["neighborbid", token])` (browsers cannot set `Authorization` there).
pub const SUBPROTOCOL: &str = "neighborbid";

struct MeErrors;
impl ErrorSet for MeErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (401, "missing, invalid, expired or revoked token"),
        (422, "negative after_seq"),
        (429, "too many WebSockets from this address"),
        (503, "this server holds its maximum of WebSockets"),
    ];
}

/// The session token of a WebSocket request: `Authorization: Bearer <token>`, or for browsers the
/// token offered as a second subprotocol after [`SUBPROTOCOL`]. Never a query parameter: URLs end up
/// in logs.
fn socket_token(req: &poem::Request) -> Option<SessionToken> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return Some(SessionToken::from_client(token.trim()));
    }
    let offered: Vec<&str> = header("sec-websocket-protocol")?.split(',').map(str::trim).collect();
    match offered.as_slice() {
        [SUBPROTOCOL, token] => Some(SessionToken::from_client(token)),
        _ => None,
    }
}

/// Upgrades to a WebSocket of the caller's own events (`message_received`, `notification`, …);
/// 401 before the upgrade without a valid token. The socket closes when its session is logged out.
#[handler]
pub async fn watch_me(
    req: &poem::Request,
    Query(params): Query<WatchParams>,
    ws: WebSocket,
    state: Data<&AppState>,
    ip: Data<&ClientIp>,
) -> Result<Response, poem::Error> {
    let after_seq = params.after_seq.unwrap_or(0);
    if after_seq < 0 {
        return Err(ApiError::<MeErrors>::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_after_seq",
            "after_seq must be 0 or more",
        )
        .into());
    }
    let unauthorized = || {
        ApiError::<MeErrors>::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "send a valid token: Authorization: Bearer <token>, or the subprotocols [\"neighborbid\", <token>]",
        )
    };
    let token = socket_token(req).ok_or_else(unauthorized)?;
    let (session_id, user) = {
        let mut conn = state.pool.acquire().await.map_err(ApiError::<MeErrors>::from)?;
        users::authenticate(&mut conn, &token).await.map_err(ApiError::<MeErrors>::from)?.ok_or_else(unauthorized)?
    };
    let slot = state.sockets.open(ip.0.0).map_err(|refused| match refused {
        Refused::PerIp => ApiError::<MeErrors>::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "this address holds the most WebSockets allowed; close one first",
        ),
        Refused::Total => ApiError::<MeErrors>::overloaded(),
    })?;
    let current_seq = {
        let mut conn = state.pool.acquire().await.map_err(ApiError::<MeErrors>::from)?;
        events::user_seq(&mut conn, user.id).await.map_err(ApiError::<MeErrors>::from)?
    };
    let after_seq = after_seq.min(current_seq);
    let (hub, pool) = (state.hub.clone(), state.pool.clone());
    Ok(ws
        .protocols([SUBPROTOCOL])
        .config(socket_config())
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let watched = Watched::new(hub, pool, Stream::User(user.id), Some(session_id));
            serve(socket, watched, after_seq).await;
        })
        .into_response())
}

/// Small buffers: tungstenite's defaults (128 KiB each way per connection) would make thousands of
/// watchers cost gigabytes, and clients send nothing worth buffering.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(16 * 1024))
        .max_frame_size(Some(16 * 1024))
}

/// Why a connection ended.
enum End {
    /// The client left, or its socket broke.
    Gone,
    /// Closed by us with this code and reason.
    Close(CloseCode, &'static str),
}

/// What a connection watches.
struct Watched {
    hub: Arc<Hub>,
    pool: PgPool,
    stream: Stream,
    /// The session that opened a user's own stream: its logout closes the connection.
    session: Option<SessionId>,
    /// Events sent, for this kind of stream.
    sent: Counter,
    /// Connections open, for this kind of stream.
    open: Gauge,
}

/// The fields of a `session_revoked` event that matter here.
#[derive(Deserialize)]
struct Revocation {
    data: RevokedSession,
}

#[derive(Deserialize)]
struct RevokedSession {
    session_id: Option<SessionId>,
}

impl Watched {
    fn new(hub: Arc<Hub>, pool: PgPool, stream: Stream, session: Option<SessionId>) -> Self {
        // Literal labels: static keys, registered without allocating.
        let (sent, open) = match stream {
            Stream::Auction(_) => (
                metrics::counter!(WS_EVENTS_SENT, "stream" => "auction"),
                metrics::gauge!(WS_CONNECTIONS, "stream" => "auction"),
            ),
            Stream::User(_) => (
                metrics::counter!(WS_EVENTS_SENT, "stream" => "user"),
                metrics::gauge!(WS_CONNECTIONS, "stream" => "user"),
            ),
        };
        open.increment(1);
        Self { hub, pool, stream, session, sent, open }
    }

    /// Whether `event` logs out the session this connection was opened with (`session_id: null`
    /// logs out every session of the user).
    fn revokes_this_session(&self, event: &Published) -> bool {
        let Some(session) = self.session else { return false };
        if !event.text.starts_with(r#"{"type":"session_revoked""#) {
            return false;
        }
        serde_json::from_str::<Revocation>(&event.text)
            .is_ok_and(|r| r.data.session_id.is_none_or(|revoked| revoked == session))
    }
}

async fn serve(socket: WebSocketStream, watched: Watched, after_seq: i64) {
    let Watched { hub, stream, .. } = &watched;
    // Registered before the replay, so nothing published meanwhile is missed: the seq check
    // below drops what the replay already sent.
    let (_watch, mut live) = hub.watch(*stream, after_seq);
    let (mut sink, mut incoming) = socket.split();
    let mut last = after_seq;
    let end = async {
        let replayed = match send_stored(&mut sink, &watched, last, i64::MAX).await {
            Ok(seq) => seq,
            Err(end) => return end,
        };
        // Only what was read from storage is known to exist: the client's own `after_seq` is a
        // claim about this connection, not about what the hub's other watchers have.
        if replayed > last {
            hub.seen(*stream, replayed);
        }
        last = replayed;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut unanswered_pings = 0;
        loop {
            tokio::select! {
                event = live.recv() => {
                    let Some(mut event) = event else { return End::Close(CloseCode::Again, "too slow: events were not read in time") };
                    // Every event already waiting goes out in one write: under load a socket's
                    // events queue up, and one flush for all of them is what keeps it current.
                    loop {
                        if let Err(end) = deliver(&mut sink, &watched, &mut last, &event).await {
                            return end;
                        }
                        match live.try_recv() {
                            Ok(next) => event = next,
                            Err(_) => break,
                        }
                    }
                    if let Err(end) = within_send_timeout(sink.flush()).await {
                        return end;
                    }
                }
                message = incoming.next() => match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Gone,
                    Some(Ok(Message::Pong(_))) => unanswered_pings = 0,
                    Some(Ok(Message::Ping(_))) => {}
                    Some(Ok(Message::Text(text))) if text.len() <= MAX_CLIENT_MESSAGE => {}
                    Some(Ok(_)) => return End::Close(CloseCode::Policy, "clients send no messages on this socket"),
                },
                _ = ping.tick() => {
                    if unanswered_pings >= 2 {
                        return End::Close(CloseCode::Away, "no pong");
                    }
                    unanswered_pings += 1;
                    if send(&mut sink, Message::Ping(Vec::new())).await.is_err() {
                        return End::Gone;
                    }
                }
            }
        }
    }
    .await;
    if let End::Close(code, reason) = end {
        let _ = send(&mut sink, Message::Close(Some((code, reason.into())))).await;
    }
}

/// Made when the connection is upgraded; however the connection ends, even by a panic, it stops
/// counting as open.
impl Drop for Watched {
    fn drop(&mut self) {
        self.open.decrement(1);
    }
}

type Sink = futures::stream::SplitSink<WebSocketStream, Message>;

async fn within_send_timeout<E>(write: impl Future<Output = Result<(), E>>) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(CloseCode::Again, "too slow: a send timed out")),
    }
}

async fn send(sink: &mut Sink, message: Message) -> Result<(), End> {
    within_send_timeout(sink.send(message)).await
}

/// Queues the live `event` after whatever stored events close a gap before it, advancing `last`;
/// a repeat of what was sent is skipped. The caller flushes.
async fn deliver(sink: &mut Sink, watched: &Watched, last: &mut i64, event: &Published) -> Result<(), End> {
    if event.seq <= *last {
        return Ok(());
    }
    if event.seq > *last + 1 {
        *last = send_stored(sink, watched, *last, event.seq - 1).await?;
    }
    within_send_timeout(sink.feed(Message::Text(event.text.clone()))).await?;
    *last = event.seq;
    counted(watched, event)
}

/// Sends one event; the event that logs out this connection's session is its last.
async fn send_event(sink: &mut Sink, watched: &Watched, event: &Published) -> Result<(), End> {
    send(sink, Message::Text(event.text.clone())).await?;
    counted(watched, event)
}

/// Counts a sent event; the event that logs out this connection's session ends it (the close that
/// follows flushes it first).
fn counted(watched: &Watched, event: &Published) -> Result<(), End> {
    watched.sent.increment(1);
    if watched.revokes_this_session(event) {
        return Err(End::Close(CloseCode::Policy, "session logged out"));
    }
    Ok(())
}

/// Sends stored events with `seq` in (`after`, `up_to`], returning the last `seq` sent.
async fn send_stored(sink: &mut Sink, watched: &Watched, after: i64, up_to: i64) -> Result<i64, End> {
    let mut last = after;
    loop {
        let page = {
            let Ok(mut conn) = watched.pool.acquire().await else {
                return Err(End::Close(CloseCode::Error, "database unavailable"));
            };
            events::stored_after(&mut conn, watched.stream, last, PAGE)
                .await
                .map_err(|_| End::Close(CloseCode::Error, "database unavailable"))?
        };
        let full = page.len() as i64 == PAGE;
        for event in page.into_iter().take_while(|e| e.seq <= up_to) {
            send_event(sink, watched, &event).await?;
            last = event.seq;
        }
        if !full || last >= up_to {
            return Ok(last);
        }
    }
}
