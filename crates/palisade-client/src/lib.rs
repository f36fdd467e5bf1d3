//! A typed async client of the Palisade API (Neutron v2.0 wire format). The `palisade` CLI,
//! the agent and the reconciler all talk to the server through it.

pub mod auth;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Failures of a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Neutron error.
    #[error("{status} {kind}: {message}")]
    Api {
        /// HTTP status
        status: u16,
        /// Neutron error type (e.g. `SecurityGroupRuleExists`)
        kind: String,
        /// Message
        message: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {url}: {source}")]
    Transport {
        /// URL called
        url: String,
        /// cause
        source: reqwest::Error,
    },
    /// A response that is not what the API promises.
    #[error("unexpected response from {url}: {detail}")]
    Decode {
        /// URL called
        url: String,
        /// what was wrong
        detail: String,
    },
    /// A name matched no object or several.
    #[error("{0}")]
    Lookup(String),
    /// Bad client configuration (URL).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A security-group rule as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    /// id
    pub id: String,
    /// parent group
    pub security_group_id: String,
    /// ingress / egress
    pub direction: String,
    /// IPv4 / IPv6
    pub ethertype: String,
    /// protocol name or number, null = any
    pub protocol: Option<String>,
    /// port or ICMP type
    pub port_range_min: Option<u32>,
    /// port or ICMP code
    pub port_range_max: Option<u32>,
    /// remote CIDR
    pub remote_ip_prefix: Option<String>,
    /// remote CIDR, network form
    #[serde(default)]
    pub normalized_cidr: Option<String>,
    /// remote group
    pub remote_group_id: Option<String>,
    /// remote address group
    #[serde(default)]
    pub remote_address_group_id: Option<String>,
    /// owner
    pub project_id: String,
    /// free text
    #[serde(default)]
    pub description: String,
    /// created
    #[serde(default)]
    pub created_at: String,
    /// updated
    #[serde(default)]
    pub updated_at: String,
    /// revision
    #[serde(default)]
    pub revision_number: u64,
}

/// A security group as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// id
    pub id: String,
    /// name
    pub name: String,
    /// description
    #[serde(default)]
    pub description: String,
    /// owner
    pub project_id: String,
    /// stateful or not
    #[serde(default = "yes")]
    pub stateful: bool,
    /// shared to the caller
    #[serde(default)]
    pub shared: bool,
    /// rules
    #[serde(default)]
    pub security_group_rules: Vec<SecurityGroupRule>,
    /// tags
    #[serde(default)]
    pub tags: Vec<String>,
    /// created
    #[serde(default)]
    pub created_at: String,
    /// updated
    #[serde(default)]
    pub updated_at: String,
    /// revision
    #[serde(default)]
    pub revision_number: u64,
}

fn yes() -> bool {
    true
}

/// A port as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// id
    pub id: String,
    /// name
    #[serde(default)]
    pub name: String,
    /// network
    pub network_id: String,
    /// owner
    pub project_id: String,
    /// MAC
    pub mac_address: String,
    /// addresses
    #[serde(default)]
    pub fixed_ips: Vec<Value>,
    /// allowed address pairs
    #[serde(default)]
    pub allowed_address_pairs: Vec<Value>,
    /// groups
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// port security
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    /// status
    #[serde(default)]
    pub status: String,
    /// binding host
    #[serde(rename = "binding:host_id", default)]
    pub binding_host_id: String,
    /// device owner
    #[serde(default)]
    pub device_owner: String,
    /// device id
    #[serde(default)]
    pub device_id: String,
    /// revision
    #[serde(default)]
    pub revision_number: u64,
}

/// A network as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// id
    pub id: String,
    /// name
    #[serde(default)]
    pub name: String,
    /// owner
    pub project_id: String,
    /// default port security of its ports
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    /// shared
    #[serde(default)]
    pub shared: bool,
    /// status
    #[serde(default)]
    pub status: String,
}

