//! One of our binaries run as a child process, its JSON log lines kept so a test can learn what it
//! did (the address it bound to port 0, say); killed when dropped, so a failing test leaves none
//! behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running binary.
pub struct Process {
    child: Child,
    logs: Arc<Mutex<Vec<Value>>>,
}

impl Process {
    /// Starts `command` with JSON logs on standard error (`LOG_FORMAT=json`, `RUST_LOG=info`
    /// unless set) and keeps them.
    pub fn start(mut command: Command) -> Self {
        command.env("LOG_FORMAT", "json").stdout(Stdio::null()).stderr(Stdio::piped());
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env("RUST_LOG", "info,sqlx=warn");
        }
        let mut child = command.spawn().expect("the binary starts");
        let stderr = child.stderr.take().expect("standard error is piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        // Read to the end, whatever happens: a full pipe would block the child.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        Self { child, logs }
    }

    /// Waits for a log line with this `message` and returns it; panics after `limit` (or when the
    /// process has exited), showing the logs.
    pub fn wait_for_log(&mut self, message: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|l| l["message"] == message) {
                return line.clone();
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > limit {
                let logs = self.logs.lock().unwrap();
                panic!("no log line {message:?} (exit status: {exited:?}); logs: {logs:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url` and its body (a `/metrics` scrape).
pub async fn scrape(url: &str) -> String {
    neighborbid_shared::telemetry::install_crypto_provider();
    let resp = reqwest::get(url).await.expect("the metrics endpoint answers");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.text().await.expect("a text body")
}

/// The value of the series `name{labels}` in a Prometheus text scrape: `labels` must all be on the
/// series (others may be too), and matching series are summed. `None` when no series matches.
pub fn metric(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let mut found = None;
    for line in scrape.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let have: Vec<&str> = series_labels.split(',').collect();
        if series_name == name && wanted.iter().all(|w| have.contains(&w.as_str())) {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(f64::NAN);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_found_by_name_and_labels() {
        let text = "# TYPE a counter\na{x=\"1\",y=\"2\"} 3\na{x=\"1\",y=\"3\"} 4\nb 5\n";
        assert_eq!(metric(text, "a", &[("x", "1")]), Some(7.0));
        assert_eq!(metric(text, "a", &[("y", "3")]), Some(4.0));
        assert_eq!(metric(text, "b", &[]), Some(5.0));
        assert_eq!(metric(text, "a", &[("x", "2")]), None);
    }
}
