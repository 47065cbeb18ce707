//! The interop peers the tests drive: Microsoft's Durable Task SDKs for Python and JavaScript, the Azurite queue
//! emulator and a Chromium browser.
//!
//! Each finder returns the program to run, or `None` after saying on the real standard error (so that the test
//! harness cannot capture it away) `skipped: <test>: <what is missing> (<how to get it>)`. Under the verify script
//! (`DURABLE_REQUIRE_PEERS` set) or CI (`CI` set) a missing peer is a failure instead: a test there can never pass
//! by skipping.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Set by `scripts/test.sh`: a missing peer fails the test that needs it.
pub const REQUIRE_PEERS: &str = "DURABLE_REQUIRE_PEERS";

/// Whether a missing peer is a failure: `DURABLE_REQUIRE_PEERS` or `CI` is set to anything but `0`, `false`,
/// `no` or nothing.
pub fn peers_required() -> bool {
    [REQUIRE_PEERS, "CI"].into_iter().any(flag)
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| {
        !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// The repository's root, where `.venv`, `scripts/` and the crates are.
pub fn workspace_root() -> PathBuf {
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.pop();
    root.pop();
    root
}

/// What was missing, where it was looked for, and how to get it.
struct Missing {
    what: String,
    looked: Vec<String>,
    fix: &'static str,
}

impl Missing {
    fn new(what: impl Into<String>, fix: &'static str) -> Self {
        Missing {
            what: what.into(),
            looked: Vec::new(),
            fix,
        }
    }

    fn looked_at(mut self, place: impl AsRef<Path>) -> Self {
        self.looked.push(place.as_ref().display().to_string());
        self
    }

    fn looked_for(mut self, place: impl Into<String>) -> Self {
        self.looked.push(place.into());
        self
    }
}

/// A found peer, or the verdict on a missing one.
fn guard(found: Result<PathBuf, Missing>) -> Option<PathBuf> {
    let missing = match found {
        Ok(path) => return Some(path),
        Err(missing) => missing,
    };
    let looked = if missing.looked.is_empty() {
        String::new()
    } else {
        format!(" at {}", missing.looked.join(", "))
    };
    let reason = format!("{}{looked} ({})", missing.what, missing.fix);
    if peers_required() {
        panic!("{reason}; {REQUIRE_PEERS} or CI is set, so a missing peer is a failure");
    }
    let thread = std::thread::current();
    let test = match thread.name().filter(|name| *name != "main") {
        Some(name) => Some(name.to_owned()),
        None => crate::harness::current().map(str::to_owned),
    }
    .map(|name| format!("{name}: "))
    .unwrap_or_default();
    // Straight to the file descriptor: the test harness captures `println!` and `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "skipped: {test}{reason}");
    None
}

/// The Python interpreter with Microsoft's `durabletask` SDKs: `$DURABLE_PYTHON`, else `<workspace>/.venv/bin/python`
/// (made by `scripts/setup-python.sh`).
pub fn python() -> Option<PathBuf> {
    guard(find_python())
}

fn find_python() -> Result<PathBuf, Missing> {
    let missing = Missing::new(
        "no Python with the Durable Task SDKs",
        "run scripts/setup-python.sh or set DURABLE_PYTHON",
    );
    if let Some(path) = std::env::var_os("DURABLE_PYTHON").map(PathBuf::from) {
        return if path.exists() {
            Ok(path)
        } else {
            Err(missing.looked_for(format!("$DURABLE_PYTHON={}", path.display())))
        };
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        Ok(venv)
    } else {
        Err(missing.looked_at(venv))
    }
}

/// Like [`python`], for a test that also needs these modules in that interpreter (what `scripts/setup-python.sh`
/// installs besides the SDKs, such as `opentelemetry.sdk`): a Python without one of them is a missing peer too.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    guard(find_python().and_then(|python| {
        let imports = format!("import {}", modules.join(", "));
        let imported = std::process::Command::new(&python)
            .args(["-c", &imports])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if imported {
            Ok(python)
        } else {
            Err(Missing::new(
                format!("no {} in this Python", modules.join(", ")),
                "run scripts/setup-python.sh",
            )
            .looked_at(&python))
        }
    }))
}

