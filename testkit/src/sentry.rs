//! An in-process Sentry: an HTTP server that takes the envelopes Sentry's SDK posts and keeps their
//! events, so a test can point a real binary's `SENTRY_DSN` at it and see what reached it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, Server, handler};
use serde_json::Value;

/// Events received so far, as JSON.
pub type Events = Arc<Mutex<Vec<Value>>>;

/// A running sink.
pub struct SentrySink {
    /// `SENTRY_DSN` for a process under test.
    pub dsn: String,
    /// Every event received.
    pub events: Events,
}

impl SentrySink {
    /// Starts a sink on 127.0.0.1 and an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("a TCP address");
        let events = Events::default();
        let app = Route::new().at("/api/:project/envelope/", poem::post(envelope)).data(events.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Ok(Self { dsn: format!("http://public@{addr}/1"), events })
    }

    /// Waits until an event matching `wanted` arrives and returns it; panics after `limit`, listing
    /// what did arrive.
    pub async fn wait_for(&self, what: &str, limit: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(event) = self.events.lock().unwrap().iter().find(|e| wanted(e)) {
                return event.clone();
            }
            if started.elapsed() > limit {
                let seen: Vec<String> = self.events.lock().unwrap().iter().map(summary).collect();
                panic!("no Sentry event for {what} after {limit:?}; received: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An event's message, exception and tags, for failure messages.
pub fn summary(event: &Value) -> String {
    format!("{} {} {} tags={}", event["server_name"], message(event), exception(event), event["tags"])
}

/// The event's message (a logged error's text), or "".
pub fn message(event: &Value) -> String {
    event["logentry"]["message"].as_str().or_else(|| event["message"].as_str()).unwrap_or_default().to_owned()
}

/// The event's exceptions as `type: value` lines (a panic is `panic: <its message>`), or "".
pub fn exception(event: &Value) -> String {
    event["exception"]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{}: {}", e["type"].as_str().unwrap_or_default(), e["value"].as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[handler]
fn envelope(body: Vec<u8>, events: Data<&Events>) -> &'static str {
    events.lock().unwrap().extend(parse_events(&body));
    "{}"
}

/// The `event` items of an envelope: a header line, then items, each a header line and a payload
/// that is either `length` bytes long or runs to the end of its line.
fn parse_events(body: &[u8]) -> Vec<Value> {
    let mut events = Vec::new();
    let Some(mut rest) = body.splitn(2, |b| *b == b'\n').nth(1) else { return events };
    while !rest.is_empty() {
        let (header, after) = split_line(rest);
        let Ok(header) = serde_json::from_slice::<Value>(header) else { break };
        let (payload, after) = match header["length"].as_u64() {
            Some(len) => {
                let len = (len as usize).min(after.len());
                (&after[..len], after[len..].strip_prefix(b"\n").unwrap_or(&after[len..]))
            }
            None => split_line(after),
        };
        if header["type"] == "event"
            && let Ok(event) = serde_json::from_slice(payload)
        {
            events.push(event);
        }
        rest = after;
    }
    events
}

fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|b| *b == b'\n') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_from_envelopes_with_and_without_lengths() {
        let body = b"{\"event_id\":\"1\"}\n{\"type\":\"event\",\"length\":13}\n{\"level\":\"x\"}\n\
                     {\"type\":\"attachment\"}\nabc\n{\"type\":\"event\"}\n{\"level\":\"y\"}\n";
        let events = parse_events(body);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["level"], "x");
        assert_eq!(events[1]["level"], "y");
    }
}
