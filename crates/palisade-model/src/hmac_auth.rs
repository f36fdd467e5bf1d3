//! HMAC authentication of agents, in the style of metal-api: a typed shared key
//! (`Metal-View`, `Metal-Edit`, `Metal-Admin`), and on every request
//!
//! ```text
//! Authorization: Metal-View <hex HMAC-SHA256>
//! X-Date: <unix seconds>
//! ```
//!
//! where the HMAC is over `METHOD \n PATH[?QUERY] \n X-Date \n BODY` with the key of that
//! type. The server accepts a timestamp within [`WINDOW_SECS`] of its clock and compares
//! in constant time. Pure: the caller supplies the clock.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from the server's clock, in seconds.
pub const WINDOW_SECS: i64 = 300;

/// The header carrying the timestamp.
pub const DATE_HEADER: &str = "x-date";

/// A key's type: what a request signed with it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// read everything (snapshot, watch, lists) and report agent status
    View,
    /// `View` and change networking resources in any project (cloud admin there)
    Edit,
    /// everything an admin token may do
    Admin,
}

impl KeyType {
    /// The name used in configs and the `Authorization` header.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::View => "Metal-View",
            KeyType::Edit => "Metal-Edit",
            KeyType::Admin => "Metal-Admin",
        }
    }
    /// Parses `Metal-View` / `Metal-Edit` / `Metal-Admin`.
    pub fn parse(s: &str) -> Option<KeyType> {
        [KeyType::View, KeyType::Edit, KeyType::Admin]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

fn mac(key: &[u8], method: &str, path: &str, date: &str, body: &[u8]) -> Hmac {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = <Hmac as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in [method.as_bytes(), path.as_bytes(), date.as_bytes()] {
        m.update(part);
        m.update(b"\n");
    }
    m.update(body);
    m
}

type Hmac = hmac::Hmac<Sha256>;

/// The `Authorization` value for a request.
pub fn authorization(
    kind: KeyType,
    key: &[u8],
    method: &str,
    path: &str,
    date: i64,
    body: &[u8],
) -> String {
    let tag = mac(key, method, path, &date.to_string(), body).finalize();
    format!("{} {}", kind.name(), hex::encode(tag.into_bytes()))
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not `<type> <hex>`, or an unknown type.
    #[error("Authorization header is not '<Metal-View|Metal-Edit|Metal-Admin> <hex HMAC>'")]
    Malformed,
    /// The server has no key of this type.
    #[error("no {0} key is configured on this server")]
    NoKey(&'static str),
    /// No or an unparsable X-Date.
    #[error("X-Date header missing or not a unix timestamp: {0:?}")]
    BadDate(String),
    /// Too old or too far in the future.
    #[error("X-Date {date} is {skew} s from the server's clock (window ±{WINDOW_SECS} s)")]
    Expired {
        /// the request's timestamp
        date: i64,
        /// its distance from now
        skew: i64,
    },
    /// The HMAC does not match (wrong key, or method, path, date or body changed).
    #[error("signature does not match the request")]
    Mismatch,
}

/// Checks a request. `key_of` gives the server's key of a type, if configured.
pub fn verify<'k>(
    authorization: &str,
    date: Option<&str>,
    now: i64,
    method: &str,
    path: &str,
    body: &[u8],
    key_of: impl Fn(KeyType) -> Option<&'k [u8]>,
) -> Result<KeyType, Rejection> {
    let (kind, tag) = authorization.split_once(' ').ok_or(Rejection::Malformed)?;
    let kind = KeyType::parse(kind).ok_or(Rejection::Malformed)?;
    let tag = hex::decode(tag.trim()).map_err(|_| Rejection::Malformed)?;
    let key = key_of(kind).ok_or(Rejection::NoKey(kind.name()))?;
    let date_str = date.unwrap_or("");
    let ts: i64 = date_str
        .trim()
        .parse()
        .map_err(|_| Rejection::BadDate(date_str.to_string()))?;
    let skew = ts.saturating_sub(now);
    if skew.abs() > WINDOW_SECS {
        return Err(Rejection::Expired { date: ts, skew });
    }
    mac(key, method, path, date_str.trim(), body)
        .verify_slice(&tag)
        .map_err(|_| Rejection::Mismatch)?;
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: KeyType) -> Option<&'static [u8]> {
        match k {
            KeyType::View => Some(b"view-secret"),
            KeyType::Edit => None,
            KeyType::Admin => Some(b"admin-secret"),
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let auth = authorization(
            KeyType::View,
            b"view-secret",
            "GET",
            "/v2.0/palisade/snapshot",
            1000,
            b"",
        );
        let ok = verify(
            &auth,
            Some("1000"),
            1010,
            "GET",
            "/v2.0/palisade/snapshot",
            b"",
            keys,
        );
        assert_eq!(ok, Ok(KeyType::View));
        let body = br#"{"agent": {}}"#;
        let auth = authorization(
            KeyType::View,
            b"view-secret",
            "PUT",
            "/v2.0/palisade/agents/a",
            1000,
            body,
        );
        assert_eq!(
            verify(
                &auth,
                Some("1000"),
                1000,
                "PUT",
                "/v2.0/palisade/agents/a",
                br#"{"agent": {"x": 1}}"#,
                keys
            ),
            Err(Rejection::Mismatch),
            "modified body"
        );
        assert_eq!(
            verify(
                &auth,
                Some("1000"),
                1000,
                "PUT",
                "/v2.0/palisade/agents/b",
                body,
                keys
            ),
            Err(Rejection::Mismatch),
            "other path"
        );
        assert_eq!(
            verify(
                &auth,
                Some("1000"),
                1000,
                "POST",
                "/v2.0/palisade/agents/a",
                body,
                keys
            ),
            Err(Rejection::Mismatch),
            "other method"
        );
        assert_eq!(
            verify(
                &auth,
                Some("1001"),
                1000,
                "PUT",
                "/v2.0/palisade/agents/a",
                body,
                keys
            ),
            Err(Rejection::Mismatch),
            "other date"
        );
        let wrong = authorization(
            KeyType::View,
            b"guess",
            "PUT",
            "/v2.0/palisade/agents/a",
            1000,
            body,
        );
        assert_eq!(
            verify(
                &wrong,
                Some("1000"),
                1000,
                "PUT",
                "/v2.0/palisade/agents/a",
                body,
                keys
            ),
            Err(Rejection::Mismatch),
            "wrong key"
        );
        assert!(
            matches!(
                verify(
                    &auth,
                    Some("1000"),
                    1000 + WINDOW_SECS + 1,
                    "PUT",
                    "/v2.0/palisade/agents/a",
                    body,
                    keys
                ),
                Err(Rejection::Expired { .. })
            ),
            "replayed later"
        );
        assert!(matches!(
            verify(&auth, Some("x"), 1000, "PUT", "/p", body, keys),
            Err(Rejection::BadDate(_))
        ));
        let edit = authorization(KeyType::Edit, b"k", "GET", "/", 1000, b"");
        assert_eq!(
            verify(&edit, Some("1000"), 1000, "GET", "/", b"", keys),
            Err(Rejection::NoKey("Metal-Edit"))
        );
        assert_eq!(
            verify("Bearer abc", Some("1000"), 1000, "GET", "/", b"", keys),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            verify("Metal-View zz", Some("1000"), 1000, "GET", "/", b"", keys),
            Err(Rejection::Malformed)
        );
    }
}
