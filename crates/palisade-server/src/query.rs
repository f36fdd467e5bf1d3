//! Neutron's list queries over any collection: filters (repeated key = OR, values through
//! the attribute's converter), tag filters, `fields`, `sort_key`/`sort_dir`, and
//! `limit`/`marker`/`page_reverse` pagination with `<collection>_links` (spec §2.2).
//!
//! Pure over pre-rendered items: the caller supplies what the caller may see.

use palisade_model::convert::parse_bool_str;
use palisade_model::rule::parse_prefix;
use palisade_model::Error;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// How a collection can be listed.
#[derive(Debug)]
pub struct Collection {
    /// Plural wrapper key, e.g. `security_groups`.
    pub name: &'static str,
    /// Attributes usable as filters.
    pub filterable: &'static [&'static str],
    /// Attributes usable as sort keys.
    pub sortable: &'static [&'static str],
}

/// `GET /v2.0/security-groups`
pub const SECURITY_GROUPS: Collection = Collection {
    name: "security_groups",
    filterable: &[
        "id",
        "name",
        "description",
        "project_id",
        "tenant_id",
        "stateful",
        "shared",
        "revision_number",
    ],
    sortable: &["id", "name", "project_id", "tenant_id"],
};
/// `GET /v2.0/security-group-rules`
pub const RULES: Collection = Collection {
    name: "security_group_rules",
    filterable: &[
        "id",
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "normalized_cidr",
        "remote_group_id",
        "remote_address_group_id",
        "project_id",
        "tenant_id",
        "description",
        "belongs_to_default_sg",
        "revision_number",
    ],
    sortable: &[
        "id",
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "normalized_cidr",
        "remote_group_id",
        "remote_address_group_id",
        "project_id",
        "tenant_id",
    ],
};
/// `GET /v2.0/ports`
pub const PORTS: Collection = Collection {
    name: "ports",
    filterable: &[
        "id",
        "name",
        "description",
        "network_id",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "status",
        "mac_address",
        "fixed_ips",
        "security_groups",
        "port_security_enabled",
        "device_id",
        "device_owner",
        "binding:host_id",
        "revision_number",
    ],
    sortable: &[
        "id",
        "name",
        "network_id",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "status",
        "mac_address",
        "device_id",
        "device_owner",
    ],
};
/// `GET /v2.0/networks`
pub const NETWORKS: Collection = Collection {
    name: "networks",
    filterable: &[
        "id",
        "name",
        "description",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "shared",
        "status",
        "port_security_enabled",
        "revision_number",
    ],
    sortable: &[
        "id",
        "name",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "status",
    ],
};
/// `GET /v2.0/address-groups`
pub const ADDRESS_GROUPS: Collection = Collection {
    name: "address_groups",
    filterable: &[
        "id",
        "name",
        "description",
        "project_id",
        "tenant_id",
        "addresses",
        "revision_number",
    ],
    sortable: &["id", "name", "project_id", "tenant_id"],
};

const BOOLS: &[&str] = &[
    "stateful",
    "shared",
    "admin_state_up",
    "port_security_enabled",
    "belongs_to_default_sg",
];
const INTS: &[&str] = &["port_range_min", "port_range_max", "revision_number"];

/// A parsed list query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// field → accepted values (OR).
    pub filters: Vec<(String, Vec<Value>)>,
    /// tags: every one present.
    pub tags_all: Vec<String>,
    /// tags-any: at least one present.
    pub tags_any: Vec<String>,
    /// not-tags: not all of them present.
    pub not_tags_all: Vec<String>,
    /// not-tags-any: none present.
    pub not_tags_any: Vec<String>,
    /// `fields` to return (empty = all).
    pub fields: Vec<String>,
    /// (key, ascending)
    pub sort: Vec<(String, bool)>,
    /// Page size (None or 0 = everything).
    pub limit: Option<usize>,
    /// Last id seen.
    pub marker: Option<String>,
    /// Page before the marker.
    pub page_reverse: bool,
    /// The raw pairs, for building links.
    pub raw: Vec<(String, String)>,
}

impl ListQuery {
    /// Values of the filter on `field`, if any (`tenant_id` counts as `project_id`).
    pub fn filter(&self, field: &str) -> Option<&[Value]> {
        self.filters
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_slice())
    }
    /// Whether `field` should be rendered (for skipping expensive attributes).
    pub fn wants(&self, field: &str) -> bool {
        self.fields.is_empty() || self.fields.iter().any(|f| f == field)
    }
}

