//! The incremental host view: the state a host's ruleset is compiled from, kept up to date
//! one change at a time (a port, group or address group created, updated or deleted), with
//! the ruleset pieces those changes touch replaced and remembered, so the next delta is
//! computed from the touched pieces only — not by comparing two whole rulesets.

use crate::ir::{
    address_set, filtered, group_rules, member_set, port_program, ChainKey, CompileError, IrRule,
    IrSet, PortProgram, Remote, Ruleset, SetSource,
};
use crate::render::{delta_of_parts, render, Delta};
use crate::state::{AddressGroup, Direction, Port, SecurityGroup, State};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The pieces touched since the last delta, with their value before the first touch.
#[derive(Debug, Default)]
struct Touched {
    sets: BTreeMap<String, Option<Arc<IrSet>>>,
    chains: BTreeMap<ChainKey, Option<Arc<Vec<IrRule>>>>,
    ports: BTreeMap<String, Option<Arc<PortProgram>>>,
}

/// One host's view of the security-group state, and the ruleset compiled from it.
#[derive(Debug)]
pub struct HostView {
    host: String,
    groups: HashMap<String, SecurityGroup>,
    ports: HashMap<String, Port>,
    address_groups: HashMap<String, AddressGroup>,
    /// group → its ports, on any host (the source of its member sets)
    members: HashMap<String, BTreeSet<String>>,
    /// group → the filtered ports of this host in it (a group has chains while it has any)
    users: HashMap<String, BTreeSet<String>>,
    /// interface → the port of this host using it
    ifnames: HashMap<String, String>,
    /// set → how many rules of this host's chains name it (a set exists while any do)
    set_refs: HashMap<String, usize>,
    rs: Ruleset,
    touched: Touched,
    /// NFLOG group for drops, if logged
    log_group: Option<u16>,
}

impl HostView {
    /// The view of `host` in `state`, compiled. Nothing counts as touched yet: what the
    /// ruleset holds is what a first full apply installs.
    pub fn new(state: &State, host: &str) -> Result<HostView, CompileError> {
        let mut v = HostView {
            host: host.to_string(),
            groups: HashMap::with_capacity(state.security_groups.len()),
            ports: HashMap::with_capacity(state.ports.len()),
            address_groups: HashMap::with_capacity(state.address_groups.len()),
            members: HashMap::new(),
            users: HashMap::new(),
            ifnames: HashMap::new(),
            set_refs: HashMap::new(),
            rs: Ruleset::default(),
            touched: Touched::default(),
            log_group: None,
        };
        for g in &state.security_groups {
            v.groups.insert(g.id.clone(), g.clone());
        }
        for a in &state.address_groups {
            v.address_groups.insert(a.id.clone(), a.clone());
        }
        for (index, p) in state.ports.iter().enumerate() {
            v.check_port(p, |j| format!("ports[{index}].security_groups[{j}]"))?;
            if v.is_local(p) {
                v.ifnames.insert(p.ifname(), p.id.clone());
                for g in &p.security_groups {
                    v.users.entry(g.clone()).or_default().insert(p.id.clone());
                }
            }
            for g in &p.security_groups {
                v.members.entry(g.clone()).or_default().insert(p.id.clone());
            }
            v.ports.insert(p.id.clone(), p.clone());
        }
        // Built in bulk: every piece once.
        let mut used: Vec<&String> = v.users.keys().collect();
        used.sort();
        let mut chains = BTreeMap::new();
        let mut set_refs: HashMap<String, usize> = HashMap::new();
        for g in used {
            let (ingress, egress) = group_rules(&v.groups[g]);
            for r in ingress.iter().chain(&egress) {
                if let Remote::Set(name) = &r.remote {
                    *set_refs.entry(name.clone()).or_default() += 1;
                }
            }
            chains.insert((g.clone(), Direction::Ingress), Arc::new(ingress));
            chains.insert((g.clone(), Direction::Egress), Arc::new(egress));
        }
        let mut sets = BTreeMap::new();
        for name in set_refs.keys() {
            if let Some(set) = v.build_set(name) {
                sets.insert(name.clone(), Arc::new(set));
            }
        }
        let mut ports = BTreeMap::new();
        for p in v.ports.values().filter(|p| v.is_local(p)) {
            ports.insert(p.id.clone(), Arc::new(port_program(p, v.stateful(p))));
        }
        v.rs = Ruleset {
            sets,
            chains,
            ports,
        };
        v.set_refs = set_refs;
        Ok(v)
    }

