//! Messages a server sends, as far as the proxy needs to look at them.
//!
//! postgres-protocol can parse these, but only from its own buffered stream type and into
//! borrowed views; the proxy holds a [`Frame`] it is about to relay, so this module identifies
//! the frame by tag and decodes just the messages whose contents the proxy acts on
//! (authentication, session parameters, cancel keys, transaction status, command tags, errors).
//! Everything else (rows, descriptions, COPY payloads) is only named, and is relayed as is.

use bytes::Bytes;

use crate::reader::Reader;
use crate::{Frame, WireError};

/// One backend message, decoded as far as the proxy needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `R`: an authentication request or result.
    Authentication {
        /// 0 ok, 3 cleartext password, 5 MD5 password, 10 SASL, 11 SASL continue, 12 SASL
        /// final, …
        code: i32,
        /// What follows the code (the MD5 salt, the SASL mechanism list or SASL data).
        data: Bytes,
    },
    /// `S`: a run-time parameter's current value.
    ParameterStatus {
        /// Parameter name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `K`: the key a client needs to cancel queries on this connection.
    BackendKeyData {
        /// Backend process id.
        pid: i32,
        /// Secret key (protocol 3.0: four bytes).
        secret: i32,
    },
    /// `Z`: ready for a new query, with the transaction status: `I` idle, `T` in a
    /// transaction, `E` in a failed transaction.
    ReadyForQuery(u8),
    /// `C`: a command finished; its tag (`SELECT 3`, `INSERT 0 1`, …).
    CommandComplete(String),
    /// `E`: an error.
    ErrorResponse(ErrorFields),
    /// `N`: a notice.
    NoticeResponse(ErrorFields),
    /// `1`
    ParseComplete,
    /// `2`
    BindComplete,
    /// `3`
    CloseComplete,
    /// `n`
    NoData,
    /// `T`
    RowDescription,
    /// `D`
    DataRow,
    /// `I`
    EmptyQueryResponse,
    /// `s`
    PortalSuspended,
    /// `G`
    CopyInResponse,
    /// `H`
    CopyOutResponse,
    /// `W`
    CopyBothResponse,
    /// `d`
    CopyData,
    /// `c`
    CopyDone,
    /// `A`
    NotificationResponse,
    /// `t`
    ParameterDescription,
    /// `v`
    NegotiateProtocolVersion,
    /// Any other tag (`V` FunctionCallResponse, or something unknown).
    Other(u8),
}

/// The fields of an ErrorResponse or NoticeResponse.
///
/// The typed members hold the fields the proxy reads or sets; every other field the server sent
/// (position, schema, table, constraint, source file and line, …) is kept in [`ErrorFields::other`]
/// in the order received, so an error can be relayed or re-encoded without loss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFields {
    /// `S`: severity, possibly localized (`ERROR`, `FATAL`, `NOTICE`, …).
    pub severity: String,
    /// `V`: severity, never localized (sent by PostgreSQL 9.6 and later).
    pub severity_nonlocalized: Option<String>,
    /// `C`: the SQLSTATE code.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`: detail.
    pub detail: Option<String>,
    /// `H`: hint.
    pub hint: Option<String>,
    /// Every other field, as (field type byte, value).
    pub other: Vec<(u8, String)>,
}

impl ErrorFields {
    /// Fields with the given severity, SQLSTATE and message; the non-localized severity is set to
    /// the same value (Warden's own messages are not localized).
    pub fn new(
        severity: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let severity = severity.into();
        Self {
            severity_nonlocalized: Some(severity.clone()),
            severity,
            code: code.into(),
            message: message.into(),
            detail: None,
            hint: None,
            other: Vec::new(),
        }
    }

