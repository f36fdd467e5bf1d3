//! The watch API for agents and other followers: a consistent snapshot with its revision,
//! then every later change in revision order, as NDJSON, resumable from any revision still
//! in history (410 Gone when compacted, so the client re-snapshots).

use crate::http::{ApiError, AppState, Caller};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::Error;
use palisade_store::{EventKind, StoreError};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Resource kinds exposed to watchers, by key prefix. Everything else (tokens, counters,
/// secondary keys) is internal and never leaves the server.
const KINDS: &[(&str, &str)] = &[
    ("sg/", "security_group"),
    ("rule/", "security_group_rule"),
    ("port/", "port"),
    ("network/", "network"),
    ("addrgroup/", "address_group"),
    ("firewall/", "firewall"),
];

fn kind_of(key: &str) -> Option<(&'static str, &str)> {
    KINDS
        .iter()
        .find_map(|(p, k)| key.strip_prefix(p).map(|id| (*k, id)))
}

/// The wire form of a stored object (groups without embedded rules: rules have their own
/// events).
fn wire(kind: &str, bytes: &[u8]) -> Value {
    use palisade_model::{AddressGroup, Network, Port, SecurityGroup, SecurityGroupRule};
    fn conv<T: serde::de::DeserializeOwned>(
        b: &[u8],
        f: impl Fn(&T) -> serde_json::Map<String, Value>,
    ) -> Value {
        serde_json::from_slice::<T>(b)
            .map(|v| Value::Object(f(&v)))
            .unwrap_or(Value::Null)
    }
    match kind {
        "security_group" => conv(bytes, |g: &SecurityGroup| {
            let mut m = g.to_json(std::iter::empty());
            m.remove("security_group_rules");
            m
        }),
        "security_group_rule" => conv(bytes, SecurityGroupRule::to_json),
        "port" => conv(bytes, Port::to_json),
        "network" => conv(bytes, Network::to_json),
        "address_group" => conv(bytes, AddressGroup::to_json),
        "firewall" => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(snapshot))
        .routes(routes!(watch))
        .routes(routes!(issue_token))
        .routes(routes!(token_self))
}

fn admin_only(ctx: &crate::Context) -> Result<(), Error> {
    if ctx.reads_all() {
        Ok(())
    } else {
        Err(Error::PolicyNotAuthorized("get_palisade_watch".into()))
    }
}

/// `POST /v2.0/palisade/tokens` with `{"token": {"project_id", "roles", "user"}}` (admin).
#[utoipa::path(post, path = "/tokens", tag = "palisade", summary = "Issue a token for a project and roles (admin)", request_body = crate::openapi::AnyObject, responses((status = 201, description = "Issue a token for a project and roles (admin)", body = crate::openapi::AnyObject)))]
async fn issue_token(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    crate::http::RawBody(body): crate::http::RawBody,
) -> Result<Response, ApiError> {
    let obj = crate::http::single(&body, "token")?;
    let v = s.service.issue_token(&ctx, &obj).await?;
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

/// `GET /v2.0/palisade/tokens/self`: the caller's project, roles and user.
#[utoipa::path(get, path = "/tokens/self", tag = "palisade", summary = "The caller's project, roles and user", responses((status = 200, description = "The caller's project, roles and user", body = crate::openapi::AnyObject)))]
async fn token_self(Caller(ctx): Caller) -> Response {
    let body =
        json!({"token": {"project_id": ctx.project_id, "roles": ctx.roles, "user": ctx.user}});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `GET /v2.0/palisade/snapshot`: every object and the revision they are consistent at.
#[utoipa::path(get, path = "/snapshot", tag = "palisade", summary = "Every object and the revision they are consistent at (admin)", responses((status = 200, description = "Every object and the revision they are consistent at (admin)", body = crate::openapi::AnyObject)))]
async fn snapshot(State(s): State<AppState>, Caller(ctx): Caller) -> Result<Response, ApiError> {
    admin_only(&ctx)?;
    let idx = s.service.cache().read();
    // Concatenate the pre-rendered objects: a snapshot costs copies, not serialisations.
    let mut out = format!("{{\"revision\":{}", idx.revision).into_bytes();
    let mut section = |name: &str, items: &mut dyn Iterator<Item = &Vec<u8>>| {
        out.extend_from_slice(format!(",\"{name}\":[").as_bytes());
        for (n, b) in items.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b);
        }
        out.push(b']');
    };
    section(
        "security_groups",
        &mut idx.sgs.values().map(|e| e.bytes.as_ref()),
    );
    section(
        "security_group_rules",
        &mut idx.rules.values().map(|e| e.bytes.as_ref()),
    );
    section("ports", &mut idx.ports.values().map(|e| e.bytes.as_ref()));
    section(
        "networks",
        &mut idx.networks.values().map(|e| e.bytes.as_ref()),
    );
    section(
        "address_groups",
        &mut idx.address_groups.values().map(|e| e.bytes.as_ref()),
    );
    let fws: Vec<Vec<u8>> = crate::agents::firewalls(&idx)
        .values()
        .map(|v| serde_json::to_vec(v).unwrap_or_default())
        .collect();
    section("firewalls", &mut fws.iter());
    out.push(b'}');
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// `GET /v2.0/palisade/watch?since=R`: NDJSON, one line per change after revision R:
/// `{"revision", "type": "put"|"delete", "kind", "id", "object"}`; a `{"type":"error"}`
/// line ends the stream if history is lost mid-way.
#[utoipa::path(get, path = "/watch", tag = "palisade", summary = "Changes after a revision, as they happen (admin)",
    params(("since" = Option<i64>, Query, description = "Revision to start after (default: now)")),
    responses((status = 200, description = "A stream that stays open: NDJSON lines, or server-sent events with `Accept: text/event-stream`", content(("application/x-ndjson"), ("text/event-stream")))))]
