//! Acceptance 6: a consistent snapshot with its revision, then every later change in
//! order from that revision: no gap and no duplicate across 10,000 writes.

mod common;
use common::Server;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_then_stream_has_no_gap_and_no_duplicate_across_10000_writes() {
    let s = Arc::new(Server::start());
    let project = s.admin_project().await;
    s.call(
        "PUT",
        &format!("/v2.0/quotas/{project}"),
        Some(json!({"quota": {"security_group": -1, "security_group_rule": -1}})),
    )
    .await;
    let mut groups = Vec::new();
    for i in 0..40 {
        groups.push(s.create_sg(&format!("g{i}")).await);
    }
    let (st, snap) = s.call("GET", "/v2.0/palisade/snapshot", None).await;
    assert_eq!(st, 200);
    let since = snap["revision"].as_i64().expect("revision");
    let mut state: BTreeMap<(String, String), Value> = BTreeMap::new();
    for (kind, coll) in [
        ("security_group", "security_groups"),
        ("security_group_rule", "security_group_rules"),
        ("port", "ports"),
    ] {
        for o in snap[coll].as_array().expect(coll) {
            state.insert(
                (kind.to_string(), o["id"].as_str().expect("id").to_string()),
                o.clone(),
            );
        }
    }

    let resp = reqwest::Client::new()
        .get(format!("{}/v2.0/palisade/watch?since={since}", s.url))
        .header("X-Auth-Token", &s.token)
        .send()
        .await
        .expect("watch");
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();

    // 10,000 writes from 8 writers: rule creates, then deletes of some of them.
    let groups = Arc::new(groups);
    let mut writers = Vec::new();
    for w in 0..8usize {
        let (s, groups) = (s.clone(), groups.clone());
        writers.push(tokio::spawn(async move {
            let mut made = Vec::new();
            for i in 0..1150usize {
                let sg = &groups[(w * 5 + i) % groups.len()];
                let port = 1 + (w * 1150 + i) as u32;
                let (st, v) = s.call("POST", "/v2.0/security-group-rules", Some(json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port}}))).await;
                assert_eq!(st, 201, "{v}");
                made.push(v["security_group_rule"]["id"].as_str().expect("id").to_string());
            }
            for id in made.iter().take(100) {
                let (st, _) = s.call("DELETE", &format!("/v2.0/security-group-rules/{id}"), None).await;
                assert_eq!(st, 204);
            }
            1250usize
        }));
    }
    let mut writes = 0;
    for w in writers {
        writes += w.await.expect("writer");
    }
    assert_eq!(writes, 10_000);
    let (_, end) = s.call("GET", "/v2.0/palisade/snapshot", None).await;
    let until = end["revision"].as_i64().expect("revision");
    assert!(
        until - since >= 10_000,
        "each write is a revision ({since}..{until})"
    );

    let mut seen_revisions: Vec<i64> = Vec::new();
    let mut seen_events: HashSet<(i64, String, String)> = HashSet::new();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    'read: while seen_revisions.last().copied().unwrap_or(since) < until {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("stream stalled")
            .expect("stream ended")
            .expect("chunk");
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let ev: Value = serde_json::from_slice(&line).expect("NDJSON line");
            assert_ne!(ev["type"], "error", "{ev}");
            let rev = ev["revision"].as_i64().expect("revision");
            match seen_revisions.last() {
                Some(last) if *last == rev => {}
                Some(last) => {
                    assert_eq!(rev, last + 1, "gap or disorder: {last} then {rev}");
                    seen_revisions.push(rev);
                }
                None => {
                    assert_eq!(rev, since + 1, "the stream starts right after the snapshot");
                    seen_revisions.push(rev);
                }
            }
            if ev["type"] == "progress" {
                continue;
            }
            let kind = ev["kind"].as_str().expect("kind").to_string();
            let id = ev["id"].as_str().expect("id").to_string();
            assert!(
                seen_events.insert((rev, kind.clone(), id.clone())),
                "duplicate event {ev}"
            );
            if ev["type"] == "put" {
                state.insert((kind, id), ev["object"].clone());
            } else {
                state.remove(&(kind, id));
            }
        }
        // A revision's lines arrive in one chunk: once the buffer is drained at `until`,
        // every event up to it has been seen.
        if buf.is_empty() && seen_revisions.last().copied() == Some(until) {
            break 'read;
        }
    }
    assert_eq!(*seen_revisions.last().expect("events"), until);
    assert_eq!(
        seen_revisions.len() as i64,
        until - since,
        "every revision arrives exactly once"
    );
    // Snapshot + events = the store now.
    let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (kind, coll) in [
        ("security_group", "security_groups"),
        ("security_group_rule", "security_group_rules"),
        ("port", "ports"),
    ] {
        for o in end[coll].as_array().expect(coll) {
            want.insert(
                (kind.to_string(), o["id"].as_str().expect("id").to_string()),
                o["revision_number"].as_i64().unwrap_or(-1),
            );
        }
    }
    let got: BTreeMap<(String, String), i64> = state
        .iter()
        .map(|(k, v)| (k.clone(), v["revision_number"].as_i64().unwrap_or(-1)))
        .collect();
    let diff: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: want {v}, got {:?}", got.get(k)))
        .chain(
            got.keys()
                .filter(|k| !want.contains_key(*k))
                .map(|k| format!("{k:?}: unexpected")),
        )
        .take(10)
        .collect();
    assert!(
        diff.is_empty(),
        "snapshot + stream must equal the final state; first differences: {diff:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_or_future_revision_is_refused_clearly() {
    let s = Server::start();
    let (_, snap) = s.call("GET", "/v2.0/palisade/snapshot", None).await;
    let rev = snap["revision"].as_i64().expect("revision");
    let (st, v) = s
        .call(
            "GET",
            &format!("/v2.0/palisade/watch?since={}", rev + 100),
            None,
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = s.call("GET", "/v2.0/palisade/watch?since=abc", None).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["NeutronError"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("since"));
}

/// The same stream as server-sent events, resumable with `Last-Event-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_as_server_sent_events_resumes_from_last_event_id() {
    let s = Server::start();
    let (_, snap) = s.call("GET", "/v2.0/palisade/snapshot", None).await;
    let rev = snap["revision"].as_i64().expect("revision");
    let a = s.create_sg("sse-a").await;
    let b = s.create_sg("sse-b").await;
    let http = reqwest::Client::new();
    let read_events = |last: i64| {
        let want = b.clone();
        let req = http
            .get(format!("{}/v2.0/palisade/watch", s.url))
            .header("x-auth-token", &s.token)
            .header("accept", "text/event-stream")
            .header("last-event-id", last.to_string());
        async move {
            let resp = req.send().await.expect("watch");
            assert_eq!(
                resp.headers()["content-type"],
                "text/event-stream",
                "SSE content type"
            );
            let mut body = resp.bytes_stream();
            let mut text = String::new();
            let mut events: Vec<(i64, Value)> = Vec::new();
            while !events
                .iter()
                .any(|(_, v)| v["kind"] == "security_group" && v["id"] == want.as_str())
            {
                let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                    .await
                    .expect("an event in time")
                    .expect("stream open")
                    .expect("chunk");
                text.push_str(&String::from_utf8_lossy(&chunk));
                events = text
                    .split("\n\n")
                    .filter(|e| e.contains("data: "))
                    .map(|e| {
                        let id = e
                            .lines()
                            .find_map(|l| l.strip_prefix("id: "))
                            .and_then(|n| n.parse().ok())
                            .expect("every event has an id");
                        let data = e
                            .lines()
                            .find_map(|l| l.strip_prefix("data: "))
                            .expect("data line");
                        (id, serde_json::from_str(data).expect("data is JSON"))
                    })
                    .collect();
            }
            events
        }
    };
    let first = read_events(rev).await;
    let (id, ev) = first
        .iter()
        .find(|(_, v)| v["kind"] == "security_group" && v["id"] == a.as_str())
        .expect("the event of the first group created after the snapshot");
    assert_eq!(
        ev["revision"].as_i64(),
        Some(*id),
        "the event id is the revision"
    );
    assert!(
        first.windows(2).all(|w| w[0].0 <= w[1].0),
        "in revision order"
    );
    // Resuming from that id starts after it.
    let resumed = read_events(*id).await;
    assert!(
        resumed.iter().all(|(r, _)| r > id),
        "nothing at or before the last id seen"
    );
    assert!(resumed.iter().all(|(_, v)| v["id"] != a.as_str()));
}
