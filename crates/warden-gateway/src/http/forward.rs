//! Rewriting a request for the upstream and a response for the client: hop-by-hop headers
//! removed (RFC 9110 §7.6.1), the caller's credentials stripped, the target's injected, and
//! `X-Forwarded-For` / `Forwarded` (RFC 7239) set from the connection, trusting what a client
//! sent only when the connection comes from a configured proxy.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use warden_core::UpstreamCredentials;

/// The header carrying a Warden key for clients that need `Authorization` for something else.
pub const WARDEN_KEY_HEADER: &str = "x-warden-key";

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including any named in `Connection`. When `keep_upgrade` is set
/// (a protocol upgrade such as WebSocket is being passed through), `Connection: upgrade` and
/// `Upgrade` survive.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let upgrade = headers.get(header::UPGRADE).cloned();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    if keep_upgrade {
        if let Some(u) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, u);
        }
    }
}

/// Whether the request asks for a protocol upgrade (WebSocket).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    forwarded_chain(headers)
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Prepares the headers of a request for the upstream.
pub fn upstream_request_headers(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: &[IpNet],
    proto: &str,
    credentials: &UpstreamCredentials,
) {
    let upgrade = wants_upgrade(headers);
    let peer_trusted = trusted.iter().any(|net| net.contains(&peer));
    let prior = if peer_trusted {
        forwarded_chain(headers)
    } else {
        Vec::new()
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    strip_hop_by_hop(headers, upgrade);
    // The caller's credentials are for Warden, never for the upstream.
    headers.remove(header::AUTHORIZATION);
    headers.remove(WARDEN_KEY_HEADER);
    // The upstream's Host comes from its URL.
    headers.remove(header::HOST);
    headers.remove("x-forwarded-for");
    headers.remove("x-forwarded-host");
    headers.remove("x-forwarded-proto");
    headers.remove(header::FORWARDED);

    let mut chain: Vec<String> = prior.iter().map(ToString::to_string).collect();
    chain.push(peer.to_string());
    if let Ok(v) = HeaderValue::from_str(&chain.join(", ")) {
        headers.insert("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_str(proto) {
        headers.insert("x-forwarded-proto", v);
    }
    let node = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut forwarded: Vec<String> = prior.iter().map(|ip| format!("for={}", node(ip))).collect();
    let mut last = format!("for={};proto={proto}", node(&peer));
    if let Some(h) = &host {
        if let Ok(v) = HeaderValue::from_str(h) {
            headers.insert("x-forwarded-host", v);
        }
        if h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b',')
        {
            last.push_str(&format!(";host=\"{h}\""));
        }
    }
    forwarded.push(last);
    if let Ok(v) = HeaderValue::from_str(&forwarded.join(", ")) {
        headers.insert(header::FORWARDED, v);
    }

    for (name, value) in &credentials.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    if let Some((user, password)) = &credentials.basic {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if let Ok(mut v) = HeaderValue::from_str(&format!("Basic {token}")) {
            v.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> UpstreamCredentials {
        UpstreamCredentials::parse(&["X-Api-Key: upstream-secret".into()], None).unwrap()
    }

    #[test]
    fn credentials_are_swapped_and_hop_by_hop_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wdn_client"),
        );
        h.insert(WARDEN_KEY_HEADER, HeaderValue::from_static("wdn_client"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::HOST, HeaderValue::from_static("warden:8471"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        upstream_request_headers(&mut h, "10.0.0.9".parse().unwrap(), &[], "http", &creds());
        assert!(h.get(header::AUTHORIZATION).is_none());
        assert!(h.get(WARDEN_KEY_HEADER).is_none());
        assert!(
            h.get("x-custom").is_none()
                && h.get("keep-alive").is_none()
                && h.get(header::CONNECTION).is_none()
        );
        assert_eq!(h["x-api-key"], "upstream-secret");
        // A spoofed X-Forwarded-For from an untrusted peer is dropped.
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        assert_eq!(
            h[header::FORWARDED],
            "for=10.0.0.9;proto=http;host=\"warden:8471\""
        );
        assert!(h.get(header::HOST).is_none());
    }

    #[test]
    fn trusted_proxies_extend_the_chain() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 10.1.1.1"),
        );
        assert_eq!(
            client_ip("10.0.0.2".parse().unwrap(), &h, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("198.51.100.1".parse().unwrap(), &h, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        upstream_request_headers(
            &mut h,
            "10.0.0.2".parse().unwrap(),
            &trusted,
            "https",
            &UpstreamCredentials::default(),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.1.1.1, 10.0.0.2");
    }

    #[test]
    fn websocket_upgrade_survives() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        upstream_request_headers(
            &mut h,
            "127.0.0.1".parse().unwrap(),
            &[],
            "http",
            &UpstreamCredentials::default(),
        );
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }

    #[test]
    fn basic_auth_is_injected() {
        let c = UpstreamCredentials::parse(&[], Some("bot:pw")).unwrap();
        let mut h = HeaderMap::new();
        upstream_request_headers(&mut h, "127.0.0.1".parse().unwrap(), &[], "http", &c);
        assert_eq!(h[header::AUTHORIZATION], "Basic Ym90OnB3");
    }
}
