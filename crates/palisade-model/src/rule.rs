//! Security-group rules: parsing a create request with every validation and normalisation
//! Neutron applies (spec §4), and the duplicate-detection key. No I/O here.
//!
//! Neutron: neutron/db/securitygroups_db.py (`_validate_port_range`, `_validate_ip_prefix`,
//! `_get_ip_proto_name_and_num`, `_check_for_duplicate_rules`) and the attribute map in
//! neutron/extensions/securitygroup.py.

use crate::convert::{self, check_attributes, Method, Object};
use crate::error::{quote, Error};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;

/// Traffic direction relative to the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic to the port.
    Ingress,
    /// Traffic from the port.
    Egress,
}

impl Direction {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// IP family of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EtherType {
    /// IPv4
    IPv4,
    /// IPv6
    IPv6,
}

impl EtherType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EtherType::IPv4 => "IPv4",
            EtherType::IPv6 => "IPv6",
        }
    }

    /// Parses case-insensitively (`ipv4` → IPv4); 400 otherwise.
    pub fn parse(v: &Value) -> Result<Self, Error> {
        match v {
            Value::String(s) if s.eq_ignore_ascii_case("ipv4") => Ok(EtherType::IPv4),
            Value::String(s) if s.eq_ignore_ascii_case("ipv6") => Ok(EtherType::IPv6),
            Value::String(s) => Err(Error::InvalidEtherType(s.clone())),
            other => Err(Error::InvalidEtherType(other.to_string())),
        }
    }
}

/// Neutron's protocol names and numbers (neutron_lib.constants.IP_PROTOCOL_MAP).
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols that only exist for IPv6 (names and numbers).
const IPV6_ONLY: &[u8] = &[41, 43, 44, 58, 59, 60];
/// Protocols whose port range means ports.
const PORT_PROTOCOLS: &[u8] = &[6, 17, 33, 132, 136];

/// The number of a protocol name, if it is one Neutron knows.
pub fn protocol_number(name: &str) -> Option<u8> {
    PROTOCOLS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The number of a stored protocol value (name or decimal string); `None` for null/any.
pub fn stored_protocol_number(protocol: Option<&str>) -> Option<u8> {
    let p = protocol?;
    protocol_number(p).or_else(|| p.parse().ok())
}

/// A validated, normalised rule as a create request describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// Parent group.
    pub security_group_id: String,
    /// ingress or egress.
    pub direction: Direction,
    /// IPv4 or IPv6.
    pub ethertype: EtherType,
    /// Stored protocol: lower-case name or decimal string as given; `None` = any.
    pub protocol: Option<String>,
    /// Port or ICMP type.
    pub port_range_min: Option<u32>,
    /// Port or ICMP code.
    pub port_range_max: Option<u32>,
    /// Prefix with host bits kept, canonical text.
    pub remote_ip_prefix: Option<String>,
    /// Remote group id.
    pub remote_group_id: Option<String>,
    /// Remote address group id.
    pub remote_address_group_id: Option<String>,
    /// Owner given in the body, if any.
    pub project_id: Option<String>,
    /// Free text.
    pub description: String,
}

/// Attributes a client may send on rule create.
pub const RULE_SETTABLE: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "project_id",
    "tenant_id",
    "description",
];
/// Rule attributes only the server sets.
pub const RULE_SERVER_ONLY: &[&str] = &[
    "id",
    "normalized_cidr",
    "belongs_to_default_sg",
    "created_at",
    "updated_at",
    "revision_number",
];

