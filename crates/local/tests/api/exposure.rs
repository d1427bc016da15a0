//! Beyond loopback, the well-known key is refused before anything listens.

use std::{
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn a_non_loopback_address_with_the_default_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
        .args(["--host", "0.0.0.0", "--port", "0", "--db"])
        .arg(dir.path().join("exposed.db"))
        .env_remove("STOREFIRST_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("storefirst-local runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("it did not refuse: still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("--api-key") && stderr.contains("0.0.0.0"),
        "{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "nothing may listen before the refusal: {stdout}"
    );
    assert!(
        !dir.path().join("exposed.db").exists(),
        "refused before the database is opened"
    );
}
