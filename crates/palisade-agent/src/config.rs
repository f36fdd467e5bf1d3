//! The agent's config file, in the format of metal-stack's MEP-16 firewall-controller
//! config (seed 001): `name`, `sources`, `controllers`, plus Palisade's own keys for where
//! and how often the rule file is written. Unknown keys, a controller naming a source that
//! is not configured, and bad values are errors naming the key path.

use palisade_dataplane::firewall::{Cwnp, FirewallBase, Service};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Failures reading the config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// the file
        path: PathBuf,
        /// cause
        source: std::io::Error,
    },
    /// Not YAML (or JSON) at all.
    #[error("{path}: not valid YAML: {message}")]
    Syntax {
        /// the file
        path: PathBuf,
        /// the parser's words
        message: String,
    },
    /// A key or value is wrong.
    #[error("{key}: {message}")]
    Invalid {
        /// e.g. `controllers.cwnp.source`
        key: String,
        /// what is wrong, naming the value
        message: String,
    },
    /// Configured, valid, and not built yet.
    #[error("{key}: {message} is not supported yet")]
    Unsupported {
        /// the key
        key: String,
        /// what
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// This agent's name: the `binding:host_id` of the ports it enforces (default: the
    /// hostname).
    #[serde(default)]
    pub name: Option<String>,
    /// Where controllers take their data from.
    #[serde(default)]
    pub sources: Sources,
    /// The sub-controllers; an absent one is disabled.
    #[serde(default)]
    pub controllers: Controllers,
    /// The rule file written on every change (default `/etc/palisade/firewall.v4`).
    #[serde(default)]
    pub rule_file: Option<PathBuf>,
    /// How often the kernel is checked for drift and the status reported (default `10s`).
    #[serde(default)]
    pub resync_interval: Option<String>,
    /// How long a burst of changes is collected before one apply (default `2ms`).
    #[serde(default)]
    pub debounce: Option<String>,
    /// Address for `/metrics` and `/status` (default: none).
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Where the droptailer writes its JSON lines (default `/var/log/palisade/drops.jsonl`).
    #[serde(default)]
    pub drop_log: Option<PathBuf>,
}

/// `sources`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// Inline data.
    #[serde(default, rename = "static")]
    pub static_: Option<StaticSource>,
    /// A Palisade server (metal-api's place in the MEP).
    #[serde(default)]
    pub metal: Option<MetalSource>,
    /// Alias of `metal`.
    #[serde(default)]
    pub api: Option<MetalSource>,
    /// Gardener seed cluster (parsed, refused: not supported yet).
    #[serde(default)]
    pub seed: Option<KubeSource>,
    /// Gardener shoot cluster (parsed, refused: not supported yet).
    #[serde(default)]
    pub shoot: Option<KubeSource>,
}

/// `sources.static`: mirrors what the other sources provide.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSource {
    /// Base firewall settings.
    #[serde(default)]
    pub firewall: Option<FirewallBase>,
    /// Cluster-wide network policies.
    #[serde(default)]
    pub cwnp: Option<Cwnp>,
    /// Exposed services.
    #[serde(default)]
    pub services: Option<Vec<Service>>,
    /// A state file (API shape) for the `securitygroups` controller.
    #[serde(default, rename = "securityGroups")]
    pub security_groups: Option<PathBuf>,
}

/// `sources.metal` / `sources.api`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetalSource {
    /// The server's base URL, e.g. `http://198.18.0.1:9696`.
    pub url: String,
    /// The shared HMAC key.
    pub hmac: String,
    /// `Metal-View`, `Metal-Edit` or `Metal-Admin` (default `Metal-View`).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The project (accepted for compatibility; the server scopes by key type).
    #[serde(default, rename = "projectID")]
    pub project_id: Option<String>,
}

/// `sources.seed` / `sources.shoot`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSource {
    /// Path of the kubeconfig.
    pub kubeconfig: PathBuf,
    /// Namespace.
    pub namespace: String,
}

/// A switch (`selfUpdate`, `droptailer`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// on or off
    #[serde(default)]
    pub enabled: bool,
}

/// `controllers.firewall`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FirewallController {
    /// Source name.
    pub source: String,
    /// Self-update (accepted; refused when enabled: not built yet).
    #[serde(default)]
    pub self_update: Option<Switch>,
    /// Log dropped packets as JSON lines.
    #[serde(default)]
    pub droptailer: Option<Switch>,
}

/// A controller with only a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Source name.
    pub source: String,
}

/// `controllers.securitygroups` (Palisade's addition to the MEP's controllers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgController {
    /// Source name.
    pub source: String,
    /// Log the ports' dropped packets as JSON lines.
    #[serde(default)]
    pub droptailer: Option<Switch>,
}

