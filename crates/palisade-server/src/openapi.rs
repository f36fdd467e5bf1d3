//! The OpenAPI 3 document, generated from the code: every route is registered through
//! `utoipa_axum::routes!` from its handler's `#[utoipa::path]`, response bodies are the
//! model's wire types (the same structs the handlers serialize), and [`finish`] adds what
//! is common to all operations from the same tables the handlers use: path parameters, the
//! list queries of each collection ([`crate::query`]), the error bodies and the security
//! schemes. Served at `/openapi.json`.

use crate::query::{self, Collection};
use palisade_model::resource::{
    AddressGroupWire, AddressPair, FixedIp, NetworkWire, PortWire, SecurityGroupRuleWire,
    SecurityGroupWire,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Object, ObjectBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder, Type,
};
use utoipa::{PartialSchema, ToSchema};

/// Neutron's error body: `{"NeutronError": {"type", "message", "detail"}}`.
#[derive(Serialize, ToSchema)]
pub struct NeutronError {
    /// The error.
    #[serde(rename = "NeutronError")]
    pub neutron_error: NeutronErrorBody,
}

/// The fields of a Neutron error.
#[derive(Serialize, ToSchema)]
pub struct NeutronErrorBody {
    /// Exception name, e.g. `SecurityGroupNotFound`, `HTTPBadRequest`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong, naming the field and value.
    pub message: String,
    /// Always empty.
    pub detail: String,
}

/// Keystone's error body: `{"error": {"code", "title", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct KeystoneError {
    /// The error.
    pub error: KeystoneErrorBody,
}

/// The fields of a Keystone error.
#[derive(Serialize, ToSchema)]
pub struct KeystoneErrorBody {
    /// HTTP status code.
    pub code: u16,
    /// Reason phrase, e.g. `Unauthorized`.
    pub title: String,
    /// What went wrong.
    pub message: String,
}

/// A pagination link (`rel` = `next` or `previous`).
#[derive(Serialize, ToSchema)]
pub struct Link {
    /// `next` or `previous`.
    pub rel: String,
    /// The URL of that page.
    pub href: String,
}

/// Response and request envelopes: Neutron wraps one object in its singular name and a
/// list in its plural name (with `<plural>_links` when paginated).
macro_rules! envelopes {
    ($($one:ident, $list:ident, $single:ident, $plural:ident, $links:ident, $ty:ty;)*) => {$(
        #[doc = concat!("`{\"", stringify!($single), "\": …}`")]
        #[derive(Serialize, ToSchema)]
        pub struct $one {
            #[doc = concat!("The ", stringify!($single), ".")]
            pub $single: $ty,
        }
        #[doc = concat!("`{\"", stringify!($plural), "\": […]}`")]
        #[derive(Serialize, ToSchema)]
        pub struct $list {
            #[doc = concat!("The ", stringify!($plural), " visible to the caller.")]
            pub $plural: Vec<$ty>,
            /// Links to the next and previous pages (with `limit`).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub $links: Option<Vec<Link>>,
        }
    )*};
}

/// What a create returns: one object, or a list for a bulk create.
macro_rules! created {
    ($($name:ident, $one:ident, $list:ident;)*) => {$(
        #[doc = concat!("`", stringify!($one), "` or, for a bulk create, `", stringify!($list), "`.")]
        #[derive(Serialize, ToSchema)]
        #[serde(untagged)]
        pub enum $name {
            /// One object created.
            One(Box<$one>),
            /// A bulk create.
            Bulk($list),
        }
    )*};
}

created! {
    SecurityGroupCreated, SecurityGroupOne, SecurityGroupList;
    RuleCreated, RuleOne, RuleList;
    PortCreated, PortOne, PortList;
    NetworkCreated, NetworkOne, NetworkList;
}

envelopes! {
    SecurityGroupOne, SecurityGroupList, security_group, security_groups, security_groups_links, SecurityGroupWire;
    RuleOne, RuleList, security_group_rule, security_group_rules, security_group_rules_links, SecurityGroupRuleWire;
    PortOne, PortList, port, ports, ports_links, PortWire;
    NetworkOne, NetworkList, network, networks, networks_links, NetworkWire;
    AddressGroupOne, AddressGroupList, address_group, address_groups, address_groups_links, AddressGroupWire;
}

/// A new security group.
#[derive(Serialize, ToSchema)]
pub struct NewSecurityGroup {
    /// Free text (at most 255 characters); `default` is reserved.
    #[schema(max_length = 255)]
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Conntrack-based (default true) or stateless.
    pub stateful: Option<bool>,
    /// Owner (admin only; default: the caller's project).
    pub project_id: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
}

/// `{"security_group": {…}}` or `{"security_groups": […]}` (bulk).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SecurityGroupCreate {
    /// One group.
    One {
        /// The group.
        security_group: NewSecurityGroup,
    },
    /// Several groups in one transaction.
    Bulk {
        /// The groups.
        security_groups: Vec<NewSecurityGroup>,
    },
}

