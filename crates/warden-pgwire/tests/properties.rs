//! Properties of the codec over generated input: hostile bytes never panic, frames round-trip,
//! and how bytes are split across reads never changes what is decoded.

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::message::frontend as pp;
use postgres_protocol::IsNull;
use proptest::prelude::*;
use warden_pgwire::{
    decode_frame, decode_startup, parse_backend, parse_frontend, parse_password,
    parse_sasl_initial, Frame, Frontend, WireError,
};

/// Small enough that generated lengths hit the limit often.
const MAX: usize = 512;

/// Everything decoded from a stream, in order, ending with the error if there was one (as text:
/// `WireError` is not `PartialEq`).
#[derive(Debug, PartialEq)]
enum Item {
    Startup(String),
    Frame(Frame),
    Error(String),
}

/// Decodes `buf` as one startup packet (unless `started`) then frames, until more bytes are
/// needed or an error; `false` after an error.
fn drain(buf: &mut BytesMut, started: &mut bool, out: &mut Vec<Item>) -> bool {
    loop {
        let step = if *started {
            decode_frame(buf, MAX).map(|f| f.map(Item::Frame))
        } else {
            decode_startup(buf, MAX).map(|p| {
                p.map(|p| {
                    *started = true;
                    Item::Startup(format!("{p:?}"))
                })
            })
        };
        match step {
            Ok(Some(item)) => out.push(item),
            Ok(None) => return true,
            Err(e) => {
                out.push(Item::Error(e.to_string()));
                return false;
            }
        }
    }
}

fn decode_whole(bytes: &[u8], with_startup: bool) -> Vec<Item> {
    let mut out = Vec::new();
    let mut started = !with_startup;
    drain(&mut BytesMut::from(bytes), &mut started, &mut out);
    out
}

fn decode_in_chunks(bytes: &[u8], with_startup: bool, chunk: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut started = !with_startup;
    let mut buf = BytesMut::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        if !drain(&mut buf, &mut started, &mut out) {
            break;
        }
    }
    out
}

/// A stream that mostly frames well: a startup message then frames, with occasional damage.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64));
    (
        prop::collection::vec(("[a-z_]{1,8}", "[ -~]{0,8}"), 0..4),
        prop::collection::vec(frame, 0..8),
        prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(params, frames, damage)| {
            let mut buf = BytesMut::new();
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            pp::startup_message(params, &mut buf).unwrap();
            for (tag, body) in frames {
                Frame::new(tag, body).encode_to(&mut buf);
            }
            if let Some((at, byte)) = damage {
                let at = at.index(buf.len());
                buf[at] = byte;
            }
            buf.to_vec()
        })
}

