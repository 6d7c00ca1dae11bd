//! Parsing YAML text (one or many `---`-separated documents) into objects,
//! with errors that say where (document, line, column) and what was
//! expected.
//!
//! Documents are split on `---` lines first so that each one is parsed on
//! its own: a bad document never hides the errors of the others, and line
//! numbers are always relative to the whole file.

use super::meta::SUPPORTED_API_VERSIONS;
use super::{Kind, Object};

/// One object read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// The object.
    pub object: Object,
    /// 1-based index of the document in the file.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// 1-based index of the document in the file.
    pub index: usize,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{l}:{c}: {}", self.message),
            (Some(l), None) => write!(f, "{l}: {}", self.message),
            _ => write!(f, "document {}: {}", self.index, self.message),
        }
    }
}

struct RawDocument {
    index: usize,
    /// 0-based line where the text starts.
    first_line: usize,
    text: String,
}

/// Splits on lines that are exactly `---` (optionally followed by a
/// comment) or start with `--- `; `...` ends a document.
fn split_documents(text: &str) -> Vec<RawDocument> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 0usize;
    let mut index = 1usize;
    let mut flush = |current: &mut String, first_line: usize, index: &mut usize| {
        let meaningful = current
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if meaningful {
            docs.push(RawDocument {
                index: *index,
                first_line,
                text: std::mem::take(current),
            });
            *index += 1;
        } else {
            current.clear();
        }
    };
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        // `raw` keeps its line ending, so block scalars keep (or lack) their
        // final newline exactly as in the file.
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_end();
        let is_start =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        let is_end = trimmed == "...";
        if is_start || is_end {
            flush(&mut current, first_line, &mut index);
            first_line = n + 1;
            if is_start && trimmed.len() > 3 {
                // `--- key: value`: keep the content, columns unchanged.
                first_line = n;
                current.push_str("   ");
                current.push_str(&raw[3..]);
            }
            continue;
        }
        if current.is_empty() {
            first_line = n;
        }
        current.push_str(raw);
    }
    flush(&mut current, first_line, &mut index);
    docs
}

/// Turns a serde_yaml error into a located message; `line_offset` is the
/// 0-based line where the document starts in the file.
fn located(index: usize, line_offset: usize, err: &serde_yaml::Error) -> DocumentError {
    let full = err.to_string();
    // serde_yaml writes "at line N column M" (relative to the document)
    // into its message, sometimes mid-sentence; the file-relative location
    // is reported separately.
    let message = match err.location() {
        Some(_) => strip_location(&full),
        None => full,
    };
    let (line, column) = match err.location() {
        Some(loc) => (Some(loc.line() + line_offset), Some(loc.column())),
        None => (Some(line_offset + 1), None),
    };
    DocumentError {
        index,
        line,
        column,
        message,
    }
}

