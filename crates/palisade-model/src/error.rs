//! The failures of the Neutron API, one variant per thing a caller can act on.
//!
//! The server maps each variant to Neutron's status code and error type in one place
//! ([`Error::status`], [`Error::neutron_type`]); messages keep Neutron's wire text (tempest
//! matches substrings of it) and add the field and value where Neutron leaves them out.

/// Every failure the API can report, with Neutron's semantics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A malformed request: bad envelope, unknown attribute, wrong type, bad query.
    #[error("{0}")]
    BadRequest(String),
    /// A value that cannot be converted (Neutron's `InvalidInput`).
    #[error("Invalid input for operation: {0}")]
    InvalidInput(String),
    /// `protocol` is not a known name or a number 0–255.
    #[error("Security group rule protocol {0} not supported. Only protocol values [None, 'ah', 'dccp', 'egp', 'esp', 'gre', 'hopopt', 'icmp', 'igmp', 'ip', 'ipip', 'ipv6-encap', 'ipv6-frag', 'ipv6-icmp', 'icmpv6', 'ipv6-nonxt', 'ipv6-opts', 'ipv6-route', 'ospf', 'pgm', 'rsvp', 'sctp', 'tcp', 'udp', 'udplite', 'vrrp'] and integer representations [0 to 255] are supported.")]
    InvalidProtocol(String),
    /// `ethertype` is not IPv4 or IPv6.
    #[error("Security group rule for ethertype '{0}' not supported. Allowed values are ['IPv4', 'IPv6'].")]
    InvalidEtherType(String),
    /// A port value that is not an integer 0–65535 (or 0 for a port protocol).
    #[error("Invalid value for port {value} ({field})")]
    InvalidPortValue { field: &'static str, value: String },
    /// min > max, or only one bound given, for a port protocol.
    #[error("For TCP/UDP protocols, port_range_min must be <= port_range_max (port_range_min: {min}, port_range_max: {max})")]
    InvalidPortRange { min: String, max: String },
    /// Ports given for a protocol that has none.
    #[error("Ports cannot be specified for protocol {0}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.")]
    InvalidProtocolForPort(String),
    /// Ports given without a protocol.
    #[error("Must also specify protocol if port range is given (port_range_min: {min}, port_range_max: {max}).")]
    ProtocolRequiredWithPorts { min: String, max: String },
    /// ICMP type or code above 255.
    #[error("Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.")]
    InvalidIcmpValue {
        field: &'static str,
        attr: &'static str,
        value: u32,
    },
    /// ICMP code without a type.
    #[error(
        "ICMP code (port-range-max) {0} is provided but ICMP type (port-range-min) is missing."
    )]
    MissingIcmpType(u32),
    /// remote_ip_prefix of the other family than ethertype.
    #[error("Conflicting value ethertype {ethertype} for CIDR {cidr} (remote_ip_prefix)")]
    ParameterConflict { ethertype: String, cidr: String },
    /// An IPv6-only protocol with ethertype IPv4.
    #[error("Invalid ethertype {ethertype} for protocol {protocol}.")]
    EthertypeConflictWithProtocol { ethertype: String, protocol: String },
    /// More than one of the three remotes.
    #[error("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")]
    MultipleRemoteEntities,
    /// remote_ip_prefix that is not a CIDR or address.
    #[error("Invalid CIDR {0} given as IP prefix (remote_ip_prefix).")]
    InvalidCidr(String),
    /// Bulk rule create naming several groups.
    #[error("Only allowed to update rules for one security profile at a time (security_group_id)")]
    NotSingleGroupRules,
    /// Bulk rule create naming several projects.
    #[error("Multiple project_ids in bulk security group rule create not allowed (project_id)")]
    RulesNotSingleProject,
    /// Port security off with security groups requested.
    #[error("Port Security must be enabled in order to have allowed address pairs on a port (security_groups requires port_security_enabled).")]
    PortSecurityAndIpRequiredForSecurityGroups,
    /// Too many allowed address pairs.
    #[error("The number of allowed address pair exceeds the maximum {0} (allowed_address_pairs).")]
    AllowedAddressPairExhausted(usize),
    /// An allowed address pair without ip_address.
    #[error("AllowedAddressPair must contain ip_address (allowed_address_pairs)")]
    AllowedAddressPairsMissingIp,
    /// The same (mac, ip) twice.
    #[error("Request contains duplicate address pair: mac_address {mac} ip_address {ip}.")]
    DuplicateAddressPairInRequest { mac: String, ip: String },
    /// Caller not allowed to do this.
    #[error("rule:{0} is disallowed by policy")]
    PolicyNotAuthorized(String),
    /// No or an unknown token.
    #[error("The request you have made requires authentication.")]
    NotAuthenticated,
    /// No firewall document of that name.
    #[error("Firewall {0} could not be found.")]
    FirewallNotFound(String),
    /// No report from an agent of that name.
    #[error("Agent {0} could not be found.")]
    AgentNotFound(String),
    /// An agent's HMAC-signed request was refused (the reason says why).
    #[error("HMAC authentication failed: {0}")]
    HmacRejected(String),
    /// Unknown or invisible security group.
    #[error("Security group {0} does not exist")]
    SecurityGroupNotFound(String),
    /// Unknown or invisible rule.
    #[error("Security group rule {0} does not exist")]
    SecurityGroupRuleNotFound(String),
    /// Unknown or invisible address group.
    #[error("Address group {0} could not be found.")]
    AddressGroupNotFound(String),
    /// Unknown or invisible port.
    #[error("Port {0} could not be found.")]
    PortNotFound(String),
    /// Unknown or invisible network.
    #[error("Network {0} could not be found.")]
    NetworkNotFound(String),
    /// Unknown tag on a resource.
    #[error("Tag {tag} could not be found for {resource} {id}.")]
    TagNotFound {
        resource: &'static str,
        id: String,
        tag: String,
    },
    /// Unknown path or method target.
    #[error("The resource could not be found.")]
    NotFound,
    /// An identity object (project, user, role, token) that does not exist.
    #[error("Could not find {0}: {1}.")]
    IdentityNotFound(&'static str, String),
    /// A conflict not covered by a more specific type (duplicate identity names).
    #[error("Conflict occurred attempting to store the object: {0}")]
    Conflict(String),
    /// Method not allowed on an existing route.
    #[error("The method {0} is not allowed for this resource.")]
    MethodNotAllowed(String),
    /// Name `default` on create or rename.
    #[error("Default security group already exists.")]
    DefaultAlreadyExists,
    /// PUT with `name` on the default group.
    #[error("Updating default security group not allowed.")]
    CannotUpdateDefault,
    /// Non-admin DELETE of the default group.
    #[error("Insufficient rights for removing default security group.")]
    CannotRemoveDefault,
    /// A group still bound to ports.
    #[error("Security Group {0} in use.")]
    SecurityGroupInUse(String),
    /// An address group still referenced by rules.
    #[error("Address group {0} is in use.")]
    AddressGroupInUse(String),
    /// A network that still has ports.
    #[error("Unable to complete operation on network {0}. There are one or more ports still in use on the network.")]
    NetworkInUse(String),
    /// Duplicate rule; names the existing one.
    #[error("Security group rule already exists. Rule id is {0}.")]
    SecurityGroupRuleExists(String),
    /// Duplicates inside one bulk POST.
    #[error("Duplicate Security Group Rule in POST.")]
    DuplicateSecurityGroupRuleInPost,
    /// Stateful/stateless mix on a port.
    #[error("Error {0} while attempting the operation.")]
    SecurityGroupConflict(String),
    /// Port security disabled while groups remain.
    #[error("Port has security group associated. Cannot disable port security or ip address until security group is removed")]
    PortSecurityPortHasSecurityGroup,
    /// Address pairs on a port without port security.
    #[error("Port Security must be enabled in order to have allowed address pairs on a port.")]
    AddressPairAndPortSecurityRequired,
    /// A MAC address already used on the network.
    #[error(
        "Unable to complete operation for network {network}. The mac address {mac} is in use."
    )]
    MacAddressInUse { network: String, mac: String },
    /// Quota exceeded; never 413.
    #[error("Quota exceeded for resources: [{}].", .0.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", "))]
    OverQuota(Vec<String>),
    /// If-Match revision mismatch.
    #[error("Constrained to {expected}, but current revision is {current}")]
    PreconditionFailed { expected: u64, current: u64 },
    /// Body larger than the server accepts.
    #[error("Request body of {0} bytes is larger than the limit of {1} bytes.")]
    PayloadTooLarge(usize, usize),
    /// The store cannot take writes right now.
    #[error("The service is unavailable: {0}")]
    ServiceUnavailable(String),
    /// A fault of ours; the message is generic, details go to the log.
    #[error("Request Failed: internal server error while processing your request.")]
    Internal(String),
}

