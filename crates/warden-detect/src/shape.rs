//! What an event did and where it came from, reduced to the keys baselines remember: the action
//! key (`GET /v1/orders/:id`, `read public.orders`, `oauth.token`) and the source network
//! (`10.1.2.0/24`).
//!
//! Keys are written into a caller's buffer so the hot path does not allocate.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use warden_core::event::Category;
use warden_core::Event;

/// The most tables of one SQL statement that become action keys; the rest are ignored.
pub const MAX_TABLES_PER_EVENT: usize = 16;

/// The route shape of an HTTP path: the query and fragment dropped, and each segment that looks
/// like an identifier (all digits, a UUID, 16+ hex digits, or 20+ base64 characters mixing
/// letters and digits) replaced by `:id`. `/v1/orders/123?x=1` → `/v1/orders/:id`.
pub fn route_shape(path: &str) -> String {
    let mut out = String::new();
    write_route_shape(&mut out, path);
    out
}

/// Appends the route shape of `path` to `out`.
pub(crate) fn write_route_shape(out: &mut String, path: &str) {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = &path[..end];
    if path.is_empty() {
        out.push('/');
        return;
    }
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if looks_like_id(segment) {
            ":id"
        } else {
            segment
        });
    }
}

fn looks_like_id(s: &str) -> bool {
    let b = s.as_bytes();
    let all = |pred: fn(&u8) -> bool| b.iter().all(pred);
    let any = |pred: fn(&u8) -> bool| b.iter().any(pred);
    let uuid = || {
        b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let base64ish = || {
        b.len() >= 20
            && all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'='))
            && any(u8::is_ascii_digit)
            && any(u8::is_ascii_alphabetic)
    };
    !b.is_empty()
        && (all(u8::is_ascii_digit)
            || uuid()
            || (b.len() >= 16 && all(u8::is_ascii_hexdigit))
            || base64ish())
}

/// The SQL class recorded in `detail.class`, if any.
pub(crate) fn sql_class(event: &Event) -> Option<&str> {
    event.action.detail.as_ref()?.get("class")?.as_str()
}

/// The tables recorded in `detail.tables` (at most [`MAX_TABLES_PER_EVENT`]).
pub(crate) fn sql_tables(event: &Event) -> impl Iterator<Item = &str> {
    event
        .action
        .detail
        .as_ref()
        .and_then(|d| d.get("tables"))
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .take(MAX_TABLES_PER_EVENT)
}

/// Calls `f` with each action key of `event`, built in `buf`: HTTP method and route shape; SQL
/// class and each table (or the class alone when the statement names no table); otherwise the
/// verb.
pub(crate) fn for_each_action_key(
    event: &Event,
    class: Option<&str>,
    buf: &mut String,
    mut f: impl FnMut(&str),
) {
    buf.clear();
    match (event.action.category, class) {
        (Category::Http, _) => {
            buf.push_str(&event.action.verb);
            buf.push(' ');
            write_route_shape(buf, event.action.resource.as_deref().unwrap_or("/"));
            f(buf);
        }
        (Category::Sql, Some(class)) => {
            let mut any = false;
            for table in sql_tables(event) {
                buf.clear();
                buf.push_str(class);
                buf.push(' ');
                buf.push_str(table);
                f(buf);
                any = true;
            }
            if !any {
                buf.push_str(class);
                f(buf);
            }
        }
        _ => {
            buf.push_str(&event.action.verb);
            f(buf);
        }
    }
}

/// A source network: the address masked to the configured prefix, IPv4 as IPv4-mapped IPv6.
pub(crate) type Network = u128;

/// The network of `ip` (an address, or an address with a port), if it parses.
pub(crate) fn network(ip: &str, prefix_v4: u8, prefix_v6: u8) -> Option<Network> {
    let addr = match ip.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) => ip.parse::<SocketAddr>().ok()?.ip(),
    };
    Some(match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4) & mask32(prefix_v4);
            (0xffff_u128 << 32) | u128::from(bits)
        }
        IpAddr::V6(v6) => u128::from(v6) & mask128(prefix_v6),
    })
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// `10.1.2.0/24` or `2001:db8::/64`.
pub(crate) fn format_network(net: Network, prefix_v4: u8, prefix_v6: u8) -> String {
    let v6 = Ipv6Addr::from(net);
    match v6.to_ipv4_mapped() {
        Some(v4) => format!("{v4}/{prefix_v4}"),
        None => format!("{v6}/{prefix_v6}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_shapes_replace_ids_and_drop_queries() {
        for (path, shape) in [
            ("/v1/orders/123", "/v1/orders/:id"),
            ("/v1/orders/123?expand=items#x", "/v1/orders/:id"),
            (
                "/v1/users/0b6f1c1e-8d3a-4c1e-9a43-2b1f7c9d0e11/keys",
                "/v1/users/:id/keys",
            ),
            ("/blobs/9f86d081884c7d659a2feaa0c55ad015", "/blobs/:id"),
            ("/t/dGhpc2lzYXRva2VuMTIzNDU2Nzg5", "/t/:id"),
            ("/v1/orders/", "/v1/orders/"),
            (
                "/v2/customer-accounts-overview",
                "/v2/customer-accounts-overview",
            ),
            ("/v1/facade/cafe", "/v1/facade/cafe"),
            ("", "/"),
            ("?q=1", "/"),
        ] {
            assert_eq!(route_shape(path), shape, "{path}");
        }
    }

    #[test]
    fn networks_are_masked_and_formatted() {
        let a = network("10.1.2.3", 24, 64).unwrap();
        assert_eq!(a, network("10.1.2.200", 24, 64).unwrap());
        assert_ne!(a, network("10.1.3.1", 24, 64).unwrap());
        assert_eq!(format_network(a, 24, 64), "10.1.2.0/24");
        assert_eq!(network("10.1.2.3:5432", 24, 64), Some(a));
        assert_eq!(network("::ffff:10.1.2.9", 24, 64), Some(a));
        let b = network("2001:db8:1:2:3:4:5:6", 24, 64).unwrap();
        assert_eq!(format_network(b, 24, 64), "2001:db8:1:2::/64");
        assert_eq!(
            format_network(network("1.2.3.4", 0, 0).unwrap(), 0, 0),
            "0.0.0.0/0"
        );
        assert_eq!(format_network(network("::1", 0, 0).unwrap(), 0, 0), "::/0");
        assert_eq!(network("not an ip", 24, 64), None);
    }
}
