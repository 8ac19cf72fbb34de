//! What every WebSocket client of the bench shares: the `ws://` address, small buffers, a bounded
//! connect, and short failure reasons.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Upgrades in flight at once.
pub const CONNECT_PARALLELISM: usize = 100;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// `errno` for "too many open files".
const EMFILE: i32 = 24;
static EMFILE_REPORTED: AtomicBool = AtomicBool::new(false);

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `http(s)://host` → `ws(s)://host`.
pub fn ws_base(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{base}"),
    }
}

/// Opens one WebSocket within [`CONNECT_TIMEOUT`]; the error is a short reason to count.
pub async fn connect(request: impl IntoClientRequest + Unpin) -> Result<Socket, String> {
    // tungstenite's default 128 KiB read buffer per socket would cost the bench ~640 MB at 5,000.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024).write_buffer_size(0);
    let attempt = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Err(_) => Err("timeout".to_owned()),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// A short failure reason; an EMFILE also gets one clear explanation on stderr.
pub fn describe(e: &WsError) -> String {
    match e {
        WsError::Io(io) if io.raw_os_error() == Some(EMFILE) => {
            if !EMFILE_REPORTED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "error: too many open files (EMFILE) in the bench: run `ulimit -n 65536` in this shell \
                     (and give the web server a high limit too) before a WebSocket scenario"
                );
            }
            "emfile".to_owned()
        }
        WsError::Io(io) => format!("io: {}", io.kind()),
        WsError::Http(resp) => format!("http {}", resp.status().as_u16()),
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_addresses() {
        assert_eq!(ws_base("https://a.example/"), "wss://a.example");
        assert_eq!(ws_base("http://127.0.0.1:8080"), "ws://127.0.0.1:8080");
    }
}
