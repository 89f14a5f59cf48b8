//! The crate's one error type for the wire protocol, [`WireError`].
//!
//! Every variant's message is phrased so that the proxy can put it, as is, into the
//! `ErrorResponse` it sends to a client before closing the connection (SQLSTATE `08P01`,
//! protocol violation, for all but [`WireError::Io`]).

/// A violation of the PostgreSQL wire protocol, or an I/O failure while reading it.
#[derive(thiserror::Error, Debug)]
pub enum WireError {
    /// A message's declared length exceeds the limit; detected from its header, before its body
    /// is buffered.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The declared length (for a tagged message: of its body; for a startup packet: of the
        /// whole packet).
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A length field smaller than the smallest valid message.
    #[error("invalid message length {0}")]
    BadLength(i32),
    /// A message whose contents do not follow its format.
    #[error("invalid {message} message: {what}")]
    Malformed {
        /// The message's name, as the protocol documentation spells it (`Bind`, `StartupMessage`).
        message: &'static str,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A startup packet asking for a protocol version other than 3.x (the code is
    /// `major << 16 | minor`).
    #[error(
        "unsupported frontend protocol {}.{}: server supports 3.0 to 3.0",
        .0 >> 16,
        .0 & 0xffff
    )]
    UnsupportedProtocol(u32),
    /// Reading from the connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message")]
    UnexpectedEof,
}

impl WireError {
    /// A [`WireError::Malformed`] for `message`, saying `what` is wrong.
    pub(crate) fn malformed(message: &'static str, what: &'static str) -> Self {
        Self::Malformed { message, what }
    }
}
