//! `package`: the app as the zip that `az functionapp deployment source config-zip` deploys.
//!
//! The zip holds, at its root, `host.json`, one `<Function>/function.json` folder per function (written from the
//! registrations, so they match the code), the app's Linux x64 executable under the name `host.json` gives it (Unix
//! mode 0755), and any files asked for with [`PackageOptions::with_includes`]. Before anything is built,
//! `host.json` is checked for what Azure needs ([`check_host_json`]) and every file to ship is checked for secrets
//! ([`find_secret`]); `local.settings.json` and `.env` files are never shipped.
//!
//! The executable is built with cargo for `x86_64-unknown-linux-musl` (a static binary) when the toolchain has that
//! target, else for `x86_64-unknown-linux-gnu`; building from another OS or architecture is not supported (build
//! the executable there with a cross toolchain and pass it with [`PackageOptions::with_executable`]).

mod archive;
mod build;
mod host_json;
mod next_steps;
mod secrets;

use std::path::{Path, PathBuf};

use durable_handler::Handler;

pub use build::TargetChoice;
pub use host_json::{HostJsonFacts, TaskHub, check_host_json};
pub use secrets::{SecretFinding, find_secret, refused_file_name};

/// The oldest extension bundle with the Durable Task Scheduler storage provider (`azureManaged`).
pub const MIN_BUNDLE_WITH_SCHEDULER: &str = "4.30.0";

/// Why [`package`] refused or failed. Every refusal names the file and the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// `host.json` is missing, unreadable or not a JSON object.
    #[error("{}: {reason}", path.display())]
    HostJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A rule `host.json` must follow for Azure.
    #[error("host.json: {0}")]
    HostJsonRule(String),
    /// A file that must never be deployed.
    #[error("refusing to package {}: {reason}", path.display())]
    ForbiddenFile {
        /// The file, relative to the app folder.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A file contains what looks like a secret.
    #[error(
        "refusing to package {}: it contains what looks like {what} (at byte {offset}); keep secrets in app \
         settings or Key Vault references, never in the package",
        path.display()
    )]
    Secret {
        /// The file, relative to the app folder (or the executable's name).
        path: PathBuf,
        /// What kind of secret.
        what: &'static str,
        /// Where in the file.
        offset: usize,
    },
    /// An `--include` path is not inside the app folder, or collides with a generated file.
    #[error("cannot include {}: {reason}", path.display())]
    Include {
        /// The path as given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The machine cannot build a Linux x64 executable.
    #[error("{0}")]
    UnsupportedHost(String),
    /// cargo failed or did not produce the executable.
    #[error("building the executable failed: {0}")]
    Build(String),
    /// The function folders could not be generated.
    #[error("function.json generation: {0}")]
    Functions(#[from] durable_handler::BuildError),
    /// The zip could not be written.
    #[error("writing {}: {reason}", path.display())]
    Zip {
        /// The zip.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// What and how to package. Build with [`PackageOptions::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackageOptions {
    app_dir: PathBuf,
    bin: String,
    out_dir: Option<PathBuf>,
    profile: String,
    target: Option<String>,
    executable: Option<PathBuf>,
    includes: Vec<PathBuf>,
}

impl PackageOptions {
    /// Packages the app whose `Cargo.toml` and `host.json` are in `app_dir`, with its executable `bin` built in
    /// the `release` profile.
    pub fn new(app_dir: impl Into<PathBuf>, bin: impl Into<String>) -> Self {
        PackageOptions {
            app_dir: app_dir.into(),
            bin: bin.into(),
            out_dir: None,
            profile: "release".to_owned(),
            target: None,
            executable: None,
            includes: Vec::new(),
        }
    }

    /// Where the zip goes (default: `<cargo target dir>/azure-functions`).
    pub fn with_out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The cargo profile (default `release`; `dev` packages the debug build, quicker to make).
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = profile.into();
        self
    }

    /// Builds for this target triple instead of choosing musl or glibc.
    pub fn with_target(mut self, triple: impl Into<String>) -> Self {
        self.target = Some(triple.into());
        self
    }

    /// Ships this executable, built elsewhere, instead of building one.
    pub fn with_executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.executable = Some(path.into());
        self
    }

    /// Further files or folders to ship, relative to the app folder; each keeps its relative path in the zip.
    pub fn with_includes<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.includes.extend(paths.into_iter().map(Into::into));
        self
    }

    /// The app folder.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// The executable's name in the package.
    pub fn bin(&self) -> &str {
        &self.bin
    }
}

/// One file in the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackagedFile {
    /// Its path in the zip (`/`-separated, relative to the root).
    pub path: String,
    /// Its Unix mode.
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
}

/// What [`package`] made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackageReport {
    /// The zip.
    pub zip: PathBuf,
    /// Its files, in zip order.
    pub files: Vec<PackagedFile>,
    /// How the executable was built; `None` when it was given.
    pub target: Option<TargetChoice>,
    /// What `host.json` says about the deployment.
    pub host: HostJsonFacts,
    /// The executable's name.
    pub bin: String,
}

impl PackageReport {
    /// The report for a person: what is in the zip, how it was built, and the Azure CLI commands that deploy it.
    pub fn next_steps(&self) -> String {
        next_steps::render(self)
    }
}

/// A file on its way into the zip.
struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
}