/// Parses one rule create body (the object inside `security_group_rule`): attributes,
/// required keys and converters in Neutron's attribute-map order. The semantic checks are
/// [`validate_rule`], which Neutron runs after quota and policy.
pub fn parse_rule(obj: &Object) -> Result<NewRule, Error> {
    check_attributes(obj, Method::Create, RULE_SETTABLE, RULE_SERVER_ONLY)?;
    let sg = convert::required(obj, "security_group_id")?;
    let direction = convert::required(obj, "direction")?;
    let security_group_id = match sg {
        Value::String(s) if s.len() <= 255 => s.clone(),
        _ => {
            return Err(Error::invalid(
                "security_group_id",
                sg,
                "is not a valid string",
            ))
        }
    };
    let remote_group_id = match obj.get("remote_group_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(convert::string("remote_group_id", v, 255)?),
    };
    let direction = match direction {
        Value::String(s) if s == "ingress" => Direction::Ingress,
        Value::String(s) if s == "egress" => Direction::Egress,
        other => {
            return Err(Error::invalid(
                "direction",
                other,
                "is not in ['ingress', 'egress']",
            ))
        }
    };
    let protocol_raw = convert_protocol(obj.get("protocol"))?;
    let min = convert_port("port_range_min", obj.get("port_range_min"))?;
    let max = convert_port("port_range_max", obj.get("port_range_max"))?;
    let ethertype = match obj.get("ethertype") {
        None => EtherType::IPv4,
        Some(v) => EtherType::parse(v)?,
    };
    let prefix = match obj.get("remote_ip_prefix") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(parse_prefix(s)?),
        Some(other) => return Err(Error::InvalidCidr(quote(other))),
    };
    let project_id = convert::project_of(obj)?;
    let description = match obj.get("description") {
        None => String::new(),
        Some(v) => convert::string("description", v, 255)?,
    };
    let remote_address_group_id = match obj.get("remote_address_group_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(convert::string("remote_address_group_id", v, 255)?),
    };

    Ok(NewRule {
        security_group_id,
        direction,
        ethertype,
        protocol: protocol_raw,
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix: prefix.map(|(_, text)| text),
        remote_group_id,
        remote_address_group_id,
        project_id,
        description,
    })
}

/// The semantic checks and normalisations of spec §4.1–4.4 that Neutron runs after quota
/// and policy: IPv6 ICMP spellings, port ranges by protocol class, ethertype against
/// protocol and prefix, at most one remote.
pub fn validate_rule(mut r: NewRule) -> Result<NewRule, Error> {
    // IPv6 rewrites legacy ICMP spellings before any other check (Neutron:
    // _validate_sg_rule / _get_ip_proto_number with ethertype).
    if r.ethertype == EtherType::IPv6 {
        match r.protocol.as_deref() {
            Some("icmp" | "icmpv6") => r.protocol = Some("ipv6-icmp".to_string()),
            Some("1") => r.protocol = Some("58".to_string()),
            _ => {}
        }
    }
    let (min, max) = validate_ports(r.protocol.as_deref(), r.port_range_min, r.port_range_max)?;
    r.port_range_min = min;
    r.port_range_max = max;
    if let Some(p) = r.protocol.as_deref() {
        let num = stored_protocol_number(Some(p));
        if r.ethertype == EtherType::IPv4 && num.is_some_and(|n| IPV6_ONLY.contains(&n)) {
            return Err(Error::EthertypeConflictWithProtocol {
                ethertype: "IPv4".into(),
                protocol: p.into(),
            });
        }
    }
    if let Some(prefix) = &r.remote_ip_prefix {
        let v6 = prefix.contains(':');
        if v6 != (r.ethertype == EtherType::IPv6) {
            return Err(Error::ParameterConflict {
                ethertype: r.ethertype.as_str().into(),
                cidr: prefix.clone(),
            });
        }
    }
    let remotes = [
        r.remote_ip_prefix.is_some(),
        r.remote_group_id.is_some(),
        r.remote_address_group_id.is_some(),
    ];
    if remotes.iter().filter(|x| **x).count() > 1 {
        return Err(Error::MultipleRemoteEntities);
    }
    Ok(r)
}

/// Neutron's protocol converter: null/"any" → None; names lower-cased; numbers 0–255 kept as
/// the decimal string given.
pub fn convert_protocol(v: Option<&Value>) -> Result<Option<String>, Error> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n <= 255 => return Ok(Some(n.to_string())),
            _ => return Err(Error::InvalidProtocol(n.to_string())),
        },
        Some(other) => return Err(Error::InvalidProtocol(other.to_string())),
    };
    let lower = s.to_ascii_lowercase();
    if lower == "any" {
        return Ok(None);
    }
    if protocol_number(&lower).is_some() {
        return Ok(Some(lower));
    }
    // Decimal strings without sign or padding ("06" is refused; Neutron mishandles it).
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    match s.parse::<u16>() {
        Ok(n) if canonical && n <= 255 => Ok(Some(s)),
        _ => Err(Error::InvalidProtocol(s)),
    }
}

/// The port converter: null, or an integer (or decimal string) 0–65535.
pub fn convert_port(field: &'static str, v: Option<&Value>) -> Result<Option<u32>, Error> {
    let bad = |value: String| Error::InvalidPortValue { field, value };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(p) if (0..=65535).contains(&p) => Ok(Some(p as u32)),
            _ => Err(bad(n.to_string())),
        },
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(p) if (0..=65535).contains(&p) => Ok(Some(p as u32)),
            _ => Err(bad(s.clone())),
        },
        Some(other) => Err(bad(other.to_string())),
    }
}

