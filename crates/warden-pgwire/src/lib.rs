//! The PostgreSQL wire protocol (version 3.0) for Warden's Postgres front door, in both
//! directions.
//!
//! The proxy sits between a client (psql, a driver, an ORM) and the real database. It plays the
//! server to the client and the client to the database, so it must parse what clients send and
//! build what servers send. postgres-protocol, which tokio-postgres uses and the proxy uses for
//! its upstream SCRAM login, only does the reverse (builds frontend messages, parses backend
//! ones) and parses from its own buffered types. Hence this crate, hand-written:
//!
//! - [`frame`]: tagged-message framing; frames are split off the read buffer without copying,
//!   so an inspected message is relayed as the same bytes, and sizes are checked from the header
//!   before a body is buffered;
//! - [`startup`]: the untagged startup packets (SSLRequest, GSSENCRequest, CancelRequest,
//!   StartupMessage);
//! - [`frontend`]: client messages, parsed strictly, so that what the proxy checks is what the
//!   server will run;
//! - [`backend`]: server messages, decoded only as far as the proxy acts on them;
//! - [`build`]: the server messages Warden sends itself;
//! - [`stream`]: reading whole messages from an async socket;
//! - [`scram`]: SCRAM-SHA-256, server side, checking one proof against several keys;
//! - [`error`]: the one error type, [`WireError`].
//!
//! Nothing in it panics on input; limits are the caller's ([`DEFAULT_MAX_MESSAGE`]) except for
//! startup packets, bounded like PostgreSQL's ([`startup::MAX_STARTUP_PACKET`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod backend;
pub mod build;
pub mod error;
pub mod frame;
pub mod frontend;
mod reader;
pub mod scram;
pub mod startup;
pub mod stream;

pub use backend::{parse_backend, Backend, ErrorFields};
pub use error::WireError;
pub use frame::{decode_frame, Frame};
pub use frontend::{parse_frontend, parse_password, parse_sasl_initial, Frontend, Target};
pub use scram::{ScramError, ScramServer, Verifier};
pub use startup::{decode_startup, Startup};
pub use stream::{read_frame, read_startup};

/// The default limit on a tagged message's body: 16 MiB.
///
/// PostgreSQL itself accepts up to 1 GiB for most messages, but the proxy buffers a whole
/// message before deciding on it, so the limit is what one connection may make Warden hold.
/// 16 MiB covers ordinary queries, Bind parameters and COPY chunks (clients send COPY data in
/// small messages); a deployment that binds larger values raises it.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 24;
