//! Reading manifests from files and directories.
//!
//! A file is all-or-nothing: it yields every one of its objects, or the
//! located errors of every bad document in it. A directory is walked
//! recursively (hidden entries skipped) for `*.yaml`, `*.yml` and `*.json`,
//! in sorted order, and every bad file is reported.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{DocumentError, ParsedDocument, parse_documents};

/// The objects of one file.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    /// Where they came from (`-` for standard input).
    pub path: PathBuf,
    /// The objects, in file order.
    pub documents: Vec<ParsedDocument>,
}

/// Why a file was rejected.
#[derive(Debug, Clone)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// Located document errors, or one unlocated I/O error.
    pub errors: Vec<DocumentError>,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match (e.line, e.column) {
                (Some(l), Some(c)) => write!(f, "{path}:{l}:{c}: {}", e.message)?,
                (Some(l), None) => write!(f, "{path}:{l}: {}", e.message)?,
                _ => write!(f, "{path}: {}", e.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for FileError {}

/// Everything read from a set of paths.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Files that parsed, in order.
    pub files: Vec<ManifestFile>,
    /// Files that did not.
    pub errors: Vec<FileError>,
}

impl LoadReport {
    /// Number of objects across the good files.
    pub fn object_count(&self) -> usize {
        self.files.iter().map(|f| f.documents.len()).sum()
    }
}

fn io_error(path: &Path, what: impl fmt::Display) -> FileError {
    FileError {
        path: path.to_owned(),
        errors: vec![DocumentError {
            index: 0,
            line: None,
            column: None,
            message: what.to_string(),
        }],
    }
}

/// Parses `text` read from `path`.
pub fn parse_text(path: &Path, text: &str) -> Result<ManifestFile, FileError> {
    match parse_documents(text) {
        Ok(documents) => {
            // An EventHooks that does not compile (bad subject, keyword
            // regex, URL, options) is refused here, at apply, instead of
            // stopping the dispatcher later.
            let errors: Vec<DocumentError> =
                documents
                    .iter()
                    .filter_map(|d| match &d.object {
                        crate::Object::EventHooks(h) => crate::event::hook::Hook::compile(h)
                            .err()
                            .map(|message| DocumentError {
                                index: d.index,
                                line: Some(d.line),
                                column: None,
                                message,
                            }),
                        _ => None,
                    })
                    .collect();
            if !errors.is_empty() {
                return Err(FileError {
                    path: path.to_owned(),
                    errors,
                });
            }
            Ok(ManifestFile {
                path: path.to_owned(),
                documents,
            })
        }
        Err(errors) => Err(FileError {
            path: path.to_owned(),
            errors,
        }),
    }
}

/// Reads and parses one file.
pub fn load_file(path: &Path) -> Result<ManifestFile, FileError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        io_error(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    parse_text(path, &text)
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<FileError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(io_error(dir, format!("cannot list directory: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out, errors);
        } else if is_manifest(&p) {
            out.push(p);
        }
    }
}

/// Loads a file, or every manifest under a directory.
pub fn load_path(path: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files, &mut report.errors);
        for f in files {
            match load_file(&f) {
                Ok(m) => report.files.push(m),
                Err(e) => report.errors.push(e),
            }
        }
    } else if path.exists() {
        match load_file(path) {
            Ok(m) => report.files.push(m),
            Err(e) => report.errors.push(e),
        }
    } else {
        report
            .errors
            .push(io_error(path, "no such file or directory"));
    }
    report
}