    /// The compiled ruleset as it stands.
    pub fn ruleset(&self) -> &Ruleset {
        &self.rs
    }

    /// The compiled ruleset, consuming the view.
    pub fn into_ruleset(self) -> Ruleset {
        self.rs
    }

    /// A security group as the view knows it (with its rules).
    pub fn group(&self, id: &str) -> Option<&SecurityGroup> {
        self.groups.get(id)
    }

    /// The host this view is for.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The transaction that turns what was applied (the ruleset at [`HostView::new`] or at
    /// the previous call) into the ruleset as it stands, computed from the touched pieces
    /// only; a full replacement where no delta can express the change.
    pub fn take_delta(&mut self) -> Delta {
        let touched = std::mem::take(&mut self.touched);
        let (mut old, mut new) = (Ruleset::default(), Ruleset::default());
        for (k, before) in touched.sets {
            if let Some(now) = self.rs.sets.get(&k) {
                new.sets.insert(k.clone(), now.clone());
            }
            if let Some(b) = before {
                old.sets.insert(k, b);
            }
        }
        for (k, before) in touched.chains {
            if let Some(now) = self.rs.chains.get(&k) {
                new.chains.insert(k.clone(), now.clone());
            }
            if let Some(b) = before {
                old.chains.insert(k, b);
            }
        }
        for (k, before) in touched.ports {
            if let Some(now) = self.rs.ports.get(&k) {
                new.ports.insert(k.clone(), now.clone());
            }
            if let Some(b) = before {
                old.ports.insert(k, b);
            }
        }
        delta_of_parts(&old, &new).unwrap_or_else(|| Delta {
            script: render(&self.rs),
            elements_only: false,
        })
    }

    /// A port was created or updated (on any host).
    pub fn upsert_port(&mut self, p: Port) -> Result<(), CompileError> {
        self.check_port(&p, |j| format!("port {}: security_groups[{j}]", p.id))?;
        let id = p.id.clone();
        self.replace_port(&id, Some(p));
        Ok(())
    }

    /// A port was deleted. Unknown ids are ignored.
    pub fn remove_port(&mut self, id: &str) {
        self.replace_port(id, None);
    }

    /// A security group was created or updated (its rules or its `stateful` flag).
    pub fn upsert_group(&mut self, sg: SecurityGroup) {
        let id = sg.id.clone();
        let stateful_changed = self
            .groups
            .get(&id)
            .is_some_and(|old| old.stateful != sg.stateful);
        self.groups.insert(id.clone(), sg);
        if self.users.contains_key(&id) {
            self.drop_chains(&id);
            self.add_chains(&id);
            if stateful_changed {
                let users: Vec<String> = self.users[&id].iter().cloned().collect();
                for port in users {
                    if let Some(p) = self.ports.get(&port) {
                        let prog = self.program(p);
                        self.put_port(port, Some(prog));
                    }
                }
            }
        }
    }

    /// A security group was deleted; refused while ports of this host still use it.
    pub fn remove_group(&mut self, id: &str) -> Result<(), CompileError> {
        if let Some(port) = self.users.get(id).and_then(|u| u.iter().next()) {
            return Err(CompileError::GroupInUse {
                group: id.to_string(),
                port: port.clone(),
            });
        }
        self.groups.remove(id);
        Ok(())
    }

