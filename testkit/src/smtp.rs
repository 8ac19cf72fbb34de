//! An in-process SMTP server for tests and the benchmark: it accepts (or, on request, refuses) mail and keeps every message in memory,
//! so the mail path is tested over a real socket with lettre's real client instead of a mock.
//!
//! It speaks just enough SMTP for lettre: EHLO/HELO, AUTH PLAIN (any credentials), MAIL, RCPT, DATA (with
//! dot-unstuffing), RSET, NOOP and QUIT, one task per connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The MAIL FROM argument, angle brackets included: `<no-reply@neighborbid.test>`.
    pub from: String,
    /// The accepted RCPT TO arguments, angle brackets included.
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body), dot-unstuffed, lines ending in CRLF.
    pub data: String,
    /// The AUTH argument (`PLAIN <base64>`) if the client authenticated.
    pub auth: Option<String>,
}

/// Every message received so far.
pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// Starts an accepting sink on 127.0.0.1 and an ephemeral port; returns the port and the inbox.
pub async fn spawn_smtp_sink() -> std::io::Result<(u16, Inbox)> {
    spawn_smtp_sink_with(Arc::new(AtomicBool::new(false))).await
}

/// Like [`spawn_smtp_sink`]; while `reject_rcpt` is set every RCPT TO gets `550 5.1.1 mailbox unavailable`, so a test can
/// drive a permanent delivery failure. Nothing reaches the inbox then.
pub async fn spawn_smtp_sink_with(reject_rcpt: Arc<AtomicBool>) -> std::io::Result<(u16, Inbox)> {
    spawn_smtp_sink_at("127.0.0.1:0", reject_rcpt).await
}

/// Like [`spawn_smtp_sink_with`], listening on `addr` (the benchmark's fixed port).
pub async fn spawn_smtp_sink_at(addr: &str, reject_rcpt: Arc<AtomicBool>) -> std::io::Result<(u16, Inbox)> {
    let listener = TcpListener::bind(addr).await?;
    let port = listener.local_addr()?.port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::clone(&inbox);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let inbox = Arc::clone(&accepted);
            let reject_rcpt = Arc::clone(&reject_rcpt);
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
                if w.write_all(b"220 localhost ESMTP test\r\n").await.is_err() {
                    return;
                }
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                        b"250 OK\r\n"
                    } else if upper.starts_with("AUTH") {
                        auth = Some(line[4..].trim().to_string());
                        b"235 2.7.0 OK\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().to_string();
                        to.clear();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        if reject_rcpt.load(Ordering::SeqCst) {
                            b"550 5.1.1 mailbox unavailable\r\n"
                        } else {
                            to.push(line[8..].trim().to_string());
                            b"250 OK\r\n"
                        }
                    } else if upper.starts_with("RSET") {
                        from.clear();
                        to.clear();
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        // Without an accepted recipient there is no transaction to receive data for (RFC 5321 3.3).
                        if to.is_empty() {
                            b"554 5.5.1 no valid recipients\r\n"
                        } else {
                            if w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.is_err() {
                                return;
                            }
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push_str("\r\n");
                            }
                            let received = Received { from: from.clone(), to: to.clone(), data, auth: auth.clone() };
                            inbox.lock().unwrap().push(received);
                            b"250 OK queued\r\n"
                        }
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 Bye\r\n").await;
                        return;
                    } else {
                        b"502 Command not implemented\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((port, inbox))
}
