//! Client commands in the openstack CLI's grammar (python-openstackclient's
//! `security group`, `security group rule`, `port`, `network`, `quota`).

use crate::Conn;
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use palisade_client::{Client, Port, RuleSpec, SecurityGroup, SecurityGroupRule};
use serde_json::{json, Map, Value};

#[derive(Subcommand, Debug)]
pub enum SecurityCmd {
    /// Security groups.
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a security group.
    Create {
        /// Name of the new group.
        name: String,
        /// Description (default: the name, as the openstack CLI does).
        #[arg(long)]
        description: Option<String>,
        /// Stateful (conntrack) group (the default).
        #[arg(long, conflicts_with = "stateless")]
        stateful: bool,
        /// Stateless group: replies need their own rules.
        #[arg(long)]
        stateless: bool,
        /// Owner project (admin only).
        #[arg(long)]
        project: Option<String>,
    },
    /// List security groups.
    List {
        /// Only this project's groups.
        #[arg(long)]
        project: Option<String>,
    },
    /// Show a security group (name or id).
    Show {
        /// Group name or id.
        group: String,
    },
    /// Change a security group.
    Set {
        /// Group name or id.
        group: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// Make it stateful.
        #[arg(long, conflicts_with = "stateless")]
        stateful: bool,
        /// Make it stateless.
        #[arg(long)]
        stateless: bool,
    },
    /// Delete security groups (names or ids).
    Delete {
        /// Groups to delete.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Security group rules.
    Rule {
        #[command(subcommand)]
        cmd: RuleCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum RuleCmd {
    /// Create a rule in GROUP.
    Create(RuleCreate),
    /// List rules (of GROUP, or all).
    List {
        /// Group name or id.
        group: Option<String>,
        /// Only ingress rules.
        #[arg(long, conflicts_with = "egress")]
        ingress: bool,
        /// Only egress rules.
        #[arg(long)]
        egress: bool,
        /// Only rules with this protocol.
        #[arg(long)]
        protocol: Option<String>,
        /// Parsed for compatibility; not sent (as the openstack CLI).
        #[arg(long)]
        ethertype: Option<String>,
    },
    /// Show a rule by id.
    Show {
        /// Rule id.
        rule: String,
    },
    /// Delete rules by id.
    Delete {
        /// Rule ids.
        #[arg(required = true)]
        rules: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct RuleCreate {
    /// Group name or id.
    group: String,
    /// Protocol name, number, or `any`.
    #[arg(long)]
    protocol: Option<String>,
    /// Destination port or range `FROM:TO` (ignored for ICMP).
    #[arg(long)]
    dst_port: Option<String>,
    /// ICMP type.
    #[arg(long, allow_hyphen_values = true)]
    icmp_type: Option<i64>,
    /// ICMP code.
    #[arg(long, allow_hyphen_values = true)]
    icmp_code: Option<i64>,
    /// Remote CIDR.
    #[arg(long, conflicts_with_all = ["remote_group", "remote_address_group"])]
    remote_ip: Option<String>,
    /// Remote group (name or id).
    #[arg(long, conflicts_with = "remote_address_group")]
    remote_group: Option<String>,
    /// Remote address group id.
    #[arg(long)]
    remote_address_group: Option<String>,
    /// Traffic to the port (default).
    #[arg(long, conflicts_with = "egress")]
    ingress: bool,
    /// Traffic from the port.
    #[arg(long)]
    egress: bool,
    /// IPv4 or IPv6 (default: IPv6 only for IPv6-only protocols).
    #[arg(long)]
    ethertype: Option<String>,
    /// Description.
    #[arg(long)]
    description: Option<String>,
    /// Owner project (admin only).
    #[arg(long)]
    project: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PortCmd {
    /// Create a port.
    Create(PortCreate),
    /// List ports.
    List {
        /// Only ports in this group.
        #[arg(long)]
        security_group: Option<String>,
        /// Only ports on this network.
        #[arg(long)]
        network: Option<String>,
        /// Only ports bound to this host.
        #[arg(long)]
        host: Option<String>,
    },
    /// Show a port.
    Show {
        /// Port name or id.
        port: String,
    },
    /// Change a port.
    Set(PortSet),
    /// Remove groups or address pairs from a port.
    Unset {
        /// Port name or id.
        port: String,
        /// Group to remove (repeatable).
        #[arg(long = "security-group")]
        security_groups: Vec<String>,
    },
    /// Delete ports.
    Delete {
        /// Port names or ids.
        #[arg(required = true)]
        ports: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct PortCreate {
    /// Port name.
    name: String,
    /// Network name or id.
    #[arg(long)]
    network: String,
    /// `ip-address=A[,subnet=S]` (repeatable); Palisade does no IPAM.
    #[arg(long = "fixed-ip")]
    fixed_ips: Vec<String>,
    /// Group (repeatable); without it the project's default group applies.
    #[arg(long = "security-group")]
    security_groups: Vec<String>,
    /// No group at all.
    #[arg(long, conflicts_with = "security_groups")]
    no_security_group: bool,
    /// Enable port security.
    #[arg(long, conflicts_with = "disable_port_security")]
    enable_port_security: bool,
    /// Disable port security (no filtering).
    #[arg(long)]
    disable_port_security: bool,
    /// `ip-address=A[,mac-address=M]` (repeatable).
    #[arg(long = "allowed-address")]
    allowed_addresses: Vec<String>,
    /// MAC address (default: generated).
    #[arg(long)]
    mac_address: Option<String>,
    /// Host to bind to (binding:host_id).
    #[arg(long)]
    host: Option<String>,
    /// Device id.
    #[arg(long)]
    device: Option<String>,
    /// Device owner.
    #[arg(long)]
    device_owner: Option<String>,
    /// Owner project (admin only).
    #[arg(long)]
    project: Option<String>,
}

#[derive(Args, Debug)]
pub struct PortSet {
    /// Port name or id.
    port: String,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// Add a group (repeatable); with --no-security-group, replace.
    #[arg(long = "security-group")]
    security_groups: Vec<String>,
    /// Clear groups first.
    #[arg(long)]
    no_security_group: bool,
    /// Enable port security.
    #[arg(long, conflicts_with = "disable_port_security")]
    enable_port_security: bool,
    /// Disable port security.
    #[arg(long)]
    disable_port_security: bool,
    /// Add `ip-address=A[,mac-address=M]` (repeatable).
    #[arg(long = "allowed-address")]
    allowed_addresses: Vec<String>,
    /// Clear allowed address pairs first.
    #[arg(long)]
    no_allowed_address: bool,
    /// Host to bind to.
    #[arg(long)]
    host: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network.
    Create {
        /// Network name.
        name: String,
        /// Ports default to port security on (the default).
        #[arg(long, conflicts_with = "disable_port_security")]
        enable_port_security: bool,
        /// Ports default to port security off.
        #[arg(long)]
        disable_port_security: bool,
        /// Share with every project (admin only).
        #[arg(long)]
        share: bool,
        /// Owner project (admin only).
        #[arg(long)]
        project: Option<String>,
    },
    /// List networks.
    List,
    /// Show a network.
    Show {
        /// Network name or id.
        network: String,
    },
    /// Delete networks.
    Delete {
        /// Network names or ids.
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuotaCmd {
    /// Set a project's limits (admin; -1 = unlimited).
    Set {
        /// Project id.
        project: String,
        /// Security groups.
        #[arg(long, allow_hyphen_values = true)]
        secgroups: Option<i64>,
        /// Security group rules.
        #[arg(long, allow_hyphen_values = true)]
        secgroup_rules: Option<i64>,
        /// Ports.
        #[arg(long, allow_hyphen_values = true)]
        ports: Option<i64>,
        /// Networks.
        #[arg(long, allow_hyphen_values = true)]
        networks: Option<i64>,
        /// Allow a limit below current usage.
        #[arg(long)]
        force: bool,
    },
    /// Show a project's limits (and usage with --usage).
    Show {
        /// Project id.
        project: String,
        /// Include usage.
        #[arg(long)]
        usage: bool,
    },
}

fn print(s: String) {
    if !s.is_empty() {
        println!("{s}");
    }
}

fn rule_fields(r: &SecurityGroupRule) -> Vec<(&'static str, Value)> {
    vec![
        ("created_at", json!(r.created_at)),
        ("description", json!(r.description)),
        ("direction", json!(r.direction)),
        ("ethertype", json!(r.ethertype)),
        ("id", json!(r.id)),
        ("normalized_cidr", json!(r.normalized_cidr)),
        ("port_range_max", json!(r.port_range_max)),
        ("port_range_min", json!(r.port_range_min)),
        ("project_id", json!(r.project_id)),
        ("protocol", json!(r.protocol)),
        ("remote_address_group_id", json!(r.remote_address_group_id)),
        ("remote_group_id", json!(r.remote_group_id)),
        ("remote_ip_prefix", json!(r.remote_ip_prefix)),
        ("revision_number", json!(r.revision_number)),
        ("security_group_id", json!(r.security_group_id)),
        ("updated_at", json!(r.updated_at)),
    ]
}

fn group_fields(g: &SecurityGroup) -> Vec<(&'static str, Value)> {
    // Rules as the openstack CLI prints them: no empty values, no group/project ids.
    let rules: Vec<Value> = g
        .security_group_rules
        .iter()
        .map(|r| {
            let mut m: Map<String, Value> = rule_fields(r)
                .into_iter()
                .filter(|(k, v)| {
                    !v.is_null()
                        && v.as_str() != Some("")
                        && !matches!(*k, "security_group_id" | "project_id")
                })
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            m.remove("normalized_cidr");
            Value::Object(m)
        })
        .collect();
    vec![
        ("created_at", json!(g.created_at)),
        ("description", json!(g.description)),
        ("id", json!(g.id)),
        ("name", json!(g.name)),
        ("project_id", json!(g.project_id)),
        ("revision_number", json!(g.revision_number)),
        ("rules", Value::Array(rules)),
        ("shared", json!(g.shared)),
        ("stateful", json!(g.stateful)),
        ("tags", json!(g.tags)),
        ("updated_at", json!(g.updated_at)),
    ]
}

fn port_range(r: &SecurityGroupRule) -> String {
    let icmp = matches!(
        r.protocol.as_deref(),
        Some("icmp" | "icmpv6" | "ipv6-icmp" | "1" | "58")
    );
    match (r.port_range_min, r.port_range_max) {
        (None, None) => String::new(),
        (Some(t), c) if icmp => match c {
            Some(c) => format!("type={t}:code={c}"),
            None => format!("type={t}"),
        },
        (Some(a), Some(b)) => format!("{a}:{b}"),
        (a, b) => format!(
            "{}:{}",
            a.map_or(String::new(), |v| v.to_string()),
            b.map_or(String::new(), |v| v.to_string())
        ),
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

const IPV6_ONLY: &[&str] = &[
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "icmpv6",
    "41",
    "43",
    "44",
    "58",
    "59",
    "60",
];

pub async fn security(cmd: SecurityCmd, conn: &Conn) -> anyhow::Result<()> {
    let SecurityCmd::Group { cmd } = cmd;
    let c = conn.client().await?;
    let out = conn.output();
    match cmd {
        GroupCmd::Create {
            name,
            description,
            stateful,
            stateless,
            project,
        } => {
            let mut body = Map::new();
            body.insert(
                "description".into(),
                json!(description.unwrap_or_else(|| name.clone())),
            );
            body.insert("name".into(), json!(name));
            if stateful || stateless {
                body.insert("stateful".into(), json!(stateful));
            }
            if let Some(p) = project {
                body.insert("project_id".into(), json!(p));
            }
            let g = c.create_security_group(body).await?;
            print(out.show(&group_fields(&g))?);
        }
        GroupCmd::List { project } => {
            let mut pairs = vec![];
            if let Some(p) = project.as_deref() {
                pairs.push(("project_id", p));
            }
            let groups = c.list_security_groups(&query(&pairs)).await?;
            let rows: Vec<Vec<Value>> = groups
                .iter()
                .map(|g| {
                    vec![
                        json!(g.id),
                        json!(g.name),
                        json!(g.description),
                        json!(g.project_id),
                        json!(g.tags),
                        json!(g.shared),
                    ]
                })
                .collect();
            print(out.list(
                &["ID", "Name", "Description", "Project", "Tags", "Shared"],
                &rows,
            )?);
        }
        GroupCmd::Show { group } => {
            let g = c.find_security_group(&group).await?;
            print(out.show(&group_fields(&g))?);
        }
        GroupCmd::Set {
            group,
            name,
            description,
            stateful,
            stateless,
        } => {
            let g = c.find_security_group(&group).await?;
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if stateful || stateless {
                body.insert("stateful".into(), json!(stateful));
            }
            c.update_security_group(&g.id, body).await?;
        }
        GroupCmd::Delete { groups } => {
            let mut failed = 0;
            for name in &groups {
                let r = async {
                    let g = c.find_security_group(name).await?;
                    c.delete_security_group(&g.id).await
                }
                .await;
                if let Err(e) = r {
                    eprintln!("Failed to delete group with name or ID '{name}': {e}");
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} of {} groups failed to delete.", groups.len());
            }
        }
        GroupCmd::Rule { cmd } => rule(cmd, &c, &out).await?,
    }
    Ok(())
}

async fn rule(cmd: RuleCmd, c: &Client, out: &crate::Output) -> anyhow::Result<()> {
    match cmd {
        RuleCmd::Create(a) => {
            let g = c.find_security_group(&a.group).await?;
            let protocol = a.protocol.as_deref().map(str::to_ascii_lowercase);
            let is_icmp = matches!(
                protocol.as_deref(),
                Some("icmp" | "icmpv6" | "ipv6-icmp" | "1" | "58")
            );
            let ethertype = match &a.ethertype {
                Some(e) if e.eq_ignore_ascii_case("ipv4") => "IPv4".to_string(),
                Some(e) if e.eq_ignore_ascii_case("ipv6") => "IPv6".to_string(),
                Some(e) => bail!("--ethertype: '{e}' is not IPv4 or IPv6"),
                None if protocol.as_deref().is_some_and(|p| IPV6_ONLY.contains(&p)) => {
                    "IPv6".into()
                }
                None => "IPv4".into(),
            };
            let mut spec = RuleSpec {
                security_group_id: g.id.clone(),
                direction: if a.egress {
                    "egress".into()
                } else {
                    "ingress".into()
                },
                ethertype: Some(ethertype.clone()),
                protocol: Some(match protocol.as_deref() {
                    None | Some("any") => Value::Null,
                    Some(p) => json!(p),
                }),
                description: a.description.clone(),
                project_id: a.project.clone(),
                ..Default::default()
            };
            if a.dst_port.is_some() && a.icmp_type.is_some() {
                bail!("--dst-port and --icmp-type cannot be used together");
            }
            if a.icmp_code.is_some() && a.icmp_type.is_none() {
                bail!("--icmp-code requires --icmp-type");
            }
            if (a.icmp_type.is_some()) && !is_icmp {
                bail!("--icmp-type and --icmp-code need an ICMP protocol (--protocol icmp, icmpv6 or ipv6-icmp)");
            }
            if let (Some(p), false) = (&a.dst_port, is_icmp) {
                let (lo, hi) = match p.split_once(':') {
                    Some((lo, hi)) => (lo, hi),
                    None => (p.as_str(), p.as_str()),
                };
                let lo: u32 = lo
                    .parse()
                    .with_context(|| format!("--dst-port: '{p}' is not PORT or FROM:TO"))?;
                let hi: u32 = hi
                    .parse()
                    .with_context(|| format!("--dst-port: '{p}' is not PORT or FROM:TO"))?;
                if lo > hi {
                    bail!("--dst-port: {lo} is greater than {hi}");
                }
                spec.port_range_min = Some(lo);
                spec.port_range_max = Some(hi);
            }
            // Negative ICMP values mean "any" and are left out, as the openstack CLI does.
            spec.port_range_min = spec
                .port_range_min
                .or(a.icmp_type.filter(|v| *v >= 0).map(|v| v as u32));
            spec.port_range_max = spec
                .port_range_max
                .or(a.icmp_code.filter(|v| *v >= 0).map(|v| v as u32));
            if let Some(ip) = a.remote_ip {
                spec.remote_ip_prefix = Some(ip);
            } else if let Some(rg) = a.remote_group {
                spec.remote_group_id = Some(c.find_security_group(&rg).await?.id);
            } else if let Some(ag) = a.remote_address_group {
                spec.remote_address_group_id = Some(ag);
            } else {
                spec.remote_ip_prefix = Some(if ethertype == "IPv6" {
                    "::/0".into()
                } else {
                    "0.0.0.0/0".into()
                });
            }
            let r = c.create_rule(&spec).await?;
            print(out.show(&rule_fields(&r))?);
        }
        RuleCmd::List {
            group,
            ingress,
            egress,
            protocol,
            ethertype: _,
        } => {
            let mut pairs: Vec<(&str, String)> = Vec::new();
            if let Some(g) = &group {
                pairs.push(("security_group_id", c.find_security_group(g).await?.id));
            }
            if ingress {
                pairs.push(("direction", "ingress".into()));
            }
            if egress {
                pairs.push(("direction", "egress".into()));
            }
            if let Some(p) = protocol {
                pairs.push(("protocol", p));
            }
            let q: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let rules = c.list_rules(&query(&q)).await?;
            let mut headers = vec![
                "ID",
                "IP Protocol",
                "Ethertype",
                "IP Range",
                "Port Range",
                "Direction",
                "Remote Security Group",
                "Remote Address Group",
            ];
            if group.is_none() {
                headers.push("Security Group");
            }
            let rows: Vec<Vec<Value>> = rules
                .iter()
                .map(|r| {
                    let range = match (
                        &r.remote_ip_prefix,
                        r.remote_group_id.is_some() || r.remote_address_group_id.is_some(),
                    ) {
                        (Some(p), _) => json!(p),
                        (None, true) => Value::Null,
                        (None, false) => json!(if r.ethertype == "IPv6" {
                            "::/0"
                        } else {
                            "0.0.0.0/0"
                        }),
                    };
                    let mut row = vec![
                        json!(r.id),
                        json!(r.protocol),
                        json!(r.ethertype),
                        range,
                        json!(port_range(r)),
                        json!(r.direction),
                        json!(r.remote_group_id),
                        json!(r.remote_address_group_id),
                    ];
                    if group.is_none() {
                        row.push(json!(r.security_group_id));
                    }
                    row
                })
                .collect();
            print(out.list(&headers, &rows)?);
        }
        RuleCmd::Show { rule } => {
            let r = c.get_rule(&rule).await?;
            print(out.show(&rule_fields(&r))?);
        }
        RuleCmd::Delete { rules } => {
            let mut failed = 0;
            for id in &rules {
                if let Err(e) = c.delete_rule(id).await {
                    eprintln!("Failed to delete rule with ID '{id}': {e}");
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} of {} rules failed to delete.", rules.len());
            }
        }
    }
    Ok(())
}

/// Parses `k=v,k=v` option values (the openstack CLI's MultiKeyValueAction).
fn kv(opt: &str, s: &str, allowed: &[&str]) -> anyhow::Result<Map<String, Value>> {
    let mut m = Map::new();
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("{opt}: '{part}' is not KEY=VALUE"))?;
        if !allowed.contains(&k) {
            bail!(
                "{opt}: unknown key '{k}' (expected one of {})",
                allowed.join(", ")
            );
        }
        m.insert(k.replace('-', "_"), json!(v));
    }
    Ok(m)
}

fn port_fields(p: &Port) -> Vec<(&'static str, Value)> {
    vec![
        ("allowed_address_pairs", json!(p.allowed_address_pairs)),
        ("binding_host_id", json!(p.binding_host_id)),
        ("device_id", json!(p.device_id)),
        ("device_owner", json!(p.device_owner)),
        ("fixed_ips", json!(p.fixed_ips)),
        ("id", json!(p.id)),
        ("mac_address", json!(p.mac_address)),
        ("name", json!(p.name)),
        ("network_id", json!(p.network_id)),
        ("port_security_enabled", json!(p.port_security_enabled)),
        ("project_id", json!(p.project_id)),
        ("revision_number", json!(p.revision_number)),
        ("security_group_ids", json!(p.security_groups)),
        ("status", json!(p.status)),
    ]
}

pub async fn port(cmd: PortCmd, conn: &Conn) -> anyhow::Result<()> {
    let c = conn.client().await?;
    let out = conn.output();
    match cmd {
        PortCmd::Create(a) => {
            let net = c.find_network(&a.network).await?;
            let mut body = Map::new();
            body.insert("name".into(), json!(a.name));
            body.insert("network_id".into(), json!(net.id));
            if !a.fixed_ips.is_empty() {
                let ips: anyhow::Result<Vec<Value>> = a
                    .fixed_ips
                    .iter()
                    .map(|f| {
                        let mut m = kv("--fixed-ip", f, &["ip-address", "subnet"])?;
                        if let Some(s) = m.remove("subnet") {
                            m.insert("subnet_id".into(), s);
                        }
                        Ok(Value::Object(m))
                    })
                    .collect();
                body.insert("fixed_ips".into(), Value::Array(ips?));
            }
            if a.no_security_group {
                body.insert("security_groups".into(), json!([]));
            } else if !a.security_groups.is_empty() {
                let mut ids = Vec::new();
                for g in &a.security_groups {
                    ids.push(c.find_security_group(g).await?.id);
                }
                body.insert("security_groups".into(), json!(ids));
            }
            if a.enable_port_security || a.disable_port_security {
                body.insert(
                    "port_security_enabled".into(),
                    json!(a.enable_port_security),
                );
            }
            if !a.allowed_addresses.is_empty() {
                let pairs: anyhow::Result<Vec<Value>> = a
                    .allowed_addresses
                    .iter()
                    .map(|s| {
                        kv("--allowed-address", s, &["ip-address", "mac-address"])
                            .map(Value::Object)
                    })
                    .collect();
                body.insert("allowed_address_pairs".into(), Value::Array(pairs?));
            }
            for (k, v) in [
                ("mac_address", a.mac_address),
                ("binding:host_id", a.host),
                ("device_id", a.device),
                ("device_owner", a.device_owner),
                ("project_id", a.project),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            let p = c.create_port(body).await?;
            print(out.show(&port_fields(&p))?);
        }
        PortCmd::List {
            security_group,
            network,
            host,
        } => {
            let mut pairs: Vec<(&str, String)> = Vec::new();
            if let Some(g) = security_group {
                pairs.push(("security_groups", c.find_security_group(&g).await?.id));
            }
            if let Some(n) = network {
                pairs.push(("network_id", c.find_network(&n).await?.id));
            }
            if let Some(h) = host {
                pairs.push(("binding:host_id", h));
            }
            let q: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let ports = c.list_ports(&query(&q)).await?;
            let rows: Vec<Vec<Value>> = ports
                .iter()
                .map(|p| {
                    vec![
                        json!(p.id),
                        json!(p.name),
                        json!(p.mac_address),
                        json!(p.fixed_ips),
                        json!(p.status),
                    ]
                })
                .collect();
            print(out.list(
                &["ID", "Name", "MAC Address", "Fixed IP Addresses", "Status"],
                &rows,
            )?);
        }
        PortCmd::Show { port } => {
            let p = c.find_port(&port).await?;
            print(out.show(&port_fields(&p))?);
        }
        PortCmd::Set(a) => {
            let p = c.find_port(&a.port).await?;
            let mut body = Map::new();
            if let Some(n) = a.name {
                body.insert("name".into(), json!(n));
            }
            if a.no_security_group || !a.security_groups.is_empty() {
                let mut ids: Vec<String> = if a.no_security_group {
                    Vec::new()
                } else {
                    p.security_groups.clone()
                };
                for g in &a.security_groups {
                    let id = c.find_security_group(g).await?.id;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                body.insert("security_groups".into(), json!(ids));
            }
            if a.enable_port_security || a.disable_port_security {
                body.insert(
                    "port_security_enabled".into(),
                    json!(a.enable_port_security),
                );
            }
            if a.no_allowed_address || !a.allowed_addresses.is_empty() {
                let mut pairs: Vec<Value> = if a.no_allowed_address {
                    Vec::new()
                } else {
                    p.allowed_address_pairs.clone()
                };
                for s in &a.allowed_addresses {
                    pairs.push(Value::Object(kv(
                        "--allowed-address",
                        s,
                        &["ip-address", "mac-address"],
                    )?));
                }
                body.insert("allowed_address_pairs".into(), Value::Array(pairs));
            }
            if let Some(h) = a.host {
                body.insert("binding:host_id".into(), json!(h));
            }
            c.update_port(&p.id, body).await?;
        }
        PortCmd::Unset {
            port,
            security_groups,
        } => {
            let p = c.find_port(&port).await?;
            let mut ids = p.security_groups.clone();
            for g in &security_groups {
                let id = c.find_security_group(g).await?.id;
                if !ids.contains(&id) {
                    bail!("port {} is not in security group {g}", p.id);
                }
                ids.retain(|x| x != &id);
            }
            let mut body = Map::new();
            body.insert("security_groups".into(), json!(ids));
            c.update_port(&p.id, body).await?;
        }
        PortCmd::Delete { ports } => {
            let mut failed = 0;
            for name in &ports {
                let r = async {
                    let p = c.find_port(name).await?;
                    c.delete_port(&p.id).await
                }
                .await;
                if let Err(e) = r {
                    eprintln!("Failed to delete port with name or ID '{name}': {e}");
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} of {} ports failed to delete.", ports.len());
            }
        }
    }
    Ok(())
}

pub async fn network(cmd: NetworkCmd, conn: &Conn) -> anyhow::Result<()> {
    let c = conn.client().await?;
    let out = conn.output();
    let fields = |n: &palisade_client::Network| {
        vec![
            ("id", json!(n.id)),
            ("name", json!(n.name)),
            ("port_security_enabled", json!(n.port_security_enabled)),
            ("project_id", json!(n.project_id)),
            ("shared", json!(n.shared)),
            ("status", json!(n.status)),
        ]
    };
    match cmd {
        NetworkCmd::Create {
            name,
            enable_port_security,
            disable_port_security,
            share,
            project,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            if enable_port_security || disable_port_security {
                body.insert("port_security_enabled".into(), json!(enable_port_security));
            }
            if share {
                body.insert("shared".into(), json!(true));
            }
            if let Some(p) = project {
                body.insert("project_id".into(), json!(p));
            }
            let n = c.create_network(body).await?;
            print(out.show(&fields(&n))?);
        }
        NetworkCmd::List => {
            let nets = c.list_networks("").await?;
            let rows: Vec<Vec<Value>> = nets
                .iter()
                .map(|n| vec![json!(n.id), json!(n.name), json!([])])
                .collect();
            print(out.list(&["ID", "Name", "Subnets"], &rows)?);
        }
        NetworkCmd::Show { network } => {
            let n = c.find_network(&network).await?;
            print(out.show(&fields(&n))?);
        }
        NetworkCmd::Delete { networks } => {
            for name in &networks {
                let n = c.find_network(name).await?;
                c.delete_network(&n.id).await?;
            }
        }
    }
    Ok(())
}

pub async fn quota(cmd: QuotaCmd, conn: &Conn) -> anyhow::Result<()> {
    let c = conn.client().await?;
    let out = conn.output();
    match cmd {
        QuotaCmd::Set {
            project,
            secgroups,
            secgroup_rules,
            ports,
            networks,
            force,
        } => {
            let mut m = Map::new();
            for (k, v) in [
                ("security_group", secgroups),
                ("security_group_rule", secgroup_rules),
                ("port", ports),
                ("network", networks),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
            if force {
                m.insert("force".into(), json!(true));
            }
            c.set_quota(&project, m).await?;
        }
        QuotaCmd::Show { project, usage } => {
            let path = if usage {
                format!("/v2.0/quotas/{project}/details")
            } else {
                format!("/v2.0/quotas/{project}")
            };
            let v = c.get_json(&path).await?;
            let q = v
                .get("quota")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let fields: Vec<(&str, Value)> =
                q.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            print(out.show(&fields)?);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Projects.
    Project {
        #[command(subcommand)]
        cmd: ProjectCmd,
    },
    /// Users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Roles and role assignments.
    Role {
        #[command(subcommand)]
        cmd: RoleCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectCmd {
    /// Create a project.
    Create {
        /// Project name (unique).
        name: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List projects.
    List,
    /// Delete a project (name or id) and its role assignments.
    Delete {
        /// Project name or id.
        project: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user, optionally with a role on a project.
    Create {
        /// User name (unique).
        name: String,
        /// Password (hashed with Argon2id by the server).
        #[arg(long, env = "PALISADE_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Give the user ROLE on this project.
        #[arg(long, requires = "role")]
        project: Option<String>,
        /// Role for --project: admin, member or reader.
        #[arg(long, requires = "project")]
        role: Option<String>,
    },
    /// List users.
    List,
    /// Change a user's password (ends their tokens).
    Set {
        /// User name or id.
        user: String,
        /// New password.
        #[arg(long, env = "PALISADE_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Delete a user (name or id), their assignments and tokens.
    Delete {
        /// User name or id.
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Give USER the role ROLE on PROJECT.
    Add {
        /// admin, member or reader.
        role: String,
        /// Project name or id.
        #[arg(long)]
        project: String,
        /// User name or id.
        #[arg(long)]
        user: String,
    },
    /// Take ROLE on PROJECT away from USER.
    Remove {
        /// admin, member or reader.
        role: String,
        /// Project name or id.
        #[arg(long)]
        project: String,
        /// User name or id.
        #[arg(long)]
        user: String,
    },
    /// List role assignments.
    List,
}

/// Resolves a project or user name to its id (ids pass through).
async fn identity_id(c: &Client, kind: &str, name_or_id: &str) -> anyhow::Result<String> {
    let plural = format!("{kind}s");
    if let Ok((_, v)) = c
        .request(
            reqwest::Method::GET,
            &format!("/identity/v3/{plural}/{name_or_id}"),
            None,
        )
        .await
    {
        if let Some(id) = v[kind]["id"].as_str() {
            return Ok(id.to_string());
        }
    }
    let q = query(&[("name", name_or_id)]);
    let (_, v) = c
        .request(
            reqwest::Method::GET,
            &format!("/identity/v3/{plural}?{q}"),
            None,
        )
        .await?;
    v[plural.as_str()][0]["id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("No {kind} found for {name_or_id}"))
}

pub async fn admin(cmd: AdminCmd, conn: &Conn) -> anyhow::Result<()> {
    use reqwest::Method;
    let c = conn.client().await?;
    let out = conn.output();
    let show_obj = |v: &Value, keys: &[&'static str]| -> anyhow::Result<String> {
        let fields: Vec<(&str, Value)> = keys.iter().map(|k| (*k, v[*k].clone())).collect();
        out.show(&fields)
    };
    match cmd {
        AdminCmd::Project { cmd } => match cmd {
            ProjectCmd::Create { name, description } => {
                let body = json!({"project": {"name": name, "description": description.unwrap_or_default(), "domain_id": "default"}});
                let (_, v) = c
                    .request(Method::POST, "/identity/v3/projects", Some(&body))
                    .await?;
                print(show_obj(
                    &v["project"],
                    &["id", "name", "description", "domain_id", "enabled"],
                )?);
            }
            ProjectCmd::List => {
                let (_, v) = c
                    .request(Method::GET, "/identity/v3/projects", None)
                    .await?;
                let rows: Vec<Vec<Value>> = v["projects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| vec![p["id"].clone(), p["name"].clone()])
                    .collect();
                print(out.list(&["ID", "Name"], &rows)?);
            }
            ProjectCmd::Delete { project } => {
                let id = identity_id(&c, "project", &project).await?;
                c.request(Method::DELETE, &format!("/identity/v3/projects/{id}"), None)
                    .await?;
            }
        },
        AdminCmd::User { cmd } => match cmd {
            UserCmd::Create {
                name,
                password,
                project,
                role,
            } => {
                let body =
                    json!({"user": {"name": name, "password": password, "domain_id": "default"}});
                let (_, v) = c
                    .request(Method::POST, "/identity/v3/users", Some(&body))
                    .await?;
                let uid = v["user"]["id"].as_str().unwrap_or_default().to_string();
                if let (Some(p), Some(r)) = (project, role) {
                    let pid = identity_id(&c, "project", &p).await?;
                    c.request(
                        Method::PUT,
                        &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{r}"),
                        None,
                    )
                    .await?;
                }
                print(show_obj(
                    &v["user"],
                    &["id", "name", "domain_id", "enabled"],
                )?);
            }
            UserCmd::List => {
                let (_, v) = c.request(Method::GET, "/identity/v3/users", None).await?;
                let rows: Vec<Vec<Value>> = v["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|u| vec![u["id"].clone(), u["name"].clone()])
                    .collect();
                print(out.list(&["ID", "Name"], &rows)?);
            }
            UserCmd::Set { user, password } => {
                let id = identity_id(&c, "user", &user).await?;
                c.request(
                    Method::PATCH,
                    &format!("/identity/v3/users/{id}"),
                    Some(&json!({"user": {"password": password}})),
                )
                .await?;
            }
            UserCmd::Delete { user } => {
                let id = identity_id(&c, "user", &user).await?;
                c.request(Method::DELETE, &format!("/identity/v3/users/{id}"), None)
                    .await?;
            }
        },
        AdminCmd::Role { cmd } => match cmd {
            RoleCmd::Add {
                role,
                project,
                user,
            } => {
                let (pid, uid) = (
                    identity_id(&c, "project", &project).await?,
                    identity_id(&c, "user", &user).await?,
                );
                c.request(
                    Method::PUT,
                    &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{role}"),
                    None,
                )
                .await?;
            }
            RoleCmd::Remove {
                role,
                project,
                user,
            } => {
                let (pid, uid) = (
                    identity_id(&c, "project", &project).await?,
                    identity_id(&c, "user", &user).await?,
                );
                c.request(
                    Method::DELETE,
                    &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{role}"),
                    None,
                )
                .await?;
            }
            RoleCmd::List => {
                let (_, v) = c
                    .request(Method::GET, "/identity/v3/role_assignments", None)
                    .await?;
                let rows: Vec<Vec<Value>> = v["role_assignments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        vec![
                            a["role"]["id"].clone(),
                            a["user"]["id"].clone(),
                            a["scope"]["project"]["id"].clone(),
                        ]
                    })
                    .collect();
                print(out.list(&["Role", "User", "Project"], &rows)?);
            }
        },
    }
    Ok(())
}
