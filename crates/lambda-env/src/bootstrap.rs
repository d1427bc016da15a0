//! The function's `bootstrap`, taken out of its deployment zip, and how this machine runs
//! it: natively, under qemu-user, or as a native build of the same code.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use crate::qemu::{self, QEMU};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot read the Lambda zip {path}: {reason}; build it with `cargo xtask build`")]
    Zip { path: PathBuf, reason: String },
    #[error(
        "{0} is an arm64 (aarch64) binary and {1}: install the Debian packages \
         qemu-user-static and libc6-arm64-cross (`cargo xtask dev --lambda` does it), or pass \
         --native-bootstrap with a native build of stream-processor"
    )]
    NoQemu(PathBuf, String),
}

/// How the bootstrap is started: the program, its arguments, and a description for the
/// output ("arm64 under qemu" or "native").
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub how: String,
}

impl Bootstrap {
    /// A program run as it is, with no arguments.
    pub fn native(program: &Path, how: impl Into<String>) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
            how: how.into(),
        }
    }

    /// Unzips `bootstrap` from `zip` into `dir` and decides how to run it: directly when it
    /// is built for this machine, under qemu-user when it is arm64 and this machine is not,
    /// or else `native` (a build of the same code for this machine).
    pub fn from_zip(zip: &Path, dir: &Path, native: Option<&Path>) -> Result<Self, BootstrapError> {
        let fail = |reason: String| BootstrapError::Zip {
            path: zip.to_owned(),
            reason,
        };
        let file = std::fs::File::open(zip).map_err(|e| fail(e.to_string()))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
        let mut entry = archive
            .by_name("bootstrap")
            .map_err(|e| fail(format!("no `bootstrap` in it ({e})")))?;
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let path = dir.join("bootstrap");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| fail(e.to_string()))?;
        // Written beside and renamed over: a bootstrap still running from an earlier start
        // (a killed runtime's child) cannot be written to (ETXTBSY), only replaced.
        let written = dir.join("bootstrap.new");
        std::fs::write(&written, &bytes)
            .map_err(|e| fail(format!("{}: {e}", written.display())))?;
        set_executable(&written).map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&written, &path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        if !qemu::is_arm64(&bytes) || cfg!(target_arch = "aarch64") {
            return Ok(Self::native(&path, "the zip's bootstrap, natively"));
        }
        let why_not = match qemu::find() {
            Some(qemu) => match qemu::probe(&qemu, &path) {
                Ok(()) => {
                    return Ok(Self {
                        args: qemu::args(&path),
                        program: qemu,
                        how: format!("the zip's arm64 bootstrap under {QEMU}"),
                    });
                }
                Err(reason) => format!("{QEMU} could not run it: {reason}"),
            },
            None => format!("{QEMU} is not installed"),
        };
        match native {
            Some(native) => Ok(Self::native(
                native,
                format!("the native build {} ({why_not})", native.display()),
            )),
            None => Err(BootstrapError::NoQemu(zip.to_owned(), why_not)),
        }
    }

    /// The binary itself: the program, or under qemu its last argument.
    pub(crate) fn binary(&self) -> PathBuf {
        self.args
            .last()
            .map_or_else(|| self.program.clone(), PathBuf::from)
    }
}

fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}