/// `controllers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controllers {
    /// Base rules of a firewall (its own table, forward path, policy drop).
    #[serde(default)]
    pub firewall: Option<FirewallController>,
    /// Per-port security groups of the ports bound to this agent's name.
    #[serde(default)]
    pub securitygroups: Option<SgController>,
    /// Cluster-wide network policies.
    #[serde(default)]
    pub cwnp: Option<Controller>,
    /// Exposed services.
    #[serde(default)]
    pub service: Option<Controller>,
    /// Status and counters reported to the server.
    #[serde(default)]
    pub monitor: Option<Controller>,
}

/// Which source a controller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// inline data
    Static,
    /// the Palisade server
    Metal,
}

/// A config that has been checked: what the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent's name.
    pub name: String,
    /// Inline data.
    pub static_: StaticSource,
    /// The server, if configured.
    pub metal: Option<MetalSource>,
    /// Key type for the server.
    pub key_type: palisade_model::hmac_auth::KeyType,
    /// `controllers.firewall` source and switches.
    pub firewall: Option<SourceKind>,
    /// Drop log of the firewall table on.
    pub droptailer: bool,
    /// Drop log of the security-group ports on.
    pub sg_droptailer: bool,
    /// `controllers.securitygroups` source.
    pub securitygroups: Option<SourceKind>,
    /// `controllers.cwnp` source.
    pub cwnp: Option<SourceKind>,
    /// `controllers.service` source.
    pub service: Option<SourceKind>,
    /// `controllers.monitor` source.
    pub monitor: Option<SourceKind>,
    /// Rule file.
    pub rule_file: PathBuf,
    /// Drift check and status interval.
    pub resync: Duration,
    /// Burst collection.
    pub debounce: Duration,
    /// `/metrics` listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Drop log path.
    pub drop_log: PathBuf,
}

