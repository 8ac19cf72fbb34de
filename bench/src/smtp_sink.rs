//! An in-process SMTP sink for the `close` scenario: it accepts every message and only counts them,
//! so the workers' mail path runs over a real socket without a mail server.
//!
//! It speaks just enough SMTP for lettre: EHLO/HELO, AUTH (any credentials), MAIL, RCPT, DATA, RSET,
//! NOOP and QUIT, one task per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the sink has received so far.
#[derive(Debug, Default)]
pub struct Counts {
    /// Every accepted message.
    pub messages: AtomicU64,
    /// Accepted messages with a recipient containing the marker (this run's username prefix).
    pub marked: AtomicU64,
}

/// Binds `addr` and serves until the process ends; the counts grow as messages arrive.
pub async fn spawn(addr: &str, marker: String) -> anyhow::Result<Arc<Counts>> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("failed to listen for SMTP on {addr} (port in use?)"))?;
    let counts = Arc::new(Counts::default());
    let shared = Arc::clone(&counts);
    let marker: Arc<str> = marker.into();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (counts, marker) = (Arc::clone(&shared), Arc::clone(&marker));
            tokio::spawn(async move {
                let _ = serve(sock, &counts, &marker).await;
            });
        }
    });
    Ok(counts)
}

/// One SMTP session; any I/O error just ends it.
async fn serve(sock: TcpStream, counts: &Counts, marker: &str) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut recipients: Vec<String> = Vec::new();
    w.write_all(b"220 localhost ESMTP neighborbid-bench\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("AUTH") {
            b"235 2.7.0 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") || upper.starts_with("RSET") {
            recipients.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            recipients.push(line[8..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            if recipients.is_empty() {
                b"554 5.5.1 no valid recipients\r\n"
            } else {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                }
                counts.messages.fetch_add(1, Ordering::Relaxed);
                if recipients.iter().any(|r| r.contains(marker)) {
                    counts.marked.fetch_add(1, Ordering::Relaxed);
                }
                recipients.clear();
                b"250 OK queued\r\n"
            }
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        w.write_all(reply).await?;
    }
    Ok(())
}
