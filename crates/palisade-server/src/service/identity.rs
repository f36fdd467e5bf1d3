//! The Keystone v3 subset: projects, users (argon2 password hashes), the three roles,
//! role assignments on projects, password login and tokens.
//!
//! Tokens live in the store (by SHA-256) so that every replica accepts them and a restart
//! keeps them; validation is a lookup in the in-memory index.

use super::{new_id, Context, Plan, Service};
use crate::index::{Index, TokenInfo};
use crate::keys;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use palisade_model::convert::{self, Method, Object};
use palisade_model::Error;
use palisade_store::Compare;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Role names; each implies the ones after it (admin ⇒ member ⇒ reader), as Keystone's
/// default role inference does.
pub const ROLES: [&str; 3] = ["admin", "member", "reader"];
/// The one domain.
pub const DEFAULT_DOMAIN: &str = "default";

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// id (hex, as Keystone makes them)
    pub id: String,
    /// unique within the domain
    pub name: String,
    /// always `default`
    #[serde(default = "default_domain")]
    pub domain_id: String,
    /// free text
    #[serde(default)]
    pub description: String,
    /// disabled projects cannot be scoped to
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// id
    pub id: String,
    /// unique within the domain
    pub name: String,
    /// always `default`
    #[serde(default = "default_domain")]
    pub domain_id: String,
    /// argon2id PHC string
    pub password_hash: String,
    /// disabled users cannot log in
    #[serde(default = "yes")]
    pub enabled: bool,
    /// project used when a login names no scope
    #[serde(default)]
    pub default_project_id: Option<String>,
}

fn default_domain() -> String {
    DEFAULT_DOMAIN.into()
}
fn yes() -> bool {
    true
}

impl Project {
    /// Keystone's wire form.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "domain_id": self.domain_id, "description": self.description,
               "enabled": self.enabled, "is_domain": false, "parent_id": self.domain_id, "tags": [], "options": {},
               "links": {"self": format!("/identity/v3/projects/{}", self.id)}})
    }
}

impl User {
    /// Keystone's wire form (never the hash).
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "domain_id": self.domain_id, "enabled": self.enabled,
               "default_project_id": self.default_project_id, "password_expires_at": null, "options": {},
               "links": {"self": format!("/identity/v3/users/{}", self.id)}})
    }
}

/// A role's wire form.
pub fn role_json(name: &str) -> Value {
    json!({"id": name, "name": name, "domain_id": null, "description": null, "options": {},
           "links": {"self": format!("/identity/v3/roles/{name}")}})
}

/// The one domain's wire form.
pub fn domain_json() -> Value {
    json!({"id": DEFAULT_DOMAIN, "name": "Default", "description": "The default domain", "enabled": true,
           "tags": [], "options": {}, "links": {"self": "/identity/v3/domains/default"}})
}

fn get<T: serde::de::DeserializeOwned>(idx: &Index, key: &str) -> Option<(T, i64)> {
    let raw = idx.raw.get(key)?;
    serde_json::from_slice(&raw.value)
        .ok()
        .map(|v| (v, raw.mod_rev))
}

/// A project by id.
pub fn project(idx: &Index, id: &str) -> Option<Project> {
    get(idx, &keys::project(id)).map(|(p, _)| p)
}

/// A user by id.
pub fn user(idx: &Index, id: &str) -> Option<User> {
    get(idx, &keys::user(id)).map(|(u, _)| u)
}

