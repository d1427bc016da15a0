//! The example page (`examples/browser/index.html`): a browser sends an order with `fetch`,
//! shows the 202, polls the `Location` and shows the outcome. Served on a port of its own,
//! so that it is another origin than the API's, as a single-page app on its own domain is:
//! the API must allow it (CORS). `cargo xtask dev` serves it, and so do the browser tests.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
};

/// The page itself. It reads the API's URL and key from its query string (see [`url`]).
pub const INDEX_HTML: &str = include_str!("../../../examples/browser/index.html");

/// The most of a request head read before answering.
const HEAD_LIMIT: usize = 16 * 1024;

/// Serves the page on `listener` from a thread of its own, as long as the process runs,
/// and returns where: `GET /` answers the page, any other path 404.
pub fn serve(listener: TcpListener) -> std::io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // A thread each: a browser opens connections ahead and may leave one idle.
            std::thread::spawn(move || answer(stream));
        }
    });
    Ok(addr)
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_LIMIT {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let target = line.split(' ').nth(1).unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let (status, kind, body) = if line.starts_with("GET ") && matches!(path, "/" | "/index.html") {
        ("200 OK", "text/html; charset=utf-8", INDEX_HTML)
    } else {
        (
            "404 Not Found",
            "text/plain",
            "not found: the page is at /\n",
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// The page served at `page`, set to call the API at `api` with `key`.
pub fn url(page: SocketAddr, api: &str, key: &str) -> String {
    format!(
        "http://{page}/?api={}&key={}",
        query_value(api),
        query_value(key)
    )
}

/// Percent-encodes everything but the unreserved characters.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn serves_the_page_at_the_root_only() {
        let addr = serve(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()).unwrap();
        let page = get(addr, "/?api=x&key=y");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.ends_with(INDEX_HTML));
        assert!(get(addr, "/favicon.ico").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn the_url_carries_the_api_and_key() {
        let page = SocketAddr::from((Ipv4Addr::LOCALHOST, 3001));
        assert_eq!(
            url(page, "http://127.0.0.1:3000", "a&b"),
            "http://127.0.0.1:3001/?api=http%3A%2F%2F127.0.0.1%3A3000&key=a%26b"
        );
    }
}
