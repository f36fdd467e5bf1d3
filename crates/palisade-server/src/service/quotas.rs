//! Quotas (Neutron's quotasv2): per-project limits, usage counted inside the same
//! transaction as the create or delete that changes it.
//!
//! While a limit is finite, `usage/<project>/<resource>` is a counter guarded by compare on
//! every create and delete, so concurrent creates can never pass the limit. While it is
//! unlimited there is no counter to contend on; creates and deletes touch
//! `epoch/<project>/<resource>` instead, and a change to a finite limit recounts the objects
//! under a compare on that key, so the recount is exact.

use super::{Context, Plan, Service, ServiceConfig};
use crate::index::Index;
use crate::keys;
use palisade_model::convert::{self, Object};
use palisade_model::Error;
use palisade_store::Compare;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The resources with quotas, in response order.
pub const RESOURCES: [&str; 4] = ["network", "port", "security_group", "security_group_rule"];

/// Limits per resource; −1 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimits {
    /// networks
    pub network: i64,
    /// ports
    pub port: i64,
    /// security groups (the default group counts)
    pub security_group: i64,
    /// security group rules (template rules count)
    pub security_group_rule: i64,
}

impl QuotaLimits {
    /// Neutron's defaults (neutron/conf/quota.py).
    pub fn neutron_defaults() -> Self {
        QuotaLimits {
            network: 100,
            port: 500,
            security_group: 10,
            security_group_rule: 100,
        }
    }
    /// The limit of one resource.
    pub fn get(&self, resource: &str) -> i64 {
        match resource {
            "network" => self.network,
            "port" => self.port,
            "security_group" => self.security_group,
            "security_group_rule" => self.security_group_rule,
            _ => -1,
        }
    }
    fn set(&mut self, resource: &str, v: i64) {
        match resource {
            "network" => self.network = v,
            "port" => self.port = v,
            "security_group" => self.security_group = v,
            "security_group_rule" => self.security_group_rule = v,
            _ => {}
        }
    }
    fn to_json(self) -> Map<String, Value> {
        RESOURCES
            .iter()
            .map(|r| (r.to_string(), json!(self.get(r))))
            .collect()
    }
}

fn limits(idx: &Index, cfg: &ServiceConfig, project: &str) -> QuotaLimits {
    idx.raw
        .get(&keys::quota(project))
        .and_then(|r| serde_json::from_slice(&r.value).ok())
        .unwrap_or(cfg.default_quota)
}

/// The limit for `resource` in `project`.
pub(crate) fn limit(idx: &Index, cfg: &ServiceConfig, project: &str, resource: &str) -> i64 {
    limits(idx, cfg, project).get(resource)
}

