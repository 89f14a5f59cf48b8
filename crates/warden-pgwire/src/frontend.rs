//! Messages a client sends after startup, parsed from a [`Frame`] so that the proxy can decide
//! on them before relaying the frame unchanged.
//!
//! postgres-protocol builds these messages but never parses them (a client does not need to), so
//! this is written here. Parsing is strict, because what the proxy checks must be exactly what
//! the server will execute: every length and count is checked against the bytes present, strings
//! must be NUL-terminated UTF-8 (Warden's clients use `client_encoding` UTF8), and no trailing
//! bytes are allowed. [`Frontend`] borrows strings from the frame and shares binary values with
//! its buffer, so parsing allocates only the small vectors of a Parse or Bind.

use bytes::Bytes;

use crate::reader::Reader;
use crate::{Frame, WireError};

/// What a Describe or Close message names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A prepared statement (`S`).
    Statement,
    /// A portal (`P`).
    Portal,
}

impl Target {
    /// The byte that stands for this target on the wire.
    pub fn as_byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// One frontend message after startup, borrowing from its [`Frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frontend<'a> {
    /// `Q`: a simple query, possibly several statements.
    Query(&'a str),
    /// `P`: prepare a statement.
    Parse {
        /// Statement name; empty for the unnamed statement.
        name: &'a str,
        /// The query text: one statement.
        query: &'a str,
        /// Parameter type OIDs the client specifies (0 = let the server infer).
        param_types: Vec<u32>,
    },
    /// `B`: bind parameters to a statement, creating a portal.
    Bind {
        /// Portal name; empty for the unnamed portal.
        portal: &'a str,
        /// Statement name; empty for the unnamed statement.
        statement: &'a str,
        /// Parameter format codes (0 text, 1 binary): none (all text), one (for all), or one
        /// per parameter.
        param_formats: Vec<i16>,
        /// Parameter values; `None` is SQL NULL.
        params: Vec<Option<Bytes>>,
        /// Result column format codes, with the same convention.
        result_formats: Vec<i16>,
    },
    /// `D`: describe a statement or portal.
    Describe {
        /// What `name` refers to.
        kind: Target,
        /// Its name; empty for the unnamed one.
        name: &'a str,
    },
    /// `E`: execute a portal.
    Execute {
        /// Portal name; empty for the unnamed portal.
        portal: &'a str,
        /// Maximum rows to return; 0 (or negative) for no limit.
        max_rows: i32,
    },
    /// `C`: close a statement or portal.
    Close {
        /// What `name` refers to.
        kind: Target,
        /// Its name; empty for the unnamed one.
        name: &'a str,
    },
    /// `S`: end of an extended-query batch.
    Sync,
    /// `H`: ask the server to send what it has buffered.
    Flush,
    /// `X`: the client is closing the connection.
    Terminate,
    /// `p`: PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse: which one only
    /// the authentication phase tells. Read it with [`parse_password`] or
    /// [`parse_sasl_initial`]; a SASLResponse is the body itself.
    Password(Bytes),
    /// `d`: COPY data.
    CopyData(Bytes),
    /// `c`: COPY finished.
    CopyDone,
    /// `f`: COPY aborted by the client, with its reason.
    CopyFail(&'a str),
    /// `F`: a fast-path function call.
    FunctionCall {
        /// The function's OID.
        function: u32,
        /// Argument format codes, with Bind's convention.
        arg_formats: Vec<i16>,
        /// Argument values; `None` is SQL NULL.
        args: Vec<Option<Bytes>>,
        /// Result format code.
        result_format: i16,
    },
    /// Any other tag: not a valid frontend message after startup.
    Unknown(u8),
}

/// Parses a frame received from a client after startup.
///
/// # Errors
///
/// [`WireError::Malformed`] if the body does not follow the format of the message its tag names.
/// Beyond the layout, format codes must be 0 or 1, a Bind or FunctionCall must carry zero, one or
/// exactly as many parameter format codes as parameters, and a value length below -1 is refused
/// (PostgreSQL refuses all of these too).
pub fn parse_frontend(frame: &Frame) -> Result<Frontend<'_>, WireError> {
    let body = &frame.body;
    let msg = match frame.tag {
        b'Q' => {
            let mut r = Reader::new(body, "Query");
            let query = r.cstr()?;
            r.finish()?;
            Frontend::Query(query)
        }
        b'P' => parse_parse(body)?,
        b'B' => parse_bind(body)?,
        b'D' => {
            let (kind, name) = parse_target(body, "Describe")?;
            Frontend::Describe { kind, name }
        }
        b'E' => {
            let mut r = Reader::new(body, "Execute");
            let portal = r.cstr()?;
            let max_rows = r.i32()?;
            r.finish()?;
            Frontend::Execute { portal, max_rows }
        }
        b'C' => {
            let (kind, name) = parse_target(body, "Close")?;
            Frontend::Close { kind, name }
        }
        b'S' => empty(body, "Sync", Frontend::Sync)?,
        b'H' => empty(body, "Flush", Frontend::Flush)?,
        b'X' => empty(body, "Terminate", Frontend::Terminate)?,
        b'c' => empty(body, "CopyDone", Frontend::CopyDone)?,
        b'p' => Frontend::Password(body.clone()),
        b'd' => Frontend::CopyData(body.clone()),
        b'f' => {
            let mut r = Reader::new(body, "CopyFail");
            let reason = r.cstr()?;
            r.finish()?;
            Frontend::CopyFail(reason)
        }
        b'F' => parse_function_call(body)?,
        other => Frontend::Unknown(other),
    };
    Ok(msg)
}

/// Reads a PasswordMessage body: the cleartext password.
///
/// # Errors
///
/// [`WireError::Malformed`] unless the body is one NUL-terminated UTF-8 string.
pub fn parse_password(body: &Bytes) -> Result<String, WireError> {
    let mut r = Reader::new(body, "PasswordMessage");
    let password = r.cstr()?;
    r.finish()?;
    Ok(password.to_owned())
}

/// Reads a SASLInitialResponse body: the mechanism the client chose and its first message.
///
/// A data length of -1 (no initial response) gives empty data; SCRAM always sends one.
///
/// # Errors
///
/// [`WireError::Malformed`] if the mechanism is not a NUL-terminated UTF-8 string, the length is
/// below -1 or does not match the bytes that follow.
pub fn parse_sasl_initial(body: &Bytes) -> Result<(String, Bytes), WireError> {
    let mut r = Reader::new(body, "SASLInitialResponse");
    let mechanism = r.cstr()?.to_owned();
    let data = match r.i32()? {
        -1 => Bytes::new(),
        n => {
            let n = usize::try_from(n).map_err(|_| r.error("data length is negative"))?;
            r.bytes(n)?
        }
    };
    r.finish()?;
    Ok((mechanism, data))
}

/// A message that has no body.
fn empty<'a>(
    body: &Bytes,
    message: &'static str,
    msg: Frontend<'a>,
) -> Result<Frontend<'a>, WireError> {
    Reader::new(body, message).finish().map(|()| msg)
}

