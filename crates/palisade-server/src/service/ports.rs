//! Ports: the objects security groups are enforced on. Palisade does no IP address
//! management; it keeps Neutron's rules about groups, port security and address pairs.

use super::{check_if_match, new_id, now, Context, Plan, Service};
use crate::index::{views, View};
use crate::index::{Entry, Index};
use crate::keys;
use palisade_model::convert::{Method, Object};
use palisade_model::input::{parse_port, resolve_pairs, PortRequest};
use palisade_model::{Error, Port};
use palisade_store::Compare;

/// A MAC in OpenStack's fa:16:3e OUI.
fn generate_mac() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

fn is_network_owned(owner: &str) -> bool {
    owner.starts_with("network:")
}

impl Service {
    fn visible_port<'a>(idx: &'a Index, ctx: &Context, id: &str) -> Result<&'a Entry<Port>, Error> {
        idx.ports
            .get(id)
            .filter(|e| ctx.sees(&e.value.project_id))
            .ok_or_else(|| Error::PortNotFound(id.to_string()))
    }

    /// Checks the groups of a port of `project` and guards them in `plan`.
    fn check_port_groups(
        idx: &Index,
        ctx: &Context,
        project: &str,
        groups: &[String],
        plan: &mut Plan,
    ) -> Result<(), Error> {
        let missing: Vec<&str> = groups
            .iter()
            .filter(|g| {
                !idx.sgs
                    .get(g.as_str())
                    .is_some_and(|e| ctx.is_admin() || e.value.project_id == project)
            })
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::SecurityGroupNotFound(missing.join(", ")));
        }
        let mut stateful = None;
        for g in groups {
            if let Some(e) = idx.sgs.get(g) {
                if stateful.is_some_and(|s| s != e.value.stateful) {
                    return Err(Error::SecurityGroupConflict(
                        "Cannot apply both stateful and stateless security groups on the same port at the same time".into(),
                    ));
                }
                stateful = Some(e.value.stateful);
                plan.guard(Compare::unchanged(keys::sg(g), e.mod_rev));
            }
        }
        Ok(())
    }

    fn index_port_ops(plan: &mut Plan, p: &Port, add: bool) {
        let mut keys_: Vec<String> = p
            .security_groups
            .iter()
            .map(|g| format!("{}{}", keys::sg_ports(g), p.id))
            .collect();
        keys_.push(format!("{}{}", keys::net_ports(&p.network_id), p.id));
        for k in keys_ {
            if add {
                plan.put_raw(k, Vec::new());
            } else {
                plan.delete(k);
            }
        }
    }

    /// `POST /v2.0/ports` (one or bulk).
    pub async fn create_ports(&self, ctx: &Context, items: &[Object]) -> Result<Vec<View>, Error> {
        let mut parsed: Vec<(PortRequest, String)> = Vec::new();
        for obj in items {
            let req = parse_port(obj, Method::Create)?;
            let owner = ctx.owner(req.project_id.clone())?;
            parsed.push((req, owner));
        }
        for (_, owner) in &parsed {
            self.ensure_default_sg(ctx, owner).await?;
        }
        let (ids, _) = self
            .write(|idx, cfg| {
                let mut plan = Plan::default();
                let now = now();
                let mut ids = Vec::new();
                let mut macs: Vec<(String, String)> = Vec::new();
                for (req, owner) in &parsed {
                    plan.charge(idx, cfg, owner, "port", 1, true)?;
                    ctx.require_write("create_port")?;
                    let net_id = req.network_id.clone().unwrap_or_default();
                    let net = idx
                        .networks
                        .get(&net_id)
                        .filter(|n| {
                            n.value.shared || ctx.is_admin() || n.value.project_id == *owner
                        })
                        .ok_or_else(|| Error::NetworkNotFound(net_id.clone()))?;
                    plan.guard(Compare::created_at(keys::network(&net_id), net.create_rev));
                    let port_security = req
                        .port_security_enabled
                        .unwrap_or(net.value.port_security_enabled);
                    let device_owner = req.device_owner.clone().unwrap_or_default();
                    let groups = match &req.security_groups {
                        _ if is_network_owned(&device_owner) => Vec::new(),
                        Some(g) => g.clone(),
                        None if port_security => {
                            idx.text(&keys::default_sg(owner)).into_iter().collect()
                        }
                        None => Vec::new(),
                    };
                    if !port_security && !groups.is_empty() {
                        return Err(Error::PortSecurityAndIpRequiredForSecurityGroups);
                    }
                    let pairs = req.allowed_address_pairs.clone().unwrap_or_default();
                    if !port_security && !pairs.is_empty() {
                        return Err(Error::AddressPairAndPortSecurityRequired);
                    }
                    Self::check_port_groups(idx, ctx, owner, &groups, &mut plan)?;
                    let mac = req.mac_address.clone().unwrap_or_else(generate_mac);
                    let mkey = keys::net_mac(&net_id, &mac);
                    if idx.raw.contains_key(&mkey) || macs.contains(&(net_id.clone(), mac.clone()))
                    {
                        return Err(Error::MacAddressInUse {
                            network: net_id,
                            mac,
                        });
                    }
                    macs.push((net_id.clone(), mac.clone()));
                    plan.guard(Compare::absent(mkey.clone()));
                    let port = Port {
                        id: new_id(),
                        name: req.name.clone().unwrap_or_default(),
                        description: req.description.clone().unwrap_or_default(),
                        network_id: net_id,
                        project_id: owner.clone(),
                        admin_state_up: req.admin_state_up.unwrap_or(true),
                        allowed_address_pairs: resolve_pairs(&pairs, &mac),
                        mac_address: mac,
                        fixed_ips: req.fixed_ips.clone().unwrap_or_default(),
                        security_groups: groups,
                        port_security_enabled: port_security,
                        device_id: req.device_id.clone().unwrap_or_default(),
                        device_owner,
                        binding_host_id: req.binding_host_id.clone().unwrap_or_default(),
                        binding_profile: req.binding_profile.clone().unwrap_or_default(),
                        tags: Vec::new(),
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        revision_number: 0,
                    };
                    plan.put_raw(mkey, port.id.clone());
                    Self::index_port_ops(&mut plan, &port, true);
                    plan.put(keys::port(&port.id), &port)?;
                    ids.push(port.id);
                }
                Ok((plan, ids))
            })
            .await?;
        Ok(views(&self.cache().read().ports, &ids))
    }

    /// `GET /v2.0/ports/{id}`
    pub fn show_port(&self, ctx: &Context, id: &str) -> Result<View, Error> {
        let idx = self.cache().read();
        Ok(Self::visible_port(&idx, ctx, id)?.view())
    }

    /// `PUT /v2.0/ports/{id}`
    pub async fn update_port(
        &self,
        ctx: &Context,
        id: &str,
        obj: &Object,
        if_match: Option<u64>,
    ) -> Result<View, Error> {
        let req = parse_port(obj, Method::Update)?;
        let project = self
            .cache()
            .read()
            .ports
            .get(id)
            .map(|p| p.value.project_id.clone());
        if let Some(p) = &project {
            // Neutron ensures the default group on port update too (tempest relies on it).
            self.ensure_default_sg(ctx, p).await?;
        }
        self.write(|idx, _| {
            let e = Self::visible_port(idx, ctx, id)?;
            ctx.require_write("update_port")?;
            check_if_match(if_match, e.value.revision_number)?;
            let cur = &e.value;
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::port(id), e.mod_rev));
            let port_security = req
                .port_security_enabled
                .unwrap_or(cur.port_security_enabled);
            let device_owner = req
                .device_owner
                .clone()
                .unwrap_or_else(|| cur.device_owner.clone());
            let groups = if is_network_owned(&device_owner) {
                Vec::new()
            } else {
                req.security_groups
                    .clone()
                    .unwrap_or_else(|| cur.security_groups.clone())
            };
            if !port_security {
                if req.security_groups.as_ref().is_some_and(|g| !g.is_empty()) {
                    return Err(Error::PortSecurityAndIpRequiredForSecurityGroups);
                }
                if !groups.is_empty() {
                    return Err(Error::PortSecurityPortHasSecurityGroup);
                }
            }
            let mac = req
                .mac_address
                .clone()
                .unwrap_or_else(|| cur.mac_address.clone());
            let pairs = match &req.allowed_address_pairs {
                Some(p) => resolve_pairs(p, &mac),
                None => cur.allowed_address_pairs.clone(),
            };
            if !port_security && !pairs.is_empty() {
                return Err(Error::AddressPairAndPortSecurityRequired);
            }
            Self::check_port_groups(idx, ctx, &cur.project_id, &groups, &mut plan)?;
            if mac != cur.mac_address {
                let mkey = keys::net_mac(&cur.network_id, &mac);
                if idx.raw.contains_key(&mkey) {
                    return Err(Error::MacAddressInUse {
                        network: cur.network_id.clone(),
                        mac,
                    });
                }
                plan.guard(Compare::absent(mkey.clone()));
                plan.delete(keys::net_mac(&cur.network_id, &cur.mac_address));
                plan.put_raw(mkey, id.to_string());
            }
            let new = Port {
                name: req.name.clone().unwrap_or_else(|| cur.name.clone()),
                description: req
                    .description
                    .clone()
                    .unwrap_or_else(|| cur.description.clone()),
                admin_state_up: req.admin_state_up.unwrap_or(cur.admin_state_up),
                mac_address: mac,
                fixed_ips: req
                    .fixed_ips
                    .clone()
                    .unwrap_or_else(|| cur.fixed_ips.clone()),
                allowed_address_pairs: pairs,
                security_groups: groups,
                port_security_enabled: port_security,
                device_id: req
                    .device_id
                    .clone()
                    .unwrap_or_else(|| cur.device_id.clone()),
                device_owner,
                binding_host_id: req
                    .binding_host_id
                    .clone()
                    .unwrap_or_else(|| cur.binding_host_id.clone()),
                binding_profile: req
                    .binding_profile
                    .clone()
                    .unwrap_or_else(|| cur.binding_profile.clone()),
                updated_at: now(),
                revision_number: cur.revision_number + 1,
                ..(**cur).clone()
            };
            Self::index_port_ops(&mut plan, cur, false);
            Self::index_port_ops(&mut plan, &new, true);
            plan.put(keys::port(id), &new)?;
            Ok((plan, ()))
        })
        .await?;
        self.show_port(ctx, id)
    }

    /// `DELETE /v2.0/ports/{id}`
    pub async fn delete_port(
        &self,
        ctx: &Context,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), Error> {
        self.write(|idx, cfg| {
            let e = Self::visible_port(idx, ctx, id)?;
            ctx.require_write("delete_port")?;
            check_if_match(if_match, e.value.revision_number)?;
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::port(id), e.mod_rev));
            Self::index_port_ops(&mut plan, &e.value, false);
            plan.delete(keys::net_mac(&e.value.network_id, &e.value.mac_address));
            plan.delete(keys::port(id));
            plan.charge(idx, cfg, &e.value.project_id, "port", -1, false)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }
}
