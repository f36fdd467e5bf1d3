//! The Neutron v2.0 HTTP API: small handlers that extract, call the service and map the
//! result; every error leaves as `{"NeutronError": {type, message, detail}}` with Neutron's
//! status code. Unknown paths are JSON 404s, unsupported methods JSON 405s, oversized
//! bodies JSON 413s.

use crate::index::{Index, View};
use crate::query::{self, Collection, Item, ListQuery};
use crate::service::{parse_if_match, Context, Service, Tagged};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use palisade_model::convert::Object;
use palisade_model::Error;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Largest request body accepted (Neutron's default `max_request_body_size`).
pub const MAX_BODY: usize = 114_688;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The service.
    pub service: Arc<Service>,
    /// Base URL advertised in links (`None`: from the Host header).
    pub public_url: Option<String>,
    /// Rendered list bodies, valid at one revision.
    pub lists: Arc<ListCache>,
    /// Lifetime of tokens issued by password login.
    pub token_ttl_secs: i64,
    /// Keys for HMAC-signed agent requests.
    pub hmac: Arc<crate::agents::HmacKeys>,
    /// What agents last reported.
    pub agents: Arc<crate::agents::AgentRegistry>,
    /// Watch batches encoded once for every stream.
    pub watch_batches: Arc<crate::watch::EncodedBatches>,
}

/// An error on the wire.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Error::Internal(detail) = &e {
            tracing::error!(%detail, "internal error");
        }
        let body = json!({"NeutronError": {"type": e.neutron_type(), "message": e.to_string(), "detail": ""}});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"/identity\""),
            );
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was not read: the connection cannot carry another request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

type ApiResult = Result<Response, ApiError>;

/// The hex SHA-256 of a token: tokens are stored only as hashes.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn authenticate(idx: &Index, headers: &HeaderMap) -> Result<Context, Error> {
    let token = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::NotAuthenticated)?;
    let info = crate::service::identity::valid_token(idx, token).ok_or(Error::NotAuthenticated)?;
    if info.project_id.is_empty() {
        // An unscoped token proves who you are, not what you may touch.
        return Err(Error::NotAuthenticated);
    }
    Ok(Context {
        project_id: info.project_id,
        roles: info.roles,
        user: info.user,
        user_id: info.user_id,
    })
}

/// The authenticated caller.
pub struct Caller(pub Context);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        if let Some(ctx) = parts.extensions.get::<Context>() {
            // Verified by the HMAC layer.
            return Ok(Caller(ctx.clone()));
        }
        let app = <AppState as axum::extract::FromRef<S>>::from_ref(state);
        let idx = app.service.cache().read();
        Ok(Caller(authenticate(&idx, &parts.headers)?))
    }
}

/// A request body, read with our limit and errors (JSON 413, not axum's plain text).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(n) = declared.filter(|n| *n > MAX_BODY) {
            return Err(Error::PayloadTooLarge(n, MAX_BODY).into());
        }
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::PayloadTooLarge(declared.unwrap_or(MAX_BODY + 1), MAX_BODY).into())
            }
            Err(rej) => Err(Error::BadRequest(format!("Body could not be read: {rej}")).into()),
        }
    }
}

fn parse_json(body: &Bytes) -> Result<Map<String, Value>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest("Resource body required".into()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Error::BadRequest(format!(
            "Body contains invalid data: expected a JSON object, got {}",
            palisade_model::error::quote(&other)
        ))),
        Err(e) => Err(Error::BadRequest(format!(
            "Body contains invalid data: {e}"
        ))),
    }
}

/// Unwraps `{"<singular>": {...}}` or, when allowed, bulk `{"<plural>": [...]}`.
/// Returns the objects and whether the request was bulk.
fn envelope(
    body: &Bytes,
    singular: &str,
    plural: Option<&str>,
) -> Result<(Vec<Object>, bool), Error> {
    let mut top = parse_json(body)?;
    let extra: Vec<String> = top
        .keys()
        .filter(|k| k.as_str() != singular && Some(k.as_str()) != plural)
        .cloned()
        .collect();
    if !extra.is_empty()
        && (top.contains_key(singular) || plural.is_some_and(|p| top.contains_key(p)))
    {
        return Err(Error::BadRequest(format!(
            "Unrecognized attribute(s) '{}'",
            extra.join(", ")
        )));
    }
    if let Some(v) = top.remove(singular) {
        return match v {
            Value::Object(o) => Ok((vec![o], false)),
            other => Err(Error::BadRequest(format!(
                "Object '{singular}' contains invalid data: expected an object, got {}",
                palisade_model::error::quote(&other)
            ))),
        };
    }
    if let Some(plural) = plural {
        if let Some(v) = top.remove(plural) {
            let Value::Array(items) = v else {
                return Err(Error::BadRequest(format!(
                    "Invalid input for {plural}: expected a list"
                )));
            };
            if items.is_empty() {
                return Err(Error::BadRequest(format!(
                    "Resources required ({plural} is empty)"
                )));
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Object(mut o) => match o.remove(singular) {
                        Some(Value::Object(inner)) if o.is_empty() => out.push(inner),
                        Some(_) => {
                            return Err(Error::BadRequest(format!(
                                "Object '{singular}' contains invalid data in {plural}"
                            )))
                        }
                        None => out.push(o),
                    },
                    other => {
                        return Err(Error::BadRequest(format!(
                            "Invalid input for {plural}: {} is not an object",
                            palisade_model::error::quote(&other)
                        )))
                    }
                }
            }
            return Ok((out, true));
        }
    }
    Err(Error::BadRequest(format!(
        "Unable to find '{singular}' in request body"
    )))
}

