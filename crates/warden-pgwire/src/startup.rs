//! The startup phase: the untagged packets a client may send first (`Int32` length counting
//! itself, `Int32` code, body).
//!
//! [`decode_startup`] recognises SSLRequest, GSSENCRequest, CancelRequest and StartupMessage.
//! postgres-protocol only builds these (it is a client library); a server has to parse them.
//! Protocol 3.x is accepted with its minor version reported, so the proxy can answer a newer
//! client with NegotiateProtocolVersion and carry on in 3.0, as PostgreSQL does.

use bytes::{Buf, Bytes, BytesMut};

use crate::reader::Reader;
use crate::WireError;

/// The largest startup packet accepted, whatever limit the caller passes: PostgreSQL's
/// `MAX_STARTUP_PACKET_LENGTH`. A client has not authenticated yet, so this is kept small.
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// The code of an SSLRequest (`1234 << 16 | 5679`).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// The code of a GSSENCRequest (`1234 << 16 | 5680`).
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// The code of a CancelRequest (`1234 << 16 | 5678`).
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// One packet of the startup phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Startup {
    /// The client asks for TLS; answer with one byte ([`crate::build::ssl_response`]).
    SslRequest,
    /// The client asks for GSSAPI encryption; answer with one byte, `N` to refuse
    /// ([`crate::build::ssl_response`] with `false` writes it).
    GssEncRequest,
    /// A request, on a fresh connection, to cancel the query running on another.
    Cancel {
        /// The process id from that connection's BackendKeyData.
        pid: i32,
        /// The secret key from that connection's BackendKeyData.
        secret: i32,
    },
    /// The StartupMessage proper.
    Startup {
        /// Protocol major version: always 3.
        major: u16,
        /// Protocol minor version the client asked for; above 0, answer with
        /// NegotiateProtocolVersion ([`crate::build::negotiate_protocol_version`]).
        minor: u16,
        /// The parameters in the order sent (`user`, `database`, `application_name`, options,
        /// `_pq_.*` protocol extensions, …); names are non-empty and distinct.
        params: Vec<(String, String)>,
    },
}

impl Startup {
    /// The value of the StartupMessage parameter `name`, if this is a StartupMessage carrying it.
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            Startup::Startup { params, .. } => params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// Splits the next startup-phase packet off the front of `buf`.
///
/// Returns `Ok(None)` while `buf` holds less than the whole packet (nothing is consumed). On
/// success the packet is removed from `buf`. The limit is `max` or [`MAX_STARTUP_PACKET`],
/// whichever is smaller, and applies to the whole packet, length field included (as in
/// PostgreSQL).
///
/// # Errors
///
/// - [`WireError::BadLength`] for a length below 8, [`WireError::TooLarge`] above the limit, both
///   from the length field alone;
/// - [`WireError::UnsupportedProtocol`] for a protocol other than 3.x, or an unknown request
///   code;
/// - [`WireError::Malformed`] for a body that does not follow the packet's format: SSLRequest and
///   GSSENCRequest must be exactly 8 bytes and CancelRequest 16 (protocol 3.0's 4-byte secret);
///   StartupMessage parameters must be NUL-terminated UTF-8, names non-empty and not repeated,
///   and the list must end with its terminating NUL as the packet's last byte.
pub fn decode_startup(buf: &mut BytesMut, max: usize) -> Result<Option<Startup>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let total = match usize::try_from(len) {
        Ok(n) if n >= 8 => n,
        _ => return Err(WireError::BadLength(len)),
    };
    let limit = max.min(MAX_STARTUP_PACKET);
    if total > limit {
        return Err(WireError::TooLarge {
            len: total,
            max: limit,
        });
    }
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut packet = buf.split_to(total);
    packet.advance(4);
    let body: Bytes = packet.freeze();
    parse_packet(&body).map(Some)
}

/// Interprets a startup packet's body (after the length field).
fn parse_packet(body: &Bytes) -> Result<Startup, WireError> {
    let mut r = Reader::new(body, "startup packet");
    let code = r.u32()?;
    match code {
        SSL_REQUEST_CODE => exact(&r, "SSLRequest").map(|()| Startup::SslRequest),
        GSSENC_REQUEST_CODE => exact(&r, "GSSENCRequest").map(|()| Startup::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            let mut r = Reader::new(body, "CancelRequest");
            r.u32()?;
            let pid = r.i32()?;
            let secret = r.i32()?;
            r.finish()?;
            Ok(Startup::Cancel { pid, secret })
        }
        _ if code >> 16 == 3 => {
            let mut r = Reader::new(body, "StartupMessage");
            r.u32()?;
            let params = parse_params(&mut r)?;
            Ok(Startup::Startup {
                major: 3,
                minor: (code & 0xffff) as u16,
                params,
            })
        }
        _ => Err(WireError::UnsupportedProtocol(code)),
    }
}

/// Refuses anything after the code of a request that is only a code.
fn exact(r: &Reader<'_>, message: &'static str) -> Result<(), WireError> {
    if r.remaining() == 0 {
        Ok(())
    } else {
        Err(WireError::malformed(
            message,
            "packet is longer than 8 bytes",
        ))
    }
}

