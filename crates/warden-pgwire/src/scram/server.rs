//! One server-side SCRAM-SHA-256 exchange: client-first → server-first, client-final →
//! server-final.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::verifier::hmac;
use super::{ScramError, Verifier};

/// Random bytes in the server's part of the nonce (PostgreSQL's `SCRAM_RAW_NONCE_LEN`).
const SERVER_NONCE_LEN: usize = 18;

/// A SCRAM-SHA-256 exchange between the server-first and client-final messages.
///
/// ```text
/// client                              Warden
///   SASLInitialResponse(client-first) ──► ScramServer::start  ──► AuthenticationSASLContinue(server-first)
///   SASLResponse(client-final)        ──► ScramServer::finish ──► AuthenticationSASLFinal(server-final), AuthenticationOk
/// ```
///
/// For an account that does not exist, run the exchange anyway with a salt derived from the
/// account name and a server secret, and no candidates: `finish` then fails exactly as for a
/// wrong key, so a client cannot tell the two apart (PostgreSQL's "mock authentication").
#[derive(Debug)]
pub struct ScramServer {
    /// The GS2 header the client sent (`n,,` or `y,,`), which `c=` must repeat.
    gs2_header: &'static [u8],
    /// The client-first message without its GS2 header.
    client_first_bare: String,
    /// What the server sent.
    server_first: String,
    /// Client nonce followed by server nonce.
    nonce: String,
}

impl ScramServer {
    /// Reads the client-first message (the data of the SASLInitialResponse) and answers with the
    /// server-first message, offering `salt` and `iterations`: those every candidate verifier
    /// given to [`ScramServer::finish`] was derived with.
    ///
    /// # Errors
    ///
    /// [`ScramError::ChannelBindingRequired`] if the client insists on channel binding,
    /// [`ScramError::Unsupported`] for an authorization identity or a mandatory extension,
    /// [`ScramError::Malformed`] for anything else outside RFC 5802's grammar, and
    /// [`ScramError::InvalidVerifier`] for an empty salt or zero iterations.
    pub fn start<R: RngCore + CryptoRng + ?Sized>(
        client_first: &[u8],
        salt: &[u8],
        iterations: u32,
        rng: &mut R,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        if salt.is_empty() {
            return Err(ScramError::InvalidVerifier("salt is empty"));
        }
        if iterations == 0 {
            return Err(ScramError::InvalidVerifier("iteration count is zero"));
        }
        let msg = std::str::from_utf8(client_first)
            .map_err(|_| ScramError::Malformed("client-first-message is not UTF-8"))?;

        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let (gs2_header, rest): (&'static [u8], &str) = if let Some(rest) = msg.strip_prefix("n,") {
            (b"n,,", rest)
        } else if let Some(rest) = msg.strip_prefix("y,") {
            (b"y,,", rest)
        } else if msg.starts_with("p=") {
            return Err(ScramError::ChannelBindingRequired);
        } else {
            return Err(ScramError::Malformed(
                "GS2 header must start with 'n', 'y' or 'p='",
            ));
        };
        let bare = match rest.strip_prefix(',') {
            Some(bare) => bare,
            None if rest.starts_with("a=") => {
                return Err(ScramError::Unsupported("authorization identity"));
            }
            None => return Err(ScramError::Malformed("GS2 header is not terminated by ','")),
        };

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        if bare.starts_with("m=") {
            return Err(ScramError::Unsupported("mandatory extension"));
        }
        let mut attrs = Attrs::new(bare);
        attrs.expect(b'n', "user name (n=) is missing")?;
        let client_nonce = attrs.expect(b'r', "nonce (r=) is missing")?;
        if client_nonce.is_empty() || !client_nonce.bytes().all(is_nonce_char) {
            return Err(ScramError::Malformed("nonce is empty or not printable"));
        }
        while attrs.next()?.is_some() {} // Optional extensions are ignored, as PostgreSQL does.

        let mut raw = [0u8; SERVER_NONCE_LEN];
        rng.fill_bytes(&mut raw);
        let nonce = format!("{client_nonce}{}", B64.encode(raw));
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        let out = server_first.clone().into_bytes();
        Ok((
            ScramServer {
                gs2_header,
                client_first_bare: bare.to_owned(),
                server_first,
                nonce,
            },
            out,
        ))
    }