/// Changes to a security group.
#[derive(Serialize, ToSchema)]
pub struct SecurityGroupChange {
    /// Free text.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Only while no port uses the group.
    pub stateful: Option<bool>,
}

/// `{"security_group": {…}}`
#[derive(Serialize, ToSchema)]
pub struct SecurityGroupUpdate {
    /// The changes.
    pub security_group: SecurityGroupChange,
}

/// A new rule.
#[derive(Serialize, ToSchema)]
pub struct NewRule {
    /// Parent group.
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: palisade_model::rule::Direction,
    /// `IPv4` (default) or `IPv6`.
    pub ethertype: Option<palisade_model::rule::EtherType>,
    /// Name (`tcp`, `udp`, `icmp`, …), number 0–255, `any` or null.
    pub protocol: Option<String>,
    /// Lowest port (1–65535) or ICMP type (0–255).
    #[schema(minimum = 0, maximum = 65535)]
    pub port_range_min: Option<u32>,
    /// Highest port (1–65535) or ICMP code (0–255).
    #[schema(minimum = 0, maximum = 65535)]
    pub port_range_max: Option<u32>,
    /// Remote prefix (CIDR).
    pub remote_ip_prefix: Option<String>,
    /// Remote group id.
    pub remote_group_id: Option<String>,
    /// Remote address group id.
    pub remote_address_group_id: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Owner (admin only).
    pub project_id: Option<String>,
}

/// `{"security_group_rule": {…}}` or `{"security_group_rules": […]}` (bulk).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RuleCreate {
    /// One rule.
    One {
        /// The rule.
        security_group_rule: Box<NewRule>,
    },
    /// Several rules in one transaction.
    Bulk {
        /// The rules.
        security_group_rules: Vec<NewRule>,
    },
}

/// A port's settable fields.
#[derive(Serialize, ToSchema)]
pub struct PortFields {
    /// The network (required on create; immutable).
    pub network_id: Option<String>,
    /// Free text.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Administrative state.
    pub admin_state_up: Option<bool>,
    /// MAC address (generated when absent).
    pub mac_address: Option<String>,
    /// Addresses (Palisade does no IPAM).
    pub fixed_ips: Option<Vec<FixedIp>>,
    /// Extra addresses the port may send from (at most 10).
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    /// Group ids (default: the project's default group).
    pub security_groups: Option<Vec<String>>,
    /// Whether filtering applies.
    pub port_security_enabled: Option<bool>,
    /// Device using the port.
    pub device_id: Option<String>,
    /// e.g. `compute:nova`.
    pub device_owner: Option<String>,
    /// Host the port is bound to (the agent's name).
    #[serde(rename = "binding:host_id")]
    pub binding_host_id: Option<String>,
    /// Binding profile (`interface_name` overrides the tap name).
    #[serde(rename = "binding:profile")]
    #[schema(value_type = Option<Object>)]
    pub binding_profile: Option<Value>,
    /// Owner (admin only, create only).
    pub project_id: Option<String>,
}

/// `{"port": {…}}` or `{"ports": […]}` (bulk).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PortCreate {
    /// One port.
    One {
        /// The port.
        port: Box<PortFields>,
    },
    /// Several ports.
    Bulk {
        /// The ports.
        ports: Vec<PortFields>,
    },
}

/// `{"port": {…}}`
#[derive(Serialize, ToSchema)]
pub struct PortUpdate {
    /// The changes.
    pub port: PortFields,
}

/// A network's settable fields.
#[derive(Serialize, ToSchema)]
pub struct NetworkFields {
    /// Free text.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Administrative state.
    pub admin_state_up: Option<bool>,
    /// Visible to every project (admin only).
    pub shared: Option<bool>,
    /// Default `port_security_enabled` of its ports.
    pub port_security_enabled: Option<bool>,
    /// Owner (admin only, create only).
    pub project_id: Option<String>,
}

/// `{"network": {…}}` or `{"networks": […]}` (bulk).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum NetworkCreate {
    /// One network.
    One {
        /// The network.
        network: NetworkFields,
    },
    /// Several networks.
    Bulk {
        /// The networks.
        networks: Vec<NetworkFields>,
    },
}

/// `{"network": {…}}`
#[derive(Serialize, ToSchema)]
pub struct NetworkUpdate {
    /// The changes.
    pub network: NetworkFields,
}

/// An address group's settable fields.
#[derive(Serialize, ToSchema)]
pub struct AddressGroupFields {
    /// Free text.
    pub name: Option<String>,
    /// Free text (at most 1024 characters).
    pub description: Option<String>,
    /// CIDRs (create only; then use the actions).
    pub addresses: Option<Vec<String>>,
    /// Owner (admin only, create only).
    pub project_id: Option<String>,
}