/// The object inside a `{"<singular>": {...}}` body.
pub(crate) fn single(body: &Bytes, singular: &str) -> Result<Object, Error> {
    let (mut items, _) = envelope(body, singular, None)?;
    Ok(items.remove(0))
}

fn json_response(status: StatusCode, bytes: impl Into<Body>) -> Response {
    let body: Body = bytes.into();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn one(status: StatusCode, singular: &str, obj: &View, fields: &[String]) -> Response {
    let mut out = Vec::with_capacity(obj.bytes.len() + singular.len() + 8);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(singular.as_bytes());
    out.extend_from_slice(b"\":");
    if fields.is_empty() {
        out.extend_from_slice(&obj.bytes);
    } else {
        let item = Item {
            json: &obj.json,
            bytes: &obj.bytes,
        };
        out.extend_from_slice(
            &serde_json::to_vec(&query::project_item(&item, fields)).unwrap_or_default(),
        );
    }
    out.push(b'}');
    json_response(status, out)
}

fn created(singular: &str, plural: &str, objs: Vec<View>, bulk: bool) -> Response {
    let mut out = Vec::new();
    if bulk {
        out.extend_from_slice(format!("{{\"{plural}\":[").as_bytes());
        for (n, o) in objs.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&o.bytes);
        }
        out.extend_from_slice(b"]}");
        json_response(StatusCode::CREATED, out)
    } else {
        match objs.first() {
            Some(o) => one(StatusCode::CREATED, singular, o, &[]),
            None => json_response(
                StatusCode::CREATED,
                format!("{{\"{singular}\":{{}}}}").into_bytes(),
            ),
        }
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Error::BadRequest("Invalid If-Match header: not text".into()))?;
            parse_if_match(s).map(Some)
        }
    }
}

fn no_body(body: &Bytes) -> Result<(), Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(())
    } else {
        Err(Error::BadRequest(
            "Request body is not supported in DELETE.".into(),
        ))
    }
}

fn show_fields(query: &Option<String>) -> Vec<String> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn base_url(state: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let root = match &state.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{root}{}", uri.path())
}

/// Serves a list: from the cache when nothing changed since it was rendered for this
/// caller and query, else rendered from what `select` picks out of the index.
#[allow(clippy::too_many_arguments)]
fn serve_list<'a>(
    s: &AppState,
    ctx: &Context,
    headers: &HeaderMap,
    uri: &Uri,
    q: &ListQuery,
    coll: &Collection,
    idx: &'a Index,
    select: impl FnOnce(&'a Index) -> Vec<Item<'a>>,
) -> Response {
    let base = base_url(s, headers, uri);
    let key = ListCache::key(ctx, &base, q, coll);
    if let Some(body) = s.lists.get(&key, idx.revision) {
        return json_response(StatusCode::OK, body);
    }
    let body = Bytes::from(query::render(select(idx), q, coll, &base));
    s.lists.put(key, idx.revision, body.clone());
    json_response(StatusCode::OK, body)
}

/// The listable form of index entries.
fn items<'a, T: 'a>(entries: impl Iterator<Item = &'a crate::index::Entry<T>>) -> Vec<Item<'a>> {
    entries
        .map(|e| Item {
            json: &e.json,
            bytes: &e.bytes,
        })
        .collect()
}

/// Rendered list bodies by (caller scope, base URL, query), valid at one index revision:
/// repeated lists between changes (agents, Nova, dashboards polling) cost a lookup.
#[derive(Default)]
pub struct ListCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (i64, Bytes)>>,
}

/// Most list bodies remembered at once.
const LIST_CACHE_ENTRIES: usize = 256;

impl ListCache {
    fn key(ctx: &Context, base: &str, q: &ListQuery, coll: &Collection) -> String {
        let scope = if ctx.reads_all() {
            "*"
        } else {
            ctx.project_id.as_str()
        };
        format!("{}|{scope}|{base}|{:?}", coll.name, q.raw)
    }
    fn get(&self, key: &str, revision: i64) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(rev, _)| *rev == revision)
            .map(|(_, b)| b.clone())
    }
    fn put(&self, key: String, revision: i64, body: Bytes) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= LIST_CACHE_ENTRIES {
                entries.retain(|_, (rev, _)| *rev == revision);
                if entries.len() >= LIST_CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (revision, body));
        }
    }
}

/// The projects whose default group a list call should ensure (spec §3).
fn projects_to_ensure(ctx: &Context, q: &ListQuery) -> Vec<String> {
    match q.filter("project_id") {
        Some(vals) => vals
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        None => vec![ctx.project_id.clone()],
    }
}

// ---- security groups ----