/// Removes every " at line N column M" from a message.
fn strip_location(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(at) = rest.find(" at line ") {
        let tail = &rest[at + " at line ".len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        let after_line = &tail[digits..];
        match after_line.strip_prefix(" column ") {
            Some(col) if digits > 0 => {
                let col_digits = col.chars().take_while(char::is_ascii_digit).count();
                if col_digits == 0 {
                    out.push_str(&rest[..at + 1]);
                    rest = &rest[at + 1..];
                    continue;
                }
                out.push_str(&rest[..at]);
                rest = &col[col_digits..];
            }
            _ => {
                out.push_str(&rest[..at + 1]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The 1-based line of the first top-level `key:` in a document.
fn key_line(doc: &RawDocument, key: &str) -> usize {
    doc.text
        .lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map_or(doc.first_line + 1, |p| doc.first_line + p + 1)
}

/// Checks an object name: lower-case letters, digits, `-`, `.`, `_`;
/// starting and ending with a letter or digit; at most 253 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("metadata.name is missing or empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "metadata.name `{name}` is longer than 253 characters"
        ));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c);
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let first = name.chars().next().is_some_and(alnum);
    let last = name.chars().last().is_some_and(alnum);
    if !name.chars().all(ok_char) || !first || !last {
        return Err(format!(
            "metadata.name `{name}` is not valid: use lower-case letters, digits, `-`, `.` or `_`, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// The largest manifest text read at once.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;
/// The deepest nesting of flow collections (`[`, `{`) or indentation
/// levels a document may have: the YAML parser's time grows with the
/// square of it.
pub const MAX_NESTING: usize = 64;

/// Where a document nests deeper than [`MAX_NESTING`]: its 0-based line
/// within the text. Flow brackets outside quotes and comments count, and
/// so do block levels (distinct indentations open at once).
fn too_deep(text: &str) -> Option<usize> {
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if flow == 0 && !body.is_empty() && !body.starts_with('#') {
            let indent = line.len() - body.len();
            while indents.last().is_some_and(|i| *i > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            // `- - - x` nests one level per dash.
            let dashes = body.split(' ').take_while(|w| *w == "-").count();
            if indents.len() + dashes > MAX_NESTING {
                return Some(n);
            }
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') if prev == ' ' || prev == '\t' => break,
                (None, '\'' | '"') if matches!(prev, ' ' | '[' | '{' | ',' | ':') => {
                    quote = Some(c)
                }
                (None, '[' | '{') => {
                    flow += 1;
                    if flow > MAX_NESTING {
                        return Some(n);
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    None
}

fn parse_one(doc: &RawDocument) -> Result<ParsedDocument, DocumentError> {
    let err_at = |line: usize, message: String| DocumentError {
        index: doc.index,
        line: Some(line),
        column: None,
        message,
    };
    if let Some(n) = too_deep(&doc.text) {
        return Err(err_at(
            doc.first_line + n + 1,
            format!("nested deeper than {MAX_NESTING} levels"),
        ));
    }
    let value: serde_yaml::Value =
        serde_yaml::from_str(&doc.text).map_err(|e| located(doc.index, doc.first_line, &e))?;
    let map = value.as_mapping().ok_or_else(|| {
        err_at(
            doc.first_line + 1,
            "expected an object (a map with apiVersion, kind, metadata, spec)".into(),
        )
    })?;
    let kind_text = match map.get("kind") {
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(err_at(
                key_line(doc, "kind"),
                "`kind` must be a string".into(),
            ));
        }
        None => return Err(err_at(doc.first_line + 1, "missing `kind`".into())),
    };
    let kind = Kind::from_yaml_kind(&kind_text).ok_or_else(|| {
        err_at(
            key_line(doc, "kind"),
            format!(
                "unknown kind `{kind_text}`; expected one of {}",
                Kind::ALL.map(Kind::as_str).join(", ")
            ),
        )
    })?;
    match map.get("apiVersion") {
        Some(serde_yaml::Value::String(v)) if SUPPORTED_API_VERSIONS.contains(&v.as_str()) => {}
        Some(other) => {
            let shown = match other {
                serde_yaml::Value::String(s) => s.clone(),
                _ => "a non-string value".into(),
            };
            return Err(err_at(
                key_line(doc, "apiVersion"),
                format!(
                    "unsupported apiVersion `{shown}` for {kind}; expected one of {}",
                    SUPPORTED_API_VERSIONS.join(", ")
                ),
            ));
        }
        None => return Err(err_at(doc.first_line + 1, "missing `apiVersion`".into())),
    }
    let object = Object::from_yaml_str(kind, &doc.text)
        .map_err(|e| located(doc.index, doc.first_line, &e))?;
    check_name(object.name()).map_err(|m| err_at(key_line(doc, "metadata"), m))?;
    if let Some(ns) = object.namespace() {
        check_name(ns).map_err(|m| {
            err_at(
                key_line(doc, "metadata"),
                m.replace("metadata.name", "metadata.namespace"),
            )
        })?;
    }
    Ok(ParsedDocument {
        object,
        index: doc.index,
        line: doc.first_line
            + 1
            + doc
                .text
                .lines()
                .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                .count(),
    })
}

/// Parses every document in `text`. Either every document parses, or the
/// errors of every bad document are returned (callers apply all or none).
///
/// ```
/// use ops_model::parse_documents;
/// let errs = parse_documents("apiVersion: ops.dev/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  stepz: []\n").unwrap_err();
/// assert_eq!((errs[0].line, errs[0].column), (Some(5), Some(3)));
/// assert!(errs[0].message.contains("unknown field `stepz`"));
/// ```
pub fn parse_documents(text: &str) -> Result<Vec<ParsedDocument>, Vec<DocumentError>> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(vec![DocumentError {
            index: 1,
            line: None,
            column: None,
            message: format!(
                "the text is {} bytes, more than the {MAX_MANIFEST_BYTES} read at once",
                text.len()
            ),
        }]);
    }
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for doc in split_documents(text) {
        match parse_one(&doc) {
            Ok(parsed) => ok.push(parsed),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata:\n  name: t1\nspec:\n  steps:\n    - name: s\n      content: echo hi\n";

    #[test]
    fn multi_document_files_keep_file_line_numbers() {
        let text = format!("# leading comment\n---\n{TASK}---\n\n{TASK}");
        let docs = parse_documents(&text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[1].line, 13);
    }

    #[test]
    fn unknown_step_field_points_at_its_line_and_column() {
        let bad = TASK.replace("content: echo hi", "whne: \"true\"");
        let text = format!("{TASK}---\n{bad}");
        let errs = parse_documents(&text).unwrap_err();
        assert_eq!(errs.len(), 1);
        let e = &errs[0];
        assert_eq!(e.index, 2);
        assert_eq!(e.line, Some(17), "{e}");
        assert_eq!(e.column, Some(7), "{e}");
        assert!(e.message.contains("unknown field `whne`"), "{e}");
        assert!(e.message.contains("`when`"), "lists valid fields: {e}");
    }

    #[test]
    fn locations_are_stripped_from_messages() {
        assert_eq!(
            strip_location("did not find ',' at line 7 column 1, while parsing"),
            "did not find ',', while parsing"
        );
        assert_eq!(strip_location("bad at line 3 column 2"), "bad");
        assert_eq!(strip_location("at line x"), "at line x");
        assert_eq!(strip_location("a at line 5 b"), "a at line 5 b");
    }

    #[test]
    fn syntax_error_is_located() {
        let text = "apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: [a\n";
        let e = &parse_documents(text).unwrap_err()[0];
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
    }

    #[test]
    fn wrong_kind_and_version_and_name_are_explained() {
        let e = &parse_documents("apiVersion: ops.dev/v1\nkind: Hots\nmetadata: {name: a}\n")
            .unwrap_err()[0];
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("unknown kind `Hots`"), "{e}");
        let e =
            &parse_documents("apiVersion: v9\nkind: Host\nmetadata: {name: a}\n").unwrap_err()[0];
        assert!(e.message.contains("unsupported apiVersion `v9`"), "{e}");
        let e = &parse_documents("apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: Bad_}\n")
            .unwrap_err()[0];
        assert!(e.message.contains("not valid"), "{e}");
    }

    #[test]
    fn type_errors_name_the_path_and_expected_shape() {
        let text =
            "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: a}\nspec:\n  port: twenty\n";
        let e = &parse_documents(text).unwrap_err()[0];
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("spec.port"), "{e}");
        assert!(
            e.message.contains("u16") || e.message.contains("integer"),
            "{e}"
        );
    }
}
