//! Bodies that stream through the gateway untouched while counting their bytes, and the guard
//! that records an action's outcome exactly once: when the response body ends, or when it is
//! dropped early (client went away, upstream broke), whichever comes first.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A body that counts the bytes of its data frames into `counter`, and drops `on_drop` (if any)
/// when it ends or is dropped.
pub struct Counted<B, G = ()> {
    inner: B,
    counter: Arc<AtomicU64>,
    on_end: Option<G>,
}

impl<B> Counted<B, ()> {
    /// Counts `inner`'s bytes into `counter`.
    pub fn new(inner: B, counter: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            counter,
            on_end: None,
        }
    }
}

impl<B, G> Counted<B, G> {
    /// Counts `inner`'s bytes into `counter` and drops `guard` when the body ends.
    pub fn with_guard(inner: B, counter: Arc<AtomicU64>, guard: G) -> Self {
        Self {
            inner,
            counter,
            on_end: Some(guard),
        }
    }
}

impl<B, G> Body for Counted<B, G>
where
    B: Body<Data = Bytes> + Unpin,
    G: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.on_end.take();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    struct Flag(Arc<AtomicU64>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn counts_and_fires_once_at_the_end() {
        let counter = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicU64::new(0));
        let body = Counted::with_guard(
            Full::new(Bytes::from_static(b"hello")),
            counter.clone(),
            Flag(fired.clone()),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(counter.load(Ordering::SeqCst), 5);
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn fires_when_dropped_early() {
        let fired = Arc::new(AtomicU64::new(0));
        let body = Counted::with_guard(
            Full::new(Bytes::from_static(b"x")),
            Arc::new(AtomicU64::new(0)),
            Flag(fired.clone()),
        );
        drop(body);
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    }
}