#[utoipa::path(get, path = "/", tag = "security-groups", summary = "List security groups (with their rules)", responses((status = 200, description = "List security groups (with their rules)", body = crate::openapi::SecurityGroupList)))]
async fn list_sgs(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query::parse(q.as_deref().unwrap_or(""), &query::SECURITY_GROUPS)?;
    for p in projects_to_ensure(&ctx, &q) {
        s.service.ensure_default_sg(&ctx, &p).await?;
    }
    let idx = s.service.cache().read();
    Ok(serve_list(
        &s,
        &ctx,
        &headers,
        &uri,
        &q,
        &query::SECURITY_GROUPS,
        &idx,
        |idx| {
            let candidates: Vec<_> = match q.filter("id") {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| id.as_str().and_then(|id| idx.sgs.get(id)))
                    .collect(),
                None => idx.sgs.values().collect(),
            };
            items(
                candidates
                    .into_iter()
                    .filter(|e| ctx.sees(&e.value.project_id)),
            )
        },
    ))
}

#[utoipa::path(post, path = "/", tag = "security-groups", summary = "Create security groups", request_body = crate::openapi::SecurityGroupCreate, responses((status = 201, description = "Create security groups", body = crate::openapi::SecurityGroupCreated)))]
async fn create_sgs(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    RawBody(body): RawBody,
) -> ApiResult {
    let (items, bulk) = envelope(&body, "security_group", Some("security_groups"))?;
    let out = s.service.create_security_groups(&ctx, &items).await?;
    Ok(created("security_group", "security_groups", out, bulk))
}

#[utoipa::path(get, path = "/{id}", tag = "security-groups", summary = "Show a security group", responses((status = 200, description = "Show a security group", body = crate::openapi::SecurityGroupOne)))]
async fn show_sg(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let obj = s.service.show_security_group(&ctx, &id)?;
    Ok(one(
        StatusCode::OK,
        "security_group",
        &obj,
        &show_fields(&q),
    ))
}

#[utoipa::path(put, path = "/{id}", tag = "security-groups", summary = "Update a security group", request_body = crate::openapi::SecurityGroupUpdate, responses((status = 200, description = "Update a security group", body = crate::openapi::SecurityGroupOne)))]
async fn update_sg(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let im = if_match(&headers)?;
    let (items, _) = envelope(&body, "security_group", None)?;
    let obj = s
        .service
        .update_security_group(&ctx, &id, &items[0], im)
        .await?;
    Ok(one(StatusCode::OK, "security_group", &obj, &[]))
}

#[utoipa::path(delete, path = "/{id}", tag = "security-groups", summary = "Delete a security group and its rules", responses((status = 204, description = "Delete a security group and its rules")))]
async fn delete_sg(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    no_body(&body)?;
    s.service
        .delete_security_group(&ctx, &id, if_match(&headers)?)
        .await?;
    Ok(no_content())
}

// ---- tags (security groups, ports, networks) ----

fn tags_body(body: &Bytes) -> Result<Vec<String>, Error> {
    let top = parse_json(body)?;
    palisade_model::convert::check_attributes(
        &top,
        palisade_model::convert::Method::Update,
        &["tags"],
        &[],
    )?;
    palisade_model::input::tags(palisade_model::convert::required(&top, "tags")?)
}

fn tags_response(status: StatusCode, tags: Vec<String>) -> Response {
    json_response(
        status,
        serde_json::to_vec(&json!({ "tags": tags })).unwrap_or_default(),
    )
}

