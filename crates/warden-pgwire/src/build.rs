//! Builders for the messages Warden sends as a server to its clients: authentication requests,
//! session parameters, cancel keys, errors and notices, protocol negotiation.
//!
//! postgres-protocol only builds frontend messages (it is a client library), so the backend ones
//! are here. Each builder appends one complete message to `buf`, last argument as in
//! postgres-protocol. They cannot fail: a NUL byte inside a string argument would end the field
//! early and desynchronise the client, so NUL bytes are left out of strings.
//!
//! The frontend messages the proxy sends upstream on its own (startup, password and SASL
//! responses, Sync, Terminate, CancelRequest, SSLRequest) are all in
//! `postgres_protocol::message::frontend`, so none are repeated here; relayed client messages go
//! out as they came, with [`crate::Frame::encode_to`].

use bytes::{BufMut, BytesMut};

use crate::frame::wire_len;
use crate::ErrorFields;

/// Authentication request codes, as in PostgreSQL's `pqcomm.h`.
const AUTH_OK: i32 = 0;
const AUTH_CLEARTEXT: i32 = 3;
const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;

/// Writes one tagged message whose body `body` appends, then fills in its length.
fn message(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = wire_len(buf.len() - at - 4);
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes `s` and its terminating NUL, leaving out any NUL inside it.
fn put_cstr(buf: &mut BytesMut, s: &str) {
    if s.as_bytes().contains(&0) {
        buf.extend(s.bytes().filter(|&b| b != 0));
    } else {
        buf.put_slice(s.as_bytes());
    }
    buf.put_u8(0);
}

/// An authentication request with `code` followed by `data`.
fn auth(buf: &mut BytesMut, code: i32, data: &[u8]) {
    message(buf, b'R', |b| {
        b.put_i32(code);
        b.put_slice(data);
    });
}

/// AuthenticationOk: the client is in.
pub fn auth_ok(buf: &mut BytesMut) {
    auth(buf, AUTH_OK, &[]);
}

/// AuthenticationCleartextPassword: ask for the password in a PasswordMessage. Only over TLS.
pub fn auth_cleartext(buf: &mut BytesMut) {
    auth(buf, AUTH_CLEARTEXT, &[]);
}

/// AuthenticationSASL: offer these SASL mechanisms, in order of preference (Warden offers
/// `["SCRAM-SHA-256"]`).
pub fn auth_sasl(mechanisms: &[&str], buf: &mut BytesMut) {
    message(buf, b'R', |b| {
        b.put_i32(AUTH_SASL);
        for m in mechanisms {
            put_cstr(b, m);
        }
        b.put_u8(0);
    });
}

/// AuthenticationSASLContinue: a server challenge (SCRAM's server-first-message).
pub fn auth_sasl_continue(data: &[u8], buf: &mut BytesMut) {
    auth(buf, AUTH_SASL_CONTINUE, data);
}

/// AuthenticationSASLFinal: the server's last SASL message (SCRAM's server-final-message);
/// AuthenticationOk follows.
pub fn auth_sasl_final(data: &[u8], buf: &mut BytesMut) {
    auth(buf, AUTH_SASL_FINAL, data);
}

/// ParameterStatus: tell the client a run-time parameter's value.
pub fn parameter_status(name: &str, value: &str, buf: &mut BytesMut) {
    message(buf, b'S', |b| {
        put_cstr(b, name);
        put_cstr(b, value);
    });
}

/// BackendKeyData: the key the client will quote in a CancelRequest.
pub fn backend_key_data(pid: i32, secret: i32, buf: &mut BytesMut) {
    message(buf, b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    });
}

/// ReadyForQuery with transaction status `status`: `b'I'` idle, `b'T'` in a transaction,
/// `b'E'` in a failed transaction.
pub fn ready_for_query(status: u8, buf: &mut BytesMut) {
    message(buf, b'Z', |b| b.put_u8(status));
}

/// Writes the fields of an error or notice, and the terminating zero byte.
fn put_fields(buf: &mut BytesMut, fields: &ErrorFields) {
    let mut field = |tag: u8, value: &str| {
        buf.put_u8(tag);
        put_cstr(buf, value);
    };
    field(b'S', &fields.severity);
    if let Some(v) = &fields.severity_nonlocalized {
        field(b'V', v);
    }
    field(b'C', &fields.code);
    field(b'M', &fields.message);
    if let Some(v) = &fields.detail {
        field(b'D', v);
    }
    if let Some(v) = &fields.hint {
        field(b'H', v);
    }
    for (tag, value) in &fields.other {
        // A zero type byte would end the list; such a field cannot be sent.
        if *tag != 0 {
            field(*tag, value);
        }
    }
    buf.put_u8(0);
}

/// ErrorResponse: for example
/// `error_response(&ErrorFields::new("FATAL", "28P01", "password authentication failed for user \"svc\""), buf)`.
pub fn error_response(fields: &ErrorFields, buf: &mut BytesMut) {
    message(buf, b'E', |b| put_fields(b, fields));
}