fn split_tags(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// Converts a filter value with the attribute's converter.
fn filter_value(field: &str, raw: &str) -> Result<Value, Error> {
    if BOOLS.contains(&field) {
        return parse_bool_str(raw).map(Value::Bool).ok_or_else(|| {
            Error::InvalidInput(format!(
                "'{raw}' cannot be converted to boolean (filter {field})."
            ))
        });
    }
    if INTS.contains(&field) {
        return raw.trim().parse::<i64>().map(Value::from).map_err(|_| {
            Error::BadRequest(format!(
                "Invalid input for {field}. Reason: '{raw}' is not an integer."
            ))
        });
    }
    Ok(Value::String(match field {
        "ethertype" if raw.eq_ignore_ascii_case("ipv4") => "IPv4".into(),
        "ethertype" if raw.eq_ignore_ascii_case("ipv6") => "IPv6".into(),
        "protocol" => raw.to_ascii_lowercase(),
        "remote_ip_prefix" | "normalized_cidr" if !raw.is_empty() => parse_prefix(raw)?.1,
        "mac_address" => raw.to_ascii_lowercase(),
        _ => raw.to_string(),
    }))
}

/// Parses a query string for `coll`.
pub fn parse(query: &str, coll: &Collection) -> Result<ListQuery, Error> {
    let mut q = ListQuery::default();
    let mut sort_keys: Vec<String> = Vec::new();
    let mut sort_dirs: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        q.raw.push((k.clone(), v.clone()));
        match k.as_str() {
            "fields" => q.fields.push(v),
            "sort_key" => sort_keys.push(v),
            "sort_dir" => sort_dirs.push(v),
            "limit" => {
                let n = v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "Limit must be an integer 0 or greater and not '{v}' (limit)"
                        ))
                    })?;
                q.limit = if n == 0 { None } else { Some(n as usize) };
            }
            "marker" => q.marker = Some(v),
            "page_reverse" => {
                q.page_reverse = parse_bool_str(&v).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "'{v}' cannot be converted to boolean (page_reverse)."
                    ))
                })?
            }
            "tags" => q.tags_all.extend(split_tags(&v)),
            "tags-any" => q.tags_any.extend(split_tags(&v)),
            "not-tags" => q.not_tags_all.extend(split_tags(&v)),
            "not-tags-any" => q.not_tags_any.extend(split_tags(&v)),
            field if coll.filterable.contains(&field) => {
                let field = if field == "tenant_id" {
                    "project_id"
                } else {
                    field
                };
                let value = filter_value(field, &v)?;
                match q.filters.iter_mut().find(|(f, _)| f == field) {
                    Some((_, vals)) => vals.push(value),
                    None => q.filters.push((field.to_string(), vec![value])),
                }
            }
            _ => unknown.push(k),
        }
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|u| format!("'{u}'")).collect();
        return Err(Error::BadRequest(format!(
            "[{}] is invalid attribute for filtering",
            list.join(", ")
        )));
    }
    if sort_keys.len() != sort_dirs.len() {
        return Err(Error::BadRequest(format!(
            "The number of sort_keys and sort_dirs must be same (sort_key: {}, sort_dir: {})",
            sort_keys.len(),
            sort_dirs.len()
        )));
    }
    let bad: Vec<String> = sort_keys
        .iter()
        .filter(|k| !coll.sortable.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if !bad.is_empty() {
        return Err(Error::BadRequest(format!(
            "[{}] is invalid attribute for sort_keys",
            bad.join(", ")
        )));
    }
    for (k, d) in sort_keys.into_iter().zip(sort_dirs) {
        let asc = match d.as_str() {
            "asc" => true,
            "desc" => false,
            other => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for sort_dir. Reason: '{other}' is not in ['asc', 'desc']."
                )))
            }
        };
        let k = if k == "tenant_id" {
            "project_id".to_string()
        } else {
            k
        };
        q.sort.push((k, asc));
    }
    Ok(q)
}