async fn tags_get(s: AppState, ctx: Context, kind: Tagged, id: String) -> ApiResult {
    Ok(tags_response(
        StatusCode::OK,
        s.service.get_tags(&ctx, kind, &id)?,
    ))
}
async fn tags_replace(
    s: AppState,
    ctx: Context,
    kind: Tagged,
    id: String,
    body: Bytes,
) -> ApiResult {
    let new = tags_body(&body)?;
    let tags = s
        .service
        .change_tags(&ctx, kind, &id, |t| {
            *t = new.clone();
            Ok(())
        })
        .await?;
    Ok(tags_response(StatusCode::OK, tags))
}
async fn tags_add(s: AppState, ctx: Context, kind: Tagged, id: String, body: Bytes) -> ApiResult {
    let new = tags_body(&body)?;
    let tags = s
        .service
        .change_tags(&ctx, kind, &id, |t| {
            for n in &new {
                if !t.contains(n) {
                    t.push(n.clone());
                }
            }
            Ok(())
        })
        .await?;
    Ok(tags_response(StatusCode::OK, tags))
}
async fn tags_clear(s: AppState, ctx: Context, kind: Tagged, id: String) -> ApiResult {
    s.service
        .change_tags(&ctx, kind, &id, |t| {
            t.clear();
            Ok(())
        })
        .await?;
    Ok(no_content())
}
async fn tag_check(s: AppState, ctx: Context, kind: Tagged, id: String, tag: String) -> ApiResult {
    s.service.check_tag(&ctx, kind, &id, &tag)?;
    Ok(no_content())
}
async fn tag_put(s: AppState, ctx: Context, kind: Tagged, id: String, tag: String) -> ApiResult {
    let tag = palisade_model::input::tag(&tag)?;
    s.service
        .change_tags(&ctx, kind, &id, |t| {
            if !t.contains(&tag) {
                t.push(tag.clone());
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::CREATED.into_response())
}
async fn tag_delete(s: AppState, ctx: Context, kind: Tagged, id: String, tag: String) -> ApiResult {
    s.service
        .change_tags(&ctx, kind, &id, |t| {
            let before = t.len();
            t.retain(|x| x != &tag);
            if t.len() == before {
                Err(Error::TagNotFound {
                    resource: "resource",
                    id: id.clone(),
                    tag: tag.clone(),
                })
            } else {
                Ok(())
            }
        })
        .await?;
    Ok(no_content())
}

/// The tag routes of one resource kind (`/{id}/tags[/{tag}]`), each handler documented.
macro_rules! tag_routes {
    ($module:ident, $kind:expr, $tag:literal) => {
        mod $module {
            use super::*;
            const KIND: Tagged = $kind;

            #[utoipa::path(get, path = "/{id}/tags", tag = $tag, operation_id = concat!(stringify!($module), "_list"), summary = "List tags", responses((status = 200, description = "The tags", body = crate::openapi::Tags)))]
            pub async fn list(State(s): State<AppState>, Caller(c): Caller, Path(id): Path<String>) -> ApiResult {
                tags_get(s, c, KIND, id).await
            }

            #[utoipa::path(put, path = "/{id}/tags", tag = $tag, operation_id = concat!(stringify!($module), "_replace"), summary = "Replace all tags", request_body = crate::openapi::Tags, responses((status = 200, description = "The tags", body = crate::openapi::Tags)))]
            pub async fn replace(State(s): State<AppState>, Caller(c): Caller, Path(id): Path<String>, RawBody(b): RawBody) -> ApiResult {
                tags_replace(s, c, KIND, id, b).await
            }

            #[utoipa::path(post, path = "/{id}/tags", tag = $tag, operation_id = concat!(stringify!($module), "_add"), summary = "Add tags", request_body = crate::openapi::Tags, responses((status = 200, description = "The tags", body = crate::openapi::Tags)))]
            pub async fn add(State(s): State<AppState>, Caller(c): Caller, Path(id): Path<String>, RawBody(b): RawBody) -> ApiResult {
                tags_add(s, c, KIND, id, b).await
            }

            #[utoipa::path(delete, path = "/{id}/tags", tag = $tag, operation_id = concat!(stringify!($module), "_clear"), summary = "Remove all tags", responses((status = 204, description = "Removed")))]
            pub async fn clear(State(s): State<AppState>, Caller(c): Caller, Path(id): Path<String>) -> ApiResult {
                tags_clear(s, c, KIND, id).await
            }

            #[utoipa::path(get, path = "/{id}/tags/{tag}", tag = $tag, operation_id = concat!(stringify!($module), "_check"), summary = "Check a tag", responses((status = 204, description = "The tag is there")))]
            pub async fn check(State(s): State<AppState>, Caller(c): Caller, Path((id, tag)): Path<(String, String)>) -> ApiResult {
                tag_check(s, c, KIND, id, tag).await
            }

            #[utoipa::path(put, path = "/{id}/tags/{tag}", tag = $tag, operation_id = concat!(stringify!($module), "_put"), summary = "Add one tag", responses((status = 201, description = "Added")))]
            pub async fn put(State(s): State<AppState>, Caller(c): Caller, Path((id, tag)): Path<(String, String)>) -> ApiResult {
                tag_put(s, c, KIND, id, tag).await
            }

            #[utoipa::path(delete, path = "/{id}/tags/{tag}", tag = $tag, operation_id = concat!(stringify!($module), "_delete"), summary = "Remove one tag", responses((status = 204, description = "Removed")))]
            pub async fn delete(State(s): State<AppState>, Caller(c): Caller, Path((id, tag)): Path<(String, String)>) -> ApiResult {
                tag_delete(s, c, KIND, id, tag).await
            }

            pub fn routes() -> OpenApiRouter<AppState> {
                OpenApiRouter::new()
                    .routes(routes!(list, replace, add, clear))
                    .routes(routes!(check, put, delete))
            }
        }
    };
}

tag_routes!(sg_tags, Tagged::SecurityGroup, "security-groups");
tag_routes!(port_tags, Tagged::Port, "ports");
tag_routes!(network_tags, Tagged::Network, "networks");

// ---- rules ----

#[utoipa::path(get, path = "/", tag = "security-group-rules", summary = "List rules", responses((status = 200, description = "List rules", body = crate::openapi::RuleList)))]
async fn list_rules(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query::parse(q.as_deref().unwrap_or(""), &query::RULES)?;
    for p in projects_to_ensure(&ctx, &q) {
        s.service.ensure_default_sg(&ctx, &p).await?;
    }
    let idx = s.service.cache().read();
    Ok(serve_list(
        &s,
        &ctx,
        &headers,
        &uri,
        &q,
        &query::RULES,
        &idx,
        |idx| {
            let candidates: Vec<_> = if let Some(ids) = q.filter("id") {
                ids.iter()
                    .filter_map(|id| id.as_str().and_then(|id| idx.rules.get(id)))
                    .collect()
            } else if let Some(sgs) = q.filter("security_group_id") {
                sgs.iter()
                    .filter_map(|v| v.as_str())
                    .flat_map(|sg| idx.rules_of(sg))
                    .collect()
            } else {
                idx.rules.values().collect()
            };
            // A rule is visible with its parent group (Neutron's policy keys on the group owner).
            items(candidates.into_iter().filter(|r| {
                ctx.reads_all()
                    || idx
                        .sgs
                        .get(&r.value.security_group_id)
                        .is_some_and(|sg| sg.value.project_id == ctx.project_id)
            }))
        },
    ))
}

#[utoipa::path(post, path = "/", tag = "security-group-rules", summary = "Create rules", request_body = crate::openapi::RuleCreate, responses((status = 201, description = "Create rules", body = crate::openapi::RuleCreated)))]
async fn create_rules(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    RawBody(body): RawBody,
) -> ApiResult {
    let (items, bulk) = envelope(&body, "security_group_rule", Some("security_group_rules"))?;
    let out = s.service.create_rules(&ctx, &items).await?;
    Ok(created(
        "security_group_rule",
        "security_group_rules",
        out,
        bulk,
    ))
}

#[utoipa::path(get, path = "/{id}", tag = "security-group-rules", summary = "Show a rule", responses((status = 200, description = "Show a rule", body = crate::openapi::RuleOne)))]
async fn show_rule(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let obj = s.service.show_rule(&ctx, &id)?;
    Ok(one(
        StatusCode::OK,
        "security_group_rule",
        &obj,
        &show_fields(&q),
    ))
}

#[utoipa::path(delete, path = "/{id}", tag = "security-group-rules", summary = "Delete a rule", responses((status = 204, description = "Delete a rule")))]
async fn delete_rule(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    no_body(&body)?;
    s.service.delete_rule(&ctx, &id).await?;
    Ok(no_content())
}

// ---- ports ----

#[utoipa::path(get, path = "/", tag = "ports", summary = "List ports", responses((status = 200, description = "List ports", body = crate::openapi::PortList)))]
async fn list_ports(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query::parse(q.as_deref().unwrap_or(""), &query::PORTS)?;
    let idx = s.service.cache().read();
    Ok(serve_list(
        &s,
        &ctx,
        &headers,
        &uri,
        &q,
        &query::PORTS,
        &idx,
        |idx| {
            let candidates: Vec<_> = if let Some(ids) = q.filter("id") {
                ids.iter()
                    .filter_map(|id| id.as_str().and_then(|id| idx.ports.get(id)))
                    .collect()
            } else if let Some(sgs) = q.filter("security_groups") {
                let ids: std::collections::BTreeSet<&String> = sgs
                    .iter()
                    .filter_map(|v| v.as_str())
                    .flat_map(|sg| idx.ports_by_sg.get(sg).into_iter().flatten())
                    .collect();
                ids.into_iter().filter_map(|id| idx.ports.get(id)).collect()
            } else {
                idx.ports.values().collect()
            };
            items(
                candidates
                    .into_iter()
                    .filter(|e| ctx.sees(&e.value.project_id)),
            )
        },
    ))
}

#[utoipa::path(post, path = "/", tag = "ports", summary = "Create ports", request_body = crate::openapi::PortCreate, responses((status = 201, description = "Create ports", body = crate::openapi::PortCreated)))]
async fn create_ports(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    RawBody(body): RawBody,
) -> ApiResult {
    let (items, bulk) = envelope(&body, "port", Some("ports"))?;
    let out = s.service.create_ports(&ctx, &items).await?;
    Ok(created("port", "ports", out, bulk))
}

#[utoipa::path(get, path = "/{id}", tag = "ports", summary = "Show a port", responses((status = 200, description = "Show a port", body = crate::openapi::PortOne)))]
async fn show_port(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let obj = s.service.show_port(&ctx, &id)?;
    Ok(one(StatusCode::OK, "port", &obj, &show_fields(&q)))
}

#[utoipa::path(put, path = "/{id}", tag = "ports", summary = "Update a port (its groups, addresses, binding)", request_body = crate::openapi::PortUpdate, responses((status = 200, description = "Update a port (its groups, addresses, binding)", body = crate::openapi::PortOne)))]
async fn update_port(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let im = if_match(&headers)?;
    let (items, _) = envelope(&body, "port", None)?;
    let obj = s.service.update_port(&ctx, &id, &items[0], im).await?;
    Ok(one(StatusCode::OK, "port", &obj, &[]))
}

#[utoipa::path(delete, path = "/{id}", tag = "ports", summary = "Delete a port", responses((status = 204, description = "Delete a port")))]
async fn delete_port(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    no_body(&body)?;
    s.service
        .delete_port(&ctx, &id, if_match(&headers)?)
        .await?;
    Ok(no_content())
}

// ---- networks ----

#[utoipa::path(get, path = "/", tag = "networks", summary = "List networks", responses((status = 200, description = "List networks", body = crate::openapi::NetworkList)))]
async fn list_networks(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query::parse(q.as_deref().unwrap_or(""), &query::NETWORKS)?;
    let idx = s.service.cache().read();
    Ok(serve_list(
        &s,
        &ctx,
        &headers,
        &uri,
        &q,
        &query::NETWORKS,
        &idx,
        |idx| {
            items(
                idx.networks
                    .values()
                    .filter(|e| e.value.shared || ctx.sees(&e.value.project_id)),
            )
        },
    ))
}

#[utoipa::path(post, path = "/", tag = "networks", summary = "Create networks", request_body = crate::openapi::NetworkCreate, responses((status = 201, description = "Create networks", body = crate::openapi::NetworkCreated)))]
async fn create_networks(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    RawBody(body): RawBody,
) -> ApiResult {
    let (items, bulk) = envelope(&body, "network", Some("networks"))?;
    let out = s.service.create_networks(&ctx, &items).await?;
    Ok(created("network", "networks", out, bulk))
}

#[utoipa::path(get, path = "/{id}", tag = "networks", summary = "Show a network", responses((status = 200, description = "Show a network", body = crate::openapi::NetworkOne)))]
async fn show_network(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let obj = s.service.show_network(&ctx, &id)?;
    Ok(one(StatusCode::OK, "network", &obj, &show_fields(&q)))
}

#[utoipa::path(put, path = "/{id}", tag = "networks", summary = "Update a network", request_body = crate::openapi::NetworkUpdate, responses((status = 200, description = "Update a network", body = crate::openapi::NetworkOne)))]
async fn update_network(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let im = if_match(&headers)?;
    let (items, _) = envelope(&body, "network", None)?;
    let obj = s.service.update_network(&ctx, &id, &items[0], im).await?;
    Ok(one(StatusCode::OK, "network", &obj, &[]))
}

#[utoipa::path(delete, path = "/{id}", tag = "networks", summary = "Delete a network", responses((status = 204, description = "Delete a network")))]
async fn delete_network(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    no_body(&body)?;
    s.service
        .delete_network(&ctx, &id, if_match(&headers)?)
        .await?;
    Ok(no_content())
}

// ---- address groups ----

#[utoipa::path(get, path = "/", tag = "address-groups", summary = "List address groups", responses((status = 200, description = "List address groups", body = crate::openapi::AddressGroupList)))]
async fn list_ags(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query::parse(q.as_deref().unwrap_or(""), &query::ADDRESS_GROUPS)?;
    let idx = s.service.cache().read();
    Ok(serve_list(
        &s,
        &ctx,
        &headers,
        &uri,
        &q,
        &query::ADDRESS_GROUPS,
        &idx,
        |idx| {
            items(
                idx.address_groups
                    .values()
                    .filter(|e| ctx.sees(&e.value.project_id)),
            )
        },
    ))
}

#[utoipa::path(post, path = "/", tag = "address-groups", summary = "Create an address group", request_body = crate::openapi::AddressGroupBody, responses((status = 201, description = "Create an address group", body = crate::openapi::AddressGroupOne)))]
async fn create_ags(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    RawBody(body): RawBody,
) -> ApiResult {
    let (items, bulk) = envelope(&body, "address_group", Some("address_groups"))?;
    let out = s.service.create_address_groups(&ctx, &items).await?;
    Ok(created("address_group", "address_groups", out, bulk))
}

#[utoipa::path(get, path = "/{id}", tag = "address-groups", summary = "Show an address group", responses((status = 200, description = "Show an address group", body = crate::openapi::AddressGroupOne)))]
async fn show_ag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let obj = s.service.show_address_group(&ctx, &id)?;
    Ok(one(StatusCode::OK, "address_group", &obj, &show_fields(&q)))
}

#[utoipa::path(put, path = "/{id}", tag = "address-groups", summary = "Update an address group", request_body = crate::openapi::AddressGroupBody, responses((status = 200, description = "Update an address group", body = crate::openapi::AddressGroupOne)))]
async fn update_ag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let im = if_match(&headers)?;
    let (items, _) = envelope(&body, "address_group", None)?;
    let obj = s
        .service
        .update_address_group(&ctx, &id, &items[0], im)
        .await?;
    Ok(one(StatusCode::OK, "address_group", &obj, &[]))
}

