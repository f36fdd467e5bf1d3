//! Agents: HMAC-authenticated requests (metal-api style, see
//! [`palisade_model::hmac_auth`]) and the status agents report at
//! `/v2.0/palisade/agents`.

use crate::http::{ApiError, AppState, Caller, RawBody, MAX_BODY};
use crate::Context;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palisade_model::hmac_auth::{self, KeyType};
use palisade_model::Error;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The server's HMAC keys by type (`--hmac-view-key`, `--hmac-edit-key`,
/// `--hmac-admin-key`); a type without a key refuses requests signed as that type.
#[derive(Debug, Clone, Default)]
pub struct HmacKeys {
    /// `Metal-View`
    pub view: Option<Vec<u8>>,
    /// `Metal-Edit`
    pub edit: Option<Vec<u8>>,
    /// `Metal-Admin`
    pub admin: Option<Vec<u8>>,
}

impl HmacKeys {
    fn get(&self, k: KeyType) -> Option<&[u8]> {
        match k {
            KeyType::View => self.view.as_deref(),
            KeyType::Edit => self.edit.as_deref(),
            KeyType::Admin => self.admin.as_deref(),
        }
    }
}

/// The caller a verified key type stands for: `Metal-View` reads every project
/// (`system_reader`), `Metal-Edit` and `Metal-Admin` act as cloud admin.
fn context_of(kind: KeyType) -> Context {
    let roles = match kind {
        KeyType::View => vec!["reader".to_string(), "system_reader".to_string()],
        KeyType::Edit | KeyType::Admin => vec!["admin".to_string()],
    };
    Context {
        project_id: String::new(),
        roles,
        user: kind.name().to_string(),
        user_id: String::new(),
    }
}

/// Middleware: a request whose `Authorization` names a `Metal-…` key type is verified here
/// (body included) and carries its [`Context`] on; any other request passes untouched.
pub(crate) async fn hmac_layer(
    State(s): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Metal-"))
        .map(String::from)
    else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError(Error::PayloadTooLarge(MAX_BODY + 1, MAX_BODY)).into_response(),
    };
    let date = parts
        .headers
        .get(hmac_auth::DATE_HEADER)
        .and_then(|v| v.to_str().ok());
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let now = jiff::Timestamp::now().as_second();
    match hmac_auth::verify(&auth, date, now, parts.method.as_str(), path, &body, |k| {
        s.hmac.get(k)
    }) {
        Ok(kind) => {
            parts.extensions.insert(context_of(kind));
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(why) => {
            tracing::warn!(%why, path, "HMAC request refused");
            ApiError(Error::HmacRejected(why.to_string())).into_response()
        }
    }
}

/// What agents last reported, by name (kept in this replica's memory: agents report again
/// every interval, so a restart forgets nothing that matters for long).
#[derive(Debug, Default)]
pub struct AgentRegistry(Mutex<BTreeMap<String, Value>>);

/// The fields an agent reports, with their JSON types.
const REPORT_FIELDS: &[(&str, &str)] = &[
    ("applied_revision", "integer"),
    ("ruleset_hash", "string"),
    ("rules", "integer"),
    ("sets", "integer"),
    ("elements", "integer"),
    ("last_error", "string or null"),
    ("lag_seconds", "number"),
    ("applies", "integer"),
    ("delta_applies", "integer"),
    ("drift_repairs", "integer"),
    ("version", "string"),
];

fn check_report(obj: &Map<String, Value>) -> Result<(), Error> {
    for (k, v) in obj {
        let Some((_, ty)) = REPORT_FIELDS.iter().find(|(f, _)| f == k) else {
            return Err(Error::BadRequest(format!(
                "Unrecognized attribute(s) '{k}' in agent report"
            )));
        };
        let ok = match *ty {
            "integer" => v.as_i64().is_some_and(|n| n >= 0),
            "string" => v.is_string(),
            "string or null" => v.is_string() || v.is_null(),
            _ => v.is_number(),
        };
        if !ok {
            return Err(Error::BadRequest(format!(
                "Invalid input for {k}. Reason: {} is not a {ty}.",
                palisade_model::error::quote(v)
            )));
        }
    }
    Ok(())
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents))
        .routes(routes!(show_agent, report))
        .routes(routes!(list_firewalls))
        .routes(routes!(show_firewall, put_firewall, delete_firewall))
}

fn firewall_name(name: &str) -> Result<(), Error> {
    let ok = (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Invalid firewall name {name:?}: 1-255 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The stored document of a firewall, with its name.
fn firewall_json(name: &str, raw: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(raw).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert("name".into(), json!(name));
    }
    v
}

/// The firewalls' documents, by name (`firewall/<name>` keys of the index).
pub(crate) fn firewalls(idx: &crate::index::Index) -> BTreeMap<String, Value> {
    idx.raw
        .iter()
        .filter_map(|(k, r)| {
            k.strip_prefix("firewall/")
                .map(|n| (n.to_string(), firewall_json(n, &r.value)))
        })
        .collect()
}

/// `GET /v2.0/palisade/firewalls`.
#[utoipa::path(get, path = "/firewalls", tag = "palisade", summary = "Firewall documents", responses((status = 200, description = "Firewall documents", body = crate::openapi::AnyObject)))]
async fn list_firewalls(
    State(s): State<AppState>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    may_read(&ctx)?;
    let idx = s.service.cache().read();
    let all: Vec<Value> = firewalls(&idx).into_values().collect();
    Ok(axum::Json(json!({"firewalls": all})).into_response())
}

/// `GET /v2.0/palisade/firewalls/{name}`.
#[utoipa::path(get, path = "/firewalls/{name}", tag = "palisade", summary = "One firewall document", responses((status = 200, description = "One firewall document", body = crate::openapi::AnyObject)))]
async fn show_firewall(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&ctx)?;
    let idx = s.service.cache().read();
    let raw = idx
        .raw
        .get(&crate::keys::firewall(&name))
        .ok_or_else(|| Error::FirewallNotFound(name.clone()))?;
    Ok(axum::Json(json!({"firewall": firewall_json(&name, &raw.value)})).into_response())
}

