//! Create and update requests for groups, ports, networks and address groups: attribute
//! checks, converters and Neutron's per-field validation. No I/O here.

use crate::convert::{self, check_attributes, Method, Object};
use crate::error::Error;
use crate::resource::{AddressPair, FixedIp};
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Neutron's `max_allowed_address_pair` default.
pub const MAX_ALLOWED_ADDRESS_PAIRS: usize = 10;
/// Neutron's limit of tags per resource.
pub const MAX_TAGS: usize = 50;

/// Create request for a security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecurityGroup {
    /// Name ("" when absent).
    pub name: String,
    /// Description ("" when absent).
    pub description: String,
    /// `stateful` when given.
    pub stateful: Option<bool>,
    /// Owner given in the body.
    pub project_id: Option<String>,
}

/// Update request for a security group; `None` = leave as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityGroupUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New statefulness.
    pub stateful: Option<bool>,
}

const SG_SERVER_ONLY: &[&str] = &[
    "id",
    "shared",
    "security_group_rules",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

fn is_default_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("default")
}

/// Parses a security-group create body.
pub fn parse_security_group(obj: &Object) -> Result<NewSecurityGroup, Error> {
    check_attributes(
        obj,
        Method::Create,
        &["name", "description", "stateful", "project_id", "tenant_id"],
        SG_SERVER_ONLY,
    )?;
    let name = opt(obj, "name", |v| convert::string("name", v, 255))?.unwrap_or_default();
    let description = opt(obj, "description", |v| {
        convert::string("description", v, 255)
    })?
    .unwrap_or_default();
    let stateful = opt(obj, "stateful", |v| convert::boolean("stateful", v))?;
    let project_id = convert::project_of(obj)?;
    if is_default_name(&name) {
        return Err(Error::DefaultAlreadyExists);
    }
    Ok(NewSecurityGroup {
        name,
        description,
        stateful,
        project_id,
    })
}

/// Parses a security-group update body (an empty object is a no-op).
pub fn parse_security_group_update(obj: &Object) -> Result<SecurityGroupUpdate, Error> {
    check_attributes(
        obj,
        Method::Update,
        &["name", "description", "stateful"],
        &[SG_SERVER_ONLY, &["project_id", "tenant_id"]].concat(),
    )?;
    let name = opt(obj, "name", |v| convert::string("name", v, 255))?;
    if name.as_deref().is_some_and(is_default_name) {
        return Err(Error::DefaultAlreadyExists);
    }
    Ok(SecurityGroupUpdate {
        name,
        description: opt(obj, "description", |v| {
            convert::string("description", v, 255)
        })?,
        stateful: opt(obj, "stateful", |v| convert::boolean("stateful", v))?,
    })
}

/// Create or update request for a port; `None` = not given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortRequest {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Network (required on create).
    pub network_id: Option<String>,
    /// Owner given in the body.
    pub project_id: Option<String>,
    /// Administrative state.
    pub admin_state_up: Option<bool>,
    /// MAC.
    pub mac_address: Option<String>,
    /// Addresses.
    pub fixed_ips: Option<Vec<FixedIp>>,
    /// Pairs; a pair's MAC is `None` when it should default to the port's.
    pub allowed_address_pairs: Option<Vec<(String, Option<String>)>>,
    /// Groups (`null` → `[]`).
    pub security_groups: Option<Vec<String>>,
    /// Port security.
    pub port_security_enabled: Option<bool>,
    /// Device.
    pub device_id: Option<String>,
    /// Device owner.
    pub device_owner: Option<String>,
    /// Binding host.
    pub binding_host_id: Option<String>,
    /// Binding profile.
    pub binding_profile: Option<Map<String, Value>>,
}

const PORT_SETTABLE_UPDATE: &[&str] = &[
    "name",
    "description",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "allowed_address_pairs",
    "security_groups",
    "port_security_enabled",
    "device_id",
    "device_owner",
    "binding:host_id",
    "binding:profile",
    "binding:vnic_type",
];
const PORT_SERVER_ONLY: &[&str] = &[
    "id",
    "status",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "binding:vif_type",
    "binding:vif_details",
];