#[utoipa::path(put, path = "/{id}/{action}", tag = "address-groups", summary = "Add (`add_addresses`) or remove (`remove_addresses`) addresses", request_body = crate::openapi::AddressesBody, responses((status = 200, description = "Add (`add_addresses`) or remove (`remove_addresses`) addresses", body = crate::openapi::AddressGroupOne)))]
async fn ag_action(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((id, action)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult {
    let add = match action.as_str() {
        "add_addresses" => true,
        "remove_addresses" => false,
        _ => return Err(Error::NotFound.into()),
    };
    let obj = parse_json(&body)?;
    let out = s.service.change_addresses(&ctx, &id, &obj, add).await?;
    Ok(one(StatusCode::OK, "address_group", &out, &[]))
}

#[utoipa::path(delete, path = "/{id}", tag = "address-groups", summary = "Delete an address group", responses((status = 204, description = "Delete an address group")))]
async fn delete_ag(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    no_body(&body)?;
    s.service
        .delete_address_group(&ctx, &id, if_match(&headers)?)
        .await?;
    Ok(no_content())
}

// ---- quotas ----

fn value_response(v: Value) -> Response {
    json_response(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default())
}

#[utoipa::path(get, path = "/", tag = "quotas", summary = "List projects with non-default quotas", responses((status = 200, description = "List projects with non-default quotas", body = crate::openapi::AnyObject)))]
async fn list_quotas(State(s): State<AppState>, Caller(ctx): Caller) -> ApiResult {
    Ok(value_response(s.service.list_quotas(&ctx)?))
}
#[utoipa::path(get, path = "/{project}", tag = "quotas", summary = "Show a project's quota", responses((status = 200, description = "Show a project's quota", body = crate::openapi::QuotaBody)))]
async fn show_quota(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(p): Path<String>,
) -> ApiResult {
    Ok(value_response(s.service.show_quota(&ctx, &p)?))
}
#[utoipa::path(get, path = "/{project}/{what}", tag = "quotas", summary = "`default` limits or `details` (limit, used, reserved)", responses((status = 200, description = "`default` limits or `details` (limit, used, reserved)", body = crate::openapi::QuotaBody)))]
async fn quota_sub(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((p, what)): Path<(String, String)>,
) -> ApiResult {
    match what.as_str() {
        "default" => Ok(value_response(s.service.default_quota(&ctx, &p)?)),
        "details" => Ok(value_response(s.service.quota_details(&ctx, &p)?)),
        _ => Err(Error::NotFound.into()),
    }
}
#[utoipa::path(put, path = "/{project}", tag = "quotas", summary = "Set a project's quota", request_body = crate::openapi::QuotaBody, responses((status = 200, description = "Set a project's quota", body = crate::openapi::QuotaBody)))]
async fn update_quota(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(p): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let (items, _) = envelope(&body, "quota", None)?;
    Ok(value_response(
        s.service.update_quota(&ctx, &p, Some(&items[0])).await?,
    ))
}
#[utoipa::path(delete, path = "/{project}", tag = "quotas", summary = "Reset a project's quota to the defaults", responses((status = 204, description = "Reset a project's quota to the defaults")))]
async fn delete_quota(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(p): Path<String>,
) -> ApiResult {
    s.service.update_quota(&ctx, &p, None).await?;
    Ok(no_content())
}

// ---- discovery ----

/// Extension aliases Palisade implements (clients enable features by these).
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("security-group", "security-group", "The security groups extension."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("standard-attr-tag", "Tag support for resources with standard attribute: port, security_group, network", "Enables to set tag on resources with standard attribute."),
    ("tag-creation", "Tag creation extension", "Enables adding tags to resources in bulk (POST /tags)."),
    ("revision-if-match", "If-Match constraints based on revision_number", "Extension indicating that If-Match based on revision_number is supported."),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
    ("security-groups-normalized-cidr", "Normalized CIDR field for security group rules", "Add new field with normalized remote_ip_prefix cidr in SG rule"),
    ("security-groups-remote-address-group", "Remote address group id field for security group rules", "Add new field of remote address group id in SG rules"),
    ("security-groups-rules-belongs-to-default-sg", "Security group rule belongs to the project's default security group", "Flag to determine if the security group rule belongs to the project's default security group"),
    ("address-group", "Address group", "Support address group"),
    ("port-security", "Port Security", "Provides port security"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("aap-reject-multicast", "Allowed address pairs reject multicast", "Rejects multicast addresses in allowed address pairs"),
    ("port-security-groups-filtering", "Port filtering on security groups", "Provides security groups filtering when listing ports"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("filter-validation", "Filter parameters validation", "Provides validation on filtering parameters."),
    ("empty-string-filtering", "Empty String Filtering Extension", "Allow filtering by attributes with empty string value"),
];

fn extension_json(alias: &str, name: &str, desc: &str) -> Value {
    json!({"alias": alias, "name": name, "description": desc, "updated": "2026-01-01T00:00:00-00:00", "links": []})
}

#[utoipa::path(get, path = "/extensions", tag = "extensions", summary = "List API extensions", responses((status = 200, description = "List API extensions", body = crate::openapi::AnyObject)))]
async fn list_extensions(Caller(_): Caller) -> Response {
    let exts: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(a, n, d)| extension_json(a, n, d))
        .collect();
    value_response(json!({ "extensions": exts }))
}

#[utoipa::path(get, path = "/extensions/{alias}", tag = "extensions", summary = "Show an API extension", responses((status = 200, description = "Show an API extension", body = crate::openapi::AnyObject)))]
async fn show_extension(Caller(_): Caller, Path(alias): Path<String>) -> ApiResult {
    let (a, n, d) = EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .ok_or(Error::NotFound)?;
    Ok(value_response(
        json!({ "extension": extension_json(a, n, d) }),
    ))
}

#[utoipa::path(get, path = "/", tag = "versions", summary = "API versions", responses((status = 200, description = "API versions", body = crate::openapi::AnyObject)))]
async fn versions(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let root = base_url(&s, &headers, &Uri::from_static("/"));
    let href = format!("{}/v2.0/", root.trim_end_matches('/'));
    value_response(
        json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]}),
    )
}

