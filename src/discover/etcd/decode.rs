//! Values to endpoints: the Go naming convention's JSON by default, plain `ip:port`, or the
//! user's own layout.

use std::net::SocketAddr;

use serde_json::{Map, Value};

use crate::discover::Endpoint;

/// The largest value decoded, in bytes (64 KiB); a larger one is skipped with a warning. An
/// endpoint's value is a few dozen bytes; this only keeps a hostile value from costing memory
/// and time in every client.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Turns the value under a key into an endpoint.
///
/// Called for every put under the prefix (and every key of a fresh list) with the full key
/// and the value. An `Err` skips the key with a warning naming the key and the reason; a key
/// that named an endpoint before and now holds a value that does not leaves the set. A
/// decoder must not block; it is called on the discovery task.
///
/// Closures `Fn(&str, &[u8]) -> Result<Endpoint, String>` are decoders:
///
/// ```
/// use tower_lb::discover::{Endpoint, etcd::Decoder};
/// // `10.0.0.1:50051 3`: an address and a weight.
/// let decoder = |_key: &str, value: &[u8]| -> Result<Endpoint, String> {
///     let text = std::str::from_utf8(value).map_err(|e| e.to_string())?;
///     let (addr, weight) = text.split_once(' ').ok_or("expected `addr weight`")?;
///     let endpoint: Endpoint = addr.parse().map_err(|e| format!("{e}"))?;
///     let weight = weight.parse().map_err(|e| format!("weight: {e}"))?;
///     endpoint.with_weight(weight).map_err(|e| e.to_string())
/// };
/// let e = decoder.decode("svc/a", b"10.0.0.1:50051 3").unwrap();
/// assert_eq!(e.weight(), 3);
/// ```
pub trait Decoder: Send + Sync + 'static {
    /// The endpoint the value under `key` names, or why it names none.
    fn decode(&self, key: &str, value: &[u8]) -> Result<Endpoint, String>;
}

impl<F> Decoder for F
where
    F: Fn(&str, &[u8]) -> Result<Endpoint, String> + Send + Sync + 'static,
{
    fn decode(&self, key: &str, value: &[u8]) -> Result<Endpoint, String> {
        self(key, value)
    }
}

/// The Go naming convention (`go.etcd.io/etcd/client/v3/naming/endpoints`), the default.
///
/// Its endpoints manager writes one key per instance, `<prefix>/<addr>`, with the JSON of its
/// internal `Update`: `{"Op":0,"Addr":"10.0.0.1:50051","Metadata":null}`. Read as Go's
/// `json.Unmarshal` reads it: field names match exactly or else without ASCII case, unknown
/// fields are ignored, `Op` is ignored (a put is an add, as in Go's watcher). `Addr` must be
/// `ip:port` (IPv6 in brackets): host names are refused, since this source resolves nothing.
///
/// When `Metadata` is a JSON object, three of its fields are read, all optional:
/// `weight` (an integer 1 ..= 2^32 − 1), `priority` (an integer 0 ..= 2^32 − 1) and
/// `serverName` (the name TLS checks, see
/// [`Endpoint::with_server_name`](crate::discover::Endpoint::with_server_name)). Any other
/// metadata (a string, a number, other fields) is ignored, as Go clients ignore it. A field that
/// is present with the wrong type skips the key: a weight the writer meant should not silently
/// become 1.
///
/// ```
/// use tower_lb::discover::etcd::{Decoder, GoNaming};
/// let e = GoNaming.decode("svc/10.0.0.1:50051", br#"{"Op":0,"Addr":"10.0.0.1:50051","Metadata":null}"#)?;
/// assert_eq!(e.addr().to_string(), "10.0.0.1:50051");
/// let e = GoNaming.decode("svc/b", br#"{"Addr":"10.0.0.2:50051","Metadata":{"weight":3,"priority":1}}"#)?;
/// assert_eq!((e.weight(), e.priority()), (3, 1));
/// assert!(GoNaming.decode("svc/c", br#"{"Addr":"echo.internal:50051"}"#).is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GoNaming;

impl Decoder for GoNaming {
    fn decode(&self, _key: &str, value: &[u8]) -> Result<Endpoint, String> {
        let json: Value = serde_json::from_slice(value).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(fields) = json else {
            return Err("not a JSON object".into());
        };
        let addr = match field(&fields, "Addr") {
            Some(Value::String(addr)) if !addr.is_empty() => addr,
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err("no address (`Addr` missing or empty)".into());
            }
            Some(other) => return Err(format!("`Addr` is not a string: {other}")),
        };
        let mut endpoint = endpoint_at(addr)?;
        if let Some(Value::Object(metadata)) = field(&fields, "Metadata") {
            endpoint = with_metadata(endpoint, metadata)?;
        }
        Ok(endpoint)
    }
}