/// `PUT /v2.0/palisade/firewalls/{name}` with `{"firewall": {"firewall": {…base…},
/// "cwnp": {"ingress", "egress"}, "services": […]}}` (admin): what the agent named `name`
/// enforces when its firewall, cwnp or service controller reads the server.
#[utoipa::path(put, path = "/firewalls/{name}", tag = "palisade", summary = "Set a firewall's base rules, policies and services", request_body = crate::openapi::AnyObject, responses((status = 200, description = "Set a firewall's base rules, policies and services", body = crate::openapi::AnyObject)))]
async fn put_firewall(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    if !ctx.is_admin() {
        return Err(Error::PolicyNotAuthorized("update_palisade_firewall".into()).into());
    }
    firewall_name(&name)?;
    let mut obj = crate::http::single(&body, "firewall")?;
    obj.remove("name");
    let doc = Value::Object(obj);
    palisade_dataplane::firewall::FirewallDoc::parse(doc.clone()).map_err(|e| {
        Error::BadRequest(format!(
            "Invalid input for firewall.{}. Reason: {}",
            e.path, e.message
        ))
    })?;
    s.service
        .put_raw(crate::keys::firewall(&name), &doc)
        .await?;
    Ok(axum::Json(
        json!({"firewall": firewall_json(&name, &serde_json::to_vec(&doc).unwrap_or_default())}),
    )
    .into_response())
}

/// `DELETE /v2.0/palisade/firewalls/{name}` (admin).
#[utoipa::path(delete, path = "/firewalls/{name}", tag = "palisade", summary = "Delete a firewall document", responses((status = 204, description = "Delete a firewall document")))]
async fn delete_firewall(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !ctx.is_admin() {
        return Err(Error::PolicyNotAuthorized("delete_palisade_firewall".into()).into());
    }
    let key = crate::keys::firewall(&name);
    if !s.service.cache().read().raw.contains_key(&key) {
        return Err(Error::FirewallNotFound(name).into());
    }
    s.service.delete_raw(key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn may_read(ctx: &Context) -> Result<(), Error> {
    if ctx.reads_all() {
        Ok(())
    } else {
        Err(Error::PolicyNotAuthorized("get_palisade_agents".into()))
    }
}

/// `PUT /v2.0/palisade/agents/{name}` with `{"agent": {applied_revision, ruleset_hash,
/// rules, sets, elements, last_error, lag_seconds, …}}`: an agent's status report.
#[utoipa::path(put, path = "/agents/{name}", tag = "palisade", summary = "An agent reports its status", request_body = crate::openapi::AnyObject, responses((status = 200, description = "An agent reports its status", body = crate::openapi::AnyObject)))]
async fn report(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    may_read(&ctx)?;
    if name.is_empty() || name.len() > 255 {
        return Err(Error::BadRequest(format!("Invalid agent name {name:?}")).into());
    }
    let obj = crate::http::single(&body, "agent")?;
    check_report(&obj)?;
    let mut agent = obj;
    agent.insert("name".into(), json!(name));
    agent.insert(
        "reported_at".into(),
        json!(jiff::Timestamp::now().to_string()),
    );
    let v = Value::Object(agent);
    s.agents
        .0
        .lock()
        .map_err(|_| Error::Internal("agent registry poisoned".into()))?
        .insert(name, v.clone());
    Ok((StatusCode::OK, axum::Json(json!({"agent": v}))).into_response())
}

/// `GET /v2.0/palisade/agents`: every agent's last report.
#[utoipa::path(get, path = "/agents", tag = "palisade", summary = "Agents' latest status reports", responses((status = 200, description = "Agents' latest status reports", body = crate::openapi::AnyObject)))]
async fn list_agents(State(s): State<AppState>, Caller(ctx): Caller) -> Result<Response, ApiError> {
    may_read(&ctx)?;
    let agents: Vec<Value> = s
        .agents
        .0
        .lock()
        .map_err(|_| Error::Internal("agent registry poisoned".into()))?
        .values()
        .cloned()
        .collect();
    Ok(axum::Json(json!({"agents": agents})).into_response())
}

/// `GET /v2.0/palisade/agents/{name}`.
#[utoipa::path(get, path = "/agents/{name}", tag = "palisade", summary = "One agent's latest status report", responses((status = 200, description = "One agent's latest status report", body = crate::openapi::AnyObject)))]
async fn show_agent(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&ctx)?;
    let v = s
        .agents
        .0
        .lock()
        .map_err(|_| Error::Internal("agent registry poisoned".into()))?
        .get(&name)
        .cloned()
        .ok_or(Error::AgentNotFound(name))?;
    Ok(axum::Json(json!({"agent": v})).into_response())
}