impl Error {
    /// Neutron's HTTP status for this failure.
    pub fn status(&self) -> u16 {
        use Error::*;
        match self {
            BadRequest(_)
            | InvalidInput(_)
            | InvalidProtocol(_)
            | InvalidEtherType(_)
            | InvalidPortValue { .. }
            | InvalidPortRange { .. }
            | InvalidProtocolForPort(_)
            | ProtocolRequiredWithPorts { .. }
            | InvalidIcmpValue { .. }
            | MissingIcmpType(_)
            | ParameterConflict { .. }
            | EthertypeConflictWithProtocol { .. }
            | MultipleRemoteEntities
            | InvalidCidr(_)
            | NotSingleGroupRules
            | RulesNotSingleProject
            | PortSecurityAndIpRequiredForSecurityGroups
            | AllowedAddressPairExhausted(_)
            | AllowedAddressPairsMissingIp
            | DuplicateAddressPairInRequest { .. } => 400,
            NotAuthenticated | HmacRejected(_) => 401,
            PolicyNotAuthorized(_) => 403,
            AgentNotFound(_)
            | FirewallNotFound(_)
            | SecurityGroupNotFound(_)
            | SecurityGroupRuleNotFound(_)
            | AddressGroupNotFound(_)
            | PortNotFound(_)
            | NetworkNotFound(_)
            | TagNotFound { .. }
            | IdentityNotFound(..)
            | NotFound => 404,
            MethodNotAllowed(_) => 405,
            DefaultAlreadyExists
            | CannotUpdateDefault
            | CannotRemoveDefault
            | SecurityGroupInUse(_)
            | AddressGroupInUse(_)
            | NetworkInUse(_)
            | SecurityGroupRuleExists(_)
            | DuplicateSecurityGroupRuleInPost
            | SecurityGroupConflict(_)
            | PortSecurityPortHasSecurityGroup
            | AddressPairAndPortSecurityRequired
            | MacAddressInUse { .. }
            | Conflict(_)
            | OverQuota(_) => 409,
            PreconditionFailed { .. } => 412,
            PayloadTooLarge(..) => 413,
            ServiceUnavailable(_) => 503,
            Internal(_) => 500,
        }
    }

