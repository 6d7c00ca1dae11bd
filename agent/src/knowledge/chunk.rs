//! Runbooks into chunks. Markdown is split at headings (ATX `#` to
//! `######`, never inside a code fence); each chunk is one section's own
//! text under its heading path (`Disk full > Web tier > Cleanup`), with
//! its line range in the file. A section longer than [`MAX_CHUNK`] is cut
//! at blank lines outside code fences, so a code block is never split.
//! Front matter (`---` YAML at the top) gives `alerts`, `labels`,
//! `services`, `hosts` for matching; anything else in it is kept too.
//! Plain text is cut into paragraph groups under the file's name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A section longer than this (bytes) is cut at blank lines.
pub const MAX_CHUNK: usize = 2000;

/// What a runbook's front matter says it is for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FrontMatter {
    /// Alert names it handles (`DiskFull`, `KubeNodeNotReady`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// Labels it applies to (`severity: critical`, `team: web`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Services it covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Hosts (names or patterns) it covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Any other keys, as given.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A code block inside a chunk, kept whole so it can be proposed as a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeBlock {
    /// Its language tag (`bash`, `sh`, ...), empty if none.
    pub lang: String,
    /// Its text.
    pub code: String,
}

/// One piece of a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Heading path.
    pub heading: Vec<String>,
    /// First line (1-based, in the file).
    pub start_line: u32,
    /// Last line.
    pub end_line: u32,
    /// The section's text (its heading line included).
    pub body: String,
    /// Whether it holds a code block.
    pub code: bool,
}

impl Chunk {
    /// The heading path as one string.
    pub fn heading_path(&self) -> String {
        self.heading.join(" > ")
    }

    /// The cache key of its vector: SHA-256 of heading path and text.
    pub fn hash(&self) -> String {
        content_hash(&format!("{}\n{}", self.heading_path(), self.body))
    }
}

/// A parsed runbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// First `#` heading, else the name.
    pub title: String,
    /// Front matter.
    pub meta: FrontMatter,
    /// Chunks in order.
    pub chunks: Vec<Chunk>,
}

/// Why a runbook could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {detail}")]
pub struct ParseError {
    /// File.
    pub source_name: String,
    /// Line.
    pub line: u32,
    /// What is wrong.
    pub detail: String,
}

/// SHA-256 in hex.
pub fn content_hash(text: &str) -> String {
    content_hash_bytes(text.as_bytes())
}

/// SHA-256 of bytes in hex.
pub fn content_hash_bytes(bytes: &[u8]) -> String {
    ops_model::hex(&Sha256::digest(bytes))
}

fn fence_of(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with("```") {
        Some("```")
    } else if t.starts_with("~~~") {
        Some("~~~")
    } else {
        None
    }
}

fn heading_of(line: &str) -> Option<(usize, String)> {
    let t = line.trim_end();
    let level = t.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim().to_owned();
    (!title.is_empty()).then_some((level, title))
}

/// The code blocks in `text`, whole.
pub fn code_blocks(text: &str) -> Vec<CodeBlock> {
    let mut out = Vec::new();
    let mut open: Option<(&str, String, Vec<&str>)> = None;
    for line in text.lines() {
        match (&mut open, fence_of(line)) {
            (None, Some(f)) => {
                let lang = line.trim_start()[3..].trim().to_owned();
                open = Some((f, lang, Vec::new()));
            }
            (Some((f, _, _)), Some(g)) if *f == g => {
                if let Some((_, lang, lines)) = open.take() {
                    out.push(CodeBlock {
                        lang,
                        code: lines.join("\n"),
                    });
                }
            }
            (Some((_, _, lines)), _) => lines.push(line),
            (None, None) => {}
        }
    }
    out
}