    /// An address group was created or updated.
    pub fn upsert_address_group(&mut self, ag: AddressGroup) {
        let id = ag.id.clone();
        self.address_groups.insert(id.clone(), ag);
        self.refresh_sets(|f| SetSource::AddressGroup(id.clone(), f));
    }

    /// An address group was deleted (rules naming it then match nothing).
    pub fn remove_address_group(&mut self, id: &str) {
        self.address_groups.remove(id);
        self.refresh_sets(|f| SetSource::AddressGroup(id.to_string(), f));
    }

    /// Logs every port's drops to NFLOG `group` (rate-limited), or stops logging them.
    pub fn set_drop_log(&mut self, group: Option<u16>) {
        if self.log_group == group {
            return;
        }
        self.log_group = group;
        let ids: Vec<String> = self.rs.ports.keys().cloned().collect();
        for id in ids {
            if let Some(p) = self.ports.get(&id) {
                let prog = self.program(p);
                self.put_port(id, Some(prog));
            }
        }
    }

    fn program(&self, p: &Port) -> PortProgram {
        let mut prog = port_program(p, self.stateful(p));
        prog.log_group = self.log_group;
        prog
    }

    fn is_local(&self, p: &Port) -> bool {
        p.host == self.host && filtered(p)
    }

    fn stateful(&self, p: &Port) -> bool {
        p.security_groups
            .iter()
            .all(|g| self.groups.get(g).is_none_or(|sg| sg.stateful))
    }

