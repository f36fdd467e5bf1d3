//! The key layout in the store. Resources live under one prefix each; secondary keys exist
//! so that invariants can be guarded by transaction compares (DESIGN.md: "Secondary keys make
//! that possible on etcd").

/// Security group `id`.
pub fn sg(id: &str) -> String {
    format!("sg/{id}")
}
/// Rule `id`.
pub fn rule(id: &str) -> String {
    format!("rule/{id}")
}
/// Port `id`.
pub fn port(id: &str) -> String {
    format!("port/{id}")
}
/// Network `id`.
pub fn network(id: &str) -> String {
    format!("network/{id}")
}
/// Address group `id`.
pub fn address_group(id: &str) -> String {
    format!("addrgroup/{id}")
}
/// The default group of a project (value: its id). Absent = not created yet.
pub fn default_sg(project: &str) -> String {
    format!("default-sg/{project}")
}
/// Duplicate guard: one rule per (group, Neutron duplicate key). Value: the rule id.
pub fn unique_rule(sg: &str, fingerprint: &str) -> String {
    format!("unique/rule/{sg}/{fingerprint}")
}
/// A port using a group (group-in-use guard).
pub fn sg_ports(sg: &str) -> String {
    format!("sgports/{sg}/")
}
/// A rule naming a group as its remote (cascade on group delete).
pub fn remote_refs(sg: &str) -> String {
    format!("remoteref/{sg}/")
}
/// A rule naming an address group (address-group-in-use guard).
pub fn ag_refs(ag: &str) -> String {
    format!("agref/{ag}/")
}
/// A port on a network (network-in-use guard).
pub fn net_ports(net: &str) -> String {
    format!("netports/{net}/")
}
/// A MAC address on a network (uniqueness guard).
pub fn net_mac(net: &str, mac: &str) -> String {
    format!("netmac/{net}/{mac}")
}
/// Quota limits of a project.
pub fn quota(project: &str) -> String {
    format!("quota/{project}")
}
/// Usage counter of a project's resource (maintained while its limit is finite).
pub fn usage(project: &str, resource: &str) -> String {
    format!("usage/{project}/{resource}")
}
/// Written on every create/delete while the limit is unlimited, so that a quota change can
/// tell whether its count is still current.
pub fn epoch(project: &str, resource: &str) -> String {
    format!("epoch/{project}/{resource}")
}
/// An API token, by the hex SHA-256 of the token.
pub fn token(hash: &str) -> String {
    format!("token/{hash}")
}
/// A project record.
pub fn project(id: &str) -> String {
    format!("project/{id}")
}
/// A project's name in a domain (value: its id; uniqueness guard).
pub fn project_name(domain: &str, name: &str) -> String {
    format!("project-name/{domain}/{name}")
}
/// A user record.
pub fn user(id: &str) -> String {
    format!("user/{id}")
}
/// A user's name in a domain (value: its id; uniqueness guard).
pub fn user_name(domain: &str, name: &str) -> String {
    format!("user-name/{domain}/{name}")
}
/// A role assignment of a user on a project.
pub fn assignment(project: &str, user: &str, role: &str) -> String {
    format!("assignment/{project}/{user}/{role}")
}

/// A firewall's document (base rules, CWNPs, services) for agents.
pub fn firewall(name: &str) -> String {
    format!("firewall/{name}")
}