/// Splits the front matter off; returns it and the line where the body
/// starts (0-based).
fn front_matter(source_name: &str, lines: &[&str]) -> Result<(FrontMatter, usize), ParseError> {
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return Ok((FrontMatter::default(), 0));
    }
    let Some(end) = lines.iter().skip(1).position(|l| {
        let t = l.trim_end();
        t == "---" || t == "..."
    }) else {
        return Err(ParseError {
            source_name: source_name.into(),
            line: 1,
            detail: "front matter starts with `---` but never ends".into(),
        });
    };
    let yaml = lines[1..=end].join("\n");
    let meta: FrontMatter = if yaml.trim().is_empty() {
        FrontMatter::default()
    } else {
        serde_yaml::from_str(&yaml).map_err(|e| ParseError {
            source_name: source_name.into(),
            line: e.location().map_or(2, |l| l.line() as u32 + 1),
            detail: format!("front matter: {e}"),
        })?
    };
    Ok((meta, end + 2))
}

/// Cuts one section into pieces of at most [`MAX_CHUNK`] bytes at blank
/// lines outside code fences. `lines` are (line number, text).
fn cut(heading: &[String], lines: &[(u32, &str)], out: &mut Vec<Chunk>) {
    let mut start = 0;
    while start < lines.len() {
        let mut size = 0;
        let mut in_fence: Option<&str> = None;
        let mut last_break = None;
        let mut end = lines.len();
        for (i, (_, l)) in lines.iter().enumerate().skip(start) {
            match (in_fence, fence_of(l)) {
                (None, Some(f)) => in_fence = Some(f),
                (Some(f), Some(g)) if f == g => in_fence = None,
                _ => {}
            }
            size += l.len() + 1;
            if in_fence.is_none() && l.trim().is_empty() && i > start {
                last_break = Some(i);
            }
            if size > MAX_CHUNK {
                if let Some(b) = last_break {
                    end = b;
                    break;
                }
            }
        }
        let piece = &lines[start..end];
        let body = piece
            .iter()
            .map(|(_, l)| *l)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned();
        if !body.is_empty() {
            let first = piece
                .iter()
                .find(|(_, l)| !l.trim().is_empty())
                .map_or(piece[0].0, |(n, _)| *n);
            let last = piece
                .iter()
                .rev()
                .find(|(_, l)| !l.trim().is_empty())
                .map_or(piece[0].0, |(n, _)| *n);
            out.push(Chunk {
                heading: heading.to_vec(),
                start_line: first,
                end_line: last,
                code: !code_blocks(&body).is_empty(),
                body,
            });
        }
        start = end;
    }
}

/// Whether a section has text of its own: a section that is only its
/// heading (its subsections follow) adds nothing.
fn has_body(section: &[(u32, &str)]) -> bool {
    let mut lines = section.iter().map(|(_, l)| *l);
    let first = lines.next();
    let text = |l: &str| !l.trim().is_empty();
    match first {
        Some(f) if heading_of(f).is_some() => lines.any(text),
        Some(f) => text(f) || lines.any(text),
        None => false,
    }
}

/// Parses a Markdown runbook.
pub fn parse_markdown(
    source_name: &str,
    fallback_title: &str,
    text: &str,
) -> Result<Parsed, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (meta, body_start) = front_matter(source_name, &lines)?;
    let mut title = None;
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut chunks = Vec::new();
    let mut section: Vec<(u32, &str)> = Vec::new();
    let mut in_fence: Option<&str> = None;
    let path = |stack: &[(usize, String)]| -> Vec<String> {
        if stack.is_empty() {
            vec![fallback_title.to_owned()]
        } else {
            stack.iter().map(|(_, t)| t.clone()).collect()
        }
    };
    for (i, line) in lines.iter().enumerate().skip(body_start) {
        let n = i as u32 + 1;
        match (in_fence, fence_of(line)) {
            (None, Some(f)) => in_fence = Some(f),
            (Some(f), Some(g)) if f == g => in_fence = None,
            _ => {}
        }
        let heading = if in_fence.is_none() && fence_of(line).is_none() {
            heading_of(line)
        } else {
            None
        };
        if let Some((level, text)) = heading {
            if has_body(&section) {
                cut(&path(&stack), &section, &mut chunks);
            }
            section.clear();
            if title.is_none() && level == 1 {
                title = Some(text.clone());
            }
            stack.retain(|(l, _)| *l < level);
            stack.push((level, text));
        }
        section.push((n, line));
    }
    if has_body(&section) {
        cut(&path(&stack), &section, &mut chunks);
    }
    Ok(Parsed {
        title: title.unwrap_or_else(|| fallback_title.to_owned()),
        meta,
        chunks,
    })
}