/// Every project, by id.
pub fn projects(idx: &Index) -> Vec<Project> {
    let mut out: Vec<Project> = idx
        .raw
        .iter()
        .filter(|(k, _)| k.starts_with("project/"))
        .filter_map(|(_, r)| serde_json::from_slice(&r.value).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Every user, by id.
pub fn users(idx: &Index) -> Vec<User> {
    let mut out: Vec<User> = idx
        .raw
        .iter()
        .filter(|(k, _)| k.starts_with("user/"))
        .filter_map(|(_, r)| serde_json::from_slice(&r.value).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Roles `user` holds on `project`, directly assigned (no inference).
pub fn assigned_roles(idx: &Index, project: &str, user: &str) -> Vec<String> {
    ROLES
        .iter()
        .filter(|r| idx.raw.contains_key(&keys::assignment(project, user, r)))
        .map(|r| r.to_string())
        .collect()
}

/// Assigned roles plus the ones they imply (admin ⇒ member ⇒ reader).
pub fn effective_roles(assigned: &[String]) -> Vec<String> {
    let top = ROLES.iter().position(|r| assigned.iter().any(|a| a == r));
    match top {
        Some(i) => ROLES[i..].iter().map(|r| r.to_string()).collect(),
        None => Vec::new(),
    }
}

/// Every (project, user, role) assignment.
pub fn assignments(idx: &Index) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = idx
        .raw
        .keys()
        .filter_map(|k| k.strip_prefix("assignment/"))
        .filter_map(|rest| {
            let mut it = rest.splitn(3, '/');
            Some((
                it.next()?.to_string(),
                it.next()?.to_string(),
                it.next()?.to_string(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// Hashes a password with Argon2id (default parameters, random salt).
pub fn hash_password(password: &str) -> Result<String, Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

fn require_admin(ctx: &Context, action: &str) -> Result<(), Error> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(Error::PolicyNotAuthorized(format!("identity:{action}")))
    }
}

fn domain_of(obj: &Object) -> Result<(), Error> {
    match obj.get("domain_id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(d)) if d == DEFAULT_DOMAIN => Ok(()),
        Some(v) => Err(Error::invalid(
            "domain_id",
            v,
            "is not a known domain (only 'default' exists)",
        )),
    }
}

/// What a successful login produced.
pub struct Issued {
    /// The token (shown once, in `X-Subject-Token`).
    pub token: String,
    /// What it grants.
    pub info: TokenInfo,
}

/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 3600;

impl Service {
    /// `POST /identity/v3/projects` (admin).
    pub async fn create_project(&self, ctx: &Context, obj: &Object) -> Result<Project, Error> {
        require_admin(ctx, "create_project")?;
        convert::check_attributes(
            obj,
            Method::Create,
            &[
                "name",
                "description",
                "domain_id",
                "enabled",
                "is_domain",
                "parent_id",
                "tags",
                "options",
            ],
            &["id"],
        )?;
        domain_of(obj)?;
        let name = convert::string("name", convert::required(obj, "name")?, 64)?;
        if name.is_empty() {
            return Err(Error::invalid("name", &json!(name), "must not be empty"));
        }
        let description = obj
            .get("description")
            .map(|v| convert::string("description", v, 255))
            .transpose()?
            .unwrap_or_default();
        let enabled = obj
            .get("enabled")
            .map(|v| convert::boolean("enabled", v))
            .transpose()?
            .unwrap_or(true);
        let p = Project {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name,
            domain_id: DEFAULT_DOMAIN.into(),
            description,
            enabled,
        };
        self.write(|idx, _| {
            let nkey = keys::project_name(DEFAULT_DOMAIN, &p.name);
            if idx.raw.contains_key(&nkey) {
                return Err(Error::Conflict(format!(
                    "Duplicate entry: a project named '{}' already exists in domain 'default'.",
                    p.name
                )));
            }
            let mut plan = Plan::default();
            plan.guard(Compare::absent(nkey.clone()));
            plan.put_raw(nkey, p.id.clone());
            plan.put(keys::project(&p.id), &p)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(p)
    }

    /// `DELETE /identity/v3/projects/{id}` (admin): its assignments go too.
    pub async fn delete_project(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        require_admin(ctx, "delete_project")?;
        if id == self.admin_project_id() {
            return Err(Error::Conflict(
                "The admin project cannot be deleted.".into(),
            ));
        }
        self.write(|idx, _| {
            let (p, rev) = get::<Project>(idx, &keys::project(id))
                .ok_or_else(|| Error::IdentityNotFound("project", id.to_string()))?;
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::project(id), rev));
            plan.delete(keys::project(id));
            plan.delete(keys::project_name(&p.domain_id, &p.name));
            for (proj, user, role) in assignments(idx) {
                if proj == id {
                    plan.delete(keys::assignment(&proj, &user, &role));
                }
            }
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }

    /// `POST /identity/v3/users` (admin).
    pub async fn create_user(&self, ctx: &Context, obj: &Object) -> Result<User, Error> {
        require_admin(ctx, "create_user")?;
        convert::check_attributes(
            obj,
            Method::Create,
            &[
                "name",
                "password",
                "domain_id",
                "enabled",
                "default_project_id",
                "description",
                "email",
                "options",
            ],
            &["id"],
        )?;
        domain_of(obj)?;
        let name = convert::string("name", convert::required(obj, "name")?, 255)?;
        if name.is_empty() {
            return Err(Error::invalid("name", &json!(name), "must not be empty"));
        }
        let password = convert::string("password", convert::required(obj, "password")?, 4096)
            .map_err(|_| {
                Error::BadRequest(
                    "Invalid input for password: it must be a string (the value is not shown)."
                        .into(),
                )
            })?;
        if password.is_empty() {
            return Err(Error::BadRequest(
                "Invalid input for password: it must not be empty.".into(),
            ));
        }
        let enabled = obj
            .get("enabled")
            .map(|v| convert::boolean("enabled", v))
            .transpose()?
            .unwrap_or(true);
        let default_project_id = obj
            .get("default_project_id")
            .map(|v| convert::string_or_null("default_project_id", v, 64))
            .transpose()?
            .flatten();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let u = User {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name,
            domain_id: DEFAULT_DOMAIN.into(),
            password_hash: hash,
            enabled,
            default_project_id,
        };
        self.write(|idx, _| {
            let nkey = keys::user_name(DEFAULT_DOMAIN, &u.name);
            if idx.raw.contains_key(&nkey) {
                return Err(Error::Conflict(format!(
                    "Duplicate entry: a user named '{}' already exists in domain 'default'.",
                    u.name
                )));
            }
            if let Some(p) = &u.default_project_id {
                if project(idx, p).is_none() {
                    return Err(Error::IdentityNotFound("project", p.clone()));
                }
            }
            let mut plan = Plan::default();
            plan.guard(Compare::absent(nkey.clone()));
            plan.put_raw(nkey, u.id.clone());
            plan.put(keys::user(&u.id), &u)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(u)
    }

    /// `PATCH /identity/v3/users/{id}` (admin; a user may change their own password).
    pub async fn update_user(&self, ctx: &Context, id: &str, obj: &Object) -> Result<User, Error> {
        if !(ctx.is_admin() || ctx.user_id == id) {
            return Err(Error::PolicyNotAuthorized("identity:update_user".into()));
        }
        convert::check_attributes(
            obj,
            Method::Update,
            &[
                "password",
                "enabled",
                "default_project_id",
                "description",
                "email",
            ],
            &["id", "name", "domain_id"],
        )?;
        let hash = match obj.get("password") {
            Some(Value::String(p)) if !p.is_empty() => {
                let p = p.clone();
                Some(tokio::task::spawn_blocking(move || hash_password(&p)).await.map_err(|e| Error::Internal(e.to_string()))??)
            }
            Some(_) => return Err(Error::BadRequest("Invalid input for password: it must be a non-empty string (the value is not shown).".into())),
            None => None,
        };
        let enabled = obj
            .get("enabled")
            .map(|v| convert::boolean("enabled", v))
            .transpose()?;
        if enabled.is_some() && !ctx.is_admin() {
            return Err(Error::PolicyNotAuthorized("identity:update_user".into()));
        }
        let (u, _) = self
            .write(|idx, _| {
                let (mut u, rev) = get::<User>(idx, &keys::user(id))
                    .ok_or_else(|| Error::IdentityNotFound("user", id.to_string()))?;
                if let Some(h) = &hash {
                    u.password_hash = h.clone();
                }
                if let Some(e) = enabled {
                    u.enabled = e;
                }
                let mut plan = Plan::default();
                plan.guard(Compare::unchanged(keys::user(id), rev));
                plan.put(keys::user(id), &u)?;
                if hash.is_some() || enabled == Some(false) {
                    // A new password or a disabled user ends every token the user holds.
                    for (h, t) in &idx.tokens {
                        if t.user_id == id {
                            plan.delete(keys::token(h));
                        }
                    }
                }
                Ok((plan, u))
            })
            .await?;
        Ok(u)
    }

    /// `DELETE /identity/v3/users/{id}` (admin): assignments and tokens go too.
    pub async fn delete_user(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        require_admin(ctx, "delete_user")?;
        self.write(|idx, _| {
            let (u, rev) = get::<User>(idx, &keys::user(id))
                .ok_or_else(|| Error::IdentityNotFound("user", id.to_string()))?;
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::user(id), rev));
            plan.delete(keys::user(id));
            plan.delete(keys::user_name(&u.domain_id, &u.name));
            for (proj, user, role) in assignments(idx) {
                if user == id {
                    plan.delete(keys::assignment(&proj, &user, &role));
                }
            }
            for (h, t) in &idx.tokens {
                if t.user_id == id {
                    plan.delete(keys::token(h));
                }
            }
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }

    /// `PUT`/`DELETE /identity/v3/projects/{p}/users/{u}/roles/{r}` (admin).
    pub async fn assign_role(
        &self,
        ctx: &Context,
        project_id: &str,
        user_id: &str,
        role: &str,
        grant: bool,
    ) -> Result<(), Error> {
        require_admin(ctx, "create_grant")?;
        if !ROLES.contains(&role) {
            return Err(Error::IdentityNotFound("role", role.to_string()));
        }
        self.write(|idx, _| {
            let p = project(idx, project_id)
                .ok_or_else(|| Error::IdentityNotFound("project", project_id.to_string()))?;
            let (_, urev) = get::<User>(idx, &keys::user(user_id))
                .ok_or_else(|| Error::IdentityNotFound("user", user_id.to_string()))?;
            let key = keys::assignment(&p.id, user_id, role);
            let mut plan = Plan::default();
            if grant {
                plan.guard(Compare::unchanged(keys::user(user_id), urev));
                plan.put_raw(key, Vec::new());
            } else if idx.raw.contains_key(&key) {
                plan.delete(key);
            } else {
                return Err(Error::IdentityNotFound(
                    "role assignment",
                    format!("{role} for user {user_id} on project {project_id}"),
                ));
            }
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }

    /// The admin project's id.
    pub fn admin_project_id(&self) -> String {
        self.cache()
            .read()
            .text("meta/admin-project")
            .unwrap_or_default()
    }

    /// Password (or token) authentication and scoping: Keystone's `POST /v3/auth/tokens`.
    /// Every failure to authenticate is the same 401, whatever was wrong.
    pub async fn login(
        &self,
        body: &Value,
        caller_token: Option<&str>,
        ttl_secs: i64,
    ) -> Result<Issued, Error> {
        let auth = body
            .get("auth")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::BadRequest("Expecting to find auth in request body.".into()))?;
        let identity = auth
            .get("identity")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::BadRequest("Expecting to find identity in auth.".into()))?;
        let methods: Vec<&str> = identity
            .get("methods")
            .and_then(Value::as_array)
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .ok_or_else(|| Error::BadRequest("Expecting to find methods in identity.".into()))?;
        let unauthorized = || Error::NotAuthenticated;
        // Who: by password, or by an existing token (rescoping).
        let (user, methods_out) = if methods.contains(&"password") {
            let pw = identity
                .get("password")
                .and_then(|p| p.get("user"))
                .ok_or_else(|| Error::BadRequest("Expecting to find user in password.".into()))?;
            let password = pw
                .get("password")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::BadRequest("Expecting to find password in user.".into()))?
                .to_string();
            let found = {
                let idx = self.cache().read();
                self.find_user(&idx, pw)?
            };
            let Some(user) = found.filter(|u| u.enabled) else {
                // Spend the same time as a real check, so timing does not tell users apart.
                let _ = tokio::task::spawn_blocking(move || verify_password(&password, DUMMY_HASH))
                    .await;
                return Err(unauthorized());
            };
            let hash = user.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(unauthorized());
            }
            (user, vec!["password".to_string()])
        } else if methods.contains(&"token") {
            let id = identity
                .get("token")
                .and_then(|t| t.get("id"))
                .and_then(Value::as_str)
                .or(caller_token)
                .ok_or_else(unauthorized)?;
            let idx = self.cache().read();
            let info = valid_token(&idx, id).ok_or_else(unauthorized)?;
            let user = user(&idx, &info.user_id)
                .filter(|u| u.enabled)
                .ok_or_else(unauthorized)?;
            (user, vec!["token".to_string()])
        } else {
            return Err(unauthorized());
        };
        // Scope: a project by id or by name in a domain; unscoped otherwise (or the user's
        // default project when no scope is named, as Keystone does).
        let (project_id, roles) = {
            let idx = self.cache().read();
            let scope = auth.get("scope");
            let project = match scope {
                Some(Value::String(s)) if s == "unscoped" => None,
                Some(s) => match s.get("project") {
                    Some(p) => Some(self.find_project(&idx, p)?.ok_or_else(unauthorized)?),
                    None if s.get("system").is_some() || s.get("domain").is_some() => {
                        return Err(Error::BadRequest(
                            "Only project scope is supported by Palisade's identity service."
                                .into(),
                        ))
                    }
                    None => None,
                },
                None => user
                    .default_project_id
                    .as_deref()
                    .and_then(|p| project(&idx, p)),
            };
            match project {
                Some(p) => {
                    if !p.enabled {
                        return Err(unauthorized());
                    }
                    let roles = effective_roles(&assigned_roles(&idx, &p.id, &user.id));
                    if roles.is_empty() {
                        return Err(unauthorized());
                    }
                    (p.id, roles)
                }
                None => (String::new(), Vec::new()),
            }
        };
        let _ = methods_out;
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token = format!("pal-{}", hex::encode(bytes));
        let now = jiff::Timestamp::now().as_second();
        let info = TokenInfo {
            project_id,
            roles,
            user: user.name.clone(),
            user_id: user.id.clone(),
            expires_at: Some(now + ttl_secs),
            issued_at: now,
            audit_id: new_id(),
        };
        let key = keys::token(&crate::http::token_hash(&token));
        self.write(|_, _| {
            let mut plan = Plan::default();
            plan.guard(Compare::absent(key.clone()));
            plan.put(key.clone(), &info)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(Issued { token, info })
    }

    fn find_user(&self, idx: &Index, v: &Value) -> Result<Option<User>, Error> {
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            return Ok(user(idx, id));
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadRequest("Expecting to find id or name in user.".into()))?;
        if !domain_matches(v.get("domain")) {
            return Ok(None);
        }
        Ok(idx
            .text(&keys::user_name(DEFAULT_DOMAIN, name))
            .and_then(|id| user(idx, &id)))
    }

    fn find_project(&self, idx: &Index, v: &Value) -> Result<Option<Project>, Error> {
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            return Ok(project(idx, id));
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadRequest("Expecting to find id or name in project.".into()))?;
        if !domain_matches(v.get("domain")) {
            return Ok(None);
        }
        Ok(idx
            .text(&keys::project_name(DEFAULT_DOMAIN, name))
            .and_then(|id| project(idx, &id)))
    }

    /// `GET /identity/v3/auth/tokens`: the subject token's grant, if valid.
    pub fn validate_token(&self, subject: &str) -> Result<TokenInfo, Error> {
        let idx = self.cache().read();
        valid_token(&idx, subject)
            .ok_or_else(|| Error::IdentityNotFound("token", "(not shown)".into()))
    }

    /// `DELETE /identity/v3/auth/tokens`: a user may revoke their own tokens, admin any.
    pub async fn revoke_token(&self, ctx: &Context, subject: &str) -> Result<(), Error> {
        let key = keys::token(&crate::http::token_hash(subject));
        self.write(|idx, _| {
            let info = valid_token(idx, subject)
                .ok_or_else(|| Error::IdentityNotFound("token", "(not shown)".into()))?;
            if !(ctx.is_admin() || (!ctx.user_id.is_empty() && ctx.user_id == info.user_id)) {
                return Err(Error::PolicyNotAuthorized("identity:revoke_token".into()));
            }
            let mut plan = Plan::default();
            plan.delete(key.clone());
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }
}

impl Service {
    /// Deletes expired tokens from the store (they are refused anyway; this keeps the store
    /// small). Returns how many went. Safe to run on several replicas at once.
    pub async fn sweep_expired_tokens(&self) -> Result<usize, Error> {
        let now = jiff::Timestamp::now().as_second();
        let (n, _) = self
            .write(|idx, _| {
                let mut plan = Plan::default();
                let mut n = 0;
                for (h, t) in &idx.tokens {
                    if t.expires_at.is_some_and(|e| e <= now) && n < 10_000 {
                        plan.delete(keys::token(h));
                        n += 1;
                    }
                }
                Ok((plan, n))
            })
            .await?;
        Ok(n)
    }
}

fn domain_matches(d: Option<&Value>) -> bool {
    match d {
        None => true,
        Some(d) => {
            d.get("id")
                .and_then(Value::as_str)
                .is_none_or(|id| id == DEFAULT_DOMAIN)
                && d.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(|n| n.eq_ignore_ascii_case("default"))
        }
    }
}

/// A token that exists and has not expired.
pub fn valid_token(idx: &Index, token: &str) -> Option<TokenInfo> {
    let info = idx.tokens.get(&crate::http::token_hash(token))?;
    match info.expires_at {
        Some(t) if t <= jiff::Timestamp::now().as_second() => None,
        _ => Some(info.clone()),
    }
}

/// A well-formed argon2id hash of a random password: verifying against it costs what a real
/// check costs.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1uVQ4a2CvTDpsUmQDAcmSTBE5fsgdzxtzlI1x4rR2NY";
