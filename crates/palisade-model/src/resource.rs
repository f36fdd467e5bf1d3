//! The stored resources and their wire (JSON) form, field by field as Neutron shapes them.

use crate::rule::{normalized_cidr, Direction, EtherType, NewRule};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

/// A security group as stored (rules are stored separately).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// UUID
    pub id: String,
    /// Free text; not unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Owner.
    pub project_id: String,
    /// Conntrack-based (true) or stateless.
    pub stateful: bool,
    /// Tags, in insertion order.
    pub tags: Vec<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub updated_at: String,
    /// +1 per change of the group or its rules.
    pub revision_number: u64,
    /// Whether this is its project's default group (internal, never on the wire).
    pub is_default: bool,
}

impl SecurityGroup {
    /// Wire form with the given embedded rules.
    pub fn to_json<'a>(
        &self,
        rules: impl Iterator<Item = &'a SecurityGroupRule>,
    ) -> Map<String, Value> {
        into_map(json!(self.wire(rules)))
    }

    /// Wire form as a typed value (what the OpenAPI document describes).
    pub fn wire<'a>(
        &self,
        rules: impl Iterator<Item = &'a SecurityGroupRule>,
    ) -> SecurityGroupWire {
        SecurityGroupWire {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            project_id: self.project_id.clone(),
            tenant_id: self.project_id.clone(),
            stateful: self.stateful,
            shared: false,
            security_group_rules: rules.map(SecurityGroupRule::wire).collect(),
            tags: self.tags.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            revision_number: self.revision_number,
        }
    }
}

/// A security group on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = SecurityGroup)]
pub struct SecurityGroupWire {
    /// UUID
    pub id: String,
    /// Free text; not unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Owner.
    pub project_id: String,
    /// Owner (Neutron's older name).
    pub tenant_id: String,
    /// Conntrack-based (true) or stateless (false).
    pub stateful: bool,
    /// Always false: Palisade has no RBAC sharing of groups.
    pub shared: bool,
    /// The group's rules.
    pub security_group_rules: Vec<SecurityGroupRuleWire>,
    /// Tags, in insertion order.
    pub tags: Vec<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub updated_at: String,
    /// +1 per change of the group or its rules.
    pub revision_number: u64,
}

/// A security-group rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    /// UUID
    pub id: String,
    /// Parent group.
    pub security_group_id: String,
    /// ingress / egress
    pub direction: Direction,
    /// IPv4 / IPv6
    pub ethertype: EtherType,
    /// Lower-case name or decimal string as given; None = any.
    pub protocol: Option<String>,
    /// Port or ICMP type.
    pub port_range_min: Option<u32>,
    /// Port or ICMP code.
    pub port_range_max: Option<u32>,
    /// Prefix as given (host bits kept).
    pub remote_ip_prefix: Option<String>,
    /// Remote group.
    pub remote_group_id: Option<String>,
    /// Remote address group.
    pub remote_address_group_id: Option<String>,
    /// Owner (the creator's project, not necessarily the group's).
    pub project_id: String,
    /// Free text.
    pub description: String,
    /// Whether the parent is a default group.
    pub belongs_to_default_sg: bool,
    /// Timestamps and revision.
    pub created_at: String,
    /// Timestamps and revision.
    pub updated_at: String,
    /// Always 0: rules are immutable.
    pub revision_number: u64,
}

impl SecurityGroupRule {
    /// Builds a stored rule from a validated request.
    pub fn new(
        id: String,
        r: &NewRule,
        project_id: String,
        is_default_sg: bool,
        now: &str,
    ) -> Self {
        SecurityGroupRule {
            id,
            security_group_id: r.security_group_id.clone(),
            direction: r.direction,
            ethertype: r.ethertype,
            protocol: r.protocol.clone(),
            port_range_min: r.port_range_min,
            port_range_max: r.port_range_max,
            remote_ip_prefix: r.remote_ip_prefix.clone(),
            remote_group_id: r.remote_group_id.clone(),
            remote_address_group_id: r.remote_address_group_id.clone(),
            project_id,
            description: r.description.clone(),
            belongs_to_default_sg: is_default_sg,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            revision_number: 0,
        }
    }

    /// The request that would create this rule (for duplicate keys).
    pub fn as_new(&self) -> NewRule {
        NewRule {
            security_group_id: self.security_group_id.clone(),
            direction: self.direction,
            ethertype: self.ethertype,
            protocol: self.protocol.clone(),
            port_range_min: self.port_range_min,
            port_range_max: self.port_range_max,
            remote_ip_prefix: self.remote_ip_prefix.clone(),
            remote_group_id: self.remote_group_id.clone(),
            remote_address_group_id: self.remote_address_group_id.clone(),
            project_id: Some(self.project_id.clone()),
            description: self.description.clone(),
        }
    }

    /// Wire form.
    pub fn to_json(&self) -> Map<String, Value> {
        into_map(json!(self.wire()))
    }