/// Parses `10s`, `500ms`, `2m`.
pub fn parse_duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| {
        invalid(
            key,
            format!("{s:?} is not a duration like 10s, 500ms or 2m"),
        )
    })?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => {
            return Err(invalid(
                key,
                format!("{s:?} is not a duration like 10s, 500ms or 2m"),
            ))
        }
    };
    Ok(d)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl Config {
    /// Parses YAML (JSON is YAML) with key paths in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let value: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value
        };
        serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            invalid(
                if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                e.inner().to_string(),
            )
        })
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)?.check()
    }

    /// Semantic checks; the result is what the agent runs with.
    pub fn check(self) -> Result<AgentConfig, ConfigError> {
        if self.sources.metal.is_some() && self.sources.api.is_some() {
            return Err(invalid(
                "sources.api",
                "is an alias of sources.metal: configure one of them",
            ));
        }
        let metal = self.sources.metal.clone().or(self.sources.api.clone());
        let metal_key = if self.sources.metal.is_some() {
            "sources.metal"
        } else {
            "sources.api"
        };
        let mut key_type = palisade_model::hmac_auth::KeyType::View;
        if let Some(m) = &metal {
            let u = reqwest::Url::parse(&m.url).map_err(|e| {
                invalid(
                    format!("{metal_key}.url"),
                    format!("{:?} is not a URL: {e}", m.url),
                )
            })?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(invalid(
                    format!("{metal_key}.url"),
                    format!("{:?} is not an http(s) URL", m.url),
                ));
            }
            if m.hmac.len() < 16 {
                return Err(invalid(
                    format!("{metal_key}.hmac"),
                    "a key must have at least 16 characters",
                ));
            }
            if let Some(t) = &m.kind {
                key_type = palisade_model::hmac_auth::KeyType::parse(t).ok_or_else(|| {
                    invalid(
                        format!("{metal_key}.type"),
                        format!("{t:?} is not one of Metal-View, Metal-Edit, Metal-Admin"),
                    )
                })?;
            }
        }
        for (key, k) in [
            ("sources.seed", &self.sources.seed),
            ("sources.shoot", &self.sources.shoot),
        ] {
            if let Some(k) = k {
                if k.namespace.is_empty() {
                    return Err(invalid(format!("{key}.namespace"), "must not be empty"));
                }
                return Err(ConfigError::Unsupported {
                    key: key.into(),
                    message: format!(
                        "reading Kubernetes objects (kubeconfig {}, namespace {})",
                        k.kubeconfig.display(),
                        k.namespace
                    ),
                });
            }
        }
        let st = self.sources.static_.clone();
        let source = |key: &str, name: &str| -> Result<SourceKind, ConfigError> {
            match name {
                "static" if st.is_some() => Ok(SourceKind::Static),
                "metal" | "api" if metal.is_some() => Ok(SourceKind::Metal),
                "static" | "metal" | "api" | "seed" | "shoot" => Err(invalid(
                    format!("{key}.source"),
                    format!("source {name:?} is not configured under sources"),
                )),
                other => Err(invalid(
                    format!("{key}.source"),
                    format!("{other:?} is not a source (static, metal, api, seed, shoot)"),
                )),
            }
        };
        let c = &self.controllers;
        let firewall = c
            .firewall
            .as_ref()
            .map(|f| source("controllers.firewall", &f.source))
            .transpose()?;
        if c.firewall
            .as_ref()
            .and_then(|f| f.self_update.as_ref())
            .is_some_and(|s| s.enabled)
        {
            return Err(ConfigError::Unsupported {
                key: "controllers.firewall.selfUpdate.enabled".into(),
                message: "self-update".into(),
            });
        }
        let droptailer = c
            .firewall
            .as_ref()
            .and_then(|f| f.droptailer.as_ref())
            .is_some_and(|s| s.enabled);
        let sg_droptailer = c
            .securitygroups
            .as_ref()
            .and_then(|f| f.droptailer.as_ref())
            .is_some_and(|s| s.enabled);
        let one = |key: &str, ctl: &Option<Controller>| {
            ctl.as_ref().map(|x| source(key, &x.source)).transpose()
        };
        let securitygroups = c
            .securitygroups
            .as_ref()
            .map(|x| source("controllers.securitygroups", &x.source))
            .transpose()?;
        let cwnp = one("controllers.cwnp", &c.cwnp)?;
        let service = one("controllers.service", &c.service)?;
        let monitor = one("controllers.monitor", &c.monitor)?;
        for (key, kind) in [("controllers.cwnp", cwnp), ("controllers.service", service)] {
            if kind.is_some() && firewall.is_none() {
                return Err(invalid(
                    key,
                    "needs controllers.firewall (its rules live in the firewall's table)",
                ));
            }
        }
        if monitor == Some(SourceKind::Static) {
            return Err(invalid(
                "controllers.monitor.source",
                "the monitor reports to a server: use metal",
            ));
        }
        if securitygroups == Some(SourceKind::Static)
            && st
                .as_ref()
                .and_then(|s| s.security_groups.as_ref())
                .is_none()
        {
            return Err(invalid(
                "sources.static.securityGroups",
                "controllers.securitygroups reads a state file from here: give its path",
            ));
        }
        if let Some(s) = &st {
            if let Some(cw) = &s.cwnp {
                cw.validate("sources.static.cwnp.")
                    .map_err(|e| invalid(e.path, e.message))?;
            }
            if let Some(sv) = &s.services {
                palisade_dataplane::firewall::validate_services(sv, "sources.static.services")
                    .map_err(|e| invalid(e.path, e.message))?;
            }
        }
        let resync = match &self.resync_interval {
            Some(s) => parse_duration("resyncInterval", s)?,
            None => Duration::from_secs(10),
        };
        if resync < Duration::from_millis(100) {
            return Err(invalid("resyncInterval", "must be at least 100ms"));
        }
        let debounce = match &self.debounce {
            Some(s) => parse_duration("debounce", s)?,
            None => Duration::from_millis(2),
        };
        let metrics_addr = self
            .metrics_addr
            .as_deref()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "metricsAddr",
                        format!("{a:?} is not an address like 127.0.0.1:9697"),
                    )
                })
            })
            .transpose()?;
        let name = match self.name.clone() {
            Some(n) if n.trim().is_empty() => return Err(invalid("name", "must not be empty")),
            Some(n) => n,
            None => hostname(),
        };
        Ok(AgentConfig {
            name,
            static_: st.unwrap_or_default(),
            metal,
            key_type,
            firewall,
            droptailer,
            sg_droptailer,
            securitygroups,
            cwnp,
            service,
            monitor,
            rule_file: self
                .rule_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/palisade/firewall.v4")),
            resync,
            debounce,
            metrics_addr,
            drop_log: self
                .drop_log
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/log/palisade/drops.jsonl")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<AgentConfig, ConfigError> {
        Config::parse(yaml, Path::new("t.yaml"))?.check()
    }

    #[test]
    fn errors_name_the_key_path() {
        let cases = [
            ("sources:\n  static: {}\ncontrollers:\n  firewall:\n    source: static\n    droptail: {}\n", "controllers.firewall", "droptail"),
            ("sources:\n  static: {}\ncontrollers:\n  cwnp:\n    source: metal\n", "controllers.cwnp.source", "not configured"),
            ("sources:\n  static: {}\ncontrollers:\n  firewall:\n    source: ldap\n", "controllers.firewall.source", "ldap"),
            ("sources:\n  metal:\n    url: nope\n    hmac: 0123456789abcdef\n", "sources.metal.url", "nope"),
            ("sources:\n  metal:\n    url: http://198.18.0.1:9696\n    hmac: 0123456789abcdef\n    type: Metal-Root\n", "sources.metal.type", "Metal-Root"),
            ("sources:\n  static:\n    cwnp:\n      ingress:\n        - from: [{cidr: 198.18.0.0/16}]\n          ports: [{port: 80, endPort: 70}]\ncontrollers:\n  firewall:\n    source: static\n  cwnp:\n    source: static\n", "sources.static.cwnp.ingress[0].ports[0].endPort", "70"),
            ("sources:\n  static:\n    cwnp:\n      ingress:\n        - from: [{cidr: 198.18.0.0/33}]\n", "sources.static.cwnp.ingress[0].from[0].cidr", "198.18.0.0/33"),
            ("sources:\n  static:\n    cwnp:\n      egress:\n        - to: [{cidr: 198.18.0.0/16, except: [198.19.0.0/24]}]\ncontrollers:\n  firewall:\n    source: static\n", "sources.static.cwnp.egress[0].to[0].except[0]", "198.19.0.0/24"),
            ("resyncInterval: soon\n", "resyncInterval", "soon"),
            ("sources:\n  shoot:\n    kubeconfig: /etc/k.yaml\n    namespace: firewall\n", "sources.shoot", "not supported yet"),
            ("sources:\n  static: {}\ncontrollers:\n  cwnp:\n    source: static\n", "controllers.cwnp", "controllers.firewall"),
            ("bogus: 1\n", "bogus", "unknown field"),
        ];
        for (yaml, key, word) in cases {
            let err = check(yaml).expect_err(yaml).to_string();
            assert!(
                err.contains(key) && err.contains(word),
                "{yaml}\n→ {err}\n(wanted {key} and {word})"
            );
        }
    }

    #[test]
    fn defaults_and_aliases() {
        let c = check("name: hv1\nsources:\n  api:\n    url: http://198.18.0.1:9696\n    hmac: 0123456789abcdef\ncontrollers:\n  securitygroups:\n    source: metal\n").expect("valid");
        assert_eq!(c.name, "hv1");
        assert_eq!(
            c.securitygroups,
            Some(SourceKind::Metal),
            "api is an alias of metal"
        );
        assert_eq!(c.rule_file, PathBuf::from("/etc/palisade/firewall.v4"));
        assert_eq!(c.resync, Duration::from_secs(10));
        assert!(
            c.firewall.is_none() && c.cwnp.is_none(),
            "absent controllers are disabled"
        );
        let c = check("").expect("empty is valid");
        assert!(!c.name.is_empty(), "name defaults to the hostname");
    }
}

