//! The conformance suite every `Store` backend must pass. Each check takes a fresh, empty
//! store and panics with a message naming the broken property. Backends call [`run_all`]
//! from their own tests (see `tests/sqlite_conformance.rs`).

use crate::{CmpOp, Compare, EventKind, Op, Store, StoreError, Target, Txn};
use std::sync::Arc;
use std::time::Duration;

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S: Store, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    revisions_count_changes(&make().await).await;
    compares_guard_writes(&make().await).await;
    prefix_compares_behave_like_etcd(&make().await).await;
    failed_txn_writes_nothing(&make().await).await;
    range_is_a_prefix_snapshot(&make().await).await;
    watch_replays_history_then_follows(&make().await).await;
    compaction_refuses_old_watches(&make().await).await;
    concurrent_creates_have_one_winner(Arc::new(make().await)).await;
    compare_and_swap_loses_no_increment(Arc::new(make().await)).await;
}

fn put(k: &str, v: &str) -> Txn {
    Txn {
        compares: vec![],
        ops: vec![Op::put(k, v)],
    }
}

/// Revisions grow by one per changing transaction; key metadata follows etcd.
pub async fn revisions_count_changes(s: &dyn Store) {
    let base = s.revision().await.expect("revision");
    let r1 = s.txn(put("a", "1")).await.expect("txn");
    assert!(r1.succeeded);
    assert_eq!(r1.revision, base + 1, "first write must be revision base+1");
    let r2 = s.txn(put("a", "2")).await.expect("txn");
    assert_eq!(r2.revision, base + 2);
    let kv = s.get("a").await.expect("get").expect("a exists");
    assert_eq!(kv.value, b"2");
    assert_eq!(
        kv.create_revision,
        base + 1,
        "create_revision keeps the first write"
    );
    assert_eq!(kv.mod_revision, base + 2);
    assert_eq!(kv.version, 2);
    let r3 = s
        .txn(Txn {
            compares: vec![],
            ops: vec![Op::delete("a")],
        })
        .await
        .expect("txn");
    assert_eq!(r3.revision, base + 3);
    assert!(
        s.get("a").await.expect("get").is_none(),
        "deleted key must be gone"
    );
    // Deleting an absent key changes nothing and does not advance the revision.
    let r4 = s
        .txn(Txn {
            compares: vec![],
            ops: vec![Op::delete("a")],
        })
        .await
        .expect("txn");
    assert_eq!(
        r4.revision,
        base + 3,
        "a no-op delete must not create a revision"
    );
    assert_eq!(s.revision().await.expect("revision"), base + 3);
}

