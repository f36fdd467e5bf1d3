//! Networks: minimal (Palisade does no L2/L3); they carry ports and their default port
//! security.

use super::{check_if_match, new_id, now, Context, Plan, Service};
use crate::index::{views, View};
use crate::index::{Entry, Index};
use crate::keys;
use palisade_model::convert::{Method, Object};
use palisade_model::input::parse_network;
use palisade_model::{Error, Network};
use palisade_store::Compare;

impl Service {
    fn visible_network<'a>(
        idx: &'a Index,
        ctx: &Context,
        id: &str,
    ) -> Result<&'a Entry<Network>, Error> {
        idx.networks
            .get(id)
            .filter(|e| e.value.shared || ctx.sees(&e.value.project_id))
            .ok_or_else(|| Error::NetworkNotFound(id.to_string()))
    }

    /// `POST /v2.0/networks` (one or bulk).
    pub async fn create_networks(
        &self,
        ctx: &Context,
        items: &[Object],
    ) -> Result<Vec<View>, Error> {
        let mut parsed = Vec::new();
        for obj in items {
            let req = parse_network(obj, Method::Create)?;
            let owner = ctx.owner(req.project_id.clone())?;
            if req.shared == Some(true) && !ctx.is_admin() {
                return Err(Error::PolicyNotAuthorized("create_network:shared".into()));
            }
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
                for (req, owner) in &parsed {
                    plan.charge(idx, cfg, owner, "network", 1, true)?;
                    ctx.require_write("create_network")?;
                    let n = Network {
                        id: new_id(),
                        name: req.name.clone().unwrap_or_default(),
                        description: req.description.clone().unwrap_or_default(),
                        project_id: owner.clone(),
                        admin_state_up: req.admin_state_up.unwrap_or(true),
                        shared: req.shared.unwrap_or(false),
                        port_security_enabled: req.port_security_enabled.unwrap_or(true),
                        tags: Vec::new(),
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        revision_number: 0,
                    };
                    plan.put(keys::network(&n.id), &n)?;
                    ids.push(n.id);
                }
                Ok((plan, ids))
            })
            .await?;
        Ok(views(&self.cache().read().networks, &ids))
    }

    /// `GET /v2.0/networks/{id}`
    pub fn show_network(&self, ctx: &Context, id: &str) -> Result<View, Error> {
        let idx = self.cache().read();
        Ok(Self::visible_network(&idx, ctx, id)?.view())
    }

    /// `PUT /v2.0/networks/{id}`
    pub async fn update_network(
        &self,
        ctx: &Context,
        id: &str,
        obj: &Object,
        if_match: Option<u64>,
    ) -> Result<View, Error> {
        let req = parse_network(obj, Method::Update)?;
        if req.shared.is_some() && !ctx.is_admin() {
            return Err(Error::PolicyNotAuthorized("update_network:shared".into()));
        }
        self.write(|idx, _| {
            let e = Self::visible_network(idx, ctx, id)?;
            if !ctx.sees(&e.value.project_id) {
                return Err(Error::PolicyNotAuthorized("update_network".into()));
            }
            ctx.require_write("update_network")?;
            check_if_match(if_match, e.value.revision_number)?;
            let cur = &e.value;
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::network(id), e.mod_rev));
            let new = Network {
                name: req.name.clone().unwrap_or_else(|| cur.name.clone()),
                description: req
                    .description
                    .clone()
                    .unwrap_or_else(|| cur.description.clone()),
                admin_state_up: req.admin_state_up.unwrap_or(cur.admin_state_up),
                shared: req.shared.unwrap_or(cur.shared),
                port_security_enabled: req
                    .port_security_enabled
                    .unwrap_or(cur.port_security_enabled),
                updated_at: now(),
                revision_number: cur.revision_number + 1,
                ..(**cur).clone()
            };
            plan.put(keys::network(id), &new)?;
            Ok((plan, ()))
        })
        .await?;
        self.show_network(ctx, id)
    }

    /// `DELETE /v2.0/networks/{id}`: 409 while ports are on it.
    pub async fn delete_network(
        &self,
        ctx: &Context,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), Error> {
        self.write(|idx, cfg| {
            let e = Self::visible_network(idx, ctx, id)?;
            if !ctx.sees(&e.value.project_id) {
                return Err(Error::PolicyNotAuthorized("delete_network".into()));
            }
            ctx.require_write("delete_network")?;
            check_if_match(if_match, e.value.revision_number)?;
            if idx.ports_by_net.contains_key(id) {
                return Err(Error::NetworkInUse(id.to_string()));
            }
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::network(id), e.mod_rev));
            plan.guard(Compare::prefix_empty(keys::net_ports(id)));
            plan.delete(keys::network(id));
            plan.charge(idx, cfg, &e.value.project_id, "network", -1, false)?;
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }
}