    /// Wire form as a typed value (what the OpenAPI document describes).
    pub fn wire(&self) -> SecurityGroupRuleWire {
        SecurityGroupRuleWire {
            id: self.id.clone(),
            security_group_id: self.security_group_id.clone(),
            direction: self.direction,
            ethertype: self.ethertype,
            protocol: self.protocol.clone(),
            port_range_min: self.port_range_min,
            port_range_max: self.port_range_max,
            remote_ip_prefix: self.remote_ip_prefix.clone(),
            normalized_cidr: self.remote_ip_prefix.as_deref().and_then(normalized_cidr),
            remote_group_id: self.remote_group_id.clone(),
            remote_address_group_id: self.remote_address_group_id.clone(),
            project_id: self.project_id.clone(),
            tenant_id: self.project_id.clone(),
            description: self.description.clone(),
            belongs_to_default_sg: self.belongs_to_default_sg,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            revision_number: self.revision_number,
        }
    }
}

/// A security-group rule on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = SecurityGroupRule)]
pub struct SecurityGroupRuleWire {
    /// UUID
    pub id: String,
    /// Parent group.
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: Direction,
    /// `IPv4` or `IPv6`.
    pub ethertype: EtherType,
    /// Protocol name (lower case) or number as given; null = any.
    pub protocol: Option<String>,
    /// Lowest port, or the ICMP type.
    pub port_range_min: Option<u32>,
    /// Highest port, or the ICMP code.
    pub port_range_max: Option<u32>,
    /// Remote prefix as given (host bits kept).
    pub remote_ip_prefix: Option<String>,
    /// The remote prefix with host bits cleared.
    pub normalized_cidr: Option<String>,
    /// Remote group: traffic from/to its members.
    pub remote_group_id: Option<String>,
    /// Remote address group.
    pub remote_address_group_id: Option<String>,
    /// Owner (the creator's project).
    pub project_id: String,
    /// Owner (Neutron's older name).
    pub tenant_id: String,
    /// Free text.
    pub description: String,
    /// Whether the parent is its project's default group.
    pub belongs_to_default_sg: bool,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub updated_at: String,
    /// Always 0: rules are immutable.
    pub revision_number: u64,
}

/// One fixed IP of a port. Palisade does no IPAM: the caller gives the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FixedIp {
    /// The address.
    pub ip_address: String,
    /// Opaque subnet reference, if the caller gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

/// An allowed address pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressPair {
    /// IP or CIDR.
    pub ip_address: String,
    /// MAC (the port's when not given).
    pub mac_address: String,
}

/// A port as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// UUID
    pub id: String,
    /// Free text.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The network it is on.
    pub network_id: String,
    /// Owner.
    pub project_id: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// MAC, generated when absent.
    pub mac_address: String,
    /// Addresses as given.
    pub fixed_ips: Vec<FixedIp>,
    /// Extra addresses the port may send from.
    pub allowed_address_pairs: Vec<AddressPair>,
    /// Groups enforced on it.
    pub security_groups: Vec<String>,
    /// Whether filtering applies at all.
    pub port_security_enabled: bool,
    /// Device using the port.
    pub device_id: String,
    /// e.g. `compute:nova`, `network:dhcp`.
    pub device_owner: String,
    /// Host the port is bound to (the agent's name).
    pub binding_host_id: String,
    /// Free-form binding profile (`interface_name` overrides the tap name).
    #[serde(default)]
    pub binding_profile: Map<String, Value>,
    /// Tags.
    pub tags: Vec<String>,
    /// Timestamps and revision.
    pub created_at: String,
    /// Timestamps and revision.
    pub updated_at: String,
    /// +1 per update.
    pub revision_number: u64,
}

impl Port {
    /// Wire form.
    pub fn to_json(&self) -> Map<String, Value> {
        into_map(json!(self.wire()))
    }

    /// Wire form as a typed value (what the OpenAPI document describes).
    pub fn wire(&self) -> PortWire {
        let bound = !self.binding_host_id.is_empty();
        PortWire {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            network_id: self.network_id.clone(),
            project_id: self.project_id.clone(),
            tenant_id: self.project_id.clone(),
            admin_state_up: self.admin_state_up,
            status: if bound { "ACTIVE" } else { "DOWN" }.into(),
            mac_address: self.mac_address.clone(),
            fixed_ips: self.fixed_ips.clone(),
            allowed_address_pairs: self.allowed_address_pairs.clone(),
            security_groups: self.security_groups.clone(),
            port_security_enabled: self.port_security_enabled,
            device_id: self.device_id.clone(),
            device_owner: self.device_owner.clone(),
            binding_host_id: self.binding_host_id.clone(),
            binding_profile: self.binding_profile.clone(),
            binding_vif_type: if bound { "ovs" } else { "unbound" }.into(),
            binding_vnic_type: "normal".into(),
            tags: self.tags.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            revision_number: self.revision_number,
        }
    }
}