/// NoticeResponse, with the same fields as an error (severity `NOTICE`, `WARNING`, …).
pub fn notice_response(fields: &ErrorFields, buf: &mut BytesMut) {
    message(buf, b'N', |b| put_fields(b, fields));
}

/// CommandComplete with its command tag (`SELECT 1`, `SET`, …).
pub fn command_complete(tag: &str, buf: &mut BytesMut) {
    message(buf, b'C', |b| put_cstr(b, tag));
}

/// EmptyQueryResponse: the query string was empty.
pub fn empty_query_response(buf: &mut BytesMut) {
    message(buf, b'I', |_| {});
}

/// NegotiateProtocolVersion: the newest minor version of protocol 3 Warden supports (0) and the
/// `_pq_.` protocol options from the StartupMessage it does not recognise.
pub fn negotiate_protocol_version(minor: u16, unsupported_opts: &[&str], buf: &mut BytesMut) {
    message(buf, b'v', |b| {
        b.put_i32(3 << 16 | i32::from(minor));
        // Never saturates: the options come from a startup packet of at most 10,000 bytes.
        b.put_i32(i32::try_from(unsupported_opts.len()).unwrap_or(i32::MAX));
        for opt in unsupported_opts {
            put_cstr(b, opt);
        }
    });
}

/// The one-byte answer to an SSLRequest (`S` to go on with the TLS handshake, `N` to refuse);
/// `N` is also the answer to a GSSENCRequest.
pub fn ssl_response(accept: bool, buf: &mut BytesMut) {
    buf.put_u8(if accept { b'S' } else { b'N' });
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use postgres_protocol::message::backend::Message;

    use super::*;
    use crate::{decode_frame, parse_backend, Backend, Frame, WireError};

    /// The single frame in `buf`, after checking that postgres-protocol's client-side parser
    /// reads it too.
    fn only_frame(buf: BytesMut) -> Frame {
        let mut check = buf.clone();
        assert!(Message::parse(&mut check).unwrap().is_some());
        assert!(check.is_empty());
        let mut buf = buf;
        let frame = decode_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert!(buf.is_empty());
        frame
    }

    /// Every proper prefix of a decoded message's body must be refused.
    fn assert_truncations_refused(f: &Frame) {
        for cut in 0..f.body.len() {
            let short = Frame::new(f.tag, f.body.slice(..cut));
            assert!(
                matches!(parse_backend(&short), Err(WireError::Malformed { .. })),
                "tag {} cut {cut}",
                f.tag as char
            );
        }
    }

    fn built(f: impl FnOnce(&mut BytesMut)) -> Frame {
        let mut buf = BytesMut::new();
        f(&mut buf);
        only_frame(buf)
    }

    #[test]
    fn authentication() {
        let f = built(auth_ok);
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::Authentication {
                code: 0,
                data: Bytes::new()
            }
        );
        assert_truncations_refused(&f);
        let f = built(auth_cleartext);
        assert!(matches!(
            parse_backend(&f).unwrap(),
            Backend::Authentication { code: 3, .. }
        ));

        let mut buf = BytesMut::new();
        auth_sasl(&["SCRAM-SHA-256"], &mut buf);
        let mut check = buf.clone();
        let Some(Message::AuthenticationSasl(body)) = Message::parse(&mut check).unwrap() else {
            panic!("not AuthenticationSASL");
        };
        let mut mechs = body.mechanisms();
        assert_eq!(
            fallible_iterator::FallibleIterator::next(&mut mechs).unwrap(),
            Some("SCRAM-SHA-256")
        );
        let f = only_frame(buf);
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::Authentication {
                code: 10,
                data: Bytes::from_static(b"SCRAM-SHA-256\0\0")
            }
        );

        for (build, code) in [
            (auth_sasl_continue as fn(&[u8], &mut BytesMut), 11),
            (auth_sasl_final, 12),
        ] {
            let f = built(|b| build(b"r=abc,s=xyz,i=4096", b));
            assert_eq!(
                parse_backend(&f).unwrap(),
                Backend::Authentication {
                    code,
                    data: Bytes::from_static(b"r=abc,s=xyz,i=4096")
                }
            );
        }
    }

    #[test]
    fn parameter_status_and_key_data() {
        let f = built(|b| parameter_status("server_version", "16.4", b));
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::ParameterStatus {
                name: "server_version".into(),
                value: "16.4".into()
            }
        );
        assert_truncations_refused(&f);

        let f = built(|b| backend_key_data(1234, -99, b));
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::BackendKeyData {
                pid: 1234,
                secret: -99
            }
        );
        assert_truncations_refused(&f);
    }

    #[test]
    fn ready_for_query_status_is_checked() {
        for status in [b'I', b'T', b'E'] {
            let f = built(|b| ready_for_query(status, b));
            assert_eq!(parse_backend(&f).unwrap(), Backend::ReadyForQuery(status));
            assert_truncations_refused(&f);
        }
        assert!(parse_backend(&Frame::new(b'Z', &b"X"[..])).is_err());
        assert!(parse_backend(&Frame::new(b'Z', &b"II"[..])).is_err());
    }

    #[test]
    fn command_complete_and_empty_query() {
        let f = built(|b| command_complete("INSERT 0 1", b));
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::CommandComplete("INSERT 0 1".into())
        );
        assert_truncations_refused(&f);
        let f = built(empty_query_response);
        assert_eq!(parse_backend(&f).unwrap(), Backend::EmptyQueryResponse);
    }

    #[test]
    fn error_and_notice_round_trip() {
        let mut fields = ErrorFields::new("FATAL", "28P01", "password authentication failed")
            .with_detail("key expired")
            .with_hint("rotate the key");
        fields.other.push((b'R', "auth_failed".into()));
        let f = built(|b| error_response(&fields, b));
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::ErrorResponse(fields.clone())
        );
        assert_truncations_refused(&f);

        // postgres-protocol reads the same fields.
        let mut buf = BytesMut::new();
        error_response(&fields, &mut buf);
        let Some(Message::ErrorResponse(body)) = Message::parse(&mut buf).unwrap() else {
            panic!("not an ErrorResponse");
        };
        let mut seen = Vec::new();
        let mut it = body.fields();
        while let Some(field) = fallible_iterator::FallibleIterator::next(&mut it).unwrap() {
            seen.push((
                field.type_(),
                String::from_utf8(field.value_bytes().to_vec()).unwrap(),
            ));
        }
        assert_eq!(seen[0], (b'S', "FATAL".to_owned()));
        assert_eq!(seen[2], (b'C', "28P01".to_owned()));
        assert_eq!(seen.len(), 7);

        let notice = ErrorFields::new("NOTICE", "00000", "hello");
        let f = built(|b| notice_response(&notice, b));
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::NoticeResponse(notice.clone())
        );
        assert_eq!(notice.get(b'V'), Some("NOTICE"));
        assert_eq!(fields.get(b'R'), Some("auth_failed"));
        assert_eq!(fields.get(b'P'), None);
    }

    #[test]
    fn error_fields_must_be_present_and_unique() {
        for (body, what) in [
            (&b"SERROR\0M\0\0"[..], "SQLSTATE (C) is missing"),
            (&b"C00000\0M\0\0"[..], "severity (S) is missing"),
            (&b"SERROR\0C00000\0\0"[..], "message (M) is missing"),
            (&b"SERROR\0SERROR\0C1\0M\0\0"[..], "a field is given twice"),
            (
                &b"SERROR\0C1\0M\0\0x"[..],
                "unexpected bytes after the end of the message",
            ),
        ] {
            assert!(
                matches!(parse_backend(&Frame::new(b'E', body)), Err(WireError::Malformed { what: w, .. }) if w == what),
                "{what}"
            );
        }
    }

    #[test]
    fn nul_bytes_in_strings_are_left_out() {
        let f = built(|b| command_complete("SEL\0ECT", b));
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::CommandComplete("SELECT".into())
        );
        let mut fields = ErrorFields::new("ERROR", "XX000", "x");
        fields.other.push((0, "dropped".into()));
        let f = built(|b| error_response(&fields, b));
        fields.other.clear();
        assert_eq!(parse_backend(&f).unwrap(), Backend::ErrorResponse(fields));
    }

    #[test]
    fn negotiate_protocol_version_layout() {
        let mut buf = BytesMut::new();
        negotiate_protocol_version(0, &["_pq_.compression"], &mut buf);
        let f = decode_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(f.tag, b'v');
        assert_eq!(&f.body[..], b"\0\x03\0\0\0\0\0\x01_pq_.compression\0");
        assert_eq!(
            parse_backend(&f).unwrap(),
            Backend::NegotiateProtocolVersion
        );
    }

    #[test]
    fn ssl_response_is_one_byte() {
        let mut buf = BytesMut::new();
        ssl_response(true, &mut buf);
        ssl_response(false, &mut buf);
        assert_eq!(&buf[..], b"SN");
    }

    #[test]
    fn bodiless_backend_messages() {
        for (tag, want) in [
            (b'1', Backend::ParseComplete),
            (b'2', Backend::BindComplete),
            (b'3', Backend::CloseComplete),
            (b'n', Backend::NoData),
            (b'I', Backend::EmptyQueryResponse),
            (b's', Backend::PortalSuspended),
            (b'c', Backend::CopyDone),
        ] {
            assert_eq!(parse_backend(&Frame::new(tag, Bytes::new())).unwrap(), want);
            assert!(parse_backend(&Frame::new(tag, &b"x"[..])).is_err());
        }
    }

    #[test]
    fn identified_backend_messages() {
        for (tag, want) in [
            (b'T', Backend::RowDescription),
            (b'D', Backend::DataRow),
            (b'G', Backend::CopyInResponse),
            (b'H', Backend::CopyOutResponse),
            (b'W', Backend::CopyBothResponse),
            (b'd', Backend::CopyData),
            (b'A', Backend::NotificationResponse),
            (b't', Backend::ParameterDescription),
            (b'v', Backend::NegotiateProtocolVersion),
            (b'V', Backend::Other(b'V')),
        ] {
            assert_eq!(
                parse_backend(&Frame::new(tag, &b"anything"[..])).unwrap(),
                want
            );
        }
    }
}
