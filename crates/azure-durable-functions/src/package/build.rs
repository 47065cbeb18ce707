//! Building the Linux x64 executable with cargo.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::PackageError;

const MUSL: &str = "x86_64-unknown-linux-musl";
const GNU: &str = "x86_64-unknown-linux-gnu";

/// The target the executable was built for, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetChoice {
    /// The target triple.
    pub triple: String,
    /// The cargo profile.
    pub profile: String,
    /// Why this target, for a person.
    pub reason: String,
}

pub(super) struct Built {
    pub(super) executable: PathBuf,
    pub(super) target: TargetChoice,
}

/// `cargo build --profile <profile> --bin <bin>` in `app_dir`, for the chosen target; returns the executable.
pub(super) fn build(
    app_dir: &Path,
    bin: &str,
    profile: &str,
    explicit: Option<&str>,
) -> Result<Built, PackageError> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        return Err(PackageError::UnsupportedHost(format!(
            "package builds on Linux x64 only, and this is {}/{}: build the executable for \
             x86_64-unknown-linux-musl with a cross toolchain and pass it with --executable",
            std::env::consts::OS,
            std::env::consts::ARCH
        )));
    }
    let host = rustc_host()?;
    let (triple, reason) = match explicit {
        Some(triple) => (triple.to_owned(), "asked for with --target".to_owned()),
        None if target_installed(MUSL) => (
            MUSL.to_owned(),
            "a static executable: it runs on every Linux x64 image".to_owned(),
        ),
        None => (GNU.to_owned(), gnu_reason()),
    };
    let mut command = cargo_command();
    command
        .current_dir(app_dir)
        .args(["build", "--profile", profile, "--bin", bin])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Without --target, a build for the host reuses the artifacts of `cargo build` and `cargo run`.
    if triple != host {
        command.args(["--target", &triple]);
    }
    eprintln!("building {bin} for {triple} ({profile} profile): {reason}");
    let output = command
        .output()
        .map_err(|e| PackageError::Build(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        let hint = if triple == MUSL {
            " (the musl target also needs a C compiler for musl, e.g. Debian's musl-tools, for dependencies with C \
             code; --target x86_64-unknown-linux-gnu builds against glibc instead)"
        } else {
            ""
        };
        return Err(PackageError::Build(format!(
            "cargo build {} for {triple}{hint}",
            output.status
        )));
    }
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["name"] == bin
                && message["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| {
            PackageError::Build(format!(
                "cargo built no executable named {bin} (is it the [[bin]] of the package in {}?)",
                app_dir.display()
            ))
        })?;
    Ok(Built {
        executable,
        target: TargetChoice {
            triple,
            profile: profile.to_owned(),
            reason,
        },
    })
}

/// The cargo that runs us (`cargo run` says which in `CARGO`), else the one on the PATH, without the variables
/// cargo sets for the programs it runs: build scripts that watch one of them (ring watches `CARGO_MANIFEST_DIR`)
/// would otherwise run again, and everything above them be rebuilt, each time `package` runs under `cargo run`.
fn cargo_command() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else {
            continue;
        };
        let set_by_cargo = matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        ) || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_");
        if set_by_cargo {
            command.env_remove(key);
        }
    }
    command
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned())
}

fn rustc_host() -> Result<String, PackageError> {
    let output = Command::new(rustc())
        .arg("-vV")
        .output()
        .map_err(|e| PackageError::Build(format!("cannot run rustc: {e}")))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| PackageError::Build("rustc -vV names no host target".to_owned()))
}

/// Whether the toolchain has the standard library for `triple` (what `rustup target add` installs).
fn target_installed(triple: &str) -> bool {
    Command::new(rustc())
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .is_some_and(|sysroot| {
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(triple)
                .join("lib")
                .is_dir()
        })
}

fn gnu_reason() -> String {
    let glibc = Command::new("ldd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|line| line.split_whitespace().last().map(str::to_owned))
        });
    format!(
        "the toolchain has no {MUSL} target (`rustup target add {MUSL}` gives a static executable); a glibc \
         executable runs where the image's glibc is at least this machine's{}",
        glibc.map(|v| format!(" ({v})")).unwrap_or_default()
    )
}

/// Cargo's target directory for the app (`cargo metadata`), else `<app dir>/target`.
pub(super) fn target_dir(app_dir: &Path) -> PathBuf {
    cargo_command()
        .current_dir(app_dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| app_dir.join("target"))
}