/// Usage as the counter says (valid while the limit is finite).
pub(crate) fn used(idx: &Index, project: &str, resource: &str) -> i64 {
    idx.text(&keys::usage(project, resource))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// Usage by counting the objects.
pub(crate) fn count(idx: &Index, project: &str, resource: &str) -> i64 {
    let n = match resource {
        "network" => idx
            .networks
            .values()
            .filter(|e| e.value.project_id == project)
            .count(),
        "port" => idx
            .ports
            .values()
            .filter(|e| e.value.project_id == project)
            .count(),
        "security_group" => idx
            .sgs
            .values()
            .filter(|e| e.value.project_id == project)
            .count(),
        "security_group_rule" => idx
            .rules
            .values()
            .filter(|e| e.value.project_id == project)
            .count(),
        _ => 0,
    };
    n as i64
}

fn parse_limit(field: &str, v: &Value) -> Result<i64, Error> {
    let n = convert::integer(field, v)?;
    if !(-1..=2147483647).contains(&n) {
        return Err(Error::invalid(
            field,
            v,
            "must be an integer from -1 to 2147483647",
        ));
    }
    Ok(n)
}

impl Service {
    fn quota_read_allowed(&self, ctx: &Context, project: &str) -> Result<(), Error> {
        if ctx.sees(project) {
            Ok(())
        } else {
            Err(Error::PolicyNotAuthorized("get_quota".into()))
        }
    }

    /// `GET /v2.0/quotas/{project}`
    pub fn show_quota(&self, ctx: &Context, project: &str) -> Result<Value, Error> {
        self.quota_read_allowed(ctx, project)?;
        let idx = self.cache().read();
        Ok(json!({ "quota": limits(&idx, &self.config, project).to_json() }))
    }

    /// `GET /v2.0/quotas/{project}/default`
    pub fn default_quota(&self, ctx: &Context, project: &str) -> Result<Value, Error> {
        self.quota_read_allowed(ctx, project)?;
        Ok(json!({ "quota": self.config.default_quota.to_json() }))
    }

    /// `GET /v2.0/quotas/{project}/details`
    pub fn quota_details(&self, ctx: &Context, project: &str) -> Result<Value, Error> {
        self.quota_read_allowed(ctx, project)?;
        let idx = self.cache().read();
        let l = limits(&idx, &self.config, project);
        let details: Map<String, Value> = RESOURCES
            .iter()
            .map(|r| {
                let used = count(&idx, project, r);
                (
                    r.to_string(),
                    json!({"limit": l.get(r), "used": used, "reserved": 0}),
                )
            })
            .collect();
        Ok(json!({ "quota": details }))
    }

    /// `GET /v2.0/quotas`: projects with their own limits (admin only).
    pub fn list_quotas(&self, ctx: &Context) -> Result<Value, Error> {
        if !ctx.is_admin() {
            return Err(Error::PolicyNotAuthorized("get_quota".into()));
        }
        let idx = self.cache().read();
        let mut out: Vec<Value> = Vec::new();
        let mut projects: Vec<&str> = idx
            .raw
            .keys()
            .filter_map(|k| k.strip_prefix("quota/"))
            .collect();
        projects.sort_unstable();
        for p in projects {
            let mut m = limits(&idx, &self.config, p).to_json();
            m.insert("project_id".into(), json!(p));
            m.insert("tenant_id".into(), json!(p));
            out.push(Value::Object(m));
        }
        Ok(json!({ "quotas": out }))
    }

    /// `PUT /v2.0/quotas/{project}` with `{"quota": {...}}`; `None` body resets (DELETE).
    pub async fn update_quota(
        &self,
        ctx: &Context,
        project: &str,
        body: Option<&Object>,
    ) -> Result<Value, Error> {
        if !ctx.is_admin() {
            return Err(Error::PolicyNotAuthorized("update_quota".into()));
        }
        let mut requested: Vec<(&'static str, i64)> = Vec::new();
        let mut force = false;
        let mut check_limit: Option<bool> = None;
        if let Some(obj) = body {
            for (k, v) in obj {
                if k == "force" {
                    force = convert::boolean("force", v)?;
                } else if k == "check_limit" {
                    // Newer clients say check_limit instead of (not) force.
                    check_limit = Some(convert::boolean("check_limit", v)?);
                } else if let Some(r) = RESOURCES.iter().find(|r| **r == k) {
                    requested.push((r, parse_limit(k, v)?));
                } else {
                    return Err(Error::BadRequest(format!(
                        "Unrecognized attribute(s) '{k}'"
                    )));
                }
            }
        }
        let reset = body.is_none();
        let project = project.to_string();
        let (out, _) = self
            .write(|idx, cfg| {
                let mut l = if reset { cfg.default_quota } else { limits(idx, cfg, &project) };
                for (r, n) in &requested {
                    if check_limit.unwrap_or(!force) && *n >= 0 {
                        let used = count(idx, &project, r);
                        if *n < used {
                            return Err(Error::BadRequest(format!(
                                "Quota limit {n} for {r} must be greater than or equal to already used {used}"
                            )));
                        }
                    }
                    l.set(r, *n);
                }
                let mut plan = Plan::default();
                let qkey = keys::quota(&project);
                plan.guard(Compare::unchanged(qkey.clone(), idx.revs(&qkey).1));
                if reset {
                    plan.delete(qkey);
                } else {
                    plan.put(qkey, l)?;
                }
                // Recount every finite resource under compares, so the counter is exact.
                for r in RESOURCES {
                    if l.get(r) >= 0 {
                        let ekey = keys::epoch(&project, r);
                        let ukey = keys::usage(&project, r);
                        plan.guard(Compare::unchanged(ekey.clone(), idx.revs(&ekey).1));
                        plan.guard(Compare::unchanged(ukey.clone(), idx.revs(&ukey).1));
                        plan.put_raw(ukey, count(idx, &project, r).to_string());
                    }
                }
                Ok((plan, l))
            })
            .await?;
        Ok(json!({ "quota": out.to_json() }))
    }
}