fn value_matches(item: &Value, want: &Value) -> bool {
    match (item, want) {
        (Value::Array(items), Value::String(w)) => items.iter().any(|i| match i {
            Value::String(s) => s == w,
            Value::Object(o) => match w.split_once('=') {
                Some((k, v)) => o.get(k).and_then(Value::as_str) == Some(v),
                None => false,
            },
            _ => false,
        }),
        (Value::Number(a), Value::Number(b)) => a.as_i64() == b.as_i64(),
        (a, b) => a == b,
    }
}

fn tag_list(item: &Map<String, Value>) -> Vec<&str> {
    item.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether an item passes every filter of the query.
pub fn matches(item: &Map<String, Value>, q: &ListQuery) -> bool {
    for (field, wants) in &q.filters {
        let Some(v) = item.get(field) else {
            return false;
        };
        if !wants.iter().any(|w| value_matches(v, w)) {
            return false;
        }
    }
    if !(q.tags_all.is_empty()
        && q.tags_any.is_empty()
        && q.not_tags_all.is_empty()
        && q.not_tags_any.is_empty())
    {
        let tags = tag_list(item);
        let has = |t: &String| tags.contains(&t.as_str());
        if !q.tags_all.iter().all(has) {
            return false;
        }
        if !q.tags_any.is_empty() && !q.tags_any.iter().any(has) {
            return false;
        }
        if !q.not_tags_all.is_empty() && q.not_tags_all.iter().all(has) {
            return false;
        }
        if q.not_tags_any.iter().any(has) {
            return false;
        }
    }
    true
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x
            .to_lowercase()
            .cmp(&y.to_lowercase())
            .then_with(|| x.cmp(y)),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// One listable object: its wire form and that form serialised.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// Wire form.
    pub json: &'a Map<String, Value>,
    /// Serialised wire form.
    pub bytes: &'a [u8],
}

fn id_of<'a>(item: &Item<'a>) -> &'a str {
    item.json
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Filters, sorts, pages and renders `items` as the list response body.
///
/// `base` is the request URL without query (for `_links`).
pub fn render(mut items: Vec<Item<'_>>, q: &ListQuery, coll: &Collection, base: &str) -> Vec<u8> {
    items.retain(|i| matches(i.json, q));
    if !q.sort.is_empty() {
        items.sort_by(|a, b| {
            for (k, asc) in &q.sort {
                let o = cmp_values(a.json.get(k), b.json.get(k));
                let o = if *asc { o } else { o.reverse() };
                if o != Ordering::Equal {
                    return o;
                }
            }
            id_of(a).cmp(id_of(b))
        });
    }
    let mut links: Vec<(&str, String)> = Vec::new();
    if let Some(limit) = q.limit {
        let pos = q
            .marker
            .as_deref()
            .and_then(|m| items.iter().position(|i| id_of(i) == m));
        let page: Vec<Item<'_>> = match (pos, q.page_reverse) {
            (Some(p), false) => items[p + 1..].iter().take(limit).copied().collect(),
            (Some(p), true) => {
                let start = p.saturating_sub(limit);
                items[start..p].to_vec()
            }
            (None, false) => items.iter().take(limit).copied().collect(),
            (None, true) => {
                let start = items.len().saturating_sub(limit);
                items[start..].to_vec()
            }
        };
        let full = page.len() == limit;
        if let (Some(first), Some(last)) = (page.first(), page.last()) {
            if !q.page_reverse || full {
                links.push(("next", link(base, q, id_of(last), false)));
            }
            if q.page_reverse || full || q.marker.is_some() {
                links.push(("previous", link(base, q, id_of(first), true)));
            }
        }
        items = page;
    }
    let mut out = Vec::with_capacity(items.iter().map(|i| i.bytes.len() + 1).sum::<usize>() + 64);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(coll.name.as_bytes());
    out.extend_from_slice(b"\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        if q.fields.is_empty() {
            out.extend_from_slice(item.bytes);
        } else {
            let projected = project_item(item, &q.fields);
            out.extend_from_slice(&serde_json::to_vec(&projected).unwrap_or_default());
        }
    }
    out.push(b']');
    if q.limit.is_some() {
        let links: Vec<Value> = links
            .into_iter()
            .map(|(rel, href)| serde_json::json!({"rel": rel, "href": href}))
            .collect();
        out.extend_from_slice(format!(",\"{}_links\":", coll.name).as_bytes());
        out.extend_from_slice(&serde_json::to_vec(&links).unwrap_or_default());
    }
    out.push(b'}');
    out
}