fn show(p: Option<u32>) -> String {
    p.map_or_else(|| "None".to_string(), |p| p.to_string())
}

/// Spec §4.2: canonicalise 1–65535 to "all", then check ports against the protocol class.
pub fn validate_ports(
    protocol: Option<&str>,
    min: Option<u32>,
    max: Option<u32>,
) -> Result<(Option<u32>, Option<u32>), Error> {
    if min == Some(1) && max == Some(65535) {
        return Ok((None, None));
    }
    if min.is_none() && max.is_none() {
        return Ok((None, None));
    }
    let Some(p) = protocol else {
        return Err(Error::ProtocolRequiredWithPorts {
            min: show(min),
            max: show(max),
        });
    };
    let num = stored_protocol_number(Some(p));
    match num {
        Some(n) if PORT_PROTOCOLS.contains(&n) => {
            for (field, v) in [("port_range_min", min), ("port_range_max", max)] {
                if v == Some(0) {
                    return Err(Error::InvalidPortValue {
                        field,
                        value: "0".into(),
                    });
                }
            }
            match (min, max) {
                (Some(a), Some(b)) if a <= b => Ok((min, max)),
                _ => Err(Error::InvalidPortRange {
                    min: show(min),
                    max: show(max),
                }),
            }
        }
        Some(1 | 58) => {
            for (field, attr, v) in [
                ("type", "port_range_min", min),
                ("code", "port_range_max", max),
            ] {
                if let Some(v) = v.filter(|v| *v > 255) {
                    return Err(Error::InvalidIcmpValue {
                        field,
                        attr,
                        value: v,
                    });
                }
            }
            if let (None, Some(code)) = (min, max) {
                return Err(Error::MissingIcmpType(code));
            }
            Ok((min, max))
        }
        _ => Err(Error::InvalidProtocolForPort(p.to_string())),
    }
}

/// Parses a remote prefix: bare addresses get a full mask, host bits are kept, IPv6 is
/// printed compressed. Returns the network and its canonical text.
pub fn parse_prefix(s: &str) -> Result<(IpNet, String), Error> {
    let bad = || Error::InvalidCidr(s.to_string());
    let net = if s.contains('/') {
        s.parse::<IpNet>().map_err(|_| bad())?
    } else {
        let addr = s.parse::<IpAddr>().map_err(|_| bad())?;
        IpNet::from(addr)
    };
    Ok((net, net.to_string()))
}

/// The network form of a prefix (`10.0.0.34/24` → `10.0.0.0/24`): Neutron's normalized_cidr.
pub fn normalized_cidr(prefix: &str) -> Option<String> {
    prefix.parse::<IpNet>().ok().map(|n| n.trunc().to_string())
}

