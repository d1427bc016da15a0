//! `cargo xtask build`: the arm64 Lambda zips, reproducible, with their checksums.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::tools;

/// Builds the Lambda functions as arm64 (Graviton) zips with cargo-lambda and zig, with
/// the `lambda` profile (release, optimized for size).
#[derive(Args)]
pub struct Build {}

/// The binaries deployed as Lambda functions, each zipped as `bootstrap`.
const FUNCTIONS: &[&str] = &["stream-processor", "notifier"];
/// The packages of those binaries, built in one cargo-lambda run.
const PACKAGES: &[&str] = &["storefirst-lambda", "storefirst-notifier"];
const TARGET: &str = "aarch64-unknown-linux-gnu";

impl Build {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        build_lambdas(sh)
    }
}

/// Builds every function's `target/lambda/<name>/bootstrap.zip`, prints its path, size
/// and sha256, and writes `target/lambda/SHA256SUMS`; `target/lambda/release/` holds the
/// same zips under their functions' names (`<name>.zip`, one name per release asset) with
/// their own `SHA256SUMS`.
pub fn build_lambdas(sh: &Shell) -> anyhow::Result<()> {
    let tools = tools::CARGO_LAMBDA.ensure(sh)?;
    let rustc = arm64_rustc(sh)?;
    let compiler = rustc
        .as_ref()
        .map_or("the active toolchain".to_owned(), |rustc| {
            rustc.display().to_string()
        });
    crate::step(format!(
        "cargo lambda build --profile lambda --arm64 ({TARGET}, compiled by {compiler})"
    ));
    // The venv's python3 comes first, so cargo-lambda finds zig as `python3 -m ziglang`.
    let path = std::env::join_paths(
        std::iter::once(tools.clone()).chain(std::env::split_paths(&sh.var("PATH")?)),
    )?;
    let _path = sh.push_env("PATH", path);
    let _rustc = rustc.map(|rustc| sh.push_env("RUSTC", rustc));
    // Panic locations name dependency sources under the cargo home; without this the
    // same commit builds a different zip on a machine whose cargo home is elsewhere.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let _remap = sh.push_env(
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    );
    let packages = PACKAGES.iter().flat_map(|package| ["--package", package]);
    // The target check would call `rustup target add`; `arm64_rustc` has done that job.
    cmd!(
        sh,
        "{tools}/cargo-lambda lambda build --profile lambda --arm64 --output-format zip {packages...} --skip-target-check"
    )
    .run()
    .context("cargo lambda build failed: fix the error above and run `cargo xtask build` again")?;
    let out = crate::project_root().join("target/lambda");
    let release = out.join("release");
    sh.create_dir(&release)?;
    let (mut sums, mut release_sums) = (String::new(), String::new());
    for function in FUNCTIONS {
        let zip = out.join(function).join("bootstrap.zip");
        let bytes = repack(&zip)?;
        let sha256: String = Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        crate::step(format!(
            "{}: {} bytes ({:.2} MiB), sha256 {sha256}",
            zip.display(),
            bytes.len(),
            bytes.len() as f64 / (1024.0 * 1024.0)
        ));
        sums.push_str(&format!("{sha256}  {function}/bootstrap.zip\n"));
        release_sums.push_str(&format!("{sha256}  {function}.zip\n"));
        std::fs::write(release.join(format!("{function}.zip")), &bytes)?;
    }
    sh.write_file(release.join("SHA256SUMS"), release_sums)?;
    // `sha256sum -c SHA256SUMS` in target/lambda checks them; the release publishes it.
    let sums_path = out.join("SHA256SUMS");
    sh.write_file(&sums_path, sums)?;
    crate::step(format!("wrote {}", sums_path.display()));
    Ok(())
}

/// Rewrites the zip cargo-lambda wrote with a fixed timestamp and mode on its one entry,
/// so that the same binary always makes the same zip (and the same sha256); returns it.
fn repack(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};

    let read = || -> anyhow::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        let mut archive = zip::ZipArchive::new(file)?;
        let mut bootstrap = archive.by_name("bootstrap")?;
        let mut bytes = Vec::new();
        bootstrap.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let bootstrap =
        read().with_context(|| format!("cargo lambda did not write {}", path.display()))?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    out.start_file("bootstrap", options)?;
    out.write_all(&bootstrap)?;
    let bytes = out.finish()?.into_inner();
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(bytes)
}

/// A rustc that has the aarch64 standard library: the active toolchain's when it has the
/// target (`None`); otherwise Debian's rustc-web with its arm64 standard library, which
/// apt can install where rustup cannot download targets.
fn arm64_rustc(sh: &Shell) -> anyhow::Result<Option<PathBuf>> {
    if has_arm64_std(sh, Path::new("rustc")) {
        return Ok(None);
    }
    let debian = Path::new("/usr/bin/rustc");
    if has_arm64_std(sh, debian) {
        return Ok(Some(debian.to_owned()));
    }
    let root = cmd!(sh, "id -u").quiet().read().is_ok_and(|uid| uid == "0");
    if Path::new("/usr/bin/apt-get").exists() && root {
        crate::step(format!(
            "the active Rust toolchain has no {TARGET} standard library: installing Debian's rustc-web and libstd-rust-web-dev:arm64"
        ));
        cmd!(sh, "dpkg --add-architecture arm64").run()?;
        cmd!(sh, "apt-get update -qq").run()?;
        cmd!(
            sh,
            "apt-get install -y -qq rustc-web libstd-rust-web-dev:arm64"
        )
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
        if has_arm64_std(sh, debian) {
            return Ok(Some(debian.to_owned()));
        }
    }
    bail!(
        "no Rust standard library for {TARGET}: run `rustup target add {TARGET}` \
         (on Debian as root, without rustup's downloads: `dpkg --add-architecture arm64 && apt-get update \
         && apt-get install rustc-web libstd-rust-web-dev:arm64`), then run `cargo xtask build` again"
    )
}

fn has_arm64_std(sh: &Shell, rustc: &Path) -> bool {
    let Ok(libdir) = cmd!(sh, "{rustc} --print target-libdir --target {TARGET}")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        return false;
    };
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("libstd-"))
    })
}
