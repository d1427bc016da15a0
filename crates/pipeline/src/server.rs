//! The HTTP accept loop: axum's router behind hyper with the limits that keep slow or idle
//! clients from starving the others.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpSocket},
    sync::{Semaphore, watch},
    time::Sleep,
};

use crate::api;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A client must send a request's headers within this time, or it is disconnected. The
    /// clock starts when the connection is ready for its next request, so this also bounds
    /// how long a keep-alive connection may idle between requests.
    pub header_timeout: Duration,
    /// A response that makes no progress into the socket for this long (the client reads
    /// nothing) ends the connection.
    pub write_timeout: Duration,
    /// In-flight requests get this long to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// hyper's own cap on a request's head. The API answers heads over
/// [`api::HEAD_LIMIT`] with a JSON 431 itself; this larger cap only stops a head that
/// never ends, with hyper's 431 (which [`Socket`] gives a JSON body).
const HYPER_HEAD_LIMIT: usize = 2 * api::HEAD_LIMIT;

/// A connection's read and write buffers at most (hyper's default is ~400 KiB): it bounds
/// the answers queued for a pipelining client that does not read them.
const CONNECTION_BUFFER: usize = 2 * HYPER_HEAD_LIMIT;

/// The kernel's send buffer of each connection (Linux doubles it). With
/// [`CONNECTION_BUFFER`] it bounds the answers queued for a client that does not read
/// them; left to the kernel's autotuning, it grew to ~3 MB on loopback.
const SEND_BUFFER: u32 = 32 * 1024;

