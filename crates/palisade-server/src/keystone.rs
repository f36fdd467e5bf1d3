//! The Keystone v3 subset at `/identity`: version documents, password login and token
//! validation/revocation with a service catalog, and minimal administration of projects,
//! users, roles and role assignments. Errors use Keystone's shape:
//! `{"error": {"code", "title", "message"}}`.

use crate::http::{AppState, RawBody};
use crate::index::TokenInfo;
use crate::service::identity::{self, domain_json, role_json, ROLES};
use crate::service::Context;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::Error;
use serde_json::{json, Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

/// An error in Keystone's shape.
pub struct KeystoneError(pub Error);

impl From<Error> for KeystoneError {
    fn from(e: Error) -> Self {
        KeystoneError(e)
    }
}

impl IntoResponse for KeystoneError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Error::Internal(detail) = &e {
            tracing::error!(%detail, "internal error");
        }
        let title = match status.as_u16() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            413 => "Request Entity Too Large",
            _ => "Internal Server Error",
        };
        let message = match &e {
            Error::PolicyNotAuthorized(_) => {
                "You are not authorized to perform the requested action.".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = (
            status,
            axum::Json(
                json!({"error": {"code": status.as_u16(), "title": title, "message": message}}),
            ),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"/identity\""),
            );
        }
        resp
    }
}

type KResult = Result<Response, KeystoneError>;

fn ok(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn public(s: &AppState, headers: &HeaderMap) -> String {
    match &s.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!(
            "http://{}",
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
        ),
    }
}

fn v3_doc(base: &str) -> Value {
    json!({"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
           "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
           "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]})
}

#[utoipa::path(get, path = "/", tag = "identity", summary = "Identity API versions", responses((status = 300, description = "Identity API versions", body = crate::openapi::AnyObject)))]
async fn versions(State(s): State<AppState>, headers: HeaderMap) -> Response {
    ok(
        StatusCode::MULTIPLE_CHOICES,
        json!({"versions": {"values": [v3_doc(&public(&s, &headers))]}}),
    )
}

#[utoipa::path(get, path = "/v3", tag = "identity", summary = "Identity v3", responses((status = 200, description = "Identity v3", body = crate::openapi::AnyObject)))]
async fn v3(State(s): State<AppState>, headers: HeaderMap) -> Response {
    ok(
        StatusCode::OK,
        json!({"version": v3_doc(&public(&s, &headers))}),
    )
}

/// Any valid token (scoped or not) of the caller.
fn caller_token(s: &AppState, headers: &HeaderMap) -> Result<(String, TokenInfo), Error> {
    let t = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::NotAuthenticated)?;
    let idx = s.service.cache().read();
    let info = identity::valid_token(&idx, t).ok_or(Error::NotAuthenticated)?;
    Ok((t.to_string(), info))
}

fn context(info: &TokenInfo) -> Context {
    Context {
        project_id: info.project_id.clone(),
        roles: info.roles.clone(),
        user: info.user.clone(),
        user_id: info.user_id.clone(),
    }
}

fn admin(s: &AppState, headers: &HeaderMap) -> Result<Context, Error> {
    let (_, info) = caller_token(s, headers)?;
    let ctx = context(&info);
    if ctx.is_admin() {
        Ok(ctx)
    } else {
        Err(Error::PolicyNotAuthorized("identity:admin".into()))
    }
}

fn rfc3339_micros(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string())
        .unwrap_or_default()
}

fn catalog(base: &str) -> Value {
    let endpoints = |url: String, service: &str| -> Vec<Value> {
        ["public", "internal", "admin"]
            .iter()
            .map(|i| json!({"id": format!("{service}-{i}"), "interface": i, "region": "RegionOne", "region_id": "RegionOne", "url": url}))
            .collect()
    };
    json!([
        {"id": "network", "type": "network", "name": "neutron", "endpoints": endpoints(base.to_string(), "network")},
        {"id": "identity", "type": "identity", "name": "keystone", "endpoints": endpoints(format!("{base}/identity"), "identity")},
    ])
}