    /// A port of this host must name known groups and an interface no other port uses.
    fn check_port(&self, p: &Port, path: impl Fn(usize) -> String) -> Result<(), CompileError> {
        if !self.is_local(p) {
            return Ok(());
        }
        for (j, g) in p.security_groups.iter().enumerate() {
            if !self.groups.contains_key(g) {
                return Err(CompileError::UnknownGroup {
                    path: path(j),
                    port: p.id.clone(),
                    group: g.clone(),
                });
            }
        }
        let ifname = p.ifname();
        if !valid_ifname(&ifname) {
            return Err(CompileError::BadInterface {
                port: p.id.clone(),
                ifname,
            });
        }
        match self.ifnames.get(&ifname) {
            Some(other) if *other != p.id => Err(CompileError::DuplicateInterface {
                ifname,
                a: other.clone(),
                b: p.id.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn replace_port(&mut self, id: &str, new: Option<Port>) {
        let old = self.ports.remove(id);
        let groups_of = |p: &Option<Port>| -> BTreeSet<String> {
            p.iter()
                .flat_map(|p| p.security_groups.iter().cloned())
                .collect()
        };
        let (old_groups, new_groups) = (groups_of(&old), groups_of(&new));
        for g in old_groups.difference(&new_groups) {
            if let Some(m) = self.members.get_mut(g) {
                m.remove(id);
                if m.is_empty() {
                    self.members.remove(g);
                }
            }
        }
        for g in new_groups.difference(&old_groups) {
            self.members
                .entry(g.clone())
                .or_default()
                .insert(id.to_string());
        }
        let local_groups = |p: &Option<Port>| -> BTreeSet<String> {
            match p {
                Some(p) if self.is_local(p) => p.security_groups.iter().cloned().collect(),
                _ => BTreeSet::new(),
            }
        };
        let (old_local, new_local) = (local_groups(&old), local_groups(&new));
        if let Some(p) = old.as_ref().filter(|p| self.is_local(p)) {
            self.ifnames.remove(&p.ifname());
        }
        if let Some(p) = new.as_ref().filter(|p| self.is_local(p)) {
            self.ifnames.insert(p.ifname(), id.to_string());
        }
        // Groups that gain their first local port get chains before any go.
        for g in new_local.difference(&old_local) {
            let users = self.users.entry(g.clone()).or_default();
            users.insert(id.to_string());
            if users.len() == 1 {
                self.add_chains(g);
            }
        }
        for g in old_local.difference(&new_local) {
            if let Some(users) = self.users.get_mut(g) {
                users.remove(id);
                if users.is_empty() {
                    self.users.remove(g);
                    self.drop_chains(g);
                }
            }
        }
        let program = new
            .as_ref()
            .filter(|p| self.is_local(p))
            .map(|p| self.program(p));
        if program.is_some() || self.rs.ports.contains_key(id) {
            self.put_port(id.to_string(), program);
        }
        if let Some(p) = new {
            self.ports.insert(id.to_string(), p);
        }
        // Member sets of every group the port was or is in.
        for g in old_groups.union(&new_groups) {
            self.refresh_sets(|f| SetSource::Group(g.clone(), f));
        }
    }

    fn add_chains(&mut self, g: &str) {
        let Some(sg) = self.groups.get(g) else {
            return;
        };
        let (ingress, egress) = group_rules(sg);
        for r in ingress.iter().chain(&egress) {
            if let Remote::Set(name) = &r.remote {
                let n = self.set_refs.entry(name.clone()).or_default();
                *n += 1;
                if *n == 1 {
                    let set = self.build_set(name);
                    self.put_set(name.clone(), set);
                }
            }
        }
        self.put_chain((g.to_string(), Direction::Ingress), Some(ingress));
        self.put_chain((g.to_string(), Direction::Egress), Some(egress));
    }

    fn drop_chains(&mut self, g: &str) {
        for d in [Direction::Ingress, Direction::Egress] {
            let key = (g.to_string(), d);
            let Some(rules) = self.rs.chains.get(&key).cloned() else {
                continue;
            };
            for r in rules.iter() {
                if let Remote::Set(name) = &r.remote {
                    if let Some(n) = self.set_refs.get_mut(name) {
                        *n -= 1;
                        if *n == 0 {
                            self.set_refs.remove(name);
                            self.put_set(name.clone(), None);
                        }
                    }
                }
            }
            self.put_chain(key, None);
        }
    }

    /// Recomputes the member sets of one source (both families) where they exist.
    fn refresh_sets(&mut self, source: impl Fn(crate::ir::Family) -> SetSource) {
        for f in [crate::ir::Family::V4, crate::ir::Family::V6] {
            let name = source(f).name();
            if !self.set_refs.contains_key(&name) {
                continue;
            }
            let set = self.build_set(&name);
            if self.rs.sets.get(&name).map(|s| &**s) != set.as_ref() {
                self.put_set(name, set);
            }
        }
    }

    fn build_set(&self, name: &str) -> Option<IrSet> {
        Some(match SetSource::of_name(name)? {
            SetSource::Group(g, f) => member_set(
                self.members
                    .get(&g)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| self.ports.get(id)),
                f,
            ),
            SetSource::AddressGroup(a, f) => address_set(self.address_groups.get(&a), f),
        })
    }

    fn put_set(&mut self, name: String, set: Option<IrSet>) {
        let before = match set {
            Some(s) => self.rs.sets.insert(name.clone(), Arc::new(s)),
            None => self.rs.sets.remove(&name),
        };
        self.touched.sets.entry(name).or_insert(before);
    }

    fn put_chain(&mut self, key: ChainKey, rules: Option<Vec<IrRule>>) {
        let before = match rules {
            Some(r) => self.rs.chains.insert(key.clone(), Arc::new(r)),
            None => self.rs.chains.remove(&key),
        };
        self.touched.chains.entry(key).or_insert(before);
    }

    fn put_port(&mut self, id: String, program: Option<PortProgram>) {
        let before = match program {
            Some(p) => self.rs.ports.insert(id.clone(), Arc::new(p)),
            None => self.rs.ports.remove(&id),
        };
        self.touched.ports.entry(id).or_insert(before);
    }
}

/// A Linux interface name nft can carry: 1–15 bytes of letters, digits, `-`, `_`, `.`, `@`.
pub fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}