/// A string as clients send it: no NUL.
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,16}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_startup_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let before = buf.len();
        if let Ok(None) = decode_startup(&mut buf, MAX) {
            prop_assert_eq!(buf.len(), before);
        }
    }

    #[test]
    fn decode_frame_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = decode_frame(&mut buf, MAX) {
            let _ = parse_frontend(&frame);
            let _ = parse_backend(&frame);
        }
    }

    #[test]
    fn parsers_never_panic(tag in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..128)) {
        let frame = Frame::new(tag, body);
        let _ = parse_frontend(&frame);
        let _ = parse_backend(&frame);
        let _ = parse_password(&frame.body);
        let _ = parse_sasl_initial(&frame.body);
    }

    /// Bodies that start like a real message of the tag, then go wrong, reach deeper than
    /// uniformly random bytes.
    #[test]
    fn parsers_never_panic_on_plausible_bodies(
        tag in prop::sample::select(b"QPBDECSHXpdcfFRSKZENv".to_vec()),
        prefix in prop::collection::vec(prop::sample::select(vec![0u8, 1, 0xff, b'S', b'P', b'a']), 0..24),
        body in prop::collection::vec(any::<u8>(), 0..24),
    ) {
        let mut all = prefix;
        all.extend(body);
        let frame = Frame::new(tag, all);
        let _ = parse_frontend(&frame);
        let _ = parse_backend(&frame);
    }

    #[test]
    fn frames_round_trip(tag in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..300)) {
        let frame = Frame::new(tag, body);
        let mut buf = BytesMut::new();
        frame.encode_to(&mut buf);
        prop_assert_eq!(buf.len(), frame.len_on_wire());
        let back = decode_frame(&mut buf, MAX).unwrap().unwrap();
        prop_assert_eq!(back, frame);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn byte_at_a_time_equals_whole_buffer(bytes in stream()) {
        let whole = decode_whole(&bytes, true);
        prop_assert_eq!(&decode_in_chunks(&bytes, true, 1), &whole);
        prop_assert_eq!(&decode_in_chunks(&bytes, true, 7), &whole);
    }

    #[test]
    fn byte_at_a_time_equals_whole_buffer_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for with_startup in [true, false] {
            let whole = decode_whole(&bytes, with_startup);
            prop_assert_eq!(decode_in_chunks(&bytes, with_startup, 1), whole);
        }
    }

    #[test]
    fn parse_and_bind_round_trip(
        name in text(),
        query in text(),
        types in prop::collection::vec(any::<u32>(), 0..8),
        params in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..16)), 0..8),
        binary in any::<bool>(),
    ) {
        let mut buf = BytesMut::new();
        pp::parse(&name, &query, types.iter().copied(), &mut buf).unwrap();
        let frame = decode_frame(&mut buf, MAX).unwrap().unwrap();
        prop_assert_eq!(
            parse_frontend(&frame).unwrap(),
            Frontend::Parse { name: &name, query: &query, param_types: types.clone() }
        );

        let mut buf = BytesMut::new();
        let format = i16::from(binary);
        let ok = pp::bind(
            &name,
            &query,
            [format],
            params.iter(),
            |p, buf| match p {
                Some(v) => { buf.put_slice(v); Ok(IsNull::No) }
                None => Ok(IsNull::Yes),
            },
            [format],
            &mut buf,
        ).is_ok();
        prop_assert!(ok);
        let frame = decode_frame(&mut buf, 4096).unwrap().unwrap();
        let want: Vec<Option<Bytes>> = params.iter().map(|p| p.clone().map(Bytes::from)).collect();
        prop_assert_eq!(
            parse_frontend(&frame).unwrap(),
            Frontend::Bind {
                portal: &name,
                statement: &query,
                param_formats: vec![format],
                params: want,
                result_formats: vec![format],
            }
        );
        // Every truncation of a valid body is refused, never misread.
        for cut in 0..frame.body.len() {
            let short = Frame::new(frame.tag, frame.body.slice(..cut));
            let refused = matches!(parse_frontend(&short), Err(WireError::Malformed { .. }));
            prop_assert!(refused);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// What a client sends during SCRAM never panics the server, whatever the bytes.
    #[test]
    fn scram_server_never_panics(
        first in prop::collection::vec(any::<u8>(), 0..64),
        last in prop::collection::vec(any::<u8>(), 0..128),
        prefix in prop::sample::select(vec![&b""[..], b"n,,n=,r=", b"y,,n=u,r=", b"p=x,,", b"n,a=x,"]),
    ) {
        let mut first_msg = prefix.to_vec();
        first_msg.extend(first);
        let mut rng = rand::thread_rng();
        if let Ok((server, server_first)) = warden_pgwire::ScramServer::start(&first_msg, b"salt", 1, &mut rng) {
            // Half the time, continue with the real nonce so the proof check is reached.
            let nonce = String::from_utf8(server_first).unwrap();
            let nonce = nonce[2..].split_once(',').unwrap().0;
            let mut last_msg = if last.first().is_some_and(|b| b % 2 == 0) {
                format!("c=biws,r={nonce},").into_bytes()
            } else {
                Vec::new()
            };
            last_msg.extend(last);
            let candidates = [warden_pgwire::Verifier::derive(b"k", b"salt", 1)];
            let _ = server.finish(&last_msg, &candidates);
        }
    }
}
