//! Address groups: named CIDR lists that rules can name as their remote.

use super::{check_if_match, new_id, now, Context, Plan, Service};
use crate::index::{views, View};
use crate::index::{Entry, Index};
use crate::keys;
use palisade_model::convert::{self, Method, Object};
use palisade_model::input::{addresses, parse_address_group};
use palisade_model::{AddressGroup, Error};
use palisade_store::Compare;

impl Service {
    fn visible_ag<'a>(
        idx: &'a Index,
        ctx: &Context,
        id: &str,
    ) -> Result<&'a Entry<AddressGroup>, Error> {
        idx.address_groups
            .get(id)
            .filter(|e| ctx.sees(&e.value.project_id))
            .ok_or_else(|| Error::AddressGroupNotFound(id.to_string()))
    }

    /// `POST /v2.0/address-groups` (one or bulk).
    pub async fn create_address_groups(
        &self,
        ctx: &Context,
        items: &[Object],
    ) -> Result<Vec<View>, Error> {
        let mut parsed = Vec::new();
        for obj in items {
            let req = parse_address_group(obj, Method::Create)?;
            let owner = ctx.owner(req.project_id.clone())?;
            parsed.push((req, owner));
        }
        ctx.require_write("create_address_group")?;
        let (ids, _) = self
            .write(|_, _| {
                let mut plan = Plan::default();
                let now = now();
                let mut ids = Vec::new();
                for (req, owner) in &parsed {
                    let mut addrs = req.addresses.clone().unwrap_or_default();
                    addrs.sort();
                    let ag = AddressGroup {
                        id: new_id(),
                        name: req.name.clone().unwrap_or_default(),
                        description: req.description.clone().unwrap_or_default(),
                        project_id: owner.clone(),
                        addresses: addrs,
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        revision_number: 0,
                    };
                    plan.put(keys::address_group(&ag.id), &ag)?;
                    ids.push(ag.id);
                }
                Ok((plan, ids))
            })
            .await?;
        Ok(views(&self.cache().read().address_groups, &ids))
    }

    /// `GET /v2.0/address-groups/{id}`
    pub fn show_address_group(&self, ctx: &Context, id: &str) -> Result<View, Error> {
        let idx = self.cache().read();
        Ok(Self::visible_ag(&idx, ctx, id)?.view())
    }

    /// `PUT /v2.0/address-groups/{id}` (name, description).
    pub async fn update_address_group(
        &self,
        ctx: &Context,
        id: &str,
        obj: &Object,
        if_match: Option<u64>,
    ) -> Result<View, Error> {
        let req = parse_address_group(obj, Method::Update)?;
        self.change_address_group(ctx, id, if_match, |ag| {
            if let Some(n) = &req.name {
                ag.name = n.clone();
            }
            if let Some(d) = &req.description {
                ag.description = d.clone();
            }
        })
        .await
    }

    /// `PUT /v2.0/address-groups/{id}/add_addresses` or `remove_addresses`.
    pub async fn change_addresses(
        &self,
        ctx: &Context,
        id: &str,
        obj: &Object,
        add: bool,
    ) -> Result<View, Error> {
        convert::check_attributes(obj, Method::Update, &["addresses"], &[])?;
        let list = addresses(convert::required(obj, "addresses")?)?;
        self.change_address_group(ctx, id, None, |ag| {
            if add {
                for a in &list {
                    if !ag.addresses.contains(a) {
                        ag.addresses.push(a.clone());
                    }
                }
                ag.addresses.sort();
            } else {
                ag.addresses.retain(|a| !list.contains(a));
            }
        })
        .await
    }

    async fn change_address_group(
        &self,
        ctx: &Context,
        id: &str,
        if_match: Option<u64>,
        change: impl Fn(&mut AddressGroup),
    ) -> Result<View, Error> {
        self.write(|idx, _| {
            let e = Self::visible_ag(idx, ctx, id)?;
            ctx.require_write("update_address_group")?;
            check_if_match(if_match, e.value.revision_number)?;
            let mut ag = (*e.value).clone();
            change(&mut ag);
            let mut plan = Plan::default();
            if ag == *e.value {
                return Ok((plan, ()));
            }
            ag.updated_at = now();
            ag.revision_number += 1;
            plan.guard(Compare::unchanged(keys::address_group(id), e.mod_rev));
            plan.put(keys::address_group(id), &ag)?;
            Ok((plan, ()))
        })
        .await?;
        self.show_address_group(ctx, id)
    }

    /// `DELETE /v2.0/address-groups/{id}`: 409 while rules name it.
    pub async fn delete_address_group(
        &self,
        ctx: &Context,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), Error> {
        self.write(|idx, _| {
            let e = Self::visible_ag(idx, ctx, id)?;
            ctx.require_write("delete_address_group")?;
            check_if_match(if_match, e.value.revision_number)?;
            if idx.rules_by_ag.contains_key(id) {
                return Err(Error::AddressGroupInUse(id.to_string()));
            }
            let mut plan = Plan::default();
            plan.guard(Compare::unchanged(keys::address_group(id), e.mod_rev));
            plan.guard(Compare::prefix_empty(keys::ag_refs(id)));
            plan.delete(keys::address_group(id));
            Ok((plan, ()))
        })
        .await?;
        Ok(())
    }
}