async fn watch(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    admin_only(&ctx)?;
    // Server-sent events when asked for (`Accept: text/event-stream`); an SSE client resumes
    // with `Last-Event-ID`, which carries the revision like `since`.
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| ("since".to_string(), v.to_string()));
    let since = url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain(last_event)
        .find(|(k, _)| k == "since")
        .map(|(_, v)| {
            v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for since. Reason: '{v}' is not a revision (integer ≥ 0)."
                ))
            })
        })
        .transpose()?
        .unwrap_or_else(|| s.service.cache().revision());
    let store = s.service.store().clone();
    let current = store
        .revision()
        .await
        .map_err(crate::service::store_error)?;
    if since > current {
        return Err(Error::BadRequest(format!("Invalid input for since. Reason: revision {since} is in the future (current {current}).")).into());
    }
    let mut events = store
        .watch(since + 1)
        .await
        .map_err(crate::service::store_error)?;
    // Check compaction before answering, so a client can tell 410 from a stream.
    let first = if since < current {
        match events.recv().await {
            Some(Err(StoreError::Compacted { compacted, .. })) => {
                return Ok((
                    StatusCode::GONE,
                    axum::Json(json!({"NeutronError": {"type": "RevisionCompacted", "message": format!("Revision {since} has been compacted (history starts at {compacted}); read /v2.0/palisade/snapshot again."), "detail": ""}})),
                )
                    .into_response())
            }
            other => other,
        }
    } else {
        None
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let gauge = s.service.metrics().watch_clients.clone();
    let lag = s.service.metrics().watch_lag.clone();
    let service = s.service.clone();
    let encoded = s.watch_batches.clone();
    gauge.inc();
    tokio::spawn(async move {
        // Counted while the stream runs.
        struct Open(prometheus_client::metrics::gauge::Gauge);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        let _open = Open(gauge);
        let mut pending = first;
        loop {
            let item = match pending.take() {
                Some(i) => i,
                None => match events.recv().await {
                    Some(i) => i,
                    None => return,
                },
            };
            let lines = match item {
                Ok(batch) => {
                    // 1 when the batch is the index's newest revision.
                    let behind = service.cache().revision() - batch.revision + 1;
                    lag.observe(behind.max(1) as f64);
                    encoded.get_or_encode(&batch, sse, || {
                        let lines = encode_batch(&batch);
                        if sse {
                            sse_frames(&lines)
                        } else {
                            lines
                        }
                    })
                }
                Err(e) => {
                    let line = json!({"type": "error", "message": e.to_string()});
                    let mut out = serde_json::to_vec(&line).unwrap_or_default();
                    out.push(b'\n');
                    let out = if sse { sse_frames(&out) } else { out };
                    let _ = tx.send(Ok(out.into())).await;
                    return;
                }
            };
            if tx.send(Ok(lines)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let kind = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// One revision's changes as NDJSON lines (a `progress` line when none is public).
fn encode_batch(batch: &palisade_store::EventBatch) -> Vec<u8> {
    let mut out = Vec::new();
    for ev in &batch.events {
        let Some((kind, id)) = kind_of(&ev.kv.key) else {
            continue;
        };
        let object: Value = match ev.kind {
            EventKind::Put => wire(kind, &ev.kv.value),
            EventKind::Delete => Value::Null,
        };
        let line = json!({
            "revision": batch.revision,
            "type": if ev.kind == EventKind::Put { "put" } else { "delete" },
            "kind": kind,
            "id": id,
            "object": object,
        });
        out.extend_from_slice(&serde_json::to_vec(&line).unwrap_or_default());
        out.push(b'\n');
    }
    // An empty line marks a revision without public changes, so the
    // client's revision still advances.
    if out.is_empty() {
        out.extend_from_slice(
            format!(
                "{{\"revision\":{},\"type\":\"progress\"}}\n",
                batch.revision
            )
            .as_bytes(),
        );
    }
    out
}

/// Recent revisions already encoded, shared by every watch stream of this server: a change
/// is serialised once, however many agents follow it.
#[derive(Default)]
pub struct EncodedBatches {
    recent: std::sync::Mutex<std::collections::BTreeMap<(i64, bool, bool), bytes::Bytes>>,
}

/// Encoded revisions remembered (streams far behind encode their own).
const ENCODED_BATCHES: usize = 512;

impl EncodedBatches {
    /// The encoding of `batch` (as SSE frames when `sse`). A revision's changes are the same
    /// for every stream; an empty batch (a progress mark) is kept apart, as a stream may get
    /// one for a revision whose changes it already had.
    fn get_or_encode(
        &self,
        batch: &palisade_store::EventBatch,
        sse: bool,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> bytes::Bytes {
        let key = (batch.revision, batch.events.is_empty(), sse);
        let lock = || self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = lock().get(&key) {
            return b.clone();
        }
        let b = bytes::Bytes::from(encode());
        let mut recent = lock();
        recent.insert(key, b.clone());
        while recent.len() > ENCODED_BATCHES {
            recent.pop_first();
        }
        b
    }
}

/// NDJSON lines as SSE events: `id: <revision>` and `data: <line>`.
fn sse_frames(lines: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() + 64);
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(r) = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v["revision"].as_i64())
        {
            out.extend_from_slice(format!("id: {r}\n").as_bytes());
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_store::{Event, EventBatch, EventKind, KeyValue};

    fn batch(revision: i64, keys: &[&str]) -> EventBatch {
        EventBatch {
            revision,
            events: keys
                .iter()
                .map(|k| Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: k.to_string(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: revision,
                        version: 0,
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn a_revision_is_encoded_once_and_a_progress_mark_apart() {
        let cache = EncodedBatches::default();
        let mut encodes = 0;
        let b = batch(7, &["sg/a"]);
        let first = cache.get_or_encode(&b, false, || {
            encodes += 1;
            encode_batch(&b)
        });
        let again = cache.get_or_encode(&b, false, || {
            encodes += 1;
            encode_batch(&b)
        });
        assert_eq!((first.clone(), encodes), (again, 1));
        assert!(String::from_utf8_lossy(&first).contains("\"type\":\"delete\""));
        // SSE frames are their own entry.
        let sse = cache.get_or_encode(&b, true, || sse_frames(&encode_batch(&b)));
        assert!(sse.starts_with(b"id: 7\n"));
        // A progress mark at the same revision is not the revision's changes.
        let empty = batch(7, &[]);
        let progress = cache.get_or_encode(&empty, false, || encode_batch(&empty));
        assert_eq!(&progress[..], b"{\"revision\":7,\"type\":\"progress\"}\n");
        // Old revisions are forgotten beyond the bound.
        for r in 100..(100 + ENCODED_BATCHES as i64) {
            let b = batch(r, &["sg/x"]);
            cache.get_or_encode(&b, false, || encode_batch(&b));
        }
        let mut encoded_again = false;
        cache.get_or_encode(&b, false, || {
            encoded_again = true;
            encode_batch(&b)
        });
        assert!(encoded_again);
    }
}