/// absent / unchanged / created_at / value compares decide whether ops apply.
pub async fn compares_guard_writes(s: &dyn Store) {
    let create = |k: &str| Txn {
        compares: vec![Compare::absent(k)],
        ops: vec![Op::put(k, "x")],
    };
    assert!(
        s.txn(create("k")).await.expect("txn").succeeded,
        "absent key: create must win"
    );
    assert!(
        !s.txn(create("k")).await.expect("txn").succeeded,
        "present key: create must lose"
    );
    let kv = s.get("k").await.expect("get").expect("k");
    let cas = |rev| Txn {
        compares: vec![Compare::unchanged("k", rev)],
        ops: vec![Op::put("k", "y")],
    };
    assert!(s.txn(cas(kv.mod_revision)).await.expect("txn").succeeded);
    assert!(
        !s.txn(cas(kv.mod_revision)).await.expect("txn").succeeded,
        "stale mod_revision must lose"
    );
    let now = s.get("k").await.expect("get").expect("k");
    assert!(
        s.txn(Txn {
            compares: vec![Compare::created_at("k", kv.create_revision)],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded
    );
    assert!(
        !s.txn(Txn {
            compares: vec![Compare::created_at("missing", now.create_revision)],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded,
        "created_at on an absent key must fail"
    );
    let value = |v: &str, op| Compare {
        key: "k".into(),
        prefix: false,
        target: Target::Value(v.into()),
        op,
    };
    assert!(
        s.txn(Txn {
            compares: vec![value("y", CmpOp::Equal)],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded
    );
    assert!(
        !s.txn(Txn {
            compares: vec![value("z", CmpOp::Equal)],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded
    );
    assert!(
        s.txn(Txn {
            compares: vec![value("z", CmpOp::Less)],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded
    );
    let absent_value = Compare {
        key: "nope".into(),
        prefix: false,
        target: Target::Value(vec![]),
        op: CmpOp::Equal,
    };
    assert!(
        !s.txn(Txn {
            compares: vec![absent_value],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded,
        "a value compare on an absent key is false"
    );
    // unchanged(key, 0) means "still absent".
    assert!(
        s.txn(Txn {
            compares: vec![Compare::unchanged("fresh", 0)],
            ops: vec![Op::put("fresh", "1")]
        })
        .await
        .expect("txn")
        .succeeded
    );
}

/// Ranged compares: empty range compares as one absent key; every key must match.
pub async fn prefix_compares_behave_like_etcd(s: &dyn Store) {
    let empty = Txn {
        compares: vec![Compare::prefix_empty("ref/sg1/")],
        ops: vec![],
    };
    assert!(
        s.txn(empty.clone()).await.expect("txn").succeeded,
        "empty prefix must compare empty"
    );
    let r = s.txn(put("ref/sg1/port1", "")).await.expect("txn");
    s.txn(put("ref/sg10", "")).await.expect("txn");
    assert!(
        !s.txn(empty).await.expect("txn").succeeded,
        "non-empty prefix must not compare empty"
    );
    assert!(
        s.txn(Txn {
            compares: vec![Compare::prefix_empty("ref/sg2/")],
            ops: vec![]
        })
        .await
        .expect("txn")
        .succeeded,
        "a sibling prefix must not see ref/sg1/ or ref/sg10"
    );
    let since = Txn {
        compares: vec![Compare::prefix_unchanged_since("ref/sg1/", r.revision)],
        ops: vec![],
    };
    assert!(s.txn(since.clone()).await.expect("txn").succeeded);
    s.txn(put("ref/sg1/port2", "")).await.expect("txn");
    assert!(
        !s.txn(since).await.expect("txn").succeeded,
        "a key added after rev must break unchanged_since"
    );
}

/// A transaction whose compare fails applies none of its ops and makes no revision.
pub async fn failed_txn_writes_nothing(s: &dyn Store) {
    s.txn(put("guard", "1")).await.expect("txn");
    let before = s.revision().await.expect("revision");
    let r = s
        .txn(Txn {
            compares: vec![Compare::absent("guard")],
            ops: vec![Op::put("x", "1"), Op::put("y", "1")],
        })
        .await
        .expect("txn");
    assert!(!r.succeeded);
    assert_eq!(r.revision, before);
    assert!(
        s.get("x").await.expect("get").is_none() && s.get("y").await.expect("get").is_none(),
        "failed txn leaked a write"
    );
    let ok = s
        .txn(Txn {
            compares: vec![],
            ops: vec![Op::put("x", "1"), Op::put("y", "1"), Op::delete("guard")],
        })
        .await
        .expect("txn");
    assert_eq!(ok.revision, before + 1, "one transaction is one revision");
    for k in ["x", "y"] {
        assert_eq!(
            s.get(k).await.expect("get").expect(k).mod_revision,
            before + 1
        );
    }
}

/// range returns exactly the keys under the prefix, in order, with the snapshot revision.
pub async fn range_is_a_prefix_snapshot(s: &dyn Store) {
    for k in ["p/b", "p/a", "p/c", "q/a", "p"] {
        s.txn(put(k, k)).await.expect("txn");
    }
    let (kvs, rev) = s.range("p/").await.expect("range");
    let keys: Vec<&str> = kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["p/a", "p/b", "p/c"]);
    assert_eq!(rev, s.revision().await.expect("revision"));
    let (all, _) = s.range("").await.expect("range");
    assert_eq!(all.len(), 5);
}

/// watch(from) replays every change from `from` in order, then follows live changes.
pub async fn watch_replays_history_then_follows(s: &dyn Store) {
    let first = s.txn(put("w/1", "a")).await.expect("txn").revision;
    s.txn(Txn {
        compares: vec![],
        ops: vec![Op::put("w/2", "b"), Op::delete("w/1")],
    })
    .await
    .expect("txn");
    let mut w = s.watch(first).await.expect("watch");
    let b1 = recv(&mut w).await;
    assert_eq!(b1.revision, first);
    assert_eq!(b1.events.len(), 1);
    let b2 = recv(&mut w).await;
    assert_eq!(b2.revision, first + 1);
    assert_eq!(
        b2.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Put, EventKind::Delete]
    );
    assert_eq!(b2.events[1].kv.key, "w/1");
    for i in 0..50 {
        s.txn(put(&format!("w/live{i}"), "x")).await.expect("txn");
    }
    for i in 0..50 {
        let b = recv(&mut w).await;
        assert_eq!(
            b.revision,
            first + 2 + i,
            "live events must arrive in order without gaps"
        );
    }
    // A transaction larger than any read page still arrives as one whole batch.
    let big: Vec<Op> = (0..5000)
        .map(|i| Op::put(format!("w/big/{i:05}"), "x"))
        .collect();
    let big_rev = s
        .txn(Txn {
            compares: vec![],
            ops: big,
        })
        .await
        .expect("txn")
        .revision;
    let mut from_big = s.watch(big_rev).await.expect("watch");
    let whole = recv(&mut from_big).await;
    assert_eq!(
        (whole.revision, whole.events.len()),
        (big_rev, 5000),
        "a revision is never split"
    );
    let live_big = recv(&mut w).await;
    assert_eq!((live_big.revision, live_big.events.len()), (big_rev, 5000));
    // from = 0 starts at the next revision.
    let mut live = s.watch(0).await.expect("watch");
    let r = s.txn(put("w/after", "x")).await.expect("txn").revision;
    assert_eq!(recv(&mut live).await.revision, r);
}

/// After compact(rev), a watch from an earlier revision fails with Compacted.
pub async fn compaction_refuses_old_watches(s: &dyn Store) {
    let mut last = 0;
    for i in 0..10 {
        last = s
            .txn(put(&format!("c/{i}"), "x"))
            .await
            .expect("txn")
            .revision;
    }
    s.compact(last - 2).await.expect("compact");
    let mut w = s.watch(last - 5).await.expect("watch");
    match tokio::time::timeout(Duration::from_secs(10), w.recv()).await {
        Ok(Some(Err(StoreError::Compacted { .. }))) => {}
        other => panic!("watch below the compaction point must fail with Compacted, got {other:?}"),
    }
    let mut ok = s.watch(last - 2).await.expect("watch");
    assert_eq!(
        recv(&mut ok).await.revision,
        last - 2,
        "history from the compaction point stays"
    );
    assert_eq!(
        s.get("c/0").await.expect("get").map(|k| k.value),
        Some(b"x".to_vec()),
        "compaction keeps current keys"
    );
}

/// 16 concurrent creates of one key: exactly one wins.
pub async fn concurrent_creates_have_one_winner<S: Store>(s: Arc<S>) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.txn(Txn {
                compares: vec![Compare::absent("race")],
                ops: vec![Op::put("race", format!("{i}"))],
            })
            .await
            .expect("txn")
            .succeeded
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("join") {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent create may succeed");
}

/// 8 tasks × 25 compare-and-swap increments: the counter ends at 200.
pub async fn compare_and_swap_loses_no_increment<S: Store>(s: Arc<S>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let cur = s.get("counter").await.expect("get");
                    let (n, rev) = cur.map_or((0, 0), |kv| {
                        (
                            String::from_utf8_lossy(&kv.value)
                                .parse::<i64>()
                                .unwrap_or(0),
                            kv.mod_revision,
                        )
                    });
                    let r = s
                        .txn(Txn {
                            compares: vec![Compare::unchanged("counter", rev)],
                            ops: vec![Op::put("counter", (n + 1).to_string())],
                        })
                        .await
                        .expect("txn");
                    if r.succeeded {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let v = s.get("counter").await.expect("get").expect("counter").value;
    assert_eq!(
        String::from_utf8_lossy(&v),
        "200",
        "compare-and-swap lost increments"
    );
}

async fn recv(w: &mut crate::WatchStream) -> crate::EventBatch {
    match tokio::time::timeout(Duration::from_secs(10), w.recv()).await {
        Ok(Some(Ok(b))) => b,
        other => panic!("watch: expected a batch, got {other:?}"),
    }
}