/// Values that are a bare `ip:port` (surrounding white space allowed).
///
/// ```
/// use tower_lb::discover::etcd::{Decoder, PlainAddr};
/// let e = PlainAddr.decode("svc/a", b"[::1]:50051\n")?;
/// assert_eq!(e.addr().port(), 50051);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainAddr;

impl Decoder for PlainAddr {
    fn decode(&self, _key: &str, value: &[u8]) -> Result<Endpoint, String> {
        let text = std::str::from_utf8(value).map_err(|_| "not UTF-8".to_string())?;
        endpoint_at(text.trim())
    }
}

/// A field as Go's `encoding/json` finds it: the exact name, else the first whose name matches
/// without ASCII case.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn endpoint_at(addr: &str) -> Result<Endpoint, String> {
    let shown: String = addr.chars().take(80).collect();
    let socket: SocketAddr = addr.parse().map_err(|_| {
        format!("address {shown:?} is not ip:port (host names are not resolved here)")
    })?;
    Endpoint::new(socket).map_err(|e| e.to_string())
}

fn with_metadata(
    mut endpoint: Endpoint,
    metadata: &Map<String, Value>,
) -> Result<Endpoint, String> {
    if let Some(weight) = field(metadata, "weight") {
        let weight = weight
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| {
                format!(
                    "metadata weight {weight} is not an integer 1 ..= {}",
                    u32::MAX
                )
            })?;
        endpoint = endpoint.with_weight(weight).map_err(|e| e.to_string())?;
    }
    if let Some(priority) = field(metadata, "priority") {
        let priority = priority
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| {
                format!(
                    "metadata priority {priority} is not an integer 0 ..= {}",
                    u32::MAX
                )
            })?;
        endpoint = endpoint.with_priority(priority);
    }
    match field(metadata, "serverName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => {
            endpoint = endpoint.with_server_name(name).map_err(|e| e.to_string())?;
        }
        Some(other) => return Err(format!("metadata serverName {other} is not a string")),
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_values_as_the_go_manager_writes_them() {
        let e = GoNaming
            .decode(
                "s/1",
                br#"{"Op":0,"Addr":"127.0.0.1:5000","Metadata":null}"#,
            )
            .unwrap();
        assert_eq!(e.addr().to_string(), "127.0.0.1:5000");
        assert_eq!((e.weight(), e.priority(), e.server_name()), (1, 0, None));
        // Go matches field names without case; other metadata is ignored.
        let e = GoNaming
            .decode("s/2", br#"{"addr":"[::1]:7","metadata":"version=2"}"#)
            .unwrap();
        assert_eq!(e.addr().port(), 7);
        let e = GoNaming
            .decode(
                "s/3",
                br#"{"Addr":"10.0.0.1:1","Metadata":{"weight":5,"priority":2,"serverName":"a.example","zone":"x"}}"#,
            )
            .unwrap();
        assert_eq!(
            (e.weight(), e.priority(), e.server_name()),
            (5, 2, Some("a.example"))
        );
    }

    #[test]
    fn bad_values_say_why() {
        for (value, says) in [
            (&b"not json"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"Op":0}"#, "no address"),
            (br#"{"Addr":""}"#, "no address"),
            (br#"{"Addr":5}"#, "not a string"),
            (br#"{"Addr":"host:80"}"#, "not ip:port"),
            (br#"{"Addr":"1.2.3.4"}"#, "not ip:port"),
            (br#"{"Addr":"0.0.0.0:80"}"#, "unspecified"),
            (br#"{"Addr":"1.2.3.4:0"}"#, "port 0"),
            (
                br#"{"Addr":"1.2.3.4:1","Metadata":{"weight":0}}"#,
                "weight 0",
            ),
            (
                br#"{"Addr":"1.2.3.4:1","Metadata":{"weight":"3"}}"#,
                "not an integer",
            ),
            (
                br#"{"Addr":"1.2.3.4:1","Metadata":{"priority":-1}}"#,
                "not an integer",
            ),
            (
                br#"{"Addr":"1.2.3.4:1","Metadata":{"serverName":"1.2.3.4"}}"#,
                "IP",
            ),
        ] {
            let err = GoNaming.decode("k", value).unwrap_err();
            assert!(err.contains(says), "{value:?}: {err}");
        }
        assert!(PlainAddr.decode("k", b"\xff\xfe").is_err());
        assert!(PlainAddr.decode("k", b"").is_err());
    }
}