/// Reads the name/value pairs up to the terminating empty name.
fn parse_params(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, WireError> {
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        if r.remaining() == 0 {
            return Err(r.error("parameter list is not terminated"));
        }
        let name = r.cstr()?;
        if name.is_empty() {
            r.finish()?;
            return Ok(params);
        }
        let value = r.cstr()?;
        if params.iter().any(|(n, _)| n == name) {
            return Err(r.error("a parameter is given twice"));
        }
        params.push((name.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    fn packet(code: u32, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i32(8 + body.len() as i32);
        buf.put_u32(code);
        buf.extend_from_slice(body);
        buf
    }

    fn startup_body(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (n, v) in params {
            body.extend_from_slice(n.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        body
    }

    #[test]
    fn decodes_the_startup_message_libpq_sends() {
        let mut buf = BytesMut::new();
        postgres_protocol::message::frontend::startup_message(
            [
                ("user", "svc-billing"),
                ("database", "app"),
                ("client_encoding", "UTF8"),
            ],
            &mut buf,
        )
        .unwrap();
        buf.extend_from_slice(b"Q...");
        let got = decode_startup(&mut buf, crate::DEFAULT_MAX_MESSAGE)
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            Startup::Startup {
                major: 3,
                minor: 0,
                params: vec![
                    ("user".into(), "svc-billing".into()),
                    ("database".into(), "app".into()),
                    ("client_encoding".into(), "UTF8".into()),
                ],
            }
        );
        assert_eq!(got.param("database"), Some("app"));
        assert_eq!(got.param("options"), None);
        assert_eq!(&buf[..], b"Q...", "only the packet is consumed");
    }

    #[test]
    fn decodes_requests() {
        let mut buf = BytesMut::new();
        postgres_protocol::message::frontend::ssl_request(&mut buf);
        assert_eq!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(Startup::SslRequest)
        );
        let mut buf = packet(GSSENC_REQUEST_CODE, b"");
        assert_eq!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(Startup::GssEncRequest)
        );
        let mut buf = BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(42, -7, &mut buf);
        assert_eq!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(Startup::Cancel {
                pid: 42,
                secret: -7
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn reports_newer_minor_versions() {
        let mut buf = packet(
            3 << 16 | 2,
            &startup_body(&[("user", "u"), ("_pq_.x", "1")]),
        );
        let got = decode_startup(&mut buf, 100).unwrap().unwrap();
        assert!(matches!(
            got,
            Startup::Startup {
                major: 3,
                minor: 2,
                ..
            }
        ));
    }

    #[test]
    fn refuses_other_protocols() {
        for code in [2 << 16, 4 << 16, 1234 << 16 | 5681, 0] {
            let mut buf = packet(code, &startup_body(&[("user", "u")]));
            assert!(matches!(
                decode_startup(&mut buf, 100),
                Err(WireError::UnsupportedProtocol(c)) if c == code
            ));
        }
        assert_eq!(
            WireError::UnsupportedProtocol(2 << 16).to_string(),
            "unsupported frontend protocol 2.0: server supports 3.0 to 3.0"
        );
    }

    #[test]
    fn every_truncation_needs_more_bytes() {
        let whole = packet(3 << 16, &startup_body(&[("user", "u"), ("database", "d")]));
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode_startup(&mut buf, 100).unwrap(), None, "cut {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn length_is_checked_before_the_body_arrives() {
        for len in [-1, 0, 4, 7] {
            let mut buf = BytesMut::new();
            buf.put_i32(len);
            assert!(
                matches!(decode_startup(&mut buf, 100), Err(WireError::BadLength(l)) if l == len)
            );
        }
        let mut buf = BytesMut::new();
        buf.put_i32(10_001);
        assert!(matches!(
            decode_startup(&mut buf, usize::MAX),
            Err(WireError::TooLarge {
                len: 10_001,
                max: MAX_STARTUP_PACKET
            })
        ));
        let mut buf = BytesMut::new();
        buf.put_i32(10_000);
        assert_eq!(decode_startup(&mut buf, usize::MAX).unwrap(), None);
        let mut buf = BytesMut::new();
        buf.put_i32(65);
        assert!(matches!(
            decode_startup(&mut buf, 64),
            Err(WireError::TooLarge { len: 65, max: 64 })
        ));
    }

    #[test]
    fn refuses_malformed_bodies() {
        let cases: Vec<(BytesMut, &str)> = vec![
            (packet(SSL_REQUEST_CODE, b"\0"), "SSLRequest"),
            (packet(GSSENC_REQUEST_CODE, b"xxxx"), "GSSENCRequest"),
            (packet(CANCEL_REQUEST_CODE, b"\0\0\0\x01"), "CancelRequest"),
            (packet(CANCEL_REQUEST_CODE, &[0; 12]), "CancelRequest"),
            (packet(3 << 16, b""), "StartupMessage"),
            (packet(3 << 16, b"user\0u\0"), "StartupMessage"),
            (packet(3 << 16, b"user\0u"), "StartupMessage"),
            (packet(3 << 16, b"user\0u\0\0x"), "StartupMessage"),
            (packet(3 << 16, b"user\0u\0user\0v\0\0"), "StartupMessage"),
            (packet(3 << 16, b"user\0\xff\0\0"), "StartupMessage"),
        ];
        for (mut buf, name) in cases {
            match decode_startup(&mut buf, 100) {
                Err(WireError::Malformed { message, .. }) => assert_eq!(message, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_parameter_list_and_empty_values_are_accepted() {
        let mut buf = packet(3 << 16, b"\0");
        assert!(matches!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(Startup::Startup { params, .. }) if params.is_empty()
        ));
        let mut buf = packet(3 << 16, &startup_body(&[("options", "")]));
        assert_eq!(
            decode_startup(&mut buf, 100)
                .unwrap()
                .unwrap()
                .param("options"),
            Some("")
        );
    }
}
