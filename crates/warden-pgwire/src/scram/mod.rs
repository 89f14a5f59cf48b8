//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, server side.
//!
//! postgres-protocol implements only the client side of SCRAM, which the proxy uses towards the
//! upstream database; facing its own clients Warden is the server, which is this module:
//!
//! - [`Verifier`]: what the server stores per secret (salt, iteration count, StoredKey,
//!   ServerKey), in PostgreSQL's `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` text form;
//! - [`ScramServer`]: one exchange, checking the client's proof against several candidate
//!   verifiers at once, because a service account may have more than one active API key (all
//!   derived with the account's salt and iteration count).
//!
//! What it leaves out, on purpose:
//!
//! - SASLprep: passwords are used as their raw bytes. Warden's API keys are printable ASCII,
//!   which SASLprep leaves unchanged, so the result is the same as PostgreSQL's.
//! - Channel binding (SCRAM-SHA-256-PLUS): not offered. A client that insists on it (`p=`) is
//!   refused with [`ScramError::ChannelBindingRequired`]; one that supports it but was not offered
//!   it (`y`) goes on without it, as RFC 5802 allows.
//! - The user name in the exchange is ignored: PostgreSQL takes it from the StartupMessage, and
//!   libpq sends it empty.

mod server;
mod verifier;

pub use server::ScramServer;
pub use verifier::{generate_salt, Verifier, DEFAULT_ITERATIONS, SALT_LEN};

/// The SASL mechanism name to offer in AuthenticationSASL.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Why a SCRAM exchange failed, or a verifier could not be read.
///
/// Messages describe the failure for Warden's logs; the client should only ever be told that
/// authentication failed (SQLSTATE `28P01` for a wrong proof, `08P01` for a malformed message),
/// as PostgreSQL does.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// A client message that does not follow RFC 5802's grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding (`p=`), which Warden does not offer.
    #[error(
        "client requires SCRAM channel binding, but only SCRAM-SHA-256 without channel binding \
         is offered"
    )]
    ChannelBindingRequired,
    /// A SCRAM feature Warden does not implement (authorization identity, mandatory extension).
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// The channel-binding value in the client's final message does not repeat its GS2 header.
    #[error("SCRAM channel binding check failed")]
    ChannelBindingMismatch,
    /// The nonce in the client's final message is not the one the server sent.
    #[error("SCRAM nonce does not match")]
    NonceMismatch,
    /// The client's proof matches none of the candidate verifiers: wrong password.
    #[error("SCRAM client proof matches no key")]
    InvalidProof,
    /// A stored verifier, or the salt and iteration count given to the exchange, are invalid.
    #[error("invalid SCRAM verifier: {0}")]
    InvalidVerifier(&'static str),
}
