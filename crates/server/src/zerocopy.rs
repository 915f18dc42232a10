//! Large cached bodies sent with `sendfile` instead of being copied into the socket.
//!
//! A hot answer with a large body (the gzip bytes of a big catalogue) registers, on its
//! connection, the body's bytes and a file holding exactly them ([`FileBody`]). hyper then writes
//! the response as usual; [`ZeroCopyStream`], the connection's socket, recognises a buffer that
//! lies inside the registered bytes by its address and sends the same range of the file with
//! `sendfile` (the kernel references the file's pages instead of copying the bytes), the response's
//! head before it with `MSG_MORE` so that both leave in full segments. Anything else is written as
//! it comes.
//!
//! Why the address is enough: the registration holds a clone of the bytes, so that memory stays
//! allocated, unchanged (`Bytes` are immutable) and equal to the sealed file for as long as the
//! registration exists; no other buffer can lie inside it. Under TLS hyper's buffers are encrypted
//! before they reach this stream, so nothing matches and everything is written as it comes.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A response body and a file holding exactly its bytes.
#[derive(Clone)]
pub struct FileBody {
    pub bytes: Bytes,
    pub file: Arc<std::fs::File>,
    /// Counts the bytes sent from the file (a metric).
    pub sent: prometheus_client::metrics::counter::Counter,
}

impl FileBody {
    /// Where `buf` starts in the body, when it lies wholly inside the registered bytes.
    fn offset_of(&self, buf: &[u8]) -> Option<u64> {
        let start = self.bytes.as_ptr() as usize;
        let at = buf.as_ptr() as usize;
        (!buf.is_empty() && at >= start && at + buf.len() <= start + self.bytes.len()).then(|| (at - start) as u64)
    }
}

/// The connection's registration, shared by its service (which sets it) and its socket.
///
/// Most connections never register anything (small answers, the routers' answers): a flag
/// spares their writes the lock.
#[derive(Clone, Default)]
pub struct Slot(Arc<SlotInner>);

#[derive(Default)]
struct SlotInner {
    armed: AtomicBool,
    body: Mutex<Option<FileBody>>,
}

impl Slot {
    /// Registers `body` for the connection's next writes (replacing an earlier one).
    pub fn set(&self, body: FileBody) {
        *self.0.body.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
        self.0.armed.store(true, Ordering::Release);
    }

    fn current(&self) -> Option<FileBody> {
        if !self.0.armed.load(Ordering::Acquire) {
            return None;
        }
        self.0.body.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A TCP socket that sends registered bytes from their file (see the module's comment).
pub struct ZeroCopyStream {
    stream: TcpStream,
    slot: Slot,
    /// Bytes sent from files so far.
    from_files: u64,
}

impl ZeroCopyStream {
    pub fn new(stream: TcpStream, slot: Slot) -> ZeroCopyStream {
        ZeroCopyStream {
            stream,
            slot,
            from_files: 0,
        }
    }

    /// How many bytes this connection sent from files.
    #[cfg(test)]
    fn sent_from_files(&self) -> u64 {
        self.from_files
    }

    /// Runs a non-blocking socket operation when the socket is writable, waiting otherwise.
    fn poll_send(&self, cx: &mut Context<'_>, mut op: impl FnMut(&TcpStream) -> io::Result<usize>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_io(Interest::WRITABLE, || op(&self.stream)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let registered = self.slot.current();
        if let Some(body) = registered
            && let Some((i, offset)) = bufs.iter().enumerate().find_map(|(i, b)| body.offset_of(b).map(|o| (i, o)))
        {
            if i > 0 {
                // What comes before the body (the response's head), held back for the body.
                let head = &bufs[..i];
                return self.poll_send(cx, |s| {
                    use rustix::net::{SendAncillaryBuffer, SendFlags, sendmsg};
                    Ok(sendmsg(
                        s,
                        head,
                        &mut SendAncillaryBuffer::default(),
                        SendFlags::MORE | SendFlags::NOSIGNAL,
                    )?)
                });
            }
            let len = bufs[0].len();
            let sent = ready!(self.poll_send(cx, |s| {
                let mut at = offset;
                Ok(rustix::fs::sendfile(s, &*body.file, Some(&mut at), len)?)
            }))?;
            self.from_files += sent as u64;
            body.sent.inc_by(sent as u64);
            return Poll::Ready(Ok(sent));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn file_of(data: &[u8]) -> Arc<std::fs::File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        Arc::new(f)
    }

    /// A head and a 4 MiB registered body through a small send buffer and a slow reader: partial
    /// `sendfile`s resume at the right offset, `EAGAIN` waits, and the reader gets the bytes in
    /// order; an unregistered buffer in between and after is written as it comes.
    #[tokio::test]
    async fn registered_bytes_leave_from_the_file_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            let mut chunk = vec![0u8; 7_000];
            loop {
                let n = c.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
                if got.len() < 200_000 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            got
        });
        let (socket, _) = listener.accept().await.unwrap();
        rustix::net::sockopt::set_socket_send_buffer_size(&socket, 8192).unwrap();
        let body: Bytes = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let slot: Slot = Default::default();
        let sent = prometheus_client::metrics::counter::Counter::default();
        slot.set(FileBody {
            bytes: body.clone(),
            file: file_of(&body),
            sent: sent.clone(),
        });
        let mut stream = ZeroCopyStream::new(socket, slot);
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 4194304\r\n\r\n".to_vec();
        // As hyper does: the head and the body as one vectored write, resumed where it stopped.
        let (mut head_left, mut body_left): (&[u8], &[u8]) = (&head, &body);
        while !head_left.is_empty() || !body_left.is_empty() {
            let bufs = [IoSlice::new(head_left), IoSlice::new(body_left)];
            let bufs: Vec<IoSlice<'_>> = bufs.into_iter().filter(|b| !b.is_empty()).collect();
            let mut n = stream.write_vectored(&bufs).await.unwrap();
            let h = n.min(head_left.len());
            head_left = &head_left[h..];
            n -= h;
            body_left = &body_left[n..];
        }
        assert_eq!(stream.sent_from_files(), body.len() as u64, "the whole body left from the file");
        assert_eq!(sent.get(), body.len() as u64, "and was counted");
        stream.write_all(b"trailing, unregistered").await.unwrap();
        assert_eq!(stream.sent_from_files(), body.len() as u64);
        stream.shutdown().await.unwrap();
        drop(stream);
        let got = client.await.unwrap();
        let mut want = head.clone();
        want.extend_from_slice(&body);
        want.extend_from_slice(b"trailing, unregistered");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the bytes arrive whole and in order");
    }

    #[test]
    fn only_buffers_inside_the_registered_bytes_match() {
        let bytes = Bytes::from(vec![1u8; 100]);
        let body = FileBody {
            bytes: bytes.clone(),
            file: file_of(&bytes),
            sent: Default::default(),
        };
        assert_eq!(body.offset_of(&bytes[..]), Some(0));
        assert_eq!(body.offset_of(&bytes[40..60]), Some(40));
        assert_eq!(body.offset_of(&bytes[100..]), None, "empty");
        let copy = bytes.to_vec();
        assert_eq!(body.offset_of(&copy), None, "equal bytes elsewhere are not the registered ones");
    }
}