/// Parses a port create (`method` = Create) or update body.
pub fn parse_port(obj: &Object, method: Method) -> Result<PortRequest, Error> {
    match method {
        Method::Create => check_attributes(
            obj,
            method,
            &[
                PORT_SETTABLE_UPDATE,
                &["network_id", "project_id", "tenant_id"],
            ]
            .concat(),
            PORT_SERVER_ONLY,
        )?,
        Method::Update => check_attributes(
            obj,
            method,
            PORT_SETTABLE_UPDATE,
            &[PORT_SERVER_ONLY, &["network_id", "project_id", "tenant_id"]].concat(),
        )?,
    }
    let network_id = if method == Method::Create {
        Some(convert::string(
            "network_id",
            convert::required(obj, "network_id")?,
            255,
        )?)
    } else {
        None
    };
    if let Some(v) = obj.get("binding:vnic_type") {
        let s = convert::string("binding:vnic_type", v, 255)?;
        if s != "normal" {
            return Err(Error::invalid(
                "binding:vnic_type",
                v,
                "is not in ['normal']",
            ));
        }
    }
    Ok(PortRequest {
        name: opt(obj, "name", |v| convert::string("name", v, 255))?,
        description: opt(obj, "description", |v| {
            convert::string("description", v, 255)
        })?,
        network_id,
        project_id: convert::project_of(obj)?,
        admin_state_up: opt(obj, "admin_state_up", |v| {
            convert::boolean("admin_state_up", v)
        })?,
        mac_address: opt(obj, "mac_address", |v| mac("mac_address", v))?,
        fixed_ips: opt(obj, "fixed_ips", fixed_ips)?,
        allowed_address_pairs: opt(obj, "allowed_address_pairs", address_pairs)?,
        security_groups: opt(obj, "security_groups", |v| {
            convert::uuid_list("security_groups", v)
        })?,
        port_security_enabled: opt(obj, "port_security_enabled", |v| {
            convert::boolean("port_security_enabled", v)
        })?,
        device_id: opt(obj, "device_id", |v| convert::string("device_id", v, 255))?,
        device_owner: opt(obj, "device_owner", |v| {
            convert::string("device_owner", v, 255)
        })?,
        binding_host_id: opt(obj, "binding:host_id", |v| {
            convert::string("binding:host_id", v, 255)
        })?,
        binding_profile: opt(obj, "binding:profile", |v| match v {
            Value::Object(m) => Ok(m.clone()),
            Value::Null => Ok(Map::new()),
            _ => Err(Error::invalid("binding:profile", v, "is not a dictionary")),
        })?,
    })
}

fn fixed_ips(v: &Value) -> Result<Vec<FixedIp>, Error> {
    let Value::Array(items) = v else {
        return Err(Error::invalid("fixed_ips", v, "is not a list"));
    };
    let mut out: Vec<FixedIp> = Vec::new();
    for item in items {
        let Value::Object(m) = item else {
            return Err(Error::invalid("fixed_ips", item, "is not a dictionary"));
        };
        check_attributes(m, Method::Create, &["ip_address", "subnet_id"], &[])
            .map_err(|e| Error::BadRequest(format!("Invalid input for fixed_ips. Reason: {e}.")))?;
        let ip = m.get("ip_address").ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for fixed_ips. Reason: ip_address is required (Palisade does no IP address management)."
                    .into(),
            )
        })?;
        let text = convert::string("fixed_ips.ip_address", ip, 64)?;
        let addr: IpAddr = text
            .parse()
            .map_err(|_| Error::invalid("fixed_ips.ip_address", ip, "is not a valid IP address"))?;
        let subnet_id = opt(m, "subnet_id", |v| {
            convert::string("fixed_ips.subnet_id", v, 255)
        })?;
        if out.iter().any(|f| f.ip_address == addr.to_string()) {
            return Err(Error::invalid(
                "fixed_ips",
                ip,
                "is a duplicate IP address in the list",
            ));
        }
        out.push(FixedIp {
            ip_address: addr.to_string(),
            subnet_id,
        });
    }
    Ok(out)
}

fn address_pairs(v: &Value) -> Result<Vec<(String, Option<String>)>, Error> {
    let Value::Array(items) = v else {
        return Err(Error::invalid("allowed_address_pairs", v, "is not a list"));
    };
    if items.len() > MAX_ALLOWED_ADDRESS_PAIRS {
        return Err(Error::AllowedAddressPairExhausted(
            MAX_ALLOWED_ADDRESS_PAIRS,
        ));
    }
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for item in items {
        let Value::Object(m) = item else {
            return Err(Error::invalid(
                "allowed_address_pairs",
                item,
                "is not a dictionary",
            ));
        };
        check_attributes(m, Method::Create, &["ip_address", "mac_address"], &[]).map_err(|e| {
            Error::BadRequest(format!(
                "Invalid input for allowed_address_pairs. Reason: {e}."
            ))
        })?;
        let ip = m
            .get("ip_address")
            .ok_or(Error::AllowedAddressPairsMissingIp)?;
        let text = convert::string("allowed_address_pairs.ip_address", ip, 64)?;
        let net = parse_ip_or_cidr(&text).ok_or_else(|| {
            Error::invalid(
                "allowed_address_pairs.ip_address",
                ip,
                "is not a valid IP address or CIDR",
            )
        })?;
        if net.addr().is_multicast() {
            return Err(Error::invalid(
                "allowed_address_pairs.ip_address",
                ip,
                "is a multicast address",
            ));
        }
        let mac = opt(m, "mac_address", |v| {
            mac("allowed_address_pairs.mac_address", v)
        })?;
        let ip_text = if text.contains('/') {
            net.to_string()
        } else {
            net.addr().to_string()
        };
        if out.iter().any(|(i, m)| *i == ip_text && *m == mac) {
            return Err(Error::DuplicateAddressPairInRequest {
                mac: mac.unwrap_or_else(|| "None".into()),
                ip: ip_text,
            });
        }
        out.push((ip_text, mac));
    }
    Ok(out)
}

