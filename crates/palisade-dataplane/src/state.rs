//! The state file: `security_groups`, `ports` and `address_groups`, each a list of objects in
//! exactly the shape the API returns them, so a dump of the server is a valid state file.
//! JSON or YAML; every error names the path and the value.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::net::IpAddr;

/// Failures reading a state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not JSON or YAML at all.
    #[error("not valid JSON or YAML: {0}")]
    Syntax(String),
    /// A value at a path is wrong.
    #[error("{path}: {message}")]
    Invalid {
        /// e.g. `ports[3].fixed_ips[0].ip_address`
        path: String,
        /// what is wrong, naming the value
        message: String,
    },
}

/// A security-group rule (API shape; extra keys ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    /// Rule id (comments point back to it).
    pub id: String,
    /// `ingress` or `egress`.
    pub direction: Direction,
    /// `IPv4` or `IPv6`.
    #[serde(default = "ipv4")]
    pub ethertype: EtherType,
    /// Name or number; null = any.
    #[serde(default, deserialize_with = "protocol")]
    pub protocol: Option<String>,
    /// Port or ICMP type.
    #[serde(default)]
    pub port_range_min: Option<u32>,
    /// Port or ICMP code.
    #[serde(default)]
    pub port_range_max: Option<u32>,
    /// Remote prefix (host bits allowed; the network is enforced).
    #[serde(default, deserialize_with = "opt_net")]
    pub remote_ip_prefix: Option<IpNet>,
    /// Remote group.
    #[serde(default)]
    pub remote_group_id: Option<String>,
    /// Remote address group.
    #[serde(default)]
    pub remote_address_group_id: Option<String>,
}

/// Direction of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// to the port
    Ingress,
    /// from the port
    Egress,
}

/// Family of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum EtherType {
    /// IPv4
    IPv4,
    /// IPv6
    IPv6,
}

fn ipv4() -> EtherType {
    EtherType::IPv4
}

/// A security group (API shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SecurityGroup {
    /// id
    pub id: String,
    /// name (for comments)
    #[serde(default)]
    pub name: String,
    /// conntrack or not
    #[serde(default = "yes")]
    pub stateful: bool,
    /// its rules
    #[serde(default)]
    pub security_group_rules: Vec<Rule>,
}

fn yes() -> bool {
    true
}

/// A fixed IP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FixedIp {
    /// the address
    #[serde(deserialize_with = "ip")]
    pub ip_address: IpAddr,
}

/// An allowed address pair.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressPair {
    /// IP or CIDR
    #[serde(deserialize_with = "net")]
    pub ip_address: IpNet,
    /// MAC (the port's when absent)
    #[serde(default, deserialize_with = "opt_mac")]
    pub mac_address: Option<String>,
}

/// The binding profile (only `interface_name` matters here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BindingProfile {
    /// Overrides the tap name.
    #[serde(default)]
    pub interface_name: Option<String>,
}

/// A port (API shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Port {
    /// id
    pub id: String,
    /// name (for pictures and messages)
    #[serde(default, deserialize_with = "null_as_empty")]
    pub name: String,
    /// MAC
    #[serde(deserialize_with = "mac")]
    pub mac_address: String,
    /// addresses
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    /// extra source addresses
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPair>,
    /// groups
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// filtering on/off
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    /// host
    #[serde(rename = "binding:host_id", default)]
    pub host: String,
    /// binding profile
    #[serde(rename = "binding:profile", default, deserialize_with = "profile")]
    pub profile: BindingProfile,
    /// e.g. `network:dhcp` (never filtered)
    #[serde(default)]
    pub device_owner: String,
}

impl Port {
    /// The interface name, as Neutron names it: `tap` + the first 11 characters of the id,
    /// unless `binding:profile.interface_name` says otherwise.
    pub fn ifname(&self) -> String {
        match &self.profile.interface_name {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("tap{}", self.id.chars().take(11).collect::<String>()),
        }
    }
}

/// An address group (API shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressGroup {
    /// id
    pub id: String,
    /// CIDRs
    #[serde(default, deserialize_with = "nets")]
    pub addresses: Vec<IpNet>,
}

/// A whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct State {
    /// groups with their rules
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    /// ports
    #[serde(default)]
    pub ports: Vec<Port>,
    /// address groups
    #[serde(default)]
    pub address_groups: Vec<AddressGroup>,
}

impl State {
    /// Parses JSON, or YAML when it is not JSON.
    pub fn parse(text: &str) -> Result<State, StateError> {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(json_err) => serde_saphyr::from_str(text).map_err(|yaml_err| {
                StateError::Syntax(format!("as JSON: {json_err}; as YAML: {yaml_err}"))
            })?,
        };
        serde_path_to_error::deserialize(value).map_err(|e| StateError::Invalid {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}

fn show(v: &serde_json::Value) -> String {
    v.to_string()
}

pub(crate) fn ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{} is not an IP address", show(&v))))
}

fn parse_net(v: &serde_json::Value) -> Option<IpNet> {
    let s = v.as_str()?;
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

pub(crate) fn net<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    parse_net(&v).ok_or_else(|| {
        serde::de::Error::custom(format!("{} is not an IP address or CIDR", show(&v)))
    })
}

fn opt_net<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpNet>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match &v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.is_empty() => Ok(None),
        _ => parse_net(&v).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("{} is not an IP address or CIDR", show(&v)))
        }),
    }
}

pub(crate) fn nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let items = v
        .as_array()
        .ok_or_else(|| serde::de::Error::custom(format!("{} is not a list", show(&v))))?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            parse_net(x).ok_or_else(|| {
                serde::de::Error::custom(format!("[{i}]: {} is not an IP address or CIDR", show(x)))
            })
        })
        .collect()
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn mac<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match v.as_str() {
        Some(s) if valid_mac(s) => Ok(s.to_ascii_lowercase()),
        _ => Err(serde::de::Error::custom(format!(
            "{} is not a MAC address",
            show(&v)
        ))),
    }
}

fn opt_mac<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match v.as_str() {
        None if v.is_null() => Ok(None),
        Some(s) if valid_mac(s) => Ok(Some(s.to_ascii_lowercase())),
        _ => Err(serde::de::Error::custom(format!(
            "{} is not a MAC address",
            show(&v)
        ))),
    }
}

fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match &v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s.to_ascii_lowercase())),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(serde::de::Error::custom(format!(
            "{} is not a protocol",
            show(&v)
        ))),
    }
}

fn profile<'de, D: Deserializer<'de>>(d: D) -> Result<BindingProfile, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(BindingProfile::default()),
        Some(v) => serde_json::from_value(v).map_err(serde::de::Error::custom),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}