/// Parses plain text: paragraph groups under the file's name.
pub fn parse_text(fallback_title: &str, text: &str) -> Parsed {
    let lines: Vec<(u32, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u32 + 1, l))
        .collect();
    let mut chunks = Vec::new();
    cut(&[fallback_title.to_owned()], &lines, &mut chunks);
    Parsed {
        title: fallback_title.to_owned(),
        meta: FrontMatter::default(),
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "---\nalerts: [DiskFull, NodeFilesystemAlmostOutOfSpace]\nlabels: {team: web}\nservices: [nginx]\nowner: sre\n---\n# Disk full\n\nWhen a filesystem fills up.\n\n## Web tier\n\n### Cleanup\n\nRemove old logs:\n\n```bash\n# not a heading\nfind /var/log/app -mtime +7 -delete\n```\n\n## Database tier\n\nNever delete WAL files.\n";

    #[test]
    fn sections_carry_their_heading_path_lines_and_code() {
        let p = parse_markdown("disk.md", "disk", DOC).unwrap();
        assert_eq!(p.title, "Disk full");
        assert_eq!(
            p.meta.alerts,
            ["DiskFull", "NodeFilesystemAlmostOutOfSpace"]
        );
        assert_eq!(p.meta.labels["team"], "web");
        assert_eq!(p.meta.services, ["nginx"]);
        assert_eq!(p.meta.other["owner"], "sre");
        let paths: Vec<String> = p.chunks.iter().map(Chunk::heading_path).collect();
        assert_eq!(
            paths,
            [
                "Disk full",
                "Disk full > Web tier > Cleanup",
                "Disk full > Database tier"
            ]
        );
        let cleanup = &p.chunks[1];
        assert_eq!((cleanup.start_line, cleanup.end_line), (13, 20));
        assert!(cleanup.code);
        assert!(cleanup.body.contains("# not a heading"));
        let blocks = code_blocks(&cleanup.body);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].lang, "bash");
        assert_eq!(
            blocks[0].code,
            "# not a heading\nfind /var/log/app -mtime +7 -delete"
        );
        assert!(!p.chunks[2].code);
        assert_eq!(p.chunks[2].start_line, 22);
    }

    #[test]
    fn long_sections_are_cut_at_blank_lines_never_inside_code() {
        let mut doc = String::from("# Big\n\n");
        for i in 0..40 {
            doc.push_str(&format!(
                "Paragraph {i} says something useful about disks and logs.\n\n"
            ));
        }
        doc.push_str("```sh\n");
        for i in 0..60 {
            doc.push_str(&format!("echo line {i}\n\n"));
        }
        doc.push_str("```\n");
        let p = parse_markdown("big.md", "big", &doc).unwrap();
        assert!(p.chunks.len() >= 2, "{}", p.chunks.len());
        let with_code: Vec<&Chunk> = p.chunks.iter().filter(|c| c.code).collect();
        assert_eq!(with_code.len(), 1, "the block stays in one chunk");
        assert_eq!(
            code_blocks(&with_code[0].body)[0]
                .code
                .lines()
                .filter(|l| !l.is_empty())
                .count(),
            60
        );
        // Line ranges do not overlap and follow each other.
        for w in p.chunks.windows(2) {
            assert!(w[0].end_line < w[1].start_line);
        }
    }

    #[test]
    fn bad_front_matter_says_where() {
        let e = parse_markdown("x.md", "x", "---\nalerts: [a\n---\n# X\n").unwrap_err();
        assert!(e.to_string().starts_with("x.md:"), "{e}");
        assert!(e.to_string().contains("front matter"), "{e}");
        let e = parse_markdown("y.md", "y", "---\nalerts: []\n# never closed\n").unwrap_err();
        assert!(e.to_string().contains("never ends"), "{e}");
    }

    #[test]
    fn plain_text_is_cut_into_paragraphs_under_the_name() {
        let p = parse_text("notes", "first\n\nsecond\n");
        assert_eq!(p.chunks.len(), 1);
        assert_eq!(p.chunks[0].heading, ["notes"]);
        assert_eq!((p.chunks[0].start_line, p.chunks[0].end_line), (1, 3));
    }
}
