//! The first line `storefirst-local` prints on stdout: where it listens, for the scripts,
//! tests and tools (`storefirst-deploy test-e2e --local`, the bench) that start it on port 0.

use std::net::SocketAddr;

const PREFIX: &str = "storefirst-local listening on ";

/// The line for a server on `addr`.
pub fn listening_line(addr: SocketAddr) -> String {
    format!("{PREFIX}http://{addr}")
}

/// The URL a listening line names; `None` for any other line.
pub fn listening_url(line: &str) -> Option<&str> {
    line.trim().strip_prefix(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_of_the_line_is_read_back() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let line = format!("{}\n", listening_line(addr));
        assert_eq!(listening_url(&line), Some("http://127.0.0.1:8080"));
        assert_eq!(listening_url("storefirst-local: SQLite at x.db"), None);
    }
}
