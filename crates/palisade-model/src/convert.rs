//! Neutron's attribute converters and validators over raw JSON values.
//!
//! Neutron checks requests attribute by attribute against an attribute map; these functions
//! are those checks, each naming the field and the value it refuses. No I/O here.

use crate::error::{quote, Error};
use serde_json::{Map, Value};

/// A request body object: the attributes inside the resource envelope.
pub type Object = Map<String, Value>;

/// Which request an attribute check is for (decides "not allowed in POST" vs "read-only").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POST (create)
    Create,
    /// PUT (update)
    Update,
}

/// Checks that every key of `obj` is a known attribute and settable by `method`.
///
/// `settable` lists the attributes the caller may send; `server_only` lists attributes that
/// exist but only the server sets (Neutron: "not allowed in POST" / "Cannot update read-only").
pub fn check_attributes(
    obj: &Object,
    method: Method,
    settable: &[&str],
    server_only: &[&str],
) -> Result<(), Error> {
    let mut unknown: Vec<&str> = Vec::new();
    for key in obj.keys() {
        if settable.contains(&key.as_str()) {
            continue;
        }
        if server_only.contains(&key.as_str()) {
            return Err(Error::BadRequest(match method {
                Method::Create => format!("Attribute '{key}' not allowed in POST"),
                Method::Update => format!("Cannot update read-only attribute {key}"),
            }));
        }
        unknown.push(key);
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )))
    }
}

/// A required attribute; 400 naming it when absent.
pub fn required<'a>(obj: &'a Object, field: &str) -> Result<&'a Value, Error> {
    obj.get(field).ok_or_else(|| {
        Error::BadRequest(format!(
            "Failed to parse request. Required attribute '{field}' not specified"
        ))
    })
}

/// A JSON string of at most `max` characters (Neutron `type:string`).
pub fn string(field: &str, v: &Value, max: usize) -> Result<String, Error> {
    match v {
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        Value::String(_) => Err(Error::invalid(
            field,
            v,
            format_args!("exceeds maximum length of {max}"),
        )),
        _ => Err(Error::invalid(field, v, "is not a valid string")),
    }
}

/// A string or null (Neutron `type:string_or_none`); `None` for null.
pub fn string_or_null(field: &str, v: &Value, max: usize) -> Result<Option<String>, Error> {
    match v {
        Value::Null => Ok(None),
        _ => string(field, v, max).map(Some),
    }
}

/// Neutron's `convert_to_boolean` (oslo `bool_from_string`, strict).
pub fn boolean(field: &str, v: &Value) -> Result<bool, Error> {
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => parse_bool_str(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} cannot be converted to boolean ({field}).",
            quote(v)
        ))
    })
}

/// The strings oslo accepts as booleans, case-insensitively.
pub fn parse_bool_str(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// An integer (or a decimal string of one), as Neutron's `convert_to_int`.
pub fn integer(field: &str, v: &Value) -> Result<i64, Error> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| Error::invalid(field, v, "is not an integer"))
}

/// A list of unique UUID strings (Neutron `type:uuid_list`); null is the empty list.
pub fn uuid_list(field: &str, v: &Value) -> Result<Vec<String>, Error> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(Error::invalid(field, v, "is not a list")),
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let s = match item {
            Value::String(s) if is_uuid(s) => s.to_ascii_lowercase(),
            _ => return Err(Error::invalid(field, item, "is not a valid UUID")),
        };
        if out.contains(&s) {
            return Err(Error::BadRequest(format!(
                "Invalid input for {field}. Reason: Duplicate items in the list: '{s}'."
            )));
        }
        out.push(s);
    }
    Ok(out)
}

/// A list of unique strings of at most `max` characters each, at most `max_items` long.
pub fn string_list(
    field: &str,
    v: &Value,
    max: usize,
    max_items: usize,
) -> Result<Vec<String>, Error> {
    let Value::Array(items) = v else {
        return Err(Error::invalid(field, v, "is not a list"));
    };
    if items.len() > max_items {
        return Err(Error::BadRequest(format!(
            "Invalid input for {field}. Reason: list of {} items exceeds the maximum of {max_items}.",
            items.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let s = string(field, item, max)?;
        if out.contains(&s) {
            return Err(Error::BadRequest(format!(
                "Invalid input for {field}. Reason: Duplicate items in the list: '{s}'."
            )));
        }
        out.push(s);
    }
    Ok(out)
}

/// True for a UUID in any of the spellings Neutron's `is_uuid_like` accepts.
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok()
}

/// Resolves the owner project from `project_id`/`tenant_id` in a body (they must match).
pub fn project_of(obj: &Object) -> Result<Option<String>, Error> {
    let p = obj
        .get("project_id")
        .map(|v| string("project_id", v, 255))
        .transpose()?;
    let t = obj
        .get("tenant_id")
        .map(|v| string("tenant_id", v, 255))
        .transpose()?;
    match (p, t) {
        (Some(p), Some(t)) if p != t => Err(Error::BadRequest(format!(
            "'project_id' and 'tenant_id' do not match (project_id: '{p}', tenant_id: '{t}')"
        ))),
        (Some(p), _) => Ok(Some(p)),
        (None, t) => Ok(t),
    }
}
