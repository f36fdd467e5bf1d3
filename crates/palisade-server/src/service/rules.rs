//! Security-group rules: create (one or bulk) with Neutron's order of checks, show, delete.

use super::{new_id, now, Context, Plan, Service};
use crate::index::Index;
use crate::index::{views, View};
use crate::keys;
use palisade_model::convert::Object;
use palisade_model::{
    fingerprint, parse_rule, validate_rule, Error, SecurityGroup, SecurityGroupRule,
};
use palisade_store::Compare;

/// The writes that store a new rule and its secondary keys.
pub(crate) fn add_rule_ops(plan: &mut Plan, r: &SecurityGroupRule) -> Result<(), Error> {
    plan.put(keys::rule(&r.id), r)?;
    plan.put_raw(
        keys::unique_rule(&r.security_group_id, &fingerprint(&r.as_new())),
        r.id.clone(),
    );
    if let Some(rg) = &r.remote_group_id {
        plan.put_raw(format!("{}{}", keys::remote_refs(rg), r.id), Vec::new());
    }
    if let Some(ag) = &r.remote_address_group_id {
        plan.put_raw(format!("{}{}", keys::ag_refs(ag), r.id), Vec::new());
    }
    Ok(())
}

/// The writes that remove a rule, its secondary keys and its quota usage.
pub(crate) fn delete_rule_ops(
    plan: &mut Plan,
    idx: &Index,
    cfg: &super::ServiceConfig,
    r: &SecurityGroupRule,
) -> Result<(), Error> {
    plan.delete(keys::rule(&r.id));
    let ukey = keys::unique_rule(&r.security_group_id, &fingerprint(&r.as_new()));
    if idx.text(&ukey).as_deref() == Some(r.id.as_str()) {
        plan.delete(ukey);
    }
    if let Some(rg) = &r.remote_group_id {
        plan.delete(format!("{}{}", keys::remote_refs(rg), r.id));
    }
    if let Some(ag) = &r.remote_address_group_id {
        plan.delete(format!("{}{}", keys::ag_refs(ag), r.id));
    }
    plan.charge(idx, cfg, &r.project_id, "security_group_rule", -1, false)
}

/// A group with its revision bumped (rule changes count as changes of the group).
fn bumped(sg: &SecurityGroup) -> SecurityGroup {
    SecurityGroup {
        revision_number: sg.revision_number + 1,
        updated_at: now(),
        ..sg.clone()
    }
}

impl Service {
    /// `POST /v2.0/security-group-rules` (one or bulk, all or nothing). Checks in Neutron's
    /// order: converters, quota, policy, semantics, remote group, address group, duplicates.
    pub async fn create_rules(&self, ctx: &Context, items: &[Object]) -> Result<Vec<View>, Error> {
        let mut parsed = Vec::with_capacity(items.len());
        for obj in items {
            parsed.push(parse_rule(obj)?);
        }
        let Some(first) = parsed.first() else {
            return Err(Error::BadRequest("Resources required".into()));
        };
        let sg_id = first.security_group_id.clone();
        let owner = ctx.owner(first.project_id.clone())?;
        for r in &parsed[1..] {
            if r.security_group_id != sg_id {
                return Err(Error::NotSingleGroupRules);
            }
            if ctx.owner(r.project_id.clone())? != owner {
                return Err(Error::RulesNotSingleProject);
            }
        }
        let (ids, _) = self
            .write(|idx, cfg| {
                let mut plan = Plan::default();
                plan.charge(
                    idx,
                    cfg,
                    &owner,
                    "security_group_rule",
                    parsed.len() as i64,
                    true,
                )?;
                let sg = idx
                    .sgs
                    .get(&sg_id)
                    .ok_or_else(|| Error::SecurityGroupNotFound(sg_id.clone()))?;
                // Neutron answers 403 for another project's group; Palisade never confirms
                // that another project's object exists (issue #3), so that is a 404.
                if !ctx.sees(&sg.value.project_id) {
                    return Err(Error::SecurityGroupNotFound(sg_id.clone()));
                }
                ctx.require_write("create_security_group_rule")?;
                let now = now();
                let mut seen: Vec<String> = Vec::new();
                let mut ids = Vec::new();
                for req in &parsed {
                    let req = validate_rule(req.clone())?;
                    if let Some(rg) = &req.remote_group_id {
                        let remote = idx
                            .sgs
                            .get(rg)
                            .filter(|e| ctx.is_admin() || e.value.project_id == owner)
                            .ok_or_else(|| Error::SecurityGroupNotFound(rg.clone()))?;
                        if rg != &sg_id {
                            plan.guard(Compare::created_at(keys::sg(rg), remote.create_rev));
                        }
                    }
                    if let Some(ag) = &req.remote_address_group_id {
                        let a = idx
                            .address_groups
                            .get(ag)
                            .filter(|e| ctx.is_admin() || e.value.project_id == owner)
                            .ok_or_else(|| Error::AddressGroupNotFound(ag.clone()))?;
                        plan.guard(Compare::created_at(keys::address_group(ag), a.create_rev));
                    }
                    let fp = fingerprint(&req);
                    let ukey = keys::unique_rule(&sg_id, &fp);
                    if let Some(existing) = idx.text(&ukey) {
                        return Err(Error::SecurityGroupRuleExists(existing));
                    }
                    if seen.contains(&fp) {
                        return Err(Error::DuplicateSecurityGroupRuleInPost);
                    }
                    seen.push(fp);
                    plan.guard(Compare::absent(ukey));
                    let rule = SecurityGroupRule::new(
                        new_id(),
                        &req,
                        owner.clone(),
                        sg.value.is_default,
                        &now,
                    );
                    add_rule_ops(&mut plan, &rule)?;
                    ids.push(rule.id);
                }
                plan.guard(Compare::unchanged(keys::sg(&sg_id), sg.mod_rev));
                plan.put(keys::sg(&sg_id), bumped(&sg.value))?;
                Ok((plan, ids))
            })
            .await?;
        Ok(views(&self.cache().read().rules, &ids))
    }

    /// A rule the caller can see: admin, or the parent group's project (404 otherwise).
    fn visible_rule<'a>(
        idx: &'a Index,
        ctx: &Context,
        id: &str,
    ) -> Result<&'a crate::index::Entry<SecurityGroupRule>, Error> {
        idx.rules
            .get(id)
            .filter(|r| {
                ctx.is_admin()
                    || idx
                        .sgs
                        .get(&r.value.security_group_id)
                        .is_some_and(|sg| sg.value.project_id == ctx.project_id)
            })
            .ok_or_else(|| Error::SecurityGroupRuleNotFound(id.to_string()))
    }

    /// `GET /v2.0/security-group-rules/{id}`
    pub fn show_rule(&self, ctx: &Context, id: &str) -> Result<View, Error> {
        let idx = self.cache().read();
        Ok(Self::visible_rule(&idx, ctx, id)?.view())
    }

    /// `DELETE /v2.0/security-group-rules/{id}`
    pub async fn delete_rule(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        self.write(|idx, cfg| {
            let r = Self::visible_rule(idx, ctx, id)?;
            ctx.require_write("delete_security_group_rule")?;
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::rule(id), r.mod_rev));
            delete_rule_ops(&mut plan, idx, cfg, &r.value)?;
            if let Some(sg) = idx.sgs.get(&r.value.security_group_id) {
                plan.guard(Compare::unchanged(keys::sg(&sg.value.id), sg.mod_rev));
                plan.put(keys::sg(&sg.value.id), bumped(&sg.value))?;
            }
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }
}