#[utoipa::path(get, path = "/", tag = "versions", summary = "The v2.0 resources", responses((status = 200, description = "The v2.0 resources", body = crate::openapi::AnyObject)))]
async fn v2_root(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let root = base_url(&s, &headers, &Uri::from_static("/v2.0"));
    let resources: Vec<Value> = [
        ("security_group", "security_groups", "security-groups"),
        ("security_group_rule", "security_group_rules", "security-group-rules"),
        ("port", "ports", "ports"),
        ("network", "networks", "networks"),
        ("address_group", "address_groups", "address-groups"),
        ("quota", "quotas", "quotas"),
    ]
    .iter()
    .map(|(name, coll, path)| {
        json!({"name": name, "collection": coll, "links": [{"rel": "self", "href": format!("{root}/{path}")}]})
    })
    .collect();
    value_response(json!({ "resources": resources }))
}

/// An error in the shape of the API the path belongs to: Keystone's under `/identity`,
/// Neutron's elsewhere.
fn error_at(path: &str, e: Error) -> Response {
    if path == "/identity" || path.starts_with("/identity/") {
        crate::keystone::KeystoneError(e).into_response()
    } else {
        ApiError(e).into_response()
    }
}

async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    error_at(uri.path(), Error::NotFound)
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    error_at(uri.path(), Error::MethodNotAllowed(method.to_string()))
}