fn link(base: &str, q: &ListQuery, marker: &str, reverse: bool) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q.raw {
        if k != "marker" && k != "page_reverse" {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair("marker", marker);
    if reverse {
        ser.append_pair("page_reverse", "True");
    }
    format!("{base}?{}", ser.finish())
}

/// Projects one item to `fields`; fields not in its filter map (a group's embedded rules)
/// come from its complete serialised form.
pub fn project_item(item: &Item<'_>, fields: &[String]) -> Map<String, Value> {
    let mut full: Option<Map<String, Value>> = None;
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = item.json.get(f) {
            out.insert(f.clone(), v.clone());
        } else {
            let full =
                full.get_or_insert_with(|| serde_json::from_slice(item.bytes).unwrap_or_default());
            if let Some(v) = full.get(f) {
                out.insert(f.clone(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn items(names: &[String]) -> Vec<(Map<String, Value>, Vec<u8>)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let m = json!({"id": format!("id-{i:04}"), "name": n, "stateful": i % 2 == 0, "tags": [format!("t{}", i % 3)]});
                let m = m.as_object().cloned().unwrap_or_default();
                let b = serde_json::to_vec(&m).unwrap_or_default();
                (m, b)
            })
            .collect()
    }

    fn run(data: &[(Map<String, Value>, Vec<u8>)], query: &str) -> Value {
        let q = parse(query, &SECURITY_GROUPS).expect("valid query");
        let its = data
            .iter()
            .map(|(m, b)| Item { json: m, bytes: b })
            .collect();
        serde_json::from_slice(&render(
            its,
            &q,
            &SECURITY_GROUPS,
            "http://h/v2.0/security-groups",
        ))
        .expect("JSON")
    }

    fn ids(v: &Value) -> Vec<String> {
        v["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["id"].as_str().map(String::from))
            .collect()
    }

    #[test]
    fn filters_convert_values_and_or_repeated_keys() {
        let data = items(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(ids(&run(&data, "stateful=True")), ["id-0000", "id-0002"]);
        assert_eq!(ids(&run(&data, "name=a&name=c")), ["id-0000", "id-0002"]);
        assert_eq!(ids(&run(&data, "tags-any=t1,t2")), ["id-0001", "id-0002"]);
        assert_eq!(ids(&run(&data, "not-tags=t0")), ["id-0001", "id-0002"]);
        let fields = run(&data, "fields=id&name=b");
        assert_eq!(fields["security_groups"], json!([{"id": "id-0001"}]));
        assert!(parse("bogus=1", &SECURITY_GROUPS).is_err());
        assert!(parse("sort_key=name", &SECURITY_GROUPS).is_err());
        assert!(parse("limit=-1", &SECURITY_GROUPS).is_err());
    }

    #[test]
    fn sorting_by_name_ignores_case_then_uses_the_id() {
        let data = items(&["b".into(), "A".into(), "a".into(), "C".into()]);
        let v = run(&data, "sort_key=name&sort_dir=asc");
        let names: Vec<&str> = v["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(names, ["A", "a", "b", "C"]);
    }

    proptest! {
        /// Following `next` markers page by page yields every item once, in order.
        #[test]
        fn marker_pages_cover_the_list_exactly(names in prop::collection::vec("[a-dA-D]{0,3}", 0..40), limit in 1usize..7) {
            let data = items(&names);
            let all = ids(&run(&data, "sort_key=name&sort_dir=asc"));
            let mut seen: Vec<String> = Vec::new();
            let mut marker: Option<String> = None;
            for _ in 0..100 {
                let q = match &marker {
                    Some(m) => format!("sort_key=name&sort_dir=asc&limit={limit}&marker={m}"),
                    None => format!("sort_key=name&sort_dir=asc&limit={limit}"),
                };
                let v = run(&data, &q);
                let page = ids(&v);
                prop_assert!(page.len() <= limit);
                seen.extend(page.iter().cloned());
                let next = v["security_groups_links"].as_array().into_iter().flatten().any(|l| l["rel"] == "next");
                if !next || page.is_empty() {
                    break;
                }
                marker = page.last().cloned();
            }
            prop_assert_eq!(seen, all);
        }
    }
}
