//! Tags on groups, ports and networks (Neutron's standard-attr-tag and tag-creation).
//! One implementation for every taggable kind: tags live in the stored JSON of the object.

use super::{now, Context, Plan, Service};
use crate::index::Index;
use crate::keys;
use palisade_model::input::MAX_TAGS;
use palisade_model::Error;
use palisade_store::Compare;
use serde_json::{json, Value};

/// A kind of resource that carries tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    /// security-groups
    SecurityGroup,
    /// ports
    Port,
    /// networks
    Network,
}

impl Tagged {
    fn key(self, id: &str) -> String {
        match self {
            Tagged::SecurityGroup => keys::sg(id),
            Tagged::Port => keys::port(id),
            Tagged::Network => keys::network(id),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Tagged::SecurityGroup => "security_group",
            Tagged::Port => "port",
            Tagged::Network => "network",
        }
    }
    fn not_found(self, id: &str) -> Error {
        match self {
            Tagged::SecurityGroup => Error::SecurityGroupNotFound(id.to_string()),
            Tagged::Port => Error::PortNotFound(id.to_string()),
            Tagged::Network => Error::NetworkNotFound(id.to_string()),
        }
    }
}

fn tags_of(v: &Value) -> Vec<String> {
    v.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Service {
    fn tagged_object(
        idx: &Index,
        ctx: &Context,
        kind: Tagged,
        id: &str,
    ) -> Result<(Value, i64), Error> {
        let raw = idx
            .raw
            .get(&kind.key(id))
            .ok_or_else(|| kind.not_found(id))?;
        let v: Value =
            serde_json::from_slice(&raw.value).map_err(|e| Error::Internal(e.to_string()))?;
        let project = v
            .get("project_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let shared = v.get("shared").and_then(Value::as_bool).unwrap_or(false);
        if !(ctx.sees(project) || shared) {
            return Err(kind.not_found(id));
        }
        Ok((v, raw.mod_rev))
    }

    /// The tags of an object.
    pub fn get_tags(&self, ctx: &Context, kind: Tagged, id: &str) -> Result<Vec<String>, Error> {
        let idx = self.cache().read();
        Ok(tags_of(&Self::tagged_object(&idx, ctx, kind, id)?.0))
    }

    /// 204 if the object has `tag`, else 404 TagNotFound.
    pub fn check_tag(&self, ctx: &Context, kind: Tagged, id: &str, tag: &str) -> Result<(), Error> {
        if self.get_tags(ctx, kind, id)?.iter().any(|t| t == tag) {
            Ok(())
        } else {
            Err(Error::TagNotFound {
                resource: kind.name(),
                id: id.to_string(),
                tag: tag.to_string(),
            })
        }
    }

    /// Changes the tags with `f` (which may refuse); returns the new list.
    pub async fn change_tags(
        &self,
        ctx: &Context,
        kind: Tagged,
        id: &str,
        f: impl Fn(&mut Vec<String>) -> Result<(), Error>,
    ) -> Result<Vec<String>, Error> {
        let (tags, _) = self
            .write(|idx, _| {
                let (mut v, mod_rev) = Self::tagged_object(idx, ctx, kind, id)?;
                let project = v
                    .get("project_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !ctx.sees(project) {
                    return Err(Error::PolicyNotAuthorized(format!(
                        "update_{}_tags",
                        kind.name()
                    )));
                }
                ctx.require_write(&format!("update_{}_tags", kind.name()))?;
                let before = tags_of(&v);
                let mut tags = before.clone();
                f(&mut tags)?;
                if tags.len() > MAX_TAGS {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for tags. Reason: {} tags exceed the maximum of {MAX_TAGS}.",
                        tags.len()
                    )));
                }
                let mut plan = Plan::default();
                if tags == before {
                    return Ok((plan, tags));
                }
                let rev = v
                    .get("revision_number")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(o) = v.as_object_mut() {
                    o.insert("tags".into(), json!(tags));
                    o.insert("revision_number".into(), json!(rev + 1));
                    o.insert("updated_at".into(), json!(now()));
                }
                plan.guard(Compare::unchanged(kind.key(id), mod_rev));
                plan.put(kind.key(id), &v)?;
                Ok((plan, tags))
            })
            .await?;
        Ok(tags)
    }
}