fn token_body(s: &AppState, base: &str, info: &TokenInfo, with_catalog: bool) -> Value {
    let idx = s.service.cache().read();
    let domain = json!({"id": "default", "name": "Default"});
    let mut t = Map::new();
    t.insert("methods".into(), json!(["password"]));
    t.insert("user".into(), json!({"id": info.user_id, "name": info.user, "domain": domain, "password_expires_at": null}));
    t.insert("audit_ids".into(), json!([info.audit_id]));
    t.insert(
        "expires_at".into(),
        json!(info.expires_at.map(rfc3339_micros)),
    );
    t.insert("issued_at".into(), json!(rfc3339_micros(info.issued_at)));
    if !info.project_id.is_empty() {
        let name = identity::project(&idx, &info.project_id)
            .map(|p| p.name)
            .unwrap_or_default();
        t.insert(
            "project".into(),
            json!({"id": info.project_id, "name": name, "domain": domain}),
        );
        t.insert("is_domain".into(), json!(false));
        t.insert(
            "roles".into(),
            Value::Array(
                info.roles
                    .iter()
                    .map(|r| json!({"id": r, "name": r}))
                    .collect(),
            ),
        );
        if with_catalog {
            t.insert("catalog".into(), catalog(base));
        }
    }
    json!({ "token": t })
}

fn wants_catalog(q: &Option<String>) -> bool {
    !url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .any(|(k, _)| k == "nocatalog")
}

#[utoipa::path(post, path = "/v3/auth/tokens", tag = "identity", summary = "Issue a token (password or token method)", request_body = crate::openapi::AnyObject, responses((status = 201, description = "Issue a token (password or token method)", body = crate::openapi::AnyObject)))]
async fn issue(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    RawBody(body): RawBody,
) -> KResult {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("Body contains invalid data: {e}")))?;
    let caller = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    let issued = s.service.login(&v, caller, s.token_ttl_secs).await?;
    tracing::info!(user = %issued.info.user, project = %issued.info.project_id, audit_id = %issued.info.audit_id, "token issued");
    let base = public(&s, &headers);
    let mut resp = ok(
        StatusCode::CREATED,
        token_body(&s, &base, &issued.info, wants_catalog(&q)),
    );
    if let Ok(h) = HeaderValue::from_str(&issued.token) {
        resp.headers_mut().insert("x-subject-token", h);
    }
    Ok(resp)
}

fn subject(headers: &HeaderMap) -> Result<String, Error> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| {
            Error::BadRequest("Expecting to find X-Subject-Token in the request headers.".into())
        })
}

#[utoipa::path(get, path = "/v3/auth/tokens", tag = "identity", summary = "Validate the token in X-Subject-Token", responses((status = 200, description = "Validate the token in X-Subject-Token", body = crate::openapi::AnyObject)))]
async fn validate(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> KResult {
    caller_token(&s, &headers)?;
    let sub = subject(&headers)?;
    let info = s.service.validate_token(&sub)?;
    let base = public(&s, &headers);
    let mut resp = ok(
        StatusCode::OK,
        token_body(&s, &base, &info, wants_catalog(&q)),
    );
    if let Ok(h) = HeaderValue::from_str(&sub) {
        resp.headers_mut().insert("x-subject-token", h);
    }
    Ok(resp)
}

#[utoipa::path(head, path = "/v3/auth/tokens", tag = "identity", summary = "Check the token in X-Subject-Token", responses((status = 200, description = "Check the token in X-Subject-Token")))]
async fn check(State(s): State<AppState>, headers: HeaderMap) -> KResult {
    caller_token(&s, &headers)?;
    s.service.validate_token(&subject(&headers)?)?;
    Ok(StatusCode::OK.into_response())
}

#[utoipa::path(delete, path = "/v3/auth/tokens", tag = "identity", summary = "Revoke the token in X-Subject-Token", responses((status = 204, description = "Revoke the token in X-Subject-Token")))]
async fn revoke(State(s): State<AppState>, headers: HeaderMap) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    let sub = subject(&headers)?;
    s.service.revoke_token(&context(&info), &sub).await?;
    tracing::info!(user = %info.user, "token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/v3/auth/projects", tag = "identity", summary = "The caller's projects", responses((status = 200, description = "The caller's projects", body = crate::openapi::AnyObject)))]