/// The key under which Neutron considers two rules of one group duplicates (spec §4.6).
///
/// Protocols compare by their (name, number) pair (`tcp` ≡ `6`, `ip` ≡ `0`, `hopopt` ≢ `0`),
/// prefixes textually with null ≡ 0.0.0.0/0 ≡ ::/0, descriptions and owners ignored.
pub fn fingerprint(r: &NewRule) -> String {
    let proto = match r.protocol.as_deref() {
        None => "*".to_string(),
        Some("hopopt") => "hopopt".to_string(),
        Some(p) => stored_protocol_number(Some(p)).map_or_else(|| p.to_string(), |n| n.to_string()),
    };
    let prefix = match r.remote_ip_prefix.as_deref() {
        None | Some("0.0.0.0/0") | Some("::/0") => "*",
        Some(p) => p,
    };
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}",
        r.direction.as_str(),
        r.ethertype.as_str(),
        proto,
        show(r.port_range_min),
        show(r.port_range_max),
        r.remote_group_id.as_deref().unwrap_or("*"),
        r.remote_address_group_id.as_deref().unwrap_or("*"),
        prefix
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn req(v: serde_json::Value) -> Result<NewRule, Error> {
        let mut obj = json!({"security_group_id": "sg", "direction": "ingress"});
        for (k, x) in v.as_object().expect("object") {
            obj[k] = x.clone();
        }
        parse_rule(obj.as_object().expect("object")).and_then(validate_rule)
    }

    #[test]
    fn protocol_names_and_numbers_share_a_duplicate_key_but_keep_their_spelling() {
        let a = req(json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}))
            .expect("tcp");
        let b = req(json!({"protocol": 6, "port_range_min": 22, "port_range_max": 22})).expect("6");
        assert_eq!(a.protocol.as_deref(), Some("tcp"));
        assert_eq!(b.protocol.as_deref(), Some("6"));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let ip = req(json!({"protocol": "ip"})).expect("ip");
        let zero = req(json!({"protocol": 0})).expect("0");
        let hopopt = req(json!({"protocol": "hopopt"})).expect("hopopt");
        assert_eq!(fingerprint(&ip), fingerprint(&zero));
        assert_ne!(
            fingerprint(&hopopt),
            fingerprint(&zero),
            "Neutron: hopopt is not ip"
        );
    }

    #[test]
    fn any_prefix_equals_no_prefix_but_host_bits_matter() {
        let none = req(json!({"protocol": "udp"})).expect("none");
        let any = req(json!({"protocol": "udp", "remote_ip_prefix": "0.0.0.0/0"})).expect("any");
        assert_eq!(fingerprint(&none), fingerprint(&any));
        let host = req(json!({"remote_ip_prefix": "10.0.0.1/24"})).expect("host bits");
        let net = req(json!({"remote_ip_prefix": "10.0.0.0/24"})).expect("network");
        assert_ne!(fingerprint(&host), fingerprint(&net));
        assert_eq!(
            normalized_cidr("10.0.0.1/24").as_deref(),
            Some("10.0.0.0/24")
        );
    }

    #[test]
    fn ipv6_rewrites_legacy_icmp_before_checking_the_family() {
        let r = req(json!({"ethertype": "ipv6", "protocol": "icmp"})).expect("v6 icmp");
        assert_eq!(
            (r.ethertype, r.protocol.as_deref()),
            (EtherType::IPv6, Some("ipv6-icmp"))
        );
        assert!(matches!(
            req(json!({"protocol": "icmpv6"})),
            Err(Error::EthertypeConflictWithProtocol { .. })
        ));
    }

    fn arb_protocol() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(json!(null)),
            Just(json!("any")),
            prop::sample::select(PROTOCOLS.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                .prop_map(|n| json!(n)),
            (0u16..=255).prop_map(|n| json!(n)),
            (0u16..=255).prop_map(|n| json!(n.to_string())),
        ]
    }

    proptest! {
        /// A stored rule, sent again, is the same rule: normalisation is idempotent and the
        /// duplicate key is stable.
        #[test]
        fn normalisation_is_idempotent(
            proto in arb_protocol(),
            min in prop::option::of(0u32..70000),
            max in prop::option::of(0u32..70000),
            v6 in any::<bool>(),
            prefix in prop::option::of((any::<[u8; 4]>(), 0u8..=32)),
        ) {
            let mut body = json!({"protocol": proto, "ethertype": if v6 { "IPv6" } else { "IPv4" }});
            if let Some(m) = min { body["port_range_min"] = json!(m); }
            if let Some(m) = max { body["port_range_max"] = json!(m); }
            if let (Some((a, len)), false) = (prefix, v6) {
                body["remote_ip_prefix"] = json!(format!("{}.{}.{}.{}/{len}", a[0], a[1], a[2], a[3]));
            }
            if let Ok(first) = req(body) {
                let again = json!({
                    "protocol": first.protocol,
                    "ethertype": first.ethertype.as_str(),
                    "port_range_min": first.port_range_min,
                    "port_range_max": first.port_range_max,
                    "remote_ip_prefix": first.remote_ip_prefix,
                });
                let second = req(again).expect("a normalised rule is valid");
                prop_assert_eq!(&second, &first);
                prop_assert_eq!(fingerprint(&second), fingerprint(&first));
            }
        }

        /// Ports are accepted exactly in 0–65535, as integers or decimal strings.
        #[test]
        fn port_converter_accepts_exactly_the_port_range(n in -100_000i64..100_000) {
            let ok = (0..=65535).contains(&n);
            prop_assert_eq!(convert_port("port_range_min", Some(&json!(n))).is_ok(), ok);
            prop_assert_eq!(convert_port("port_range_min", Some(&json!(n.to_string()))).is_ok(), ok);
        }

        /// Any address or prefix parses to its canonical text, and parsing that is stable.
        #[test]
        fn prefixes_round_trip(a in any::<[u8; 16]>(), len in 0u8..=128, v4 in any::<bool>()) {
            let text = if v4 {
                format!("{}.{}.{}.{}/{}", a[0], a[1], a[2], a[3], len % 33)
            } else {
                format!("{}/{len}", std::net::Ipv6Addr::from(a))
            };
            let (net, canon) = parse_prefix(&text).expect("valid prefix");
            let (net2, canon2) = parse_prefix(&canon).expect("canonical parses");
            prop_assert_eq!(net, net2);
            prop_assert_eq!(canon, canon2);
        }
    }
}
