//! Security groups: the default group per project, create (with template rules), update,
//! delete (with Neutron's cascades and in-use guard).

use super::{check_if_match, new_id, now, Context, Plan, Service};
use crate::index::Index;
use crate::index::{views, View};
use crate::keys;
use palisade_model::convert::Object;
use palisade_model::input::{parse_security_group, parse_security_group_update};
use palisade_model::rule::{Direction, EtherType, NewRule};
use palisade_model::{Error, SecurityGroup, SecurityGroupRule};
use palisade_store::Compare;

/// The rules every new group gets (Neutron's stock templates, spec §1.4): egress to anywhere
/// for both families; the default group also admits ingress from its own members.
fn template_rules(sg: &SecurityGroup, now: &str) -> Vec<SecurityGroupRule> {
    let mut out = Vec::new();
    let mut add = |direction, ethertype, remote: Option<String>| {
        let r = NewRule {
            security_group_id: sg.id.clone(),
            direction,
            ethertype,
            protocol: None,
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
            remote_group_id: remote,
            remote_address_group_id: None,
            project_id: None,
            description: String::new(),
        };
        out.push(SecurityGroupRule::new(
            new_id(),
            &r,
            sg.project_id.clone(),
            sg.is_default,
            now,
        ));
    };
    for et in [EtherType::IPv4, EtherType::IPv6] {
        add(Direction::Egress, et, None);
    }
    if sg.is_default {
        for et in [EtherType::IPv4, EtherType::IPv6] {
            add(Direction::Ingress, et, Some(sg.id.clone()));
        }
    }
    out
}

impl Service {
    /// Creates `project`'s default group if it has none (Neutron's "ensure", spec §3). Only
    /// for the caller's own project or by an admin.
    pub async fn ensure_default_sg(&self, ctx: &Context, project: &str) -> Result<(), Error> {
        if !ctx.sees(project) {
            return Ok(());
        }
        if self
            .cache()
            .read()
            .raw
            .contains_key(&keys::default_sg(project))
        {
            return Ok(());
        }
        self.write(|idx, cfg| {
            let mut plan = Plan::default();
            let dkey = keys::default_sg(project);
            if idx.raw.contains_key(&dkey) {
                return Ok((plan, ()));
            }
            let now = now();
            let sg = SecurityGroup {
                id: new_id(),
                name: "default".into(),
                description: "Default security group".into(),
                project_id: project.to_string(),
                stateful: true,
                tags: Vec::new(),
                created_at: now.clone(),
                updated_at: now.clone(),
                revision_number: 0,
                is_default: true,
            };
            plan.guard(Compare::absent(dkey.clone()));
            plan.put_raw(dkey, sg.id.clone());
            // The default group counts against quota but is never refused by it (Neutron
            // creates it outside quota reservation).
            plan.charge(idx, cfg, project, "security_group", 1, false)?;
            let rules = template_rules(&sg, &now);
            plan.charge(
                idx,
                cfg,
                project,
                "security_group_rule",
                rules.len() as i64,
                false,
            )?;
            let sg = SecurityGroup {
                revision_number: rules.len() as u64,
                ..sg
            };
            for r in &rules {
                super::rules::add_rule_ops(&mut plan, r)?;
            }
            plan.put(keys::sg(&sg.id), &sg)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }

    /// `POST /v2.0/security-groups` (one or bulk, all or nothing).
    pub async fn create_security_groups(
        &self,
        ctx: &Context,
        items: &[Object],
    ) -> Result<Vec<View>, Error> {
        let mut parsed = Vec::with_capacity(items.len());
        for obj in items {
            let req = parse_security_group(obj)?;
            let owner = ctx.owner(req.project_id.clone())?;
            parsed.push((req, owner));
        }
        let mut owners: Vec<&String> = parsed.iter().map(|(_, o)| o).collect();
        owners.dedup();
        for owner in owners {
            self.ensure_default_sg(ctx, owner).await?;
        }
        let (ids, _) = self
            .write(|idx, cfg| {
                let mut plan = Plan::default();
                let now = now();
                let mut ids = Vec::new();
                for (req, owner) in &parsed {
                    plan.charge(idx, cfg, owner, "security_group", 1, true)?;
                    let sg = SecurityGroup {
                        id: new_id(),
                        name: req.name.clone(),
                        description: req.description.clone(),
                        project_id: owner.clone(),
                        stateful: req.stateful.unwrap_or(true),
                        tags: Vec::new(),
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        revision_number: 0,
                        is_default: false,
                    };
                    let rules = template_rules(&sg, &now);
                    plan.charge(
                        idx,
                        cfg,
                        owner,
                        "security_group_rule",
                        rules.len() as i64,
                        true,
                    )?;
                    ctx.require_write("create_security_group")?;
                    for r in &rules {
                        super::rules::add_rule_ops(&mut plan, r)?;
                    }
                    let sg = SecurityGroup {
                        revision_number: rules.len() as u64,
                        ..sg
                    };
                    plan.put(keys::sg(&sg.id), &sg)?;
                    ids.push(sg.id);
                }
                Ok((plan, ids))
            })
            .await?;
        Ok(views(&self.cache().read().sgs, &ids))
    }

    /// Finds a group the caller can see (404 otherwise).
    pub(crate) fn visible_sg<'a>(
        idx: &'a Index,
        ctx: &Context,
        id: &str,
    ) -> Result<&'a crate::index::Entry<SecurityGroup>, Error> {
        idx.sgs
            .get(id)
            .filter(|e| ctx.sees(&e.value.project_id))
            .ok_or_else(|| Error::SecurityGroupNotFound(id.to_string()))
    }