async fn auth_projects(State(s): State<AppState>, headers: HeaderMap) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    let idx = s.service.cache().read();
    let mine: Vec<Value> = identity::projects(&idx)
        .into_iter()
        .filter(|p| !identity::assigned_roles(&idx, &p.id, &info.user_id).is_empty())
        .map(|p| p.to_json())
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"projects": mine, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

#[utoipa::path(get, path = "/v3/auth/catalog", tag = "identity", summary = "The service catalog", responses((status = 200, description = "The service catalog", body = crate::openapi::AnyObject)))]
async fn auth_catalog(State(s): State<AppState>, headers: HeaderMap) -> KResult {
    caller_token(&s, &headers)?;
    Ok(ok(
        StatusCode::OK,
        json!({"catalog": catalog(&public(&s, &headers))}),
    ))
}

fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn filter_by(items: Vec<Value>, q: &[(String, String)], keys: &[&str]) -> Vec<Value> {
    items
        .into_iter()
        .filter(|it| {
            q.iter()
                .filter(|(k, _)| keys.contains(&k.as_str()))
                .all(|(k, v)| match &it[k] {
                    Value::String(s) => s == v,
                    Value::Bool(b) => palisade_model::convert::parse_bool_str(v) == Some(*b),
                    _ => false,
                })
        })
        .collect()
}

fn object(body: &Bytes, key: &str) -> Result<Map<String, Value>, Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("Body contains invalid data: {e}")))?;
    match v.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        _ => Err(Error::BadRequest(format!(
            "Expecting to find {key} in request body."
        ))),
    }
}

// ---- projects ----