/// Strips Neutron's tolerated `.json` suffix and a trailing `/` before routing.
fn normalize_path(mut req: Request<Body>) -> Request<Body> {
    let path = req.uri().path();
    if path == "/openapi.json" {
        return req;
    }
    let stripped = path.strip_suffix(".json").unwrap_or(path);
    let stripped = if stripped.len() > 1 {
        stripped.trim_end_matches('/')
    } else {
        stripped
    };
    if stripped.len() != path.len() {
        let stripped = if stripped.is_empty() { "/" } else { stripped };
        let pq = match req.uri().query() {
            Some(q) => format!("{stripped}?{q}"),
            None => stripped.to_string(),
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Adds `X-Openstack-Request-Id` (echoing the caller's, as Neutron does, or a new one) and
/// logs one line per request: id, method, path (never the query's or headers' secrets:
/// tokens travel in headers, which are not logged), status and duration.
async fn request_id(
    State(s): State<AppState>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let id = req
        .headers()
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(String::from)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if path != "/metrics" {
        s.service
            .metrics()
            .request(&path, method.as_str(), status, ms / 1e3);
    }
    if status >= 500 {
        tracing::warn!(request_id = %id, %method, path, status, ms, "request");
    } else {
        tracing::info!(request_id = %id, %method, path, status, ms, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}

/// The whole API as a router.
/// The documented routes and the OpenAPI document generated from them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let sg = OpenApiRouter::new()
        .routes(routes!(list_sgs, create_sgs))
        .routes(routes!(show_sg, update_sg, delete_sg))
        .merge(sg_tags::routes());
    let rules = OpenApiRouter::new()
        .routes(routes!(list_rules, create_rules))
        .routes(routes!(show_rule, delete_rule));
    let ports = OpenApiRouter::new()
        .routes(routes!(list_ports, create_ports))
        .routes(routes!(show_port, update_port, delete_port))
        .merge(port_tags::routes());
    let networks = OpenApiRouter::new()
        .routes(routes!(list_networks, create_networks))
        .routes(routes!(show_network, update_network, delete_network))
        .merge(network_tags::routes());
    let ags = OpenApiRouter::new()
        .routes(routes!(list_ags, create_ags))
        .routes(routes!(show_ag, update_ag, delete_ag))
        .routes(routes!(ag_action));
    let quotas = OpenApiRouter::new()
        .routes(routes!(list_quotas))
        .routes(routes!(show_quota, update_quota, delete_quota))
        .routes(routes!(quota_sub));
    let v2 = OpenApiRouter::new()
        .routes(routes!(v2_root))
        .routes(routes!(list_extensions))
        .routes(routes!(show_extension))
        .nest("/security-groups", sg)
        .nest("/security-group-rules", rules)
        .nest("/ports", ports)
        .nest("/networks", networks)
        .nest("/address-groups", ags)
        .nest("/quotas", quotas)
        .nest(
            "/palisade",
            crate::watch::routes().merge(crate::agents::routes()),
        );
    let (router, api) = OpenApiRouter::new()
        .routes(routes!(versions))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .nest("/v2.0", v2)
        .nest("/identity", crate::keystone::routes())
        .split_for_parts();
    (router, crate::openapi::finish(api))
}

/// The whole router: the documented routes, the fallbacks and the middleware.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::agents::hmac_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_id,
        ))
        .with_state(state)
}

static OPENAPI: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| api().1.to_pretty_json().unwrap_or_default());

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "versions", summary = "The OpenAPI 3 document of this API", responses((status = 200, description = "OpenAPI 3.1", body = crate::openapi::AnyObject)))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::ServiceExt as _;
    let app = router(state);
    let app = app.map_request(normalize_path);
    axum::serve(listener, tower::make::Shared::new(app))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `GET /metrics`: Prometheus text format (no authentication, as exporters do; counts only).
#[utoipa::path(get, path = "/metrics", tag = "versions", summary = "Prometheus metrics", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
async fn metrics(State(s): State<AppState>) -> Response {
    let text = {
        let idx = s.service.cache().read();
        s.service.metrics().render(&idx)
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