    /// `GET /v2.0/security-groups/{id}`
    pub fn show_security_group(&self, ctx: &Context, id: &str) -> Result<View, Error> {
        let idx = self.cache().read();
        Ok(Self::visible_sg(&idx, ctx, id)?.view())
    }

    /// `PUT /v2.0/security-groups/{id}`
    pub async fn update_security_group(
        &self,
        ctx: &Context,
        id: &str,
        obj: &Object,
        if_match: Option<u64>,
    ) -> Result<View, Error> {
        let upd = parse_security_group_update(obj)?;
        self.write(|idx, _| {
            let e = Self::visible_sg(idx, ctx, id)?;
            ctx.require_write("update_security_group")?;
            check_if_match(if_match, e.value.revision_number)?;
            let cur = &e.value;
            if upd.name.is_some() && cur.name == "default" {
                return Err(Error::CannotUpdateDefault);
            }
            let mut plan = Plan::default();
            let key = keys::sg(id);
            plan.guard(Compare::unchanged(key.clone(), e.mod_rev));
            if let Some(stateful) = upd.stateful.filter(|s| *s != cur.stateful) {
                let _ = stateful;
                if idx.ports_by_sg.contains_key(id) {
                    return Err(Error::SecurityGroupInUse(id.to_string()));
                }
                plan.guard(Compare::prefix_empty(keys::sg_ports(id)));
            }
            let new = SecurityGroup {
                name: upd.name.clone().unwrap_or_else(|| cur.name.clone()),
                description: upd
                    .description
                    .clone()
                    .unwrap_or_else(|| cur.description.clone()),
                stateful: upd.stateful.unwrap_or(cur.stateful),
                updated_at: now(),
                revision_number: cur.revision_number + 1,
                ..(**cur).clone()
            };
            if upd == Default::default() {
                return Ok((Plan::default(), ()));
            }
            plan.put(key, &new)?;
            Ok((plan, ()))
        })
        .await?;
        self.show_security_group(ctx, id)
    }

    /// `DELETE /v2.0/security-groups/{id}`: also deletes its rules and the rules of other
    /// groups that name it as remote group (Neutron's FK cascade); 409 while ports use it.
    pub async fn delete_security_group(
        &self,
        ctx: &Context,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), Error> {
        self.write(|idx, cfg| {
            let e = Self::visible_sg(idx, ctx, id)?;
            ctx.require_write("delete_security_group")?;
            check_if_match(if_match, e.value.revision_number)?;
            let sg = &e.value;
            // Neutron refuses this to project users. A cloud admin may remove another
            // project's default group (it is re-created on that project's next ensuring
            // call), but not the one of the project it is acting in: deleting the group a
            // caller's own ports fall back to is always a mistake (issue #2: "deleting
            // `default` is 409").
            if sg.name == "default" && (!ctx.is_admin() || sg.project_id == ctx.project_id) {
                return Err(Error::CannotRemoveDefault);
            }
            if idx.ports_by_sg.contains_key(id) {
                return Err(Error::SecurityGroupInUse(id.to_string()));
            }
            let mut plan = Plan::default();
            // Every rule create or delete rewrites its group, so an unchanged group means
            // an unchanged rule set: the cascade below is complete.
            plan.guard(Compare::unchanged(keys::sg(id), e.mod_rev));
            plan.guard(Compare::prefix_empty(keys::sg_ports(id)));
            plan.guard(Compare::prefix_unchanged_since(
                keys::remote_refs(id),
                idx.revision,
            ));
            let mut doomed: Vec<&SecurityGroupRule> =
                idx.rules_of(id).map(|r| r.value.as_ref()).collect();
            for rid in idx.rules_by_remote.get(id).into_iter().flatten() {
                if let Some(r) = idx.rules.get(rid) {
                    if r.value.security_group_id != id {
                        doomed.push(r.value.as_ref());
                    }
                }
            }
            for r in doomed {
                super::rules::delete_rule_ops(&mut plan, idx, cfg, r)?;
            }
            plan.delete(keys::sg(id));
            if sg.is_default && idx.text(&keys::default_sg(&sg.project_id)).as_deref() == Some(id) {
                plan.delete(keys::default_sg(&sg.project_id));
            }
            plan.charge(idx, cfg, &sg.project_id, "security_group", -1, false)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }
}