/// Node.js (`$DURABLE_NODE`, else `node` on `PATH`), once `package` is installed in `project`'s `node_modules`
/// (as `scripts/setup-node.sh` installs Microsoft's JavaScript SDK for the backend's interop tests).
pub fn node_with_package(project: &Path, package: &str) -> Option<PathBuf> {
    guard(find_node(project, package))
}

fn find_node(project: &Path, package: &str) -> Result<PathBuf, Missing> {
    let node = match std::env::var_os("DURABLE_NODE").map(PathBuf::from) {
        Some(path) if path.is_file() => path,
        Some(path) => {
            return Err(Missing::new(
                "no Node.js",
                "install Node.js 20 or newer, or set DURABLE_NODE",
            )
            .looked_for(format!("$DURABLE_NODE={}", path.display())));
        }
        None => on_path(&["node"]).ok_or_else(|| {
            Missing::new(
                "no Node.js",
                "install Node.js 20 or newer, or set DURABLE_NODE",
            )
            .looked_for("node on PATH")
        })?,
    };
    let manifest = project
        .join("node_modules")
        .join(package)
        .join("package.json");
    if manifest.is_file() {
        Ok(node)
    } else {
        Err(Missing::new(format!("no {package}"), "run scripts/setup-node.sh").looked_at(manifest))
    }
}

/// Azurite's queue service: `$DURABLE_AZURITE`, else `scripts/azurite/node_modules/.bin/azurite-queue` (made by
/// `scripts/setup-azurite.sh`), else `<workspace>/node_modules/.bin/azurite-queue`.
pub fn azurite_queue() -> Option<PathBuf> {
    guard(find_azurite())
}

fn find_azurite() -> Result<PathBuf, Missing> {
    let missing = Missing::new(
        "no azurite-queue",
        "run scripts/setup-azurite.sh or set DURABLE_AZURITE",
    );
    if let Some(path) = std::env::var_os("DURABLE_AZURITE").map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(missing.looked_for(format!("$DURABLE_AZURITE={}", path.display())))
        };
    }
    let root = workspace_root();
    let candidates = [
        root.join("scripts/azurite/node_modules/.bin/azurite-queue"),
        root.join("node_modules/.bin/azurite-queue"),
    ];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(candidates
        .iter()
        .fold(missing, |missing, place| missing.looked_at(place)))
}

/// A Chromium or Chrome browser: `$DURABLE_CHROMIUM`, else Debian's `/usr/bin/chromium` (what
/// `scripts/setup-chromium.sh` installs), else `chromium`, `chromium-browser`, `google-chrome` or
/// `google-chrome-stable` on `PATH`.
pub fn chromium() -> Option<PathBuf> {
    guard(find_chromium())
}

fn find_chromium() -> Result<PathBuf, Missing> {
    let missing = Missing::new(
        "no Chromium",
        "run scripts/setup-chromium.sh as root, or set DURABLE_CHROMIUM",
    );
    if let Some(path) = std::env::var_os("DURABLE_CHROMIUM").map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(missing.looked_for(format!("$DURABLE_CHROMIUM={}", path.display())))
        };
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return Ok(debian);
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    on_path(&names).ok_or_else(|| {
        missing
            .looked_at(debian)
            .looked_for(format!("{} on PATH", names.join(", ")))
    })
}

/// The first of `programs` found in a directory of `PATH`.
fn on_path(programs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    programs.iter().find_map(|program| {
        dirs.iter()
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_that_is_not_installed_is_missing_and_says_where_it_looked() {
        let dir = std::env::temp_dir().join(format!("durable-testkit-{}", std::process::id()));
        let missing = find_node(&dir, "@example/absent").expect_err("nothing is installed there");
        // Either node itself or the package is missing; both name what they looked at.
        assert!(
            missing.what.contains("@example/absent") || missing.what.contains("Node.js"),
            "{}",
            missing.what
        );
        assert!(!missing.looked.is_empty());
    }

    #[test]
    fn the_workspace_root_holds_the_verify_script() {
        assert!(workspace_root().join("scripts/test.sh").is_file());
    }
}