/// A rule to create (`None` fields are left out of the request).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleSpec {
    /// parent group id
    pub security_group_id: String,
    /// ingress / egress
    pub direction: String,
    /// IPv4 / IPv6
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<String>,
    /// protocol; `Some(Value::Null)` sends an explicit null
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Value>,
    /// port or ICMP type
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range_min: Option<u32>,
    /// port or ICMP code
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range_max: Option<u32>,
    /// remote CIDR
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip_prefix: Option<String>,
    /// remote group
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_group_id: Option<String>,
    /// remote address group
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address_group_id: Option<String>,
    /// description
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// owner (admin only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// The client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:9696`) with `token`.
    pub fn new(url: &str, token: &str) -> Result<Self, ClientError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| ClientError::Config(format!("invalid server URL '{url}': {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Config(format!(
                "invalid server URL '{url}': scheme must be http or https"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Client {
            http,
            base: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request; `path` starts with `/` (e.g. `/v2.0/ports`). Returns the status and the
    /// decoded body (`Null` for empty bodies); Neutron errors become [`ClientError::Api`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method, &url)
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                url: url.clone(),
                detail: e.to_string(),
            })?
        };
        if status.is_success() {
            return Ok((status, value));
        }
        let err = value.get("NeutronError").unwrap_or(&value);
        Err(ClientError::Api {
            status: status.as_u16(),
            kind: err
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("HTTPError")
                .to_string(),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(status.canonical_reason().unwrap_or(""))
                .to_string(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: &str,
    ) -> Result<T, ClientError> {
        let url = format!("{}{}", self.base, path);
        let (_, v) = self.request(method, path, body).await?;
        let inner = v.get(key).cloned().ok_or_else(|| ClientError::Decode {
            url: url.clone(),
            detail: format!("no '{key}' in response"),
        })?;
        serde_json::from_value(inner).map_err(|e| ClientError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    /// GET returning the raw JSON body.
    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        Ok(self.request(Method::GET, path, None).await?.1)
    }

    // ---- security groups ----

    /// Lists groups with a raw query string (`name=web&project_id=…`).
    pub async fn list_security_groups(
        &self,
        query: &str,
    ) -> Result<Vec<SecurityGroup>, ClientError> {
        self.call(
            Method::GET,
            &with_query("/v2.0/security-groups", query),
            None,
            "security_groups",
        )
        .await
    }
    /// Shows one group.
    pub async fn get_security_group(&self, id: &str) -> Result<SecurityGroup, ClientError> {
        self.call(
            Method::GET,
            &format!("/v2.0/security-groups/{}", enc(id)),
            None,
            "security_group",
        )
        .await
    }
    /// Creates a group.
    pub async fn create_security_group(
        &self,
        body: Map<String, Value>,
    ) -> Result<SecurityGroup, ClientError> {
        self.call(
            Method::POST,
            "/v2.0/security-groups",
            Some(&json!({"security_group": body})),
            "security_group",
        )
        .await
    }
    /// Updates a group.
    pub async fn update_security_group(
        &self,
        id: &str,
        body: Map<String, Value>,
    ) -> Result<SecurityGroup, ClientError> {
        self.call(
            Method::PUT,
            &format!("/v2.0/security-groups/{}", enc(id)),
            Some(&json!({"security_group": body})),
            "security_group",
        )
        .await
    }
    /// Deletes a group.
    pub async fn delete_security_group(&self, id: &str) -> Result<(), ClientError> {
        self.request(
            Method::DELETE,
            &format!("/v2.0/security-groups/{}", enc(id)),
            None,
        )
        .await
        .map(|_| ())
    }
    /// Finds an object by id or unique name, as the openstack CLI does: `GET <path>/<v>`,
    /// and when that is 404 (or 400/403), `GET <path>?name=<v>` must match exactly one.
    async fn find<T: DeserializeOwned>(
        &self,
        kind: &str,
        path: &str,
        singular: &str,
        plural: &str,
        name_or_id: &str,
    ) -> Result<T, ClientError> {
        match self
            .call(
                Method::GET,
                &format!("{path}/{}", enc(name_or_id)),
                None,
                singular,
            )
            .await
        {
            Ok(found) => return Ok(found),
            Err(ClientError::Api {
                status: 400 | 403 | 404,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("name", name_or_id)
            .finish();
        let mut found: Vec<T> = self
            .call(Method::GET, &with_query(path, &q), None, plural)
            .await?;
        match found.len() {
            0 => Err(ClientError::Lookup(format!(
                "No {kind} found for {name_or_id}"
            ))),
            1 => Ok(found.remove(0)),
            _ => Err(ClientError::Lookup(format!(
                "More than one {kind} exists with the name '{name_or_id}'."
            ))),
        }
    }

    /// Finds a group by id or unique name.
    pub async fn find_security_group(
        &self,
        name_or_id: &str,
    ) -> Result<SecurityGroup, ClientError> {
        self.find(
            "SecurityGroup",
            "/v2.0/security-groups",
            "security_group",
            "security_groups",
            name_or_id,
        )
        .await
    }

    /// Finds a port by id or unique name.
    pub async fn find_port(&self, name_or_id: &str) -> Result<Port, ClientError> {
        self.find("Port", "/v2.0/ports", "port", "ports", name_or_id)
            .await
    }

    /// Finds a network by id or unique name.
    pub async fn find_network(&self, name_or_id: &str) -> Result<Network, ClientError> {
        self.find(
            "Network",
            "/v2.0/networks",
            "network",
            "networks",
            name_or_id,
        )
        .await
    }

    // ---- rules ----

    /// Lists rules with a raw query string.
    pub async fn list_rules(&self, query: &str) -> Result<Vec<SecurityGroupRule>, ClientError> {
        self.call(
            Method::GET,
            &with_query("/v2.0/security-group-rules", query),
            None,
            "security_group_rules",
        )
        .await
    }
    /// Shows one rule.
    pub async fn get_rule(&self, id: &str) -> Result<SecurityGroupRule, ClientError> {
        self.call(
            Method::GET,
            &format!("/v2.0/security-group-rules/{}", enc(id)),
            None,
            "security_group_rule",
        )
        .await
    }
    /// Creates a rule.
    pub async fn create_rule(&self, spec: &RuleSpec) -> Result<SecurityGroupRule, ClientError> {
        let body = json!({"security_group_rule": spec});
        self.call(
            Method::POST,
            "/v2.0/security-group-rules",
            Some(&body),
            "security_group_rule",
        )
        .await
    }
    /// Deletes a rule.
    pub async fn delete_rule(&self, id: &str) -> Result<(), ClientError> {
        self.request(
            Method::DELETE,
            &format!("/v2.0/security-group-rules/{}", enc(id)),
            None,
        )
        .await
        .map(|_| ())
    }

    // ---- ports and networks ----

    /// Lists ports with a raw query string.
    pub async fn list_ports(&self, query: &str) -> Result<Vec<Port>, ClientError> {
        self.call(
            Method::GET,
            &with_query("/v2.0/ports", query),
            None,
            "ports",
        )
        .await
    }
    /// Shows a port.
    pub async fn get_port(&self, id: &str) -> Result<Port, ClientError> {
        self.call(
            Method::GET,
            &format!("/v2.0/ports/{}", enc(id)),
            None,
            "port",
        )
        .await
    }
    /// Creates a port.
    pub async fn create_port(&self, body: Map<String, Value>) -> Result<Port, ClientError> {
        self.call(
            Method::POST,
            "/v2.0/ports",
            Some(&json!({"port": body})),
            "port",
        )
        .await
    }
    /// Updates a port.
    pub async fn update_port(
        &self,
        id: &str,
        body: Map<String, Value>,
    ) -> Result<Port, ClientError> {
        self.call(
            Method::PUT,
            &format!("/v2.0/ports/{}", enc(id)),
            Some(&json!({"port": body})),
            "port",
        )
        .await
    }
    /// Deletes a port.
    pub async fn delete_port(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, &format!("/v2.0/ports/{}", enc(id)), None)
            .await
            .map(|_| ())
    }
    /// Lists networks with a raw query string.
    pub async fn list_networks(&self, query: &str) -> Result<Vec<Network>, ClientError> {
        self.call(
            Method::GET,
            &with_query("/v2.0/networks", query),
            None,
            "networks",
        )
        .await
    }
    /// Creates a network.
    pub async fn create_network(&self, body: Map<String, Value>) -> Result<Network, ClientError> {
        self.call(
            Method::POST,
            "/v2.0/networks",
            Some(&json!({"network": body})),
            "network",
        )
        .await
    }
    /// Deletes a network.
    pub async fn delete_network(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, &format!("/v2.0/networks/{}", enc(id)), None)
            .await
            .map(|_| ())
    }
    /// Sets a project's quota limits (admin).
    pub async fn set_quota(
        &self,
        project: &str,
        limits: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        let (_, v) = self
            .request(
                Method::PUT,
                &format!("/v2.0/quotas/{}", enc(project)),
                Some(&json!({"quota": limits})),
            )
            .await?;
        Ok(v)
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}
