//! The Store conformance suite against the SQLite backend, plus its durability properties.

use palisade_store::{conformance, Op, SqliteStore, Store, Txn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("store-{n}.db"));
        async move { SqliteStore::open(path).expect("open") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_data_and_revision_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let rev = {
        let s = SqliteStore::open(&path).expect("open");
        s.txn(Txn {
            compares: vec![],
            ops: vec![Op::put("a", "1")],
        })
        .await
        .expect("txn");
        s.txn(Txn {
            compares: vec![],
            ops: vec![Op::put("b", "2")],
        })
        .await
        .expect("txn")
        .revision
    };
    let s = SqliteStore::open(&path).expect("reopen");
    assert_eq!(s.revision().await.expect("rev"), rev);
    assert_eq!(s.get("b").await.expect("get").expect("b").value, b"2");
    let mut w = s.watch(1).await.expect("watch");
    let first = w.recv().await.expect("batch").expect("ok");
    assert_eq!(first.revision, 1, "history survives a reopen");
}