#[cfg(test)]
mod examples {
    use super::*;

    fn example(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/examples")
            .join(name)
    }

    #[test]
    fn the_three_mep_examples_load() {
        let err = Config::load(&example("agent-gardener.yaml"))
            .expect_err("kubernetes sources are refused");
        assert!(
            matches!(&err, ConfigError::Unsupported { key, .. } if key == "sources.seed"),
            "{err}"
        );
        assert!(err.to_string().contains("not supported yet"), "{err}");
        let metal = Config::load(&example("agent-metal.yaml")).expect("metal example");
        assert_eq!(metal.name, "best-firewall-ever");
        assert_eq!(
            (metal.firewall, metal.cwnp),
            (Some(SourceKind::Metal), Some(SourceKind::Metal))
        );
        assert!(metal.droptailer && metal.metal.is_some() && metal.securitygroups.is_none());
        let hv = Config::load(&example("agent-hypervisor.yaml")).expect("hypervisor example");
        assert_eq!(hv.name, "hv1");
        assert_eq!(
            hv.securitygroups,
            Some(SourceKind::Metal),
            "api is the alias of metal"
        );
        assert!(hv.sg_droptailer && hv.firewall.is_none());
        let st = Config::load(&example("agent-static.yaml")).expect("static example");
        assert_eq!(
            (st.firewall, st.cwnp, st.service),
            (
                Some(SourceKind::Static),
                Some(SourceKind::Static),
                Some(SourceKind::Static)
            )
        );
        assert_eq!(st.static_.cwnp.as_ref().map(|c| c.ingress.len()), Some(1));
        assert!(st.metal.is_none() && st.droptailer);
    }
}
