//! `/metrics`: the agent in Prometheus text format. Applies by kind (delta or full) with
//! their duration, nft failures, drift repairs, dropped packets by reason and direction
//! (from the drop log), and gauges read from the status at scrape time: the revision in
//! force, rules, sets and elements, lag, and the time since the last sync with the source.

use crate::agent::Status;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    hash: String,
    applier: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The agent's metrics. Counters are bumped where things happen; gauges are set from the
/// [`Status`] when scraped.
#[derive(Debug)]
pub struct AgentMetrics {
    registry: Registry,
    applies: Family<KindLabels, Counter>,
    apply_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// Transactions nft refused.
    pub apply_failures: Counter,
    /// Rulesets restored after somebody else changed nftables.
    pub drift_repairs: Counter,
    /// Commits by others that left our tables as they were.
    pub foreign_commits: Counter,
    drops: Family<DropLabels, Counter>,
    /// Drop-log lines not written because of the per-second limit.
    pub drop_lines_suppressed: Counter,
    applied_revision: Gauge,
    rules: Gauge,
    sets: Gauge,
    elements: Gauge,
    lag: FloatGauge,
    last_sync: Gauge,
    since_sync: FloatGauge,
    info: Family<InfoLabels, Gauge>,
}

fn apply_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl AgentMetrics {
    /// A registry whose every series carries `agent="<name>"`.
    pub fn new(agent: &str) -> AgentMetrics {
        let mut root = Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("agent"),
                std::borrow::Cow::Owned(agent.to_string()),
            )]
            .into_iter(),
        );
        let r = root.sub_registry_with_prefix("palisade_agent");
        let applies = Family::<KindLabels, Counter>::default();
        r.register(
            "applies",
            "Transactions applied, by kind (delta or full)",
            applies.clone(),
        );
        let apply_seconds =
            Family::<KindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                apply_histogram,
            );
        r.register(
            "apply_duration_seconds",
            "Time from handing a transaction to nft until it is committed, by kind",
            apply_seconds.clone(),
        );
        let apply_failures = Counter::default();
        r.register(
            "apply_failures",
            "Transactions nft refused (the ruleset in force stays)",
            apply_failures.clone(),
        );
        let drift_repairs = Counter::default();
        r.register(
            "drift_repairs",
            "Rulesets restored after somebody else changed nftables",
            drift_repairs.clone(),
        );
        let foreign_commits = Counter::default();
        r.register(
            "foreign_commits",
            "nftables commits by other software that left our tables as they were (no repair needed)",
            foreign_commits.clone(),
        );
        let drops = Family::<DropLabels, Counter>::default();
        r.register(
            "drops",
            "Dropped packets read from the drop log (the kernel's log rules are rate-limited), by reason and direction",
            drops.clone(),
        );
        let drop_lines_suppressed = Counter::default();
        r.register(
            "drop_log_lines_suppressed",
            "Drop-log lines not written because of the per-second limit",
            drop_lines_suppressed.clone(),
        );
        let applied_revision = Gauge::default();
        r.register(
            "applied_revision",
            "Server revision whose changes are in force",
            applied_revision.clone(),
        );
        let rules = Gauge::default();
        r.register("rules", "Rules in the security-group chains", rules.clone());
        let sets = Gauge::default();
        r.register("sets", "Named sets", sets.clone());
        let elements = Gauge::default();
        r.register("set_elements", "Elements in named sets", elements.clone());
        let lag = FloatGauge::default();
        r.register(
            "lag_seconds",
            "Age of the oldest change not yet in force",
            lag.clone(),
        );
        let last_sync = Gauge::default();
        r.register(
            "last_sync_timestamp_seconds",
            "Unix time of the last contact with the source (0: never)",
            last_sync.clone(),
        );
        let since_sync = FloatGauge::default();
        r.register(
            "seconds_since_last_sync",
            "Seconds since the last contact with the source (-1: never)",
            since_sync.clone(),
        );
        let info = Family::<InfoLabels, Gauge>::default();
        r.register(
            "ruleset_info",
            "The ruleset in force (its SHA-256) and the applier",
            info.clone(),
        );
        AgentMetrics {
            registry: root,
            applies,
            apply_seconds,
            apply_failures,
            drift_repairs,
            foreign_commits,
            drops,
            drop_lines_suppressed,
            applied_revision,
            rules,
            sets,
            elements,
            lag,
            last_sync,
            since_sync,
            info,
        }
    }

    /// Records one committed transaction.
    pub fn applied(&self, is_delta: bool, seconds: f64) {
        let kind = KindLabels {
            kind: if is_delta { "delta" } else { "full" },
        };
        self.applies.get_or_create(&kind).inc();
        self.apply_seconds.get_or_create(&kind).observe(seconds);
    }

    /// Records one dropped packet from the drop log.
    pub fn dropped(&self, reason: &str, direction: &str) {
        self.drops
            .get_or_create(&DropLabels {
                reason: reason.to_string(),
                direction: direction.to_string(),
            })
            .inc();
    }

    /// The text format, with the gauges taken from `s`.
    pub fn render(&self, s: &Status) -> String {
        self.applied_revision.set(s.applied_revision);
        self.rules.set(s.rules);
        self.sets.set(s.sets);
        self.elements.set(s.elements);
        self.lag.set(s.lag_seconds);
        self.last_sync.set(s.last_sync_unix);
        self.since_sync.set(if s.last_sync_unix == 0 {
            -1.0
        } else {
            (jiff::Timestamp::now().as_millisecond() as f64 / 1000.0 - s.last_sync_unix as f64)
                .max(0.0)
        });
        self.info.clear();
        self.info
            .get_or_create(&InfoLabels {
                hash: s.ruleset_hash.clone(),
                applier: s.applier.clone(),
            })
            .set(1);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions_and_carry_the_agent() {
        let m = AgentMetrics::new("hv1");
        m.applied(true, 0.002);
        m.applied(false, 0.02);
        m.applied(true, 0.001);
        m.dropped("default drop", "ingress");
        m.apply_failures.inc();
        let text = m.render(&Status {
            applied_revision: 42,
            ruleset_hash: "abc".into(),
            applier: "libnftables".into(),
            ..Status::default()
        });
        for line in [
            "palisade_agent_applies_total{agent=\"hv1\",kind=\"delta\"} 2",
            "palisade_agent_applies_total{agent=\"hv1\",kind=\"full\"} 1",
            "palisade_agent_apply_duration_seconds_count{agent=\"hv1\",kind=\"delta\"} 2",
            "palisade_agent_apply_failures_total{agent=\"hv1\"} 1",
            "palisade_agent_drops_total{agent=\"hv1\",reason=\"default drop\",direction=\"ingress\"} 1",
            "palisade_agent_applied_revision{agent=\"hv1\"} 42",
            "palisade_agent_seconds_since_last_sync{agent=\"hv1\"} -1.0",
            "palisade_agent_ruleset_info{agent=\"hv1\",hash=\"abc\",applier=\"libnftables\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
