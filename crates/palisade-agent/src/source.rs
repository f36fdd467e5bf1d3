//! The `metal` source: a Palisade server, read with HMAC-signed requests. A snapshot, then
//! the ordered change stream from its revision; on a broken connection the stream resumes
//! from the last revision seen (capped exponential backoff with jitter), and on 410 (the
//! revision was compacted) a new snapshot is read.

use crate::config::MetalSource;
use futures_util::StreamExt as _;
use palisade_model::hmac_auth::{self, KeyType};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the source delivers.
#[derive(Debug)]
pub enum Update {
    /// A whole state at a revision (the snapshot's text, a valid state file).
    Snapshot {
        /// revision
        revision: i64,
        /// the body
        text: String,
    },
    /// One change: `{"revision", "type", "kind", "id", "object"}` or a progress line.
    Change(Value),
    /// The source cannot be reached right now (the ruleset stays as it is).
    Down(String),
}

/// An HMAC-signing client of the server.
#[derive(Clone)]
pub struct Signed {
    http: reqwest::Client,
    base: String,
    key: Vec<u8>,
    kind: KeyType,
}

impl Signed {
    /// A client for `src`.
    pub fn new(src: &MetalSource, kind: KeyType) -> Signed {
        Signed {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            base: src.url.trim_end_matches('/').to_string(),
            key: src.hmac.as_bytes().to_vec(),
            kind,
        }
    }

    /// A signed request (path includes the query).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let now = jiff::Timestamp::now().as_second();
        let auth =
            hmac_auth::authorization(self.kind, &self.key, method.as_str(), path, now, &body);
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", auth)
            .header(hmac_auth::DATE_HEADER, now.to_string())
            .header("content-type", "application/json")
            .body(body)
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(7)).min(10_000);
    let jitter = rand::random_range(0..=base / 2);
    Duration::from_millis(base / 2 + jitter)
}

/// Runs until `tx` is closed: snapshot, stream, reconnect.
pub async fn follow(client: Signed, tx: mpsc::Sender<Update>) {
    let mut revision: Option<i64> = None;
    let mut attempt = 0u32;
    loop {
        let result = match revision {
            None => match snapshot(&client).await {
                Ok((rev, text)) => {
                    revision = Some(rev);
                    if tx
                        .send(Update::Snapshot {
                            revision: rev,
                            text,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            // From one revision back: a revision cut off mid-way arrives again whole (the
            // consumer applies changes idempotently).
            Some(rev) => stream(&client, (rev - 1).max(0), &tx, &mut revision, &mut attempt).await,
        };
        match result {
            Ok(()) => {}
            Err(Failure::Gone) => {
                tracing::warn!("revision compacted on the server: reading a new snapshot");
                revision = None;
            }
            Err(Failure::Closed) => return,
            Err(Failure::Other(e)) => {
                if tx.send(Update::Down(e.clone())).await.is_err() {
                    return;
                }
                let wait = backoff(attempt);
                attempt = attempt.saturating_add(1);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "server unreachable; the ruleset in force stays");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

enum Failure {
    Gone,
    Closed,
    Other(String),
}

async fn snapshot(client: &Signed) -> Result<(i64, String), Failure> {
    let resp = client
        .request(reqwest::Method::GET, "/v2.0/palisade/snapshot", Vec::new())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| Failure::Other(format!("snapshot: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| Failure::Other(format!("snapshot: {e}")))?;
    if !status.is_success() {
        return Err(Failure::Other(format!(
            "snapshot: {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    let rev = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["revision"].as_i64())
        .ok_or_else(|| Failure::Other("snapshot without a revision".into()))?;
    Ok((rev, text))
}

async fn stream(
    client: &Signed,
    since: i64,
    tx: &mpsc::Sender<Update>,
    revision: &mut Option<i64>,
    attempt: &mut u32,
) -> Result<(), Failure> {
    let path = format!("/v2.0/palisade/watch?since={since}");
    let resp = client
        .request(reqwest::Method::GET, &path, Vec::new())
        .send()
        .await
        .map_err(|e| Failure::Other(format!("watch: {e}")))?;
    match resp.status().as_u16() {
        200 => {}
        410 => return Err(Failure::Gone),
        s => {
            let body = resp.text().await.unwrap_or_default();
            return Err(Failure::Other(format!(
                "watch: {s}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
    }
    *attempt = 0;
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Failure::Other(format!("watch stream: {e}")))?;
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if v["type"] == "error" {
                return Err(Failure::Gone);
            }
            if let Some(r) = v["revision"].as_i64() {
                *revision = Some(r);
            }
            if tx.send(Update::Change(v)).await.is_err() {
                return Err(Failure::Closed);
            }
        }
    }
    Err(Failure::Other("watch stream ended".into()))
}
