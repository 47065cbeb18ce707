//! The zip: files at the root, Unix modes recorded, the same bytes for the same input.

use std::io::Write as _;
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{Entry, PackageError};

/// Writes `entries` to `path` through a temporary file beside it, so a failure leaves no half-written zip.
pub(super) fn write(path: &Path, entries: &[Entry]) -> Result<(), PackageError> {
    let fail = |reason: String| PackageError::Zip {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| PackageError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let partial = path.with_extension("zip.partial");
    let file = std::fs::File::create(&partial).map_err(|source| PackageError::Io {
        path: partial.clone(),
        source,
    })?;
    let result = (|| -> Result<(), zip::result::ZipError> {
        let mut zip = ZipWriter::new(file);
        let mut folders: Vec<&str> = Vec::new();
        for entry in entries {
            // Folder entries first, as unzip tools create them, with their own modes.
            for (at, _) in entry.path.match_indices('/') {
                let folder = &entry.path[..at];
                if !folders.contains(&folder) {
                    folders.push(folder);
                    zip.add_directory(format!("{folder}/"), options(0o755))?;
                }
            }
            // Executables are stored: compressing one costs more time than the upload it saves, above all
            // when `package` itself is a debug build.
            let method = if entry.mode & 0o111 != 0 {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            };
            zip.start_file(
                entry.path.as_str(),
                options(entry.mode).compression_method(method),
            )?;
            zip.write_all(&entry.data)?;
        }
        zip.finish()?.sync_all()?;
        Ok(())
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(fail(error.to_string()));
    }
    std::fs::rename(&partial, path).map_err(|e| fail(e.to_string()))
}

fn options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        // A fixed time keeps the zip the same for the same files.
        .last_modified_time(DateTime::default())
        .unix_permissions(mode)
        .large_file(false)
}
