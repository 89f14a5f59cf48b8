//! Tagged-message framing (`Byte1` tag, `Int32` length counting itself, body), the same in both
//! directions after startup.
//!
//! [`decode_frame`] splits a frame off the read buffer without copying its body, so that the
//! proxy can inspect a message and relay the very same bytes with [`Frame::encode_to`]. The
//! length is checked against the limit as soon as the 5-byte header is in, before any of the body
//! is buffered, so a hostile peer cannot make Warden allocate more than the limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::WireError;

/// Bytes before a tagged message's body: the tag and the length.
const HEADER: usize = 5;

/// The most [`decode_frame`] reserves ahead for a message still arriving. Beyond it the buffer
/// grows only as bytes come in, so a 5-byte header claiming a large body costs the sender as much
/// as it costs Warden.
const RESERVE_AHEAD: usize = 64 * 1024;

/// One tagged message, not yet interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message type byte (`b'Q'`, `b'E'`, …); its meaning depends on the direction.
    pub tag: u8,
    /// The message body, without tag and length.
    pub body: Bytes,
}

impl Frame {
    /// A frame of type `tag` carrying `body`.
    pub fn new(tag: u8, body: impl Into<Bytes>) -> Self {
        Self {
            tag,
            body: body.into(),
        }
    }

    /// The number of bytes [`Frame::encode_to`] writes: tag, length and body.
    pub fn len_on_wire(&self) -> usize {
        HEADER + self.body.len()
    }

    /// Appends the frame, as it goes on the wire, to `dst`.
    ///
    /// # Panics
    ///
    /// If the body is longer than `i32::MAX - 4` bytes (2 GiB), which the protocol cannot carry
    /// and [`decode_frame`] never produces.
    pub fn encode_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.len_on_wire());
        dst.put_u8(self.tag);
        dst.put_i32(wire_len(self.body.len()));
        dst.extend_from_slice(&self.body);
    }
}

/// The value of a length field for a body of `body_len` bytes (the field counts itself).
///
/// # Panics
///
/// If the result does not fit an Int32: messages Warden builds or relays are bounded by the
/// limits in this crate, far below that.
pub(crate) fn wire_len(body_len: usize) -> i32 {
    match body_len.checked_add(4).map(i32::try_from) {
        Some(Ok(len)) => len,
        _ => panic!("a message body of {body_len} bytes cannot be framed"),
    }
}

/// Splits the next tagged message off the front of `buf`.
///
/// Returns `Ok(None)` while `buf` holds less than a whole message (nothing is consumed; `buf` has
/// then reserved room for the rest, up to 64 KiB). On success the frame's bytes are removed
/// from `buf` and the body shares its allocation.
///
/// # Errors
///
/// [`WireError::BadLength`] if the length field is below 4, and [`WireError::TooLarge`] if the
/// body would be longer than `max` bytes; both are decided from the header alone. After an error
/// the stream cannot be resynchronised: close the connection.
pub fn decode_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, WireError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let body_len = match usize::try_from(len) {
        Ok(n) if n >= 4 => n - 4,
        _ => return Err(WireError::BadLength(len)),
    };
    if body_len > max {
        return Err(WireError::TooLarge { len: body_len, max });
    }
    let total = HEADER + body_len;
    if buf.len() < total {
        buf.reserve((total - buf.len()).min(RESERVE_AHEAD));
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(HEADER);
    Ok(Some(Frame {
        tag,
        body: frame.freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(tag: u8, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        Frame::new(tag, body.to_vec()).encode_to(&mut buf);
        buf
    }

    #[test]
    fn round_trips_and_consumes_exactly_one_frame() {
        let mut buf = wire(b'Q', b"select 1\0");
        buf.extend_from_slice(&wire(b'S', b""));
        let first = decode_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(first, Frame::new(b'Q', &b"select 1\0"[..]));
        assert_eq!(first.len_on_wire(), 5 + 9);
        let second = decode_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(second, Frame::new(b'S', Bytes::new()));
        assert!(buf.is_empty());
        assert!(decode_frame(&mut buf, 1024).unwrap().is_none());
    }

    #[test]
    fn every_truncation_needs_more_bytes() {
        let whole = wire(b'Q', b"select 1\0");
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert!(decode_frame(&mut buf, 1024).unwrap().is_none(), "cut {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed at cut {cut}");
        }
    }

    #[test]
    fn length_below_four_is_refused() {
        for len in [i32::MIN, -1, 0, 3] {
            let mut buf = BytesMut::new();
            buf.put_u8(b'Q');
            buf.put_i32(len);
            assert!(matches!(
                decode_frame(&mut buf, 1024),
                Err(WireError::BadLength(l)) if l == len
            ));
        }
    }

    #[test]
    fn oversized_body_is_refused_from_the_header_alone() {
        let mut buf = BytesMut::new();
        buf.put_u8(b'd');
        buf.put_i32(i32::MAX);
        let err = decode_frame(&mut buf, crate::DEFAULT_MAX_MESSAGE).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { len, max }
            if len == i32::MAX as usize - 4 && max == crate::DEFAULT_MAX_MESSAGE));
        // Exactly at the limit is fine.
        let mut buf = wire(b'd', &[7; 16]);
        assert!(decode_frame(&mut buf, 16).unwrap().is_some());
        let mut buf = wire(b'd', &[7; 17]);
        assert!(matches!(
            decode_frame(&mut buf, 16),
            Err(WireError::TooLarge { len: 17, max: 16 })
        ));
    }

    #[test]
    fn a_large_header_does_not_reserve_the_whole_body() {
        let mut buf = BytesMut::new();
        buf.put_u8(b'd');
        buf.put_i32(crate::DEFAULT_MAX_MESSAGE as i32);
        assert!(decode_frame(&mut buf, crate::DEFAULT_MAX_MESSAGE)
            .unwrap()
            .is_none());
        assert!(buf.capacity() <= HEADER + RESERVE_AHEAD + 64);
    }

    #[test]
    fn body_shares_the_read_buffer() {
        let mut buf = wire(b'd', &[1, 2, 3]);
        let start = buf.as_ptr() as usize;
        let frame = decode_frame(&mut buf, 16).unwrap().unwrap();
        assert_eq!(frame.body.as_ptr() as usize, start + HEADER);
    }
}
