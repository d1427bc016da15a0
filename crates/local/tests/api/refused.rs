//! A request refused for its key or its declared size is answered before its body is read:
//! no `100 Continue`, `Connection: close`, and the server's memory stays flat under stalled
//! refused uploads; a small refused body still gets its whole answer.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    process::Stdio,
    time::{Duration, Instant},
};

use storefirst_domain::DEFAULT_BODY_LIMIT;

use crate::{API_KEY, spawn_local_with};

/// The server's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("/proc/PID/status has VmRSS")
}

/// Sends `head`, then `body` after a short pause (as a separate packet); returns the whole
/// answer, read until the server closes.
fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    // The server may have answered and closed already.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no complete answer to {head:?}: {e}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn assert_refused(answer: &str, status: &str) {
    assert!(answer.starts_with(status), "{status} expected: {answer:?}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "a refused body closes the connection: {answer:?}"
    );
    assert!(
        answer.ends_with('}') && answer.contains("\"message\""),
        "the whole JSON answer arrives: {answer:?}"
    );
}

#[test]
fn refused_requests_are_answered_before_their_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_local_with(
        &dir.path().join("refused.db"),
        "warn",
        Stdio::inherit(),
        &[],
        &[],
    );
    let addr = server.addr();

    // No invitation to upload a body that will be refused.
    let no_key = "PUT /requests/a HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 10\r\nexpect: 100-continue\r\n\r\n";
    assert_refused(&exchange(addr, no_key, b""), "HTTP/1.1 403");
    let too_large = format!(
        "PUT /requests/a HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        DEFAULT_BODY_LIMIT + 1
    );
    assert_refused(&exchange(addr, &too_large, b""), "HTTP/1.1 413");

    // A small refused body that arrives just after the headers still gets its answer.
    let small = "PUT /requests/a HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n";
    let wrong_type = format!(
        "PUT /requests/a HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\ncontent-type: text/plain\r\ncontent-length: 4000\r\n\r\n"
    );
    for _ in 0..50 {
        assert_refused(&exchange(addr, small, &[b' '; 4000]), "HTTP/1.1 403");
        assert_refused(&exchange(addr, &wrong_type, &[b' '; 4000]), "HTTP/1.1 415");
    }

    // 50 uploads without a key that send most of a 1 MiB body and stall.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(server.id());
    let head = "PUT /requests/upload HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n";
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream.set_nonblocking(true).unwrap();
            let chunk = [b' '; 64 * 1024];
            let (mut sent, started) = (0, Instant::now());
            while sent < 1_000_000 && started.elapsed() < Duration::from_secs(1) {
                match stream.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let during = rss_kib(server.id());
    drop(stalled);
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(server.id());
    println!(
        "server RSS with 50 stalled refused uploads: before {before} KiB, during {during} KiB, after {after} KiB"
    );
    // Buffering them took ~50 MiB (a body each); a few MiB of noise are allowed.
    for (when, rss) in [("during", during), ("after", after)] {
        assert!(
            rss < before + 8 * 1024,
            "the server's memory grew from {before} KiB to {rss} KiB {when} 50 refused uploads"
        );
    }
}