fn parse_parse(body: &Bytes) -> Result<Frontend<'_>, WireError> {
    let mut r = Reader::new(body, "Parse");
    let name = r.cstr()?;
    let query = r.cstr()?;
    let n = r.count(4)?;
    let mut param_types = Vec::with_capacity(n);
    for _ in 0..n {
        param_types.push(r.u32()?);
    }
    r.finish()?;
    Ok(Frontend::Parse {
        name,
        query,
        param_types,
    })
}

fn parse_bind(body: &Bytes) -> Result<Frontend<'_>, WireError> {
    let mut r = Reader::new(body, "Bind");
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let param_formats = formats(&mut r)?;
    let params = values(&mut r)?;
    check_format_count(&r, param_formats.len(), params.len())?;
    let result_formats = formats(&mut r)?;
    r.finish()?;
    Ok(Frontend::Bind {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

fn parse_function_call(body: &Bytes) -> Result<Frontend<'_>, WireError> {
    let mut r = Reader::new(body, "FunctionCall");
    let function = r.u32()?;
    let arg_formats = formats(&mut r)?;
    let args = values(&mut r)?;
    check_format_count(&r, arg_formats.len(), args.len())?;
    let result_format = format_code(&mut r)?;
    r.finish()?;
    Ok(Frontend::FunctionCall {
        function,
        arg_formats,
        args,
        result_format,
    })
}

/// The kind byte and name of a Describe or Close.
fn parse_target<'a>(
    body: &'a Bytes,
    message: &'static str,
) -> Result<(Target, &'a str), WireError> {
    let mut r = Reader::new(body, message);
    let kind = match r.u8()? {
        b'S' => Target::Statement,
        b'P' => Target::Portal,
        _ => return Err(r.error("target must be 'S' or 'P'")),
    };
    let name = r.cstr()?;
    r.finish()?;
    Ok((kind, name))
}

