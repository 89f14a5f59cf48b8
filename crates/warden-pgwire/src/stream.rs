//! Reading whole messages from an async byte stream (a client or server socket), on top of
//! [`decode_startup`] and [`decode_frame`].
//!
//! The read buffer belongs to the caller and outlives each call, so bytes that arrive ahead of
//! the current message (pipelined queries) stay buffered for the next one, and after a startup
//! packet the same buffer carries on into tagged messages (or is handed to TLS, see
//! [`read_startup`]).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{decode_frame, decode_startup, Frame, Startup, WireError};

/// Reads until `buf` holds a whole startup packet, and returns it.
///
/// Returns `Ok(None)` if the peer closed the connection before sending a byte. After an
/// [`Startup::SslRequest`], `buf` must be empty before the TLS handshake starts: bytes the client
/// sent after the request, unencrypted, would otherwise be taken as TLS (PostgreSQL refuses such
/// connections, CVE-2021-23214); check `buf.is_empty()`.
///
/// # Errors
///
/// Those of [`decode_startup`]; [`WireError::UnexpectedEof`] if the connection closes inside a
/// packet; [`WireError::Io`] if reading fails.
pub async fn read_startup<R>(
    reader: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Startup>, WireError>
where
    R: AsyncRead + Unpin,
{
    loop {
        if let Some(packet) = decode_startup(buf, max)? {
            return Ok(Some(packet));
        }
        if !fill(reader, buf).await? {
            return Ok(None);
        }
    }
}

/// Reads until `buf` holds a whole tagged message, and returns it.
///
/// Returns `Ok(None)` if the peer closed the connection between messages.
///
/// # Errors
///
/// Those of [`decode_frame`]; [`WireError::UnexpectedEof`] if the connection closes inside a
/// message; [`WireError::Io`] if reading fails.
pub async fn read_frame<R>(
    reader: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Frame>, WireError>
where
    R: AsyncRead + Unpin,
{
    loop {
        if let Some(frame) = decode_frame(buf, max)? {
            return Ok(Some(frame));
        }
        if !fill(reader, buf).await? {
            return Ok(None);
        }
    }
}

/// Reads more bytes into `buf`: `false` at a clean end of stream (nothing buffered), an error at
/// an end of stream inside a message.
async fn fill<R>(reader: &mut R, buf: &mut BytesMut) -> Result<bool, WireError>
where
    R: AsyncRead + Unpin,
{
    if buf.capacity() == buf.len() {
        buf.reserve(8 * 1024);
    }
    if reader.read_buf(buf).await? > 0 {
        Ok(true)
    } else if buf.is_empty() {
        Ok(false)
    } else {
        Err(WireError::UnexpectedEof)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::build;

    #[tokio::test]
    async fn reads_pipelined_messages_across_partial_reads() {
        let (mut client, mut server) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            let mut out = BytesMut::new();
            postgres_protocol::message::frontend::startup_message([("user", "u")], &mut out)
                .unwrap();
            postgres_protocol::message::frontend::query("select 1", &mut out).unwrap();
            postgres_protocol::message::frontend::sync(&mut out);
            client.write_all(&out).await.unwrap();
        });
        let mut buf = BytesMut::new();
        let startup = read_startup(&mut server, &mut buf, 1 << 20).await.unwrap();
        assert_eq!(startup.unwrap().param("user"), Some("u"));
        let q = read_frame(&mut server, &mut buf, 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(q.tag, b'Q');
        let s = read_frame(&mut server, &mut buf, 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.tag, b'S');
        writer.await.unwrap();
        assert!(read_frame(&mut server, &mut buf, 1 << 20)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn eof_inside_a_message_is_an_error() {
        let mut out = BytesMut::new();
        build::command_complete("SELECT 1", &mut out);
        let mut short = &out[..out.len() - 1];
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_frame(&mut short, &mut buf, 1024).await,
            Err(WireError::UnexpectedEof)
        ));
        let mut short = &b"\0\0"[..];
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_startup(&mut short, &mut buf, 1024).await,
            Err(WireError::UnexpectedEof)
        ));
        let mut nothing = &b""[..];
        assert!(read_startup(&mut nothing, &mut BytesMut::new(), 1024)
            .await
            .unwrap()
            .is_none());
    }
}