    /// Neutron's exception class name, the `type` of the error body.
    pub fn neutron_type(&self) -> &'static str {
        use Error::*;
        match self {
            BadRequest(_) => "HTTPBadRequest",
            InvalidInput(_) => "InvalidInput",
            InvalidProtocol(_) => "SecurityGroupRuleInvalidProtocol",
            InvalidEtherType(_) => "SecurityGroupRuleInvalidEtherType",
            InvalidPortValue { .. } => "SecurityGroupInvalidPortValue",
            InvalidPortRange { .. } => "SecurityGroupInvalidPortRange",
            InvalidProtocolForPort(_) => "SecurityGroupInvalidProtocolForPort",
            ProtocolRequiredWithPorts { .. } => "SecurityGroupProtocolRequiredWithPorts",
            InvalidIcmpValue { .. } => "SecurityGroupInvalidIcmpValue",
            MissingIcmpType(_) => "SecurityGroupMissingIcmpType",
            ParameterConflict { .. } => "SecurityGroupRuleParameterConflict",
            EthertypeConflictWithProtocol { .. } => "SecurityGroupEthertypeConflictWithProtocol",
            MultipleRemoteEntities => "SecurityGroupMultipleRemoteEntites",
            InvalidCidr(_) => "InvalidCIDR",
            NotSingleGroupRules => "SecurityGroupNotSingleGroupRules",
            RulesNotSingleProject => "SecurityGroupRulesNotSingleProject",
            PortSecurityAndIpRequiredForSecurityGroups => {
                "PortSecurityAndIPRequiredForSecurityGroups"
            }
            AllowedAddressPairExhausted(_) => "AllowedAddressPairExhausted",
            AllowedAddressPairsMissingIp => "AllowedAddressPairsMissingIP",
            DuplicateAddressPairInRequest { .. } => "DuplicateAddressPairInRequest",
            PolicyNotAuthorized(_) => "PolicyNotAuthorized",
            NotAuthenticated | HmacRejected(_) => "NotAuthenticated",
            AgentNotFound(_) => "AgentNotFound",
            FirewallNotFound(_) => "FirewallNotFound",
            SecurityGroupNotFound(_) => "SecurityGroupNotFound",
            SecurityGroupRuleNotFound(_) => "SecurityGroupRuleNotFound",
            AddressGroupNotFound(_) => "AddressGroupNotFound",
            PortNotFound(_) => "PortNotFound",
            NetworkNotFound(_) => "NetworkNotFound",
            TagNotFound { .. } => "TagNotFound",
            NotFound => "HTTPNotFound",
            IdentityNotFound(..) => "NotFound",
            Conflict(_) => "Conflict",
            MethodNotAllowed(_) => "HTTPMethodNotAllowed",
            DefaultAlreadyExists => "SecurityGroupDefaultAlreadyExists",
            CannotUpdateDefault => "SecurityGroupCannotUpdateDefault",
            CannotRemoveDefault => "SecurityGroupCannotRemoveDefault",
            SecurityGroupInUse(_) => "SecurityGroupInUse",
            AddressGroupInUse(_) => "AddressGroupInUse",
            NetworkInUse(_) => "NetworkInUse",
            SecurityGroupRuleExists(_) => "SecurityGroupRuleExists",
            DuplicateSecurityGroupRuleInPost => "DuplicateSecurityGroupRuleInPost",
            SecurityGroupConflict(_) => "SecurityGroupConflict",
            PortSecurityPortHasSecurityGroup => "PortSecurityPortHasSecurityGroup",
            AddressPairAndPortSecurityRequired => "AddressPairAndPortSecurityRequired",
            MacAddressInUse { .. } => "MacAddressInUse",
            OverQuota(_) => "OverQuota",
            PreconditionFailed { .. } => "HTTPPreconditionFailed",
            PayloadTooLarge(..) => "HTTPRequestEntityTooLarge",
            ServiceUnavailable(_) => "ServiceUnavailable",
            Internal(_) => "HTTPInternalServerError",
        }
    }

    /// A 400 for `field` holding `value`, in Neutron's "Invalid input for X" wording.
    pub fn invalid(field: &str, value: &serde_json::Value, reason: impl std::fmt::Display) -> Self {
        Error::BadRequest(format!(
            "Invalid input for {field}. Reason: {} {reason}.",
            quote(value)
        ))
    }
}

/// Renders a JSON value the way Neutron quotes it in messages (`'abc'`, `12`, `None`).
pub fn quote(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{}'", truncate(s, 80)),
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        other => truncate(&other.to_string(), 80),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}
