//! Running an arm64 `bootstrap` on another machine: qemu-user with the arm64 C library of
//! `libc6-arm64-cross`, found, configured and probed once at start.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Where the arm64 C library of `libc6-arm64-cross` lives, for qemu's `-L`.
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
pub const QEMU: &str = "qemu-aarch64-static";

const ELF_AARCH64: u16 = 0xB7;
/// How long the bootstrap may take under qemu to reach its configuration check.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `bytes` are an arm64 ELF executable.
pub fn is_arm64(bytes: &[u8]) -> bool {
    elf_machine(bytes) == Some(ELF_AARCH64)
}

/// The `e_machine` of a little-endian ELF file.
fn elf_machine(bytes: &[u8]) -> Option<u16> {
    (bytes.get(..20)?.starts_with(b"\x7fELF")).then(|| u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// qemu-user for arm64 with the arm64 C library beside it, if both are installed.
pub fn find() -> Option<PathBuf> {
    if !Path::new(ARM64_SYSROOT).is_dir() {
        return None;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(QEMU))
        .find(|path| path.is_file())
}

/// qemu's arguments to run `bootstrap`. The loader comes from the sysroot, and so must the
/// C library: left to the host's `/etc/ld.so.cache`, a machine with Debian's multiarch
/// `libc6:arm64` hands the loader that package's libc.so.6, a different build of glibc
/// whose private layout differs, and `pthread_create` then loops forever.
pub fn args(bootstrap: &Path) -> Vec<OsString> {
    vec![
        "-L".into(),
        ARM64_SYSROOT.into(),
        "-E".into(),
        format!("LD_LIBRARY_PATH={ARM64_SYSROOT}/lib").into(),
        bootstrap.into(),
    ]
}

/// Runs the bootstrap under qemu without configuration: a working one soon exits saying
/// what it misses. Some qemu builds hang on some binaries; better to know at start.
pub fn probe(qemu: &Path, bootstrap: &Path) -> Result<(), String> {
    let mut child = Command::new(qemu)
        .args(args(bootstrap))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    while started.elapsed() < PROBE_TIMEOUT {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "without configuration it did not exit within {PROBE_TIMEOUT:?} (it should stop at once, saying TABLE_NAME is not set)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_is_told_by_the_elf_header() {
        let mut header = [0u8; 20];
        header[..4].copy_from_slice(b"\x7fELF");
        header[18] = 0xB7;
        assert!(is_arm64(&header));
        header[18] = 0x3E; // x86-64
        assert!(!is_arm64(&header));
        assert!(!is_arm64(b"#!/bin/sh\n"));
        assert!(!is_arm64(b"\x7fELF"), "a truncated header");
    }
}