/// Checks, builds and zips the app. See the [module documentation](self).
pub fn package(handler: &Handler, options: &PackageOptions) -> Result<PackageReport, PackageError> {
    let app_dir = options.app_dir.as_path();
    let host_path = app_dir.join("host.json");
    let host_text = std::fs::read(&host_path).map_err(|e| PackageError::HostJson {
        path: host_path.clone(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "not found: the app folder needs a host.json (`new` writes one)".to_owned()
        } else {
            e.to_string()
        },
    })?;
    let host = check_host_json(&host_text, &options.bin).map_err(|e| match e {
        PackageError::HostJson { reason, .. } => PackageError::HostJson {
            path: host_path.clone(),
            reason,
        },
        other => other,
    })?;
    scan(Path::new("host.json"), &host_text)?;

    let mut entries = vec![Entry {
        path: "host.json".to_owned(),
        mode: 0o644,
        data: host_text,
    }];
    for (name, json) in handler.function_json()? {
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
        text.push('\n');
        entries.push(Entry {
            path: format!("{name}/function.json"),
            mode: 0o644,
            data: text.into_bytes(),
        });
    }
    for include in &options.includes {
        for entry in included(app_dir, include)? {
            let clash = entries
                .iter()
                .any(|e| e.path.eq_ignore_ascii_case(&entry.path))
                || entry.path.eq_ignore_ascii_case(&options.bin);
            if clash {
                return Err(PackageError::Include {
                    path: include.clone(),
                    reason: format!("{} is already in the package", entry.path),
                });
            }
            entries.push(entry);
        }
    }

    let (executable, target) = match &options.executable {
        Some(path) => (path.clone(), None),
        None => {
            let built = build::build(
                app_dir,
                &options.bin,
                &options.profile,
                options.target.as_deref(),
            )?;
            (built.executable, Some(built.target))
        }
    };
    let data = std::fs::read(&executable).map_err(|source| PackageError::Io {
        path: executable.clone(),
        source,
    })?;
    if data.get(..4) != Some(b"\x7fELF") {
        return Err(PackageError::Build(format!(
            "{} is not a Linux executable (no ELF header)",
            executable.display()
        )));
    }
    scan(Path::new(&options.bin), &data)?;
    entries.insert(
        1,
        Entry {
            path: options.bin.clone(),
            mode: 0o755,
            data,
        },
    );

    let out_dir = match &options.out_dir {
        Some(dir) => dir.clone(),
        None => build::target_dir(app_dir).join("azure-functions"),
    };
    let zip = out_dir.join(format!("{}.zip", options.bin));
    archive::write(&zip, &entries)?;
    Ok(PackageReport {
        files: entries
            .iter()
            .map(|e| PackagedFile {
                path: e.path.clone(),
                mode: e.mode,
                size: e.data.len() as u64,
            })
            .collect(),
        zip,
        target,
        host,
        bin: options.bin.clone(),
    })
}

fn scan(path: &Path, data: &[u8]) -> Result<(), PackageError> {
    match find_secret(data) {
        Some(found) => Err(PackageError::Secret {
            path: path.to_path_buf(),
            what: found.what,
            offset: found.offset,
        }),
        None => Ok(()),
    }
}

/// The files of one `--include`, each checked for its name and its content.
fn included(app_dir: &Path, include: &Path) -> Result<Vec<Entry>, PackageError> {
    let refuse = |reason: &str| PackageError::Include {
        path: include.to_path_buf(),
        reason: reason.to_owned(),
    };
    let inside = include.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if include.is_absolute() || !inside {
        return Err(refuse("give a path inside the app folder, relative to it"));
    }
    let mut files = Vec::new();
    collect(app_dir, include, &mut files)?;
    if files.is_empty() {
        return Err(refuse("no files there"));
    }
    let mut entries = Vec::new();
    for relative in files {
        if let Some(reason) = refused_file_name(&relative) {
            return Err(PackageError::ForbiddenFile {
                path: relative,
                reason,
            });
        }
        let full = app_dir.join(&relative);
        let data = std::fs::read(&full).map_err(|source| PackageError::Io {
            path: full.clone(),
            source,
        })?;
        scan(&relative, &data)?;
        let mode = executable_mode(&full);
        let path = relative
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/");
        entries.push(Entry { path, mode, data });
    }
    Ok(entries)
}

/// Every file under `relative` (a file, or a folder walked in name order), as paths relative to `app_dir`.
fn collect(app_dir: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<(), PackageError> {
    let full = app_dir.join(relative);
    let meta = std::fs::symlink_metadata(&full).map_err(|source| PackageError::Io {
        path: full.clone(),
        source,
    })?;
    if meta.is_file() {
        out.push(relative.to_path_buf());
    } else if meta.is_dir() {
        let mut names = std::fs::read_dir(&full)
            .map_err(|source| PackageError::Io {
                path: full.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect::<Vec<_>>();
        names.sort();
        for name in names {
            collect(app_dir, &relative.join(name), out)?;
        }
    }
    // Symbolic links and other special files are left out: a zip deployment could not reproduce them.
    Ok(())
}

#[cfg(unix)]
fn executable_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o111 != 0 => 0o755,
        _ => 0o644,
    }
}

#[cfg(not(unix))]
fn executable_mode(_path: &Path) -> u32 {
    0o644
}