/// A port on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Port)]
pub struct PortWire {
    /// UUID
    pub id: String,
    /// Free text.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The network it is on.
    pub network_id: String,
    /// Owner.
    pub project_id: String,
    /// Owner (Neutron's older name).
    pub tenant_id: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// `ACTIVE` when bound to a host, else `DOWN`.
    pub status: String,
    /// MAC address.
    pub mac_address: String,
    /// Addresses as given (Palisade does no IPAM).
    pub fixed_ips: Vec<FixedIp>,
    /// Extra addresses the port may send from.
    pub allowed_address_pairs: Vec<AddressPair>,
    /// Ids of the groups enforced on it.
    pub security_groups: Vec<String>,
    /// Whether filtering applies at all.
    pub port_security_enabled: bool,
    /// Device using the port.
    pub device_id: String,
    /// e.g. `compute:nova`, `network:dhcp`.
    pub device_owner: String,
    /// Host the port is bound to (the agent's name).
    #[serde(rename = "binding:host_id")]
    pub binding_host_id: String,
    /// Free-form binding profile (`interface_name` overrides the tap name).
    #[serde(rename = "binding:profile")]
    #[schema(value_type = Object)]
    pub binding_profile: Map<String, Value>,
    /// `ovs` when bound, else `unbound`.
    #[serde(rename = "binding:vif_type")]
    pub binding_vif_type: String,
    /// Always `normal`.
    #[serde(rename = "binding:vnic_type")]
    pub binding_vnic_type: String,
    /// Tags.
    pub tags: Vec<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub updated_at: String,
    /// +1 per update.
    pub revision_number: u64,
}

/// A network as stored (minimal: Palisade does no L2/L3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// UUID
    pub id: String,
    /// Free text.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Owner.
    pub project_id: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Visible to every project.
    pub shared: bool,
    /// Default port_security_enabled of its ports.
    pub port_security_enabled: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Timestamps and revision.
    pub created_at: String,
    /// Timestamps and revision.
    pub updated_at: String,
    /// +1 per update.
    pub revision_number: u64,
}

impl Network {
    /// Wire form.
    pub fn to_json(&self) -> Map<String, Value> {
        into_map(json!(self.wire()))
    }

    /// Wire form as a typed value (what the OpenAPI document describes).
    pub fn wire(&self) -> NetworkWire {
        NetworkWire {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            project_id: self.project_id.clone(),
            tenant_id: self.project_id.clone(),
            admin_state_up: self.admin_state_up,
            shared: self.shared,
            status: "ACTIVE".into(),
            subnets: Vec::new(),
            port_security_enabled: self.port_security_enabled,
            mtu: 1500,
            tags: self.tags.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            revision_number: self.revision_number,
        }
    }
}

/// A network on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Network)]
pub struct NetworkWire {
    /// UUID
    pub id: String,
    /// Free text.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Owner.
    pub project_id: String,
    /// Owner (Neutron's older name).
    pub tenant_id: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Visible to every project.
    pub shared: bool,
    /// Always `ACTIVE`.
    pub status: String,
    /// Always empty: Palisade does no L3.
    pub subnets: Vec<String>,
    /// Default `port_security_enabled` of its ports.
    pub port_security_enabled: bool,
    /// Always 1500.
    pub mtu: u32,
    /// Tags.
    pub tags: Vec<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub updated_at: String,
    /// +1 per update.
    pub revision_number: u64,
}

/// An address group as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressGroup {
    /// UUID
    pub id: String,
    /// Free text.
    pub name: String,
    /// Free text (≤1024).
    pub description: String,
    /// Owner.
    pub project_id: String,
    /// CIDRs, canonical text, sorted.
    pub addresses: Vec<String>,
    /// Timestamps and revision.
    pub created_at: String,
    /// Timestamps and revision.
    pub updated_at: String,
    /// +1 per update.
    pub revision_number: u64,
}

impl AddressGroup {
    /// Wire form.
    pub fn to_json(&self) -> Map<String, Value> {
        into_map(json!(self.wire()))
    }

    /// Wire form as a typed value (what the OpenAPI document describes).
    pub fn wire(&self) -> AddressGroupWire {
        AddressGroupWire {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            project_id: self.project_id.clone(),
            tenant_id: self.project_id.clone(),
            addresses: self.addresses.clone(),
            shared: false,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            revision_number: self.revision_number,
        }
    }
}

/// An address group on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AddressGroup)]
pub struct AddressGroupWire {
    /// UUID
    pub id: String,
    /// Free text.
    pub name: String,
    /// Free text (at most 1024 characters).
    pub description: String,
    /// Owner.
    pub project_id: String,
    /// Owner (Neutron's older name).
    pub tenant_id: String,
    /// CIDRs, canonical text, sorted.
    pub addresses: Vec<String>,
    /// Always false.
    pub shared: bool,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub created_at: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub updated_at: String,
    /// +1 per update.
    pub revision_number: u64,
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
