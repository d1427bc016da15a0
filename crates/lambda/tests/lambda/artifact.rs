//! The deployable artifacts: `cargo xtask build` zips an arm64 Linux `bootstrap` per function.

use std::{fs::File, io::Read, path::Path};

/// Lambda takes 50 MB zipped; a small zip uploads and cold-starts fast. 4 MB, decimal.
const MAX_ZIP_BYTES: u64 = 4_000_000;
const EM_AARCH64: u16 = 183;

/// Every function `cargo xtask build` zips.
const FUNCTIONS: [&str; 2] = ["stream-processor", "notifier"];

#[test]
fn each_zip_holds_an_arm64_bootstrap() {
    for function in FUNCTIONS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../target/lambda/{function}/bootstrap.zip"));
        let file = File::open(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: build it with `cargo xtask build` (`cargo xtask test` does before the tests)",
                path.display()
            )
        });
        let size = file.metadata().unwrap().len();
        assert!(
            size < MAX_ZIP_BYTES,
            "{function}: the zip is {size} bytes, over {MAX_ZIP_BYTES}"
        );
        let mut archive = zip::ZipArchive::new(file).expect("a zip archive");
        let names: Vec<String> = (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
            .collect();
        assert_eq!(names, ["bootstrap"], "Lambda runs the file named bootstrap");
        let mut bootstrap = archive.by_name("bootstrap").unwrap();
        let mode = bootstrap
            .unix_mode()
            .expect("the zip records unix permissions");
        assert_ne!(
            mode & 0o111,
            0,
            "{function}: bootstrap must be executable, mode {mode:o}"
        );
        // Fixed, so that one commit makes one zip (and one sha256) wherever it is built.
        assert_eq!(
            bootstrap.last_modified(),
            Some(zip::DateTime::default()),
            "the entry's timestamp is the fixed one `cargo xtask build` sets"
        );
        let mut header = [0; 20];
        bootstrap.read_exact(&mut header).unwrap();
        assert_eq!(&header[..4], b"\x7fELF", "bootstrap is an ELF executable");
        assert_eq!((header[4], header[5]), (2, 1), "64-bit little-endian");
        let machine = u16::from_le_bytes([header[18], header[19]]);
        assert_eq!(
            machine, EM_AARCH64,
            "{function}: built for arm64 (Graviton), not {machine}"
        );
    }
}

#[test]
fn the_release_holds_each_zip_by_its_functions_name_with_its_checksum() {
    let lambda = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/lambda");
    let sums = std::fs::read_to_string(lambda.join("release/SHA256SUMS"))
        .expect("target/lambda/release/SHA256SUMS: build it with `cargo xtask build`");
    let names: Vec<&str> = sums
        .lines()
        .filter_map(|line| line.split_once("  ").map(|(_, name)| name))
        .collect();
    let expected: Vec<String> = FUNCTIONS.iter().map(|f| format!("{f}.zip")).collect();
    assert_eq!(names, expected, "one asset name per function");
    for function in FUNCTIONS {
        let built = std::fs::read(lambda.join(format!("{function}/bootstrap.zip"))).unwrap();
        let released = std::fs::read(lambda.join(format!("release/{function}.zip"))).unwrap();
        assert!(built == released, "{function}.zip is the zip that deploys");
    }
}
