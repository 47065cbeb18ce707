//! A new app from the template: what `azure-durable-functions new <dir>` and an app's `new` command write.
//!
//! The template's files live in the crate's `template/` folder and are built into the library, so creating an
//! app needs no network and no copy of this repository.
//!
//! ```no_run
//! use azure_durable_functions::new_app::{NewAppOptions, create};
//!
//! let created = create(&NewAppOptions::new("my-app"))?;
//! print!("{}", created.next_steps());
//! # Ok::<(), azure_durable_functions::new_app::NewAppError>(())
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The template: (path in the new app, text). `{{name}}` and `{{facade_dependency}}` are filled in.
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../template/Cargo.toml.in")),
    ("src/main.rs", include_str!("../template/src/main.rs")),
    ("host.json", include_str!("../template/host.json")),
    (
        "local.settings.sample.json",
        include_str!("../template/local.settings.sample.json"),
    ),
    // Kept under another name in the crate so that git does not apply it to the template itself.
    (".gitignore", include_str!("../template/gitignore")),
    ("README.md", include_str!("../template/README.md")),
];

/// Names cargo refuses for a package, or that would shadow a crate every program uses.
const RESERVED_NAMES: &[&str] = &[
    "alloc",
    "core",
    "crate",
    "proc_macro",
    "proc-macro",
    "self",
    "std",
    "super",
    "test",
];

/// Why [`create`] refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewAppError {
    /// The folder exists and has something in it: nothing is overwritten.
    #[error("{} already exists and is not empty: choose a new folder", .0.display())]
    NotEmpty(PathBuf),
    /// The name cannot be a cargo package (and executable) name.
    #[error(
        "'{name}' cannot name the app: {reason} (use --name, or a folder name made of letters, digits, '-' and '_', \
         starting with a letter)"
    )]
    BadName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--facade-path` does not point at this crate.
    #[error("{} is not the azure-durable-functions crate: {reason}", path.display())]
    NotTheFacade {
        /// The folder given.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A file or folder could not be written; the new folder is removed again.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// What to create. Build with [`NewAppOptions::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewAppOptions {
    dir: PathBuf,
    name: Option<String>,
    facade_path: Option<PathBuf>,
}

impl NewAppOptions {
    /// A new app in `dir` (created; it may exist if empty), named after the folder.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        NewAppOptions {
            dir: dir.into(),
            name: None,
            facade_path: None,
        }
    }

    /// The package and executable name, instead of the folder's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Depend on azure-durable-functions in this folder (`{ path = "..." }`) instead of its crates.io release:
    /// for a checkout of this repository, and for tests.
    pub fn with_facade_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.facade_path = Some(dir.into());
        self
    }

    /// The folder the app goes in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// An app [`create`] wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedApp {
    /// Its folder.
    pub dir: PathBuf,
    /// Its package and executable name.
    pub name: String,
    /// The files written, relative to the folder.
    pub files: Vec<PathBuf>,
}

impl CreatedApp {
    /// What to type next, for a person.
    pub fn next_steps(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "created {} in {}", self.name, self.dir.display());
        for file in &self.files {
            let _ = writeln!(out, "  {}", file.display());
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "next:");
        let _ = writeln!(out, "  cd {}", self.dir.display());
        let _ = writeln!(
            out,
            "  cargo run          # the app on http://localhost:7071, with the embedded backend"
        );
        let _ = writeln!(
            out,
            "  curl -i -X POST http://localhost:7071/api/orchestrators/Greetings -H 'Content-Type: application/json' \
             -d '[\"Tokyo\",\"Lisbon\"]'"
        );
        let _ = writeln!(
            out,
            "  cargo run -- package   # the zip for Azure Functions, and the commands that deploy it"
        );
        out
    }
}

/// Writes a new app from the template. Refuses a folder that has anything in it; on a failure half-way, removes
/// what it wrote.
pub fn create(options: &NewAppOptions) -> Result<CreatedApp, NewAppError> {
    let dir = options.dir.clone();
    let name = match &options.name {
        Some(name) => name.clone(),
        None => std::path::absolute(&dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    };
    check_name(&name)?;
    let dependency = match &options.facade_path {
        Some(path) => path_dependency(path)?,
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let existed = dir.exists();
    if existed && !is_empty_dir(&dir)? {
        return Err(NewAppError::NotEmpty(dir));
    }
    let written = write_files(&dir, &name, &dependency);
    if written.is_err() {
        if existed {
            for (path, _) in TEMPLATE {
                let _ = std::fs::remove_file(dir.join(path));
            }
            let _ = std::fs::remove_dir(dir.join("src"));
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(CreatedApp {
        dir,
        name,
        files: written?,
    })
}

fn write_files(dir: &Path, name: &str, dependency: &str) -> Result<Vec<PathBuf>, NewAppError> {
    let mut files = Vec::new();
    for (path, text) in TEMPLATE {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| NewAppError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let text = text
            .replace("{{name}}", name)
            .replace("{{facade_dependency}}", dependency);
        std::fs::write(&target, text).map_err(|source| NewAppError::Io {
            path: target.clone(),
            source,
        })?;
        files.push(PathBuf::from(path));
    }
    Ok(files)
}

fn is_empty_dir(dir: &Path) -> Result<bool, NewAppError> {
    let io = |source| NewAppError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.is_dir() {
        return Ok(false);
    }
    Ok(std::fs::read_dir(dir).map_err(io)?.next().is_none())
}

/// Cargo's rules for a package name, kept to what is also a good executable and Functions file name.
fn check_name(name: &str) -> Result<(), NewAppError> {
    let bad = |reason| {
        Err(NewAppError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return bad("it is empty");
    };
    if !first.is_ascii_alphabetic() {
        return bad("it must start with an ASCII letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad("only ASCII letters, digits, '-' and '_' are allowed");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return bad("cargo reserves it");
    }
    Ok(())
}

/// `{ path = "<absolute dir>" }`, after checking that the folder holds this crate.
fn path_dependency(path: &Path) -> Result<String, NewAppError> {
    let not_it = |reason: String| NewAppError::NotTheFacade {
        path: path.to_path_buf(),
        reason,
    };
    let dir = std::fs::canonicalize(path).map_err(|e| not_it(e.to_string()))?;
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .map_err(|e| not_it(format!("no readable Cargo.toml ({e})")))?;
    if !manifest.contains("name = \"azure-durable-functions\"") {
        return Err(not_it("its Cargo.toml is another package's".to_owned()));
    }
    // A JSON string is a valid TOML basic string: the same escapes, and none that TOML lacks.
    let quoted =
        serde_json::to_string(&dir.to_string_lossy()).map_err(|e| not_it(e.to_string()))?;
    Ok(format!("{{ path = {quoted} }}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cargo() {
        for good in ["my-app", "orders_2", "A"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1app", "my app", "app.exe", "-x", "test", "std", "ünï"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_template_is_complete() {
        let paths: Vec<_> = TEMPLATE.iter().map(|(p, _)| *p).collect();
        for needed in [
            "Cargo.toml",
            "src/main.rs",
            "host.json",
            ".gitignore",
            "README.md",
        ] {
            assert!(paths.contains(&needed), "{needed}");
        }
        let host: serde_json::Value =
            serde_json::from_str(TEMPLATE[2].1).expect("host.json is JSON");
        assert_eq!(
            host["customHandler"]["description"]["defaultExecutablePath"],
            "{{name}}"
        );
    }
}
