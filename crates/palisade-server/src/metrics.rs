//! `/metrics`: the server in Prometheus text format. Requests by route, method and status
//! with their latency; store transactions with their latency and lost races; watch streams
//! open and how far behind the index they send; objects by kind (read from the index at
//! scrape time).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Store transactions and their latency.
    pub txn_seconds: Histogram,
    /// Transactions whose compares failed (a lost race, planned again).
    pub txn_conflicts: Counter,
    /// Watch streams open.
    pub watch_clients: Gauge,
    /// How many revisions behind the index a watch stream was when it sent a batch.
    pub watch_lag: Histogram,
    objects: Family<KindLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "palisade_http_requests",
            "API requests by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "palisade_http_request_duration_seconds",
            "API request latency by route and method",
            latency.clone(),
        );
        let txn_seconds = latency_histogram();
        registry.register(
            "palisade_store_txn_duration_seconds",
            "Store transaction latency",
            txn_seconds.clone(),
        );
        let txn_conflicts = Counter::default();
        registry.register(
            "palisade_store_txn_conflicts",
            "Store transactions that lost a race and were planned again",
            txn_conflicts.clone(),
        );
        let watch_clients = Gauge::default();
        registry.register(
            "palisade_watch_clients",
            "Watch streams open",
            watch_clients.clone(),
        );
        let watch_lag = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "palisade_watch_lag_revisions",
            "Revisions a watch stream was behind the server's index when it sent a batch (1: up to date)",
            watch_lag.clone(),
        );
        let objects = Family::<KindLabels, Gauge>::default();
        registry.register("palisade_objects", "Objects by kind", objects.clone());
        Metrics {
            registry,
            requests,
            latency,
            txn_seconds,
            txn_conflicts,
            watch_clients,
            watch_lag,
            objects,
        }
    }
}

/// A route label: ids and tags in the path become `{id}` so the label set stays small.
pub fn route_of(path: &str) -> String {
    let mut out = Vec::new();
    let segs: Vec<&str> = path.split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        let is_id = seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            || matches!(
                prev,
                "tags"
                    | "agents"
                    | "firewalls"
                    | "quotas"
                    | "extensions"
                    | "projects"
                    | "users"
                    | "roles"
            );
        out.push(if is_id && !seg.is_empty() {
            "{id}"
        } else {
            seg
        });
    }
    out.join("/")
}

impl Metrics {
    /// Records one request.
    pub fn request(&self, path: &str, method: &str, status: u16, seconds: f64) {
        let route = route_of(path);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route,
                method: method.to_string(),
            })
            .observe(seconds);
    }

    /// The text format, with object counts from `idx`.
    pub fn render(&self, idx: &crate::index::Index) -> String {
        for (kind, n) in [
            ("security_group", idx.sgs.len()),
            ("security_group_rule", idx.rules.len()),
            ("port", idx.ports.len()),
            ("network", idx.networks.len()),
            ("address_group", idx.address_groups.len()),
        ] {
            self.objects
                .get_or_create(&KindLabels { kind: kind.into() })
                .set(n as i64);
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes_collapse_ids() {
        assert_eq!(
            super::route_of("/v2.0/security-groups/0b6c9a3e-1f2d-4c5e-8a9b-0123456789ab"),
            "/v2.0/security-groups/{id}"
        );
        assert_eq!(
            super::route_of("/v2.0/ports/abc/tags/cluster=x"),
            "/v2.0/ports/abc/tags/{id}"
        );
        assert_eq!(
            super::route_of("/v2.0/security-group-rules"),
            "/v2.0/security-group-rules"
        );
    }
}