#[utoipa::path(get, path = "/v3/projects", tag = "identity", summary = "List projects", responses((status = 200, description = "List projects", body = crate::openapi::AnyObject)))]
async fn list_projects(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    let ctx = context(&info);
    let idx = s.service.cache().read();
    let all: Vec<Value> = identity::projects(&idx)
        .into_iter()
        .filter(|p| {
            ctx.is_admin() || !identity::assigned_roles(&idx, &p.id, &info.user_id).is_empty()
        })
        .map(|p| p.to_json())
        .collect();
    let list = filter_by(
        all,
        &query_pairs(&q),
        &["name", "domain_id", "enabled", "id"],
    );
    Ok(ok(
        StatusCode::OK,
        json!({"projects": list, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

#[utoipa::path(get, path = "/v3/projects/{id}", tag = "identity", summary = "Show a project", responses((status = 200, description = "Show a project", body = crate::openapi::AnyObject)))]
async fn show_project(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    let idx = s.service.cache().read();
    let visible =
        context(&info).is_admin() || !identity::assigned_roles(&idx, &id, &info.user_id).is_empty();
    let p = identity::project(&idx, &id)
        .filter(|_| visible)
        .ok_or(Error::IdentityNotFound("project", id))?;
    Ok(ok(StatusCode::OK, json!({"project": p.to_json()})))
}

#[utoipa::path(post, path = "/v3/projects", tag = "identity", summary = "Create a project", request_body = crate::openapi::AnyObject, responses((status = 201, description = "Create a project", body = crate::openapi::AnyObject)))]
async fn create_project(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> KResult {
    let ctx = admin(&s, &headers)?;
    let p = s
        .service
        .create_project(&ctx, &object(&body, "project")?)
        .await?;
    Ok(ok(StatusCode::CREATED, json!({"project": p.to_json()})))
}

#[utoipa::path(delete, path = "/v3/projects/{id}", tag = "identity", summary = "Delete a project", responses((status = 204, description = "Delete a project")))]
async fn delete_project(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    let ctx = admin(&s, &headers)?;
    s.service.delete_project(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- users ----

#[utoipa::path(get, path = "/v3/users", tag = "identity", summary = "List users", responses((status = 200, description = "List users", body = crate::openapi::AnyObject)))]
async fn list_users(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> KResult {
    admin(&s, &headers)?;
    let idx = s.service.cache().read();
    let all = identity::users(&idx)
        .iter()
        .map(identity::User::to_json)
        .collect();
    let list = filter_by(
        all,
        &query_pairs(&q),
        &["name", "domain_id", "enabled", "id"],
    );
    Ok(ok(
        StatusCode::OK,
        json!({"users": list, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

#[utoipa::path(get, path = "/v3/users/{id}", tag = "identity", summary = "Show a user", responses((status = 200, description = "Show a user", body = crate::openapi::AnyObject)))]
async fn show_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    if !(context(&info).is_admin() || info.user_id == id) {
        return Err(Error::PolicyNotAuthorized("identity:get_user".into()).into());
    }
    let idx = s.service.cache().read();
    let u = identity::user(&idx, &id).ok_or(Error::IdentityNotFound("user", id))?;
    Ok(ok(StatusCode::OK, json!({"user": u.to_json()})))
}

#[utoipa::path(post, path = "/v3/users", tag = "identity", summary = "Create a user", request_body = crate::openapi::AnyObject, responses((status = 201, description = "Create a user", body = crate::openapi::AnyObject)))]
async fn create_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> KResult {
    let ctx = admin(&s, &headers)?;
    let u = s.service.create_user(&ctx, &object(&body, "user")?).await?;
    Ok(ok(StatusCode::CREATED, json!({"user": u.to_json()})))
}

#[utoipa::path(patch, path = "/v3/users/{id}", tag = "identity", summary = "Update a user", request_body = crate::openapi::AnyObject, responses((status = 200, description = "Update a user", body = crate::openapi::AnyObject)))]
async fn update_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    let u = s
        .service
        .update_user(&context(&info), &id, &object(&body, "user")?)
        .await?;
    Ok(ok(StatusCode::OK, json!({"user": u.to_json()})))
}

#[utoipa::path(delete, path = "/v3/users/{id}", tag = "identity", summary = "Delete a user", responses((status = 204, description = "Delete a user")))]
async fn delete_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    let ctx = admin(&s, &headers)?;
    s.service.delete_user(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/v3/users/{id}/projects", tag = "identity", summary = "A user's projects", responses((status = 200, description = "A user's projects", body = crate::openapi::AnyObject)))]
async fn user_projects(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    if !(context(&info).is_admin() || info.user_id == id) {
        return Err(Error::PolicyNotAuthorized("identity:list_user_projects".into()).into());
    }
    let idx = s.service.cache().read();
    let list: Vec<Value> = identity::projects(&idx)
        .into_iter()
        .filter(|p| !identity::assigned_roles(&idx, &p.id, &id).is_empty())
        .map(|p| p.to_json())
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"projects": list, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

// ---- roles, domains, assignments ----

#[utoipa::path(get, path = "/v3/roles", tag = "identity", summary = "List roles", responses((status = 200, description = "List roles", body = crate::openapi::AnyObject)))]
async fn list_roles(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> KResult {
    caller_token(&s, &headers)?;
    let all = ROLES.iter().map(|r| role_json(r)).collect();
    let list = filter_by(all, &query_pairs(&q), &["name", "id"]);
    Ok(ok(
        StatusCode::OK,
        json!({"roles": list, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

#[utoipa::path(get, path = "/v3/roles/{id}", tag = "identity", summary = "Show a role", responses((status = 200, description = "Show a role", body = crate::openapi::AnyObject)))]
async fn show_role(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    caller_token(&s, &headers)?;
    if !ROLES.contains(&id.as_str()) {
        return Err(Error::IdentityNotFound("role", id).into());
    }
    Ok(ok(StatusCode::OK, json!({"role": role_json(&id)})))
}

#[utoipa::path(get, path = "/v3/domains", tag = "identity", summary = "List domains", responses((status = 200, description = "List domains", body = crate::openapi::AnyObject)))]
async fn list_domains(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> KResult {
    caller_token(&s, &headers)?;
    let list = filter_by(
        vec![domain_json()],
        &query_pairs(&q),
        &["name", "id", "enabled"],
    );
    Ok(ok(
        StatusCode::OK,
        json!({"domains": list, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

#[utoipa::path(get, path = "/v3/domains/{id}", tag = "identity", summary = "Show a domain", responses((status = 200, description = "Show a domain", body = crate::openapi::AnyObject)))]
async fn show_domain(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> KResult {
    caller_token(&s, &headers)?;
    if id != identity::DEFAULT_DOMAIN {
        return Err(Error::IdentityNotFound("domain", id).into());
    }
    Ok(ok(StatusCode::OK, json!({"domain": domain_json()})))
}

#[utoipa::path(get, path = "/v3/projects/{p}/users/{u}/roles", tag = "identity", summary = "A user's roles on a project", responses((status = 200, description = "A user's roles on a project", body = crate::openapi::AnyObject)))]
async fn list_grants(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, u)): Path<(String, String)>,
) -> KResult {
    admin(&s, &headers)?;
    let idx = s.service.cache().read();
    let roles: Vec<Value> = identity::assigned_roles(&idx, &p, &u)
        .iter()
        .map(|r| role_json(r))
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"roles": roles, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

#[utoipa::path(put, path = "/v3/projects/{p}/users/{u}/roles/{r}", tag = "identity", summary = "Grant a role", responses((status = 204, description = "Grant a role")))]
async fn grant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, u, r)): Path<(String, String, String)>,
) -> KResult {
    let ctx = admin(&s, &headers)?;
    s.service.assign_role(&ctx, &p, &u, &r, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(head, path = "/v3/projects/{p}/users/{u}/roles/{r}", tag = "identity", summary = "Check a role grant", responses((status = 204, description = "Check a role grant")))]
async fn check_grant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, u, r)): Path<(String, String, String)>,
) -> KResult {
    admin(&s, &headers)?;
    let idx = s.service.cache().read();
    if identity::assigned_roles(&idx, &p, &u).contains(&r) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::IdentityNotFound(
            "role assignment",
            format!("{r} for user {u} on project {p}"),
        )
        .into())
    }
}

#[utoipa::path(delete, path = "/v3/projects/{p}/users/{u}/roles/{r}", tag = "identity", summary = "Revoke a role", responses((status = 204, description = "Revoke a role")))]
async fn revoke_grant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, u, r)): Path<(String, String, String)>,
) -> KResult {
    let ctx = admin(&s, &headers)?;
    s.service.assign_role(&ctx, &p, &u, &r, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/v3/role_assignments", tag = "identity", summary = "List role assignments", responses((status = 200, description = "List role assignments", body = crate::openapi::AnyObject)))]
async fn role_assignments(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> KResult {
    let (_, info) = caller_token(&s, &headers)?;
    let q = query_pairs(&q);
    let want = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let (user, project, role) = (want("user.id"), want("scope.project.id"), want("role.id"));
    if !(context(&info).is_admin() || user.as_deref() == Some(info.user_id.as_str())) {
        return Err(Error::PolicyNotAuthorized("identity:list_role_assignments".into()).into());
    }
    let idx = s.service.cache().read();
    let list: Vec<Value> = identity::assignments(&idx)
        .into_iter()
        .filter(|(p, u, r)| user.as_ref().is_none_or(|x| x == u) && project.as_ref().is_none_or(|x| x == p) && role.as_ref().is_none_or(|x| x == r))
        .map(|(p, u, r)| json!({"role": {"id": r}, "user": {"id": u}, "scope": {"project": {"id": p}}}))
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"role_assignments": list, "links": {"self": null, "next": null, "previous": null}}),
    ))
}

/// The `/identity` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(versions))
        .routes(routes!(v3))
        .routes(routes!(validate, check, issue, revoke))
        .routes(routes!(auth_projects))
        .routes(routes!(auth_catalog))
        .routes(routes!(list_projects, create_project))
        .routes(routes!(show_project, delete_project))
        .routes(routes!(list_grants))
        .routes(routes!(grant, check_grant, revoke_grant))
        .routes(routes!(list_users, create_user))
        .routes(routes!(show_user, update_user, delete_user))
        .routes(routes!(user_projects))
        .routes(routes!(list_roles))
        .routes(routes!(show_role))
        .routes(routes!(list_domains))
        .routes(routes!(show_domain))
        .routes(routes!(role_assignments))
}