/// `{"address_group": {…}}`
#[derive(Serialize, ToSchema)]
pub struct AddressGroupBody {
    /// The fields.
    pub address_group: AddressGroupFields,
}

/// `{"addresses": […]}` for `add_addresses` and `remove_addresses`.
#[derive(Serialize, ToSchema)]
pub struct AddressesBody {
    /// CIDRs.
    pub addresses: Vec<String>,
}

/// `{"tags": […]}`
#[derive(Serialize, ToSchema)]
pub struct Tags {
    /// Tags (each 1–255 characters, no commas).
    pub tags: Vec<String>,
}

/// `{"quota": {"security_group": N, …}}` (-1 = unlimited).
#[derive(Serialize, ToSchema)]
pub struct QuotaBody {
    /// Limits by resource.
    #[schema(value_type = Object)]
    pub quota: Value,
}

/// Any JSON object (Keystone's bodies, Palisade's documents).
pub type AnyObject = Value;

/// The collection a list path serves, for its query parameters.
fn collection_of(path: &str) -> Option<&'static Collection> {
    match path {
        "/v2.0/security-groups" => Some(&query::SECURITY_GROUPS),
        "/v2.0/security-group-rules" => Some(&query::RULES),
        "/v2.0/ports" => Some(&query::PORTS),
        "/v2.0/networks" => Some(&query::NETWORKS),
        "/v2.0/address-groups" => Some(&query::ADDRESS_GROUPS),
        _ => None,
    }
}

fn string_schema() -> Object {
    ObjectBuilder::new().schema_type(Type::String).build()
}

fn query_param(name: &str, description: &str, schema: Object) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// Neutron's list query: filters, sorting and pagination of `c`.
fn list_params(c: &Collection) -> Vec<Parameter> {
    let mut out: Vec<Parameter> = c
        .filterable
        .iter()
        .map(|f| {
            query_param(
                f,
                &format!("Only items whose `{f}` equals this (repeat for any of several values)"),
                string_schema(),
            )
        })
        .collect();
    out.push(query_param(
        "limit",
        "Page size",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .build(),
    ));
    out.push(query_param(
        "marker",
        "Id of the last item of the previous page",
        string_schema(),
    ));
    out.push(query_param(
        "sort_key",
        "Attribute to sort by",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(c.sortable.iter().copied()))
            .build(),
    ));
    out.push(query_param(
        "sort_dir",
        "Sort direction",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["asc", "desc"]))
            .build(),
    ));
    out.push(query_param(
        "page_reverse",
        "Page backwards from the marker",
        ObjectBuilder::new().schema_type(Type::Boolean).build(),
    ));
    out
}

/// Adds what every operation shares: path parameters, list queries, error bodies and
/// security, and the document's title and schemes.
pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info.title = "Palisade".into();
    api.info.description = Some(
        "The Neutron-compatible security-group API (`/v2.0`), Palisade's extensions \
         (`/v2.0/palisade`) and the Keystone subset (`/identity`)."
            .into(),
    );
    api.info.version = env!("CARGO_PKG_VERSION").into();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Auth-Token",
            "A Keystone token (from POST /identity/v3/auth/tokens) or the admin token",
        ))),
    );
    let mut schemas = vec![
        ("NeutronError".to_string(), NeutronError::schema()),
        ("KeystoneError".to_string(), KeystoneError::schema()),
    ];
    NeutronError::schemas(&mut schemas);
    KeystoneError::schemas(&mut schemas);
    components.schemas.extend(schemas);
    let open = [
        "/",
        "/metrics",
        "/openapi.json",
        "/identity",
        "/identity/v3",
    ];
    for (path, item) in api.paths.paths.iter_mut() {
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let list = collection_of(path);
        let error_ref = if path.starts_with("/identity") {
            "KeystoneError"
        } else {
            "NeutronError"
        };
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
        ]
        .into_iter()
        .flatten()
        {
            let params = op.parameters.get_or_insert_with(Vec::new);
            for n in &names {
                if !params
                    .iter()
                    .any(|p| matches!(p, RefOr::T(p) if p.name == *n))
                {
                    params.push(
                        ParameterBuilder::new()
                            .name(*n)
                            .parameter_in(ParameterIn::Path)
                            .required(Required::True)
                            .schema(Some(string_schema()))
                            .build()
                            .into(),
                    );
                }
            }
            if let (Some(c), true) = (list, op.request_body.is_none()) {
                params.extend(list_params(c).into_iter().map(RefOr::T));
            }
            if params.is_empty() {
                op.parameters = None;
            }
            op.responses.responses.insert(
                "default".into(),
                ResponseBuilder::new()
                    .description("An error")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(error_ref)))
                            .build(),
                    )
                    .build()
                    .into(),
            );
            if !open.contains(&path.as_str()) && !path.starts_with("/identity/v3/auth/tokens") {
                op.security = Some(vec![SecurityRequirement::new(
                    "token",
                    Vec::<String>::new(),
                )]);
            }
        }
    }
    api
}