/// A listening socket whose connections get [`SEND_BUFFER`] (accepted sockets inherit it).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `app` until `shutdown` turns true, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let needed = limits.max_connections as u64 + OTHER_FILES;
    let open_files = raise_open_files(needed);
    if open_files < needed {
        tracing::warn!(
            open_files,
            max_connections = limits.max_connections,
            "the open-files limit is below what the connection limit needs: raise it with `ulimit -n {needed}`"
        );
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(HYPER_HEAD_LIMIT)
        .max_buf_size(CONNECTION_BUFFER);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped(&mut shutdown) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let io = Socket::new(stream, limits.write_timeout);
        let connection =
            http.serve_connection(TokioIo::new(io), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

/// Descriptors the process needs beside its connections: the databases, the listener, the
/// poller's and the invoker's sockets.
const OTHER_FILES: u64 = 256;

/// Raises the soft open-files limit (1,024 on many systems) toward `needed`, within the hard
/// limit, as Go's runtime does at start: at the connection limit, accept would otherwise
/// fail for want of descriptors. Returns the soft limit in force.
#[cfg(unix)]
pub fn raise_open_files(needed: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let Some(current) = limit.current else {
        return u64::MAX;
    };
    if current >= needed {
        return current;
    }
    let raised = limit.maximum.map_or(needed, |hard| needed.min(hard));
    limit.current = Some(raised);
    match setrlimit(Resource::Nofile, limit) {
        Ok(()) => raised,
        Err(_) => current,
    }
}

#[cfg(not(unix))]
pub fn raise_open_files(_needed: u64) -> u64 {
    u64::MAX
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A connection's socket, with two duties hyper has no option for.
///
/// Its writes fail once they have made no progress for `timeout`: hyper waits for a
/// writable socket without a deadline, so a client that pipelines requests and never
/// reads the answers would otherwise hold its connection forever.
///
/// It gives hyper's own answer to a request hyper cannot parse (400, 414, 431: a fixed head
/// with `content-length: 0`, the connection's last words) the JSON body every other error
/// has. The API itself never answers those statuses without a body, and a JSON body holds
/// no raw line break, so the head cannot be met inside another answer.
struct Socket<T> {
    io: T,
    timeout: Duration,
    /// Armed at the first write that could not proceed, dropped at the next that does.
    stalled: Option<Pin<Box<Sleep>>>,
    /// The JSON answer that replaces hyper's empty one, still to be written.
    answer: Vec<u8>,
}

impl<T: AsyncWrite + Unpin> Socket<T> {
    fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stalled: None,
            answer: Vec::new(),
        }
    }

    fn deadline<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.deadline(cx, poll)
    }

    /// Writes what is left of the JSON answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.answer.is_empty() {
            let answer = std::mem::take(&mut self.answer);
            let poll = self.write(cx, &answer);
            self.answer = answer;
            match poll {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.answer.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Where hyper's own error answer starts in `buf`, if it is there.
fn hyper_answer_at(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(buf, b"HTTP/1.1 4").find(|&at| hyper_answer(&buf[at..]).is_some())
}

/// hyper's own error answer at the start of `buf`: its length and the JSON answer that
/// replaces it.
fn hyper_answer(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    let error = match buf.get(..13)? {
        b"HTTP/1.1 400 " => api::ApiError::Unparsable,
        b"HTTP/1.1 414 " => api::ApiError::UriTooLong,
        b"HTTP/1.1 431 " => api::ApiError::HeadTooLarge,
        _ => return None,
    };
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let (close, length, date, blank) = (lines.next()?, lines.next()?, lines.next()?, lines.next()?);
    if (close, length, blank) != ("connection: close", "content-length: 0", "")
        || !date.starts_with("date: ")
    {
        return None;
    }
    let body = serde_json::json!({ "message": error.to_string() }).to_string();
    let answer = format!(
        "{status_line}\r\n{close}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{date}\r\n\r\n{body}",
        body.len()
    );
    Some((end, answer.into_bytes()))
}

impl<T: AsyncRead + Unpin> AsyncRead for Socket<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Socket<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        match hyper_answer_at(buf) {
            None => this.write(cx, buf),
            // What comes before it first, so that the answer starts the next write.
            Some(at @ 1..) => this.write(cx, &buf[..at]),
            Some(0) => {
                let (len, answer) = hyper_answer(buf).expect("found at 0");
                this.answer = answer;
                // Taken as written: the JSON answer goes out in its place.
                let _ = this.drain(cx)?;
                Poll::Ready(Ok(len))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if bufs.iter().any(|buf| hyper_answer_at(buf).is_some()) {
            // One slice at a time until hyper's answer is replaced.
            let first = bufs
                .iter()
                .find(|buf| !buf.is_empty())
                .map_or(&[][..], |buf| &buf[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        ready!(this.drain(cx))?;
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.deadline(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.deadline(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.deadline(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_low_open_files_limit_is_raised_within_the_hard_one() {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let before = getrlimit(Resource::Nofile);
        let hard = before.maximum.unwrap_or(u64::MAX);
        let mut low = before;
        low.current = Some(hard.min(256));
        setrlimit(Resource::Nofile, low).unwrap();

        let raised = raise_open_files(4096);
        assert_eq!(raised, hard.min(4096));
        assert_eq!(getrlimit(Resource::Nofile).current, Some(raised));
        assert_eq!(raise_open_files(16), raised, "never lowered");
        setrlimit(Resource::Nofile, before).unwrap();
    }

    const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 17:54:43 GMT\r\n\r\n";

    #[test]
    fn hyper_s_bodiless_answer_is_found_after_other_answers_and_given_a_json_body() {
        let before = b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let buf = [&before[..], HYPER_400].concat();
        assert_eq!(hyper_answer_at(&buf), Some(before.len()));
        let (len, answer) = hyper_answer(HYPER_400).unwrap();
        assert_eq!(len, HYPER_400.len());
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Tue, 01 Dec 2026 17:54:43 GMT"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["message"].is_string());
    }

    #[test]
    fn the_api_s_own_answers_are_left_alone() {
        // A stored body that quotes hyper's head comes back JSON-escaped; a JSON 400 has a
        // length and a type.
        let item = br#"{"request":"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"}"#;
        let api_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\ndate: x\r\n\r\n{}";
        for buf in [&item[..], &api_400[..], &HYPER_400[..HYPER_400.len() - 2]] {
            assert_eq!(
                hyper_answer_at(buf),
                None,
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}
