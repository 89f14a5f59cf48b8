//! The SCRAM-SHA-256 server driven by a real client: postgres-protocol's `ScramSha256`, the one
//! tokio-postgres uses, with every message going through the wire codec both ways.

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend::Message, frontend as pp};
use warden_pgwire::scram::{generate_salt, SCRAM_SHA_256};
use warden_pgwire::{
    build, decode_frame, parse_frontend, parse_sasl_initial, Frontend, ScramError, ScramServer,
    Verifier,
};

const ITERATIONS: u32 = 4096;

/// The one frame in `buf`, parsed as a frontend `p` message.
fn password_body(mut buf: BytesMut) -> bytes::Bytes {
    let frame = decode_frame(&mut buf, 1 << 16).unwrap().unwrap();
    match parse_frontend(&frame).unwrap() {
        Frontend::Password(body) => body,
        other => panic!("expected a password message, got {other:?}"),
    }
}

/// The data of the one AuthenticationSASLContinue or AuthenticationSASLFinal in `buf`, read
/// with postgres-protocol's client-side parser.
fn sasl_data(mut buf: BytesMut) -> Vec<u8> {
    match Message::parse(&mut buf).unwrap() {
        Some(Message::AuthenticationSaslContinue(body)) => body.data().to_vec(),
        Some(Message::AuthenticationSaslFinal(body)) => body.data().to_vec(),
        _ => panic!("expected SASL data"),
    }
}

/// Runs a whole exchange: the client knows `password` and binds channels as `binding` says; the
/// server checks against `candidates`. Returns the server's verdict and, if it accepted,
/// whether the client accepted the server's signature.
fn exchange(
    password: &str,
    binding: ChannelBinding,
    candidates: &[Verifier],
    salt: &[u8],
) -> Result<(usize, bool), ScramError> {
    let mut client = ScramSha256::new(password.as_bytes(), binding);
    let mut wire = BytesMut::new();
    pp::sasl_initial_response(SCRAM_SHA_256, client.message(), &mut wire).unwrap();
    let (mechanism, client_first) = parse_sasl_initial(&password_body(wire)).unwrap();
    assert_eq!(mechanism, SCRAM_SHA_256);

    let (server, server_first) =
        ScramServer::start(&client_first, salt, ITERATIONS, &mut rand::thread_rng())?;
    let mut wire = BytesMut::new();
    build::auth_sasl_continue(&server_first, &mut wire);
    client.update(&sasl_data(wire)).unwrap();

    let mut wire = BytesMut::new();
    pp::sasl_response(client.message(), &mut wire).unwrap();
    let (index, server_final) = server.finish(&password_body(wire), candidates)?;
    let mut wire = BytesMut::new();
    build::auth_sasl_final(&server_final, &mut wire);
    Ok((index, client.finish(&sasl_data(wire)).is_ok()))
}

fn verifiers(keys: &[&str], salt: &[u8]) -> Vec<Verifier> {
    keys.iter()
        .map(|k| Verifier::derive(k.as_bytes(), salt, ITERATIONS))
        .collect()
}

#[test]
fn right_password_is_accepted_and_the_client_accepts_the_server() {
    let salt = generate_salt(&mut rand::thread_rng());
    let candidates = verifiers(&["wk_live_correct-horse"], &salt);
    for binding in [ChannelBinding::unsupported(), ChannelBinding::unrequested()] {
        assert_eq!(
            exchange("wk_live_correct-horse", binding, &candidates, &salt),
            Ok((0, true))
        );
    }
}

#[test]
fn wrong_password_is_refused() {
    let salt = generate_salt(&mut rand::thread_rng());
    let candidates = verifiers(&["wk_live_correct-horse"], &salt);
    assert_eq!(
        exchange(
            "wk_live_battery-staple",
            ChannelBinding::unsupported(),
            &candidates,
            &salt
        ),
        Err(ScramError::InvalidProof)
    );
}

#[test]
fn second_of_two_candidates_matches() {
    let salt = generate_salt(&mut rand::thread_rng());
    let candidates = verifiers(&["wk_live_old-key", "wk_live_new-key"], &salt);
    assert_eq!(
        exchange(
            "wk_live_new-key",
            ChannelBinding::unsupported(),
            &candidates,
            &salt
        ),
        Ok((1, true))
    );
    assert_eq!(
        exchange(
            "wk_live_old-key",
            ChannelBinding::unrequested(),
            &candidates,
            &salt
        ),
        Ok((0, true))
    );
    assert_eq!(
        exchange(
            "wk_live_other",
            ChannelBinding::unsupported(),
            &candidates,
            &salt
        ),
        Err(ScramError::InvalidProof)
    );
}

#[test]
fn no_candidates_fails_like_a_wrong_password() {
    let salt = generate_salt(&mut rand::thread_rng());
    assert_eq!(
        exchange("anything", ChannelBinding::unsupported(), &[], &salt),
        Err(ScramError::InvalidProof)
    );
}

#[test]
fn a_verifier_with_another_salt_cannot_match() {
    let salt = generate_salt(&mut rand::thread_rng());
    let other = verifiers(&["k"], b"another salt");
    assert_eq!(
        exchange("k", ChannelBinding::unsupported(), &other, &salt),
        Err(ScramError::InvalidProof)
    );
}