/// A format code: 0 (text) or 1 (binary).
fn format_code(r: &mut Reader<'_>) -> Result<i16, WireError> {
    match r.i16()? {
        code @ (0 | 1) => Ok(code),
        _ => Err(r.error("format code must be 0 or 1")),
    }
}

/// An Int16 count followed by that many format codes.
fn formats(r: &mut Reader<'_>) -> Result<Vec<i16>, WireError> {
    let n = r.count(2)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(format_code(r)?);
    }
    Ok(out)
}

/// An Int16 count followed by that many length-prefixed values (-1 = NULL).
fn values(r: &mut Reader<'_>) -> Result<Vec<Option<Bytes>>, WireError> {
    let n = r.count(4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let value = match r.i32()? {
            -1 => None,
            len => {
                let len =
                    usize::try_from(len).map_err(|_| r.error("a value length is below -1"))?;
                Some(r.bytes(len)?)
            }
        };
        out.push(value);
    }
    Ok(out)
}

/// Zero, one, or one format code per value.
fn check_format_count(r: &Reader<'_>, formats: usize, values: usize) -> Result<(), WireError> {
    if formats <= 1 || formats == values {
        Ok(())
    } else {
        Err(r.error("number of format codes does not match number of values"))
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use postgres_protocol::message::frontend as pp;
    use postgres_protocol::IsNull;

    use super::*;
    use crate::decode_frame;

    /// Decodes the one frame in `buf`.
    fn frame(mut buf: BytesMut) -> Frame {
        let f = decode_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert!(buf.is_empty());
        f
    }

    /// Every proper prefix of the frame's body must be refused as malformed.
    fn assert_truncations_refused(f: &Frame) {
        for cut in 0..f.body.len() {
            let short = Frame::new(f.tag, f.body.slice(..cut));
            match parse_frontend(&short) {
                Err(WireError::Malformed { .. }) => {}
                other => panic!("tag {} cut {cut}: {other:?}", f.tag as char),
            }
        }
    }

    /// Appending a byte must be refused as trailing garbage.
    fn assert_trailing_refused(f: &Frame) {
        let mut long = BytesMut::from(&f.body[..]);
        long.put_u8(0);
        assert!(matches!(
            parse_frontend(&Frame::new(f.tag, long)),
            Err(WireError::Malformed { .. })
        ));
    }

    fn bind_frame() -> Frame {
        let mut buf = BytesMut::new();
        pp::bind(
            "p1",
            "s1",
            [1i16, 0],
            [Some(&b"\x00\x2a"[..]), None],
            |v, buf| match v {
                Some(v) => {
                    buf.put_slice(v);
                    Ok(IsNull::No)
                }
                None => Ok(IsNull::Yes),
            },
            [1i16],
            &mut buf,
        )
        .map_err(|_| "bind")
        .unwrap();
        frame(buf)
    }

    #[test]
    fn query() {
        let mut buf = BytesMut::new();
        pp::query("select 'é'", &mut buf).unwrap();
        let f = frame(buf);
        assert_eq!(parse_frontend(&f).unwrap(), Frontend::Query("select 'é'"));
        assert_truncations_refused(&f);
        assert_trailing_refused(&f);
    }

    #[test]
    fn parse() {
        let mut buf = BytesMut::new();
        pp::parse("s1", "select $1::int", [23u32, 0], &mut buf).unwrap();
        let f = frame(buf);
        assert_eq!(
            parse_frontend(&f).unwrap(),
            Frontend::Parse {
                name: "s1",
                query: "select $1::int",
                param_types: vec![23, 0]
            }
        );
        assert_truncations_refused(&f);
        assert_trailing_refused(&f);
    }

    #[test]
    fn bind() {
        let f = bind_frame();
        assert_eq!(
            parse_frontend(&f).unwrap(),
            Frontend::Bind {
                portal: "p1",
                statement: "s1",
                param_formats: vec![1, 0],
                params: vec![Some(Bytes::from_static(b"\x00\x2a")), None],
                result_formats: vec![1],
            }
        );
        assert_truncations_refused(&f);
        assert_trailing_refused(&f);
    }

    #[test]
    fn bind_values_share_the_frame_buffer() {
        let f = bind_frame();
        let Frontend::Bind { params, .. } = parse_frontend(&f).unwrap() else {
            panic!("not a Bind");
        };
        let value = params[0].as_ref().unwrap();
        let range = f.body.as_ptr() as usize..f.body.as_ptr() as usize + f.body.len();
        assert!(range.contains(&(value.as_ptr() as usize)));
    }

    /// A Bind body written field by field, for the cases no client library would produce.
    fn raw_bind(formats: &[i16], values: &[i32], value_bytes: &[u8], results: &[i16]) -> Frame {
        let mut b = BytesMut::new();
        b.put_slice(b"\0\0");
        b.put_i16(formats.len() as i16);
        formats.iter().for_each(|f| b.put_i16(*f));
        b.put_i16(values.len() as i16);
        for len in values {
            b.put_i32(*len);
            // Writes at most the bytes given, so a length can claim more than is there.
            let n = usize::try_from(*len).unwrap_or(0).min(value_bytes.len());
            b.put_slice(&value_bytes[..n]);
        }
        b.put_i16(results.len() as i16);
        results.iter().for_each(|f| b.put_i16(*f));
        Frame::new(b'B', b)
    }

    #[test]
    fn bind_refuses_what_postgres_refuses() {
        assert!(parse_frontend(&raw_bind(&[], &[1, -1], b"x", &[])).is_ok());
        assert!(parse_frontend(&raw_bind(&[1], &[1, 1], b"x", &[0, 1])).is_ok());
        for (f, what) in [
            (
                raw_bind(&[2], &[1], b"x", &[]),
                "format code must be 0 or 1",
            ),
            (
                raw_bind(&[], &[1], b"x", &[-1]),
                "format code must be 0 or 1",
            ),
            (
                raw_bind(&[0, 0], &[1], b"x", &[]),
                "number of format codes does not match number of values",
            ),
            (raw_bind(&[], &[-2], b"", &[]), "a value length is below -1"),
            (raw_bind(&[], &[i32::MAX], b"", &[]), "message is truncated"),
        ] {
            assert!(
                matches!(parse_frontend(&f), Err(WireError::Malformed { message: "Bind", what: w }) if w == what),
                "{what}"
            );
        }
        // A negative count, and a count larger than the message could hold.
        let mut b = BytesMut::from(&b"\0\0"[..]);
        b.put_i16(-1);
        assert!(matches!(
            parse_frontend(&Frame::new(b'B', b)),
            Err(WireError::Malformed {
                what: "a count is negative",
                ..
            })
        ));
        let mut b = BytesMut::from(&b"\0\0\0\0"[..]);
        b.put_i16(i16::MAX);
        b.put_slice(&[0; 8]);
        assert!(matches!(
            parse_frontend(&Frame::new(b'B', b)),
            Err(WireError::Malformed {
                what: "a count exceeds the data in the message",
                ..
            })
        ));
    }

    #[test]
    fn describe_and_close() {
        for (tag, name) in [(b'D', "Describe"), (b'C', "Close")] {
            for (kind, byte) in [(Target::Statement, b'S'), (Target::Portal, b'P')] {
                let mut buf = BytesMut::new();
                if tag == b'D' {
                    pp::describe(byte, "x", &mut buf).unwrap();
                } else {
                    pp::close(byte, "x", &mut buf).unwrap();
                }
                let f = frame(buf);
                let got = parse_frontend(&f).unwrap();
                let want = if tag == b'D' {
                    Frontend::Describe { kind, name: "x" }
                } else {
                    Frontend::Close { kind, name: "x" }
                };
                assert_eq!(got, want);
                assert_eq!(kind.as_byte(), byte);
                assert_truncations_refused(&f);
                assert_trailing_refused(&f);
            }
            let bad = Frame::new(tag, &b"Qx\0"[..]);
            assert!(matches!(
                parse_frontend(&bad),
                Err(WireError::Malformed { message, what: "target must be 'S' or 'P'" }) if message == name
            ));
        }
    }

    #[test]
    fn execute() {
        let mut buf = BytesMut::new();
        pp::execute("", 100, &mut buf).unwrap();
        let f = frame(buf);
        assert_eq!(
            parse_frontend(&f).unwrap(),
            Frontend::Execute {
                portal: "",
                max_rows: 100
            }
        );
        assert_truncations_refused(&f);
        assert_trailing_refused(&f);
    }

    #[test]
    fn bodiless_messages() {
        type Builder = fn(&mut BytesMut);
        let cases: [(Builder, Frontend<'static>); 4] = [
            (pp::sync, Frontend::Sync),
            (pp::flush, Frontend::Flush),
            (pp::terminate, Frontend::Terminate),
            (pp::copy_done, Frontend::CopyDone),
        ];
        for (build, want) in cases {
            let mut buf = BytesMut::new();
            build(&mut buf);
            let f = frame(buf);
            assert_eq!(parse_frontend(&f).unwrap(), want);
            assert_trailing_refused(&f);
        }
    }

    #[test]
    fn copy_messages() {
        let f = Frame::new(b'd', &b"1\t2\n"[..]);
        assert_eq!(
            parse_frontend(&f).unwrap(),
            Frontend::CopyData(Bytes::from_static(b"1\t2\n"))
        );
        let mut buf = BytesMut::new();
        pp::copy_fail("client gave up", &mut buf).unwrap();
        let f = frame(buf);
        assert_eq!(
            parse_frontend(&f).unwrap(),
            Frontend::CopyFail("client gave up")
        );
        assert_truncations_refused(&f);
        assert_trailing_refused(&f);
    }

    #[test]
    fn function_call() {
        let mut b = BytesMut::new();
        b.put_u32(1598); // pg_catalog.md5(text)
        b.put_i16(1);
        b.put_i16(0);
        b.put_i16(1);
        b.put_i32(3);
        b.put_slice(b"abc");
        b.put_i16(0);
        let f = Frame::new(b'F', b);
        assert_eq!(
            parse_frontend(&f).unwrap(),
            Frontend::FunctionCall {
                function: 1598,
                arg_formats: vec![0],
                args: vec![Some(Bytes::from_static(b"abc"))],
                result_format: 0,
            }
        );
        assert_truncations_refused(&f);
        assert_trailing_refused(&f);
    }

    #[test]
    fn password_and_sasl() {
        let mut buf = BytesMut::new();
        pp::password_message(b"s3cret", &mut buf).unwrap();
        let f = frame(buf);
        let Frontend::Password(body) = parse_frontend(&f).unwrap() else {
            panic!("not a password message");
        };
        assert_eq!(parse_password(&body).unwrap(), "s3cret");
        for cut in 0..body.len() {
            assert!(matches!(
                parse_password(&body.slice(..cut)),
                Err(WireError::Malformed {
                    message: "PasswordMessage",
                    ..
                })
            ));
        }

        let mut buf = BytesMut::new();
        pp::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", &mut buf).unwrap();
        let f = frame(buf);
        let Frontend::Password(body) = parse_frontend(&f).unwrap() else {
            panic!("not a password message");
        };
        let (mech, data) = parse_sasl_initial(&body).unwrap();
        assert_eq!(mech, "SCRAM-SHA-256");
        assert_eq!(&data[..], b"n,,n=,r=abc");
        for cut in 0..body.len() {
            assert!(matches!(
                parse_sasl_initial(&body.slice(..cut)),
                Err(WireError::Malformed {
                    message: "SASLInitialResponse",
                    ..
                })
            ));
        }
        let mut extra = BytesMut::from(&body[..]);
        extra.put_u8(b'!');
        assert!(parse_sasl_initial(&extra.freeze()).is_err());

        let mut none = BytesMut::from(&b"SCRAM-SHA-256\0"[..]);
        none.put_i32(-1);
        assert_eq!(parse_sasl_initial(&none.freeze()).unwrap().1, Bytes::new());
        let mut negative = BytesMut::from(&b"SCRAM-SHA-256\0"[..]);
        negative.put_i32(-2);
        assert!(parse_sasl_initial(&negative.freeze()).is_err());
    }

    #[test]
    fn strings_must_be_utf8_and_terminated() {
        assert!(matches!(
            parse_frontend(&Frame::new(b'Q', &b"select \xff\0"[..])),
            Err(WireError::Malformed {
                what: "a string is not valid UTF-8",
                ..
            })
        ));
        assert!(matches!(
            parse_frontend(&Frame::new(b'Q', &b"select 1"[..])),
            Err(WireError::Malformed {
                what: "a string is not NUL-terminated",
                ..
            })
        ));
        // An embedded NUL ends the string; the rest is trailing garbage.
        assert!(matches!(
            parse_frontend(&Frame::new(b'Q', &b"select 1\0; drop\0"[..])),
            Err(WireError::Malformed {
                what: "unexpected bytes after the end of the message",
                ..
            })
        ));
    }

    #[test]
    fn unknown_tags_are_reported() {
        assert_eq!(
            parse_frontend(&Frame::new(b'Z', Bytes::new())).unwrap(),
            Frontend::Unknown(b'Z')
        );
    }
}
