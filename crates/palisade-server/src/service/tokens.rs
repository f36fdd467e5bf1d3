//! API tokens: `POST /v2.0/palisade/tokens` lets an admin issue a token scoped to a project
//! with roles, until Keystone-style password authentication arrives. The store keeps only
//! the token's SHA-256; the token itself is returned once.

use super::{Context, Plan, Service};
use crate::index::TokenInfo;
use crate::keys;
use palisade_model::convert::{self, Method, Object};
use palisade_model::Error;
use palisade_store::Compare;
use serde_json::{json, Value};

/// Roles a token can carry.
pub const ROLES: [&str; 3] = ["admin", "member", "reader"];

impl Service {
    /// Issues a token (admin only).
    pub async fn issue_token(&self, ctx: &Context, obj: &Object) -> Result<Value, Error> {
        if !ctx.is_admin() {
            return Err(Error::PolicyNotAuthorized("create_token".into()));
        }
        convert::check_attributes(
            obj,
            Method::Create,
            &["project_id", "roles", "user"],
            &["id"],
        )?;
        let project = convert::string("project_id", convert::required(obj, "project_id")?, 255)?;
        if project.is_empty() {
            return Err(Error::invalid(
                "project_id",
                &json!(project),
                "must not be empty",
            ));
        }
        let roles = match obj.get("roles") {
            None => vec!["member".to_string(), "reader".to_string()],
            Some(v) => convert::string_list("roles", v, 64, 3)?,
        };
        if let Some(bad) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
            return Err(Error::invalid(
                "roles",
                &json!(bad),
                "is not in ['admin', 'member', 'reader']",
            ));
        }
        let user = match obj.get("user") {
            None => "user".to_string(),
            Some(v) => convert::string("user", v, 255)?,
        };
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token = format!("pal-{}", hex::encode(bytes));
        let info = TokenInfo {
            project_id: project.clone(),
            roles: roles.clone(),
            user: user.clone(),
            issued_at: jiff::Timestamp::now().as_second(),
            audit_id: super::new_id(),
            ..Default::default()
        };
        let key = keys::token(&crate::http::token_hash(&token));
        self.write(|_, _| {
            let mut plan = Plan::default();
            plan.guard(Compare::absent(key.clone()));
            plan.put(key.clone(), &info)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(json!({"token": {"id": token, "project_id": project, "roles": roles, "user": user}}))
    }
}
