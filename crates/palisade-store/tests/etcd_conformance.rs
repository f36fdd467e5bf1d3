//! The Store conformance suite against a real etcd (Debian's etcd-server, started here on
//! loopback ports). Skipped without an `etcd` binary; required under CI=true.

use palisade_store::testing::{etcd_available, EtcdCluster};
use palisade_store::{conformance, EtcdConfig, EtcdStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_store_passes_the_conformance_suite() {
    if !etcd_available() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI needs etcd"
        );
        eprintln!("skipping: no etcd binary");
        return;
    }
    let etcd = EtcdCluster::start(1).expect("etcd");
    let endpoints = etcd.endpoints();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cfg = EtcdConfig {
            endpoints: endpoints.clone(),
            prefix: format!("/conformance-{n}/"),
            ..EtcdConfig::default()
        };
        async move { EtcdStore::connect(cfg).await.expect("connect") }
    })
    .await;
}