    /// The same, with a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same, with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The value of the field with type byte `field`, whichever member holds it.
    pub fn get(&self, field: u8) -> Option<&str> {
        match field {
            b'S' => Some(&self.severity),
            b'V' => self.severity_nonlocalized.as_deref(),
            b'C' => Some(&self.code),
            b'M' => Some(&self.message),
            b'D' => self.detail.as_deref(),
            b'H' => self.hint.as_deref(),
            _ => self
                .other
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// Parses the body of an ErrorResponse or NoticeResponse.
    fn parse(body: &Bytes, message: &'static str) -> Result<Self, WireError> {
        let mut r = Reader::new(body, message);
        let mut severity = None;
        let mut fields = Self::new("", "", "");
        fields.severity_nonlocalized = None;
        let (mut code, mut text) = (None, None);
        loop {
            let field = r.u8()?;
            if field == 0 {
                break;
            }
            let value = r.cstr()?.to_owned();
            let slot = match field {
                b'S' => &mut severity,
                b'V' => &mut fields.severity_nonlocalized,
                b'C' => &mut code,
                b'M' => &mut text,
                b'D' => &mut fields.detail,
                b'H' => &mut fields.hint,
                _ => {
                    fields.other.push((field, value));
                    continue;
                }
            };
            if slot.replace(value).is_some() {
                return Err(r.error("a field is given twice"));
            }
        }
        r.finish()?;
        fields.severity = severity.ok_or_else(|| r.error("severity (S) is missing"))?;
        fields.code = code.ok_or_else(|| r.error("SQLSTATE (C) is missing"))?;
        fields.message = text.ok_or_else(|| r.error("message (M) is missing"))?;
        Ok(fields)
    }
}

/// Identifies a frame received from the server, decoding the messages whose contents the proxy
/// uses.
///
/// # Errors
///
/// [`WireError::Malformed`] if a decoded message does not follow its format, or a message that
/// has no body has one. Messages that are only identified are not checked further.
pub fn parse_backend(frame: &Frame) -> Result<Backend, WireError> {
    let body = &frame.body;
    let msg = match frame.tag {
        b'R' => {
            let mut r = Reader::new(body, "Authentication");
            let code = r.i32()?;
            Backend::Authentication {
                code,
                data: r.rest(),
            }
        }
        b'S' => {
            let mut r = Reader::new(body, "ParameterStatus");
            let name = r.cstr()?.to_owned();
            let value = r.cstr()?.to_owned();
            r.finish()?;
            Backend::ParameterStatus { name, value }
        }
        b'K' => {
            let mut r = Reader::new(body, "BackendKeyData");
            let pid = r.i32()?;
            let secret = r.i32()?;
            r.finish()?;
            Backend::BackendKeyData { pid, secret }
        }
        b'Z' => {
            let mut r = Reader::new(body, "ReadyForQuery");
            let status = r.u8()?;
            if !matches!(status, b'I' | b'T' | b'E') {
                return Err(r.error("transaction status must be 'I', 'T' or 'E'"));
            }
            r.finish()?;
            Backend::ReadyForQuery(status)
        }
        b'C' => {
            let mut r = Reader::new(body, "CommandComplete");
            let tag = r.cstr()?.to_owned();
            r.finish()?;
            Backend::CommandComplete(tag)
        }
        b'E' => Backend::ErrorResponse(ErrorFields::parse(body, "ErrorResponse")?),
        b'N' => Backend::NoticeResponse(ErrorFields::parse(body, "NoticeResponse")?),
        b'1' => empty(body, "ParseComplete", Backend::ParseComplete)?,
        b'2' => empty(body, "BindComplete", Backend::BindComplete)?,
        b'3' => empty(body, "CloseComplete", Backend::CloseComplete)?,
        b'n' => empty(body, "NoData", Backend::NoData)?,
        b'I' => empty(body, "EmptyQueryResponse", Backend::EmptyQueryResponse)?,
        b's' => empty(body, "PortalSuspended", Backend::PortalSuspended)?,
        b'c' => empty(body, "CopyDone", Backend::CopyDone)?,
        b'T' => Backend::RowDescription,
        b'D' => Backend::DataRow,
        b'G' => Backend::CopyInResponse,
        b'H' => Backend::CopyOutResponse,
        b'W' => Backend::CopyBothResponse,
        b'd' => Backend::CopyData,
        b'A' => Backend::NotificationResponse,
        b't' => Backend::ParameterDescription,
        b'v' => Backend::NegotiateProtocolVersion,
        other => Backend::Other(other),
    };
    Ok(msg)
}

/// A message that has no body.
fn empty(body: &Bytes, message: &'static str, msg: Backend) -> Result<Backend, WireError> {
    Reader::new(body, message).finish().map(|()| msg)
}