    /// Reads the client-final message (the data of the SASLResponse), checks the client's proof
    /// against each candidate verifier, and answers with the server-final message (`v=…`) and the
    /// index of the candidate that matched.
    ///
    /// Every candidate is checked, in constant time, whichever matches; the time taken depends
    /// only on how many there are. A candidate derived with another salt or iteration count than
    /// those passed to [`ScramServer::start`] cannot match.
    ///
    /// # Errors
    ///
    /// [`ScramError::InvalidProof`] if no candidate matches (wrong key, or none given);
    /// [`ScramError::ChannelBindingMismatch`] or [`ScramError::NonceMismatch`] if the message does
    /// not continue this exchange; [`ScramError::Malformed`] outside RFC 5802's grammar.
    pub fn finish(
        self,
        client_final: &[u8],
        candidates: &[Verifier],
    ) -> Result<(usize, Vec<u8>), ScramError> {
        let msg = std::str::from_utf8(client_final)
            .map_err(|_| ScramError::Malformed("client-final-message is not UTF-8"))?;

        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        let mut attrs = Attrs::new(msg);
        let binding = attrs.expect(b'c', "channel binding (c=) is missing")?;
        let binding = B64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        if binding != self.gs2_header {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if attrs.expect(b'r', "nonce (r=) is missing")? != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let (without_proof, proof) = loop {
            let start = attrs.pos;
            match attrs.next()? {
                Some((b'p', proof)) => break (&msg[..start.saturating_sub(1)], proof),
                Some(_) => {} // An extension, ignored.
                None => return Err(ScramError::Malformed("proof (p=) is missing")),
            }
        };
        if attrs.next()?.is_some() {
            return Err(ScramError::Malformed(
                "proof (p=) is not the last attribute",
            ));
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("proof is not 32 bytes of base64"))?;

        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, candidate) in candidates.iter().enumerate() {
            let signature = hmac(&candidate.stored_key, auth_message.as_bytes());
            let mut client_key = proof;
            client_key
                .iter_mut()
                .zip(signature)
                .for_each(|(k, s)| *k ^= s);
            let stored_key: [u8; 32] = Sha256::digest(client_key).into();
            let matches = stored_key.ct_eq(&candidate.stored_key);
            index.conditional_assign(&(i as u64), matches & !found);
            found |= matches;
        }
        if !bool::from(found) {
            return Err(ScramError::InvalidProof);
        }
        let index = usize::try_from(index).map_err(|_| ScramError::InvalidProof)?;
        let matched = candidates.get(index).ok_or(ScramError::InvalidProof)?;
        let signature = hmac(&matched.server_key, auth_message.as_bytes());
        Ok((index, format!("v={}", B64.encode(signature)).into_bytes()))
    }
}

/// `printable = %x21-2B / %x2D-7E`: any visible ASCII character but ','.
fn is_nonce_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && b != b','
}

/// The comma-separated `x=value` attributes of a SCRAM message.
struct Attrs<'a> {
    msg: &'a str,
    /// Byte offset of the next attribute.
    pos: usize,
}

impl<'a> Attrs<'a> {
    fn new(msg: &'a str) -> Self {
        Self { msg, pos: 0 }
    }

    /// The next attribute's name and value, or `None` at the end of the message.
    fn next(&mut self) -> Result<Option<(u8, &'a str)>, ScramError> {
        if self.pos >= self.msg.len() {
            return Ok(None);
        }
        let rest = &self.msg[self.pos..];
        let (attr, advance) = match rest.find(',') {
            Some(comma) => (&rest[..comma], comma + 1),
            None => (rest, rest.len()),
        };
        let bytes = attr.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
            return Err(ScramError::Malformed(
                "attribute is not of the form x=value",
            ));
        }
        // A trailing comma would leave an empty attribute at the end.
        if advance == rest.len() && rest.ends_with(',') {
            return Err(ScramError::Malformed("message ends with ','"));
        }
        self.pos += advance;
        Ok(Some((bytes[0], &attr[2..])))
    }

    /// The next attribute, which must be `name`.
    fn expect(&mut self, name: u8, missing: &'static str) -> Result<&'a str, ScramError> {
        match self.next()? {
            Some((n, value)) if n == name => Ok(value),
            _ => Err(ScramError::Malformed(missing)),
        }
    }
}