#[test]
fn channel_binding_is_refused_clearly() {
    let salt = generate_salt(&mut rand::thread_rng());
    let candidates = verifiers(&["k"], &salt);
    let err = exchange(
        "k",
        ChannelBinding::tls_server_end_point(vec![1; 32]),
        &candidates,
        &salt,
    )
    .unwrap_err();
    assert_eq!(err, ScramError::ChannelBindingRequired);
    assert!(err.to_string().contains("channel binding"));
}

fn start(client_first: &[u8]) -> Result<(ScramServer, String), ScramError> {
    ScramServer::start(client_first, b"salt", ITERATIONS, &mut rand::thread_rng())
        .map(|(s, first)| (s, String::from_utf8(first).unwrap()))
}

#[test]
fn server_first_message_layout() {
    let (_, first) = start(b"n,,n=ignored,r=abc").unwrap();
    let rest = first.strip_prefix("r=abc").unwrap();
    let (server_nonce, params) = rest.split_once(',').unwrap();
    assert_eq!(server_nonce.len(), 24, "18 random bytes in base64");
    assert_eq!(params, "s=c2FsdA==,i=4096");
}

#[test]
fn malformed_client_first_messages_are_refused() {
    for (msg, want) in [
        (
            &b""[..],
            ScramError::Malformed("GS2 header must start with 'n', 'y' or 'p='"),
        ),
        (
            b"x,,n=,r=a",
            ScramError::Malformed("GS2 header must start with 'n', 'y' or 'p='"),
        ),
        (
            b"n,a=admin,n=,r=a",
            ScramError::Unsupported("authorization identity"),
        ),
        (
            b"n,x,n=,r=a",
            ScramError::Malformed("GS2 header is not terminated by ','"),
        ),
        (
            b"n,,m=ext,n=,r=a",
            ScramError::Unsupported("mandatory extension"),
        ),
        (
            b"n,,r=a",
            ScramError::Malformed("user name (n=) is missing"),
        ),
        (b"n,,n=", ScramError::Malformed("nonce (r=) is missing")),
        (
            b"n,,n=,r=",
            ScramError::Malformed("nonce is empty or not printable"),
        ),
        (
            b"n,,n=,r=a b",
            ScramError::Malformed("nonce is empty or not printable"),
        ),
        (
            b"n,,n=,r=a,",
            ScramError::Malformed("message ends with ','"),
        ),
        (
            b"n,,n=,r=a,,x=1",
            ScramError::Malformed("attribute is not of the form x=value"),
        ),
        (
            b"n,,n=,r=\xff",
            ScramError::Malformed("client-first-message is not UTF-8"),
        ),
    ] {
        assert_eq!(
            start(msg).err(),
            Some(want),
            "{}",
            String::from_utf8_lossy(msg)
        );
    }
    // Extensions after the nonce are ignored.
    assert!(start(b"n,,n=user,r=abc,x=whatever").is_ok());
    assert_eq!(
        ScramServer::start(b"n,,n=,r=a", b"", 1, &mut rand::thread_rng()).err(),
        Some(ScramError::InvalidVerifier("salt is empty"))
    );
    assert_eq!(
        ScramServer::start(b"n,,n=,r=a", b"s", 0, &mut rand::thread_rng()).err(),
        Some(ScramError::InvalidVerifier("iteration count is zero"))
    );
}

#[test]
fn malformed_client_final_messages_are_refused() {
    // NONCE stands for the combined nonce of each exchange's server-first message.
    let proof = "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let cases = [
        (
            format!("r=NONCE,{proof}"),
            ScramError::Malformed("channel binding (c=) is missing"),
        ),
        (
            format!("c=!!,r=NONCE,{proof}"),
            ScramError::Malformed("channel binding is not base64"),
        ),
        (
            format!("c=eSws,r=NONCE,{proof}"),
            ScramError::ChannelBindingMismatch,
        ),
        (
            format!("c=biws,r=NONCEx,{proof}"),
            ScramError::NonceMismatch,
        ),
        (
            format!("c=biws,{proof}"),
            ScramError::Malformed("nonce (r=) is missing"),
        ),
        (
            "c=biws,r=NONCE".to_owned(),
            ScramError::Malformed("proof (p=) is missing"),
        ),
        (
            format!("c=biws,r=NONCE,{proof},x=1"),
            ScramError::Malformed("proof (p=) is not the last attribute"),
        ),
        (
            "c=biws,r=NONCE,p=AAAA".to_owned(),
            ScramError::Malformed("proof is not 32 bytes of base64"),
        ),
        (
            format!("c=biws,r=NONCE,x=ext,{proof}"),
            ScramError::InvalidProof,
        ),
        (format!("c=biws,r=NONCE,{proof}"), ScramError::InvalidProof),
    ];
    for (template, want) in cases {
        let (server, first) = start(b"n,,n=,r=abc").unwrap();
        let nonce = first[2..].split_once(',').unwrap().0;
        let msg = template.replace("NONCE", nonce);
        assert_eq!(
            server
                .finish(msg.as_bytes(), &verifiers(&["k"], b"salt"))
                .err(),
            Some(want),
            "{msg}"
        );
    }
}
