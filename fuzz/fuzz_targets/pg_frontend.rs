//! Fuzzes what a client can send to Warden's Postgres front door: one startup packet, then
//! tagged messages, each parsed as a frontend message, with the password-phase parsers on every
//! `p` body. The limit is small so that size checks are reached; any panic is a bug.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warden_pgwire::{
    decode_frame, decode_startup, parse_frontend, parse_password, parse_sasl_initial, Frontend,
};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    if !matches!(decode_startup(&mut buf, MAX), Ok(Some(_))) {
        // A client that fails startup is disconnected; also try the same bytes as messages.
        buf = BytesMut::from(data);
    }
    while let Ok(Some(frame)) = decode_frame(&mut buf, MAX) {
        if let Ok(Frontend::Password(body)) = parse_frontend(&frame) {
            let _ = parse_password(&body);
            let _ = parse_sasl_initial(&body);
        }
    }
});