/// Resolves pair MACs that were left out to the port's MAC.
pub fn resolve_pairs(pairs: &[(String, Option<String>)], port_mac: &str) -> Vec<AddressPair> {
    pairs
        .iter()
        .map(|(ip, mac)| AddressPair {
            ip_address: ip.clone(),
            mac_address: mac.clone().unwrap_or_else(|| port_mac.to_string()),
        })
        .collect()
}

fn parse_ip_or_cidr(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        s.parse().ok()
    } else {
        s.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

/// A unicast MAC in `aa:bb:cc:dd:ee:ff` form (`-` separators accepted), lower-cased.
pub fn mac(field: &str, v: &Value) -> Result<String, Error> {
    let s = convert::string(field, v, 64)?;
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(Error::invalid(field, v, "is not a valid MAC address"));
    }
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(Error::invalid(field, v, "is a multicast MAC address"));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

/// Create or update request for a network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Owner given in the body.
    pub project_id: Option<String>,
    /// Administrative state.
    pub admin_state_up: Option<bool>,
    /// Shared.
    pub shared: Option<bool>,
    /// Default port security of its ports.
    pub port_security_enabled: Option<bool>,
}

/// Parses a network create or update body.
pub fn parse_network(obj: &Object, method: Method) -> Result<NetworkRequest, Error> {
    let server_only: &[&str] = &[
        "id",
        "status",
        "subnets",
        "mtu",
        "tags",
        "created_at",
        "updated_at",
        "revision_number",
    ];
    let settable: &[&str] = &[
        "name",
        "description",
        "admin_state_up",
        "shared",
        "port_security_enabled",
    ];
    match method {
        Method::Create => check_attributes(
            obj,
            method,
            &[settable, &["project_id", "tenant_id"]].concat(),
            server_only,
        )?,
        Method::Update => check_attributes(
            obj,
            method,
            settable,
            &[server_only, &["project_id", "tenant_id"]].concat(),
        )?,
    }
    Ok(NetworkRequest {
        name: opt(obj, "name", |v| convert::string("name", v, 255))?,
        description: opt(obj, "description", |v| {
            convert::string("description", v, 255)
        })?,
        project_id: convert::project_of(obj)?,
        admin_state_up: opt(obj, "admin_state_up", |v| {
            convert::boolean("admin_state_up", v)
        })?,
        shared: opt(obj, "shared", |v| convert::boolean("shared", v))?,
        port_security_enabled: opt(obj, "port_security_enabled", |v| {
            convert::boolean("port_security_enabled", v)
        })?,
    })
}

/// Create or update request for an address group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressGroupRequest {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Owner given in the body.
    pub project_id: Option<String>,
    /// CIDRs (create only).
    pub addresses: Option<Vec<String>>,
}

/// Parses an address-group create or update body.
pub fn parse_address_group(obj: &Object, method: Method) -> Result<AddressGroupRequest, Error> {
    let server_only: &[&str] = &[
        "id",
        "shared",
        "created_at",
        "updated_at",
        "revision_number",
    ];
    match method {
        Method::Create => check_attributes(
            obj,
            method,
            &[
                "name",
                "description",
                "addresses",
                "project_id",
                "tenant_id",
            ],
            server_only,
        )?,
        Method::Update => check_attributes(
            obj,
            method,
            &["name", "description"],
            &[server_only, &["addresses", "project_id", "tenant_id"]].concat(),
        )?,
    }
    Ok(AddressGroupRequest {
        name: opt(obj, "name", |v| convert::string("name", v, 255))?,
        description: opt(obj, "description", |v| {
            convert::string("description", v, 1024)
        })?,
        project_id: convert::project_of(obj)?,
        addresses: opt(obj, "addresses", addresses)?,
    })
}

/// A list of CIDRs (bare addresses get a full mask), canonical and de-duplicated.
pub fn addresses(v: &Value) -> Result<Vec<String>, Error> {
    let Value::Array(items) = v else {
        return Err(Error::invalid("addresses", v, "is not a list"));
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let s = convert::string("addresses", item, 64)?;
        let net = parse_ip_or_cidr(&s)
            .ok_or_else(|| Error::invalid("addresses", item, "is not a valid CIDR"))?;
        let text = net.trunc().to_string();
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

/// Validates a tag list body value (`{"tags": [...]}`).
pub fn tags(v: &Value) -> Result<Vec<String>, Error> {
    convert::string_list("tags", v, 255, MAX_TAGS)
}

/// Validates one tag from a path.
pub fn tag(s: &str) -> Result<String, Error> {
    convert::string("tag", &Value::String(s.to_string()), 255)
}

fn opt<T>(
    obj: &Object,
    field: &str,
    f: impl FnOnce(&Value) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    obj.get(field).map(f).transpose()
}
