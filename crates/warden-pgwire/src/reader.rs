//! A strict cursor over one message body, shared by every parser in the crate.
//!
//! Each read checks the remaining length before slicing, strings must be NUL-terminated UTF-8,
//! and [`Reader::finish`] refuses trailing bytes, so the parsers above it stay one line per field
//! and cannot index out of bounds. Errors name the message being parsed.

use bytes::Bytes;

use crate::WireError;

/// Reads fields from a message body, front to back.
pub(crate) struct Reader<'a> {
    body: &'a Bytes,
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `body`, a `message` (its name is used in errors).
    pub(crate) fn new(body: &'a Bytes, message: &'static str) -> Self {
        Self {
            body,
            pos: 0,
            message,
        }
    }

    /// A [`WireError::Malformed`] naming this reader's message.
    pub(crate) fn error(&self, what: &'static str) -> WireError {
        WireError::malformed(self.message, what)
    }

    /// How many bytes are left.
    pub(crate) fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    /// The next `n` bytes, borrowed.
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(self.error("message is truncated"));
        }
        let body: &'a [u8] = self.body;
        let out = &body[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `n` bytes, sharing the body's buffer.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, WireError> {
        if n > self.remaining() {
            return Err(self.error("message is truncated"));
        }
        let out = self.body.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Everything that is left, sharing the body's buffer.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.body.slice(self.pos..);
        self.pos = self.body.len();
        out
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian Int16.
    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian Int32.
    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A big-endian Int32 read as unsigned (object identifiers).
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An Int16 count of following items each at least `item_size` bytes long: refused if
    /// negative or if that many items cannot fit in what is left, so a caller may allocate for
    /// it.
    pub(crate) fn count(&mut self, item_size: usize) -> Result<usize, WireError> {
        let n = self.i16()?;
        let n = usize::try_from(n).map_err(|_| self.error("a count is negative"))?;
        if n.saturating_mul(item_size) > self.remaining() {
            return Err(self.error("a count exceeds the data in the message"));
        }
        Ok(n)
    }

    /// A NUL-terminated UTF-8 string (the NUL is consumed, not returned).
    pub(crate) fn cstr(&mut self) -> Result<&'a str, WireError> {
        let body: &'a [u8] = self.body;
        let rest = &body[self.pos..];
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(self.error("a string is not NUL-terminated"));
        };
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| self.error("a string is not valid UTF-8"))?;
        self.pos += nul + 1;
        Ok(s)
    }

    /// Succeeds only if every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error("unexpected bytes after the end of the message"))
        }
    }
}
