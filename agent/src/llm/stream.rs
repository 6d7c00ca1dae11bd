//! What a person sees while a reply streams in. The raw text of a reply
//! is not always for people: in JSON-action mode it is a JSON object, and
//! in lenient mode a small model may write its tool call into the text.
//! [`AnswerStream`] passes on only the prose: in native mode everything;
//! in lenient mode the text up to the first thing that may be a call
//! (`{`, a ```` ```json ```` fence, a `<tool_call>`/`<tools>`/`<function`
//! tag), holding back a tail that could be the start of one; in
//! JSON-action mode the decoded `answer` string of a `final_answer`
//! action, as its characters arrive. [`AnswerStream::finish`] returns what
//! is still missing once the whole answer is known, so the streamed text
//! and the final answer always end up the same.

use super::ToolCallMode;
use super::action::FINAL_ANSWER;

/// Where lenient streaming stops: what may begin a call written as text.
const CALL_MARKERS: &[&str] = &[
    "{",
    "```json",
    "```JSON",
    "<tool_call",
    "<tools",
    "<function",
];

/// Streamed reply text in, displayable text out.
#[derive(Debug)]
pub struct AnswerStream {
    mode: ToolCallMode,
    /// All raw text so far.
    buf: String,
    /// Displayable text handed out so far.
    shown: String,
    /// Lenient: bytes of `buf` consumed. JSON: where the next undecoded
    /// byte of the answer string is.
    pos: Option<usize>,
    /// Nothing more will be shown from this reply.
    stopped: bool,
}

impl AnswerStream {
    /// A stream for a reply asked for in `mode`.
    pub fn new(mode: ToolCallMode) -> Self {
        AnswerStream {
            mode,
            buf: String::new(),
            shown: String::new(),
            pos: None,
            stopped: false,
        }
    }

    /// Adds a piece of raw text; returns what to show now (maybe empty).
    pub fn push(&mut self, piece: &str) -> String {
        self.buf.push_str(piece);
        if self.stopped {
            return String::new();
        }
        let out = match self.mode {
            ToolCallMode::Native => piece.to_owned(),
            ToolCallMode::Lenient => self.lenient(),
            ToolCallMode::JsonAction => self.json(),
        };
        self.shown.push_str(&out);
        out
    }

    /// Text shown so far.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Once the final answer is known: the rest of it that was not shown.
    /// If what was shown is not where the answer begins (the model's text
    /// was reinterpreted), the whole answer follows on a new line.
    pub fn finish(&mut self, answer: &str) -> String {
        self.stopped = true;
        let rest = if self.shown.is_empty() {
            answer.to_owned()
        } else if let Some(rest) = answer.strip_prefix(self.shown.as_str()) {
            rest.to_owned()
        } else {
            format!("\n{answer}")
        };
        self.shown.push_str(&rest);
        rest
    }

    fn lenient(&mut self) -> String {
        let from = self.pos.unwrap_or(0);
        // Leading white space waits: the first visible character decides.
        let Some(first) = self.buf[from..].find(|c: char| !c.is_whitespace()) else {
            return String::new();
        };
        let start = if self.pos.is_none() {
            from + first
        } else {
            from
        };
        let tail = &self.buf[start..];
        if let Some(m) = CALL_MARKERS.iter().filter_map(|m| tail.find(m)).min() {
            self.stopped = true;
            self.pos = Some(start + m);
            return tail[..m].to_owned();
        }
        // Hold back a tail that may be the start of a marker.
        let mut keep = tail.len();
        for m in CALL_MARKERS {
            for cut in (1..m.len()).rev() {
                if tail.ends_with(&m[..cut]) {
                    keep = keep.min(tail.len() - cut);
                    break;
                }
            }
        }
        self.pos = Some(start + keep);
        tail[..keep].to_owned()
    }

    fn json(&mut self) -> String {
        let mut at = match self.pos {
            Some(p) => p,
            None => {
                match value_start(&self.buf, "action") {
                    Some(i) => {
                        let rest = &self.buf[i..];
                        let want = format!("\"{FINAL_ANSWER}\"");
                        if rest.len() < want.len() {
                            if !want.starts_with(rest) {
                                self.stopped = true;
                            }
                            return String::new();
                        }
                        if !rest.starts_with(&want) {
                            // A tool call: nothing to show.
                            self.stopped = true;
                            return String::new();
                        }
                    }
                    None => return String::new(),
                }
                match value_start(&self.buf, "answer") {
                    Some(i) if self.buf[i..].starts_with('"') => i + 1,
                    Some(i) if self.buf.len() > i => {
                        self.stopped = true;
                        return String::new();
                    }
                    _ => return String::new(),
                }
            }
        };
        let mut out = String::new();
        let bytes = self.buf.as_bytes();
        while at < bytes.len() {
            match bytes[at] {
                b'"' => {
                    self.stopped = true;
                    break;
                }
                b'\\' => {
                    let Some(&e) = bytes.get(at + 1) else { break };
                    let (ch, len) = match e {
                        b'n' => ('\n', 2),
                        b't' => ('\t', 2),
                        b'r' => ('\r', 2),
                        b'b' => ('\u{8}', 2),
                        b'f' => ('\u{c}', 2),
                        b'u' => {
                            let Some(hex) = self.buf.get(at + 2..at + 6) else {
                                break;
                            };
                            let Ok(code) = u32::from_str_radix(hex, 16) else {
                                self.stopped = true;
                                break;
                            };
                            if (0xD800..0xDC00).contains(&code) {
                                // A surrogate pair: wait for both halves.
                                let Some(low) = self.buf.get(at + 8..at + 12) else {
                                    break;
                                };
                                let low = u32::from_str_radix(low, 16).unwrap_or(0);
                                let c = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                                (char::from_u32(c).unwrap_or('\u{fffd}'), 12)
                            } else {
                                (char::from_u32(code).unwrap_or('\u{fffd}'), 6)
                            }
                        }
                        other => (other as char, 2),
                    };
                    out.push(ch);
                    at += len;
                }
                _ => {
                    let Some(c) = self.buf[at..].chars().next() else {
                        break;
                    };
                    out.push(c);
                    at += c.len_utf8();
                }
            }
        }
        self.pos = Some(at);
        out
    }
}

/// Where the value of `"key":` starts in `buf` (after the colon and any
/// white space), if the key and its colon have arrived.
fn value_start(buf: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let k = buf.find(&needle)? + needle.len();
    let rest = &buf[k..];
    let colon = rest.find(|c: char| !c.is_whitespace())?;
    if !rest[colon..].starts_with(':') {
        return None;
    }
    let after = &rest[colon + 1..];
    let v = after.find(|c: char| !c.is_whitespace())?;
    Some(k + colon + 1 + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(mode: ToolCallMode, pieces: &[&str]) -> (String, AnswerStream) {
        let mut s = AnswerStream::new(mode);
        let out: String = pieces.iter().map(|p| s.push(p)).collect();
        (out, s)
    }

    /// Every split of `text` into two pieces gives the same result.
    fn all_splits(mode: ToolCallMode, text: &str) -> String {
        let (whole, _) = feed(mode, &[text]);
        for i in 0..=text.len() {
            if !text.is_char_boundary(i) {
                continue;
            }
            let (split, _) = feed(mode, &[&text[..i], &text[i..]]);
            assert_eq!(split, whole, "split at {i} of {text:?}");
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(feed(mode, &refs).0, whole, "char by char: {text:?}");
        whole
    }

    #[test]
    fn native_passes_everything() {
        assert_eq!(
            all_splits(ToolCallMode::Native, "disk is {full}"),
            "disk is {full}"
        );
    }

    #[test]
    fn lenient_stops_where_a_call_may_begin() {
        assert_eq!(
            all_splits(ToolCallMode::Lenient, "  web-2 is at 97%."),
            "web-2 is at 97%."
        );
        assert_eq!(
            all_splits(
                ToolCallMode::Lenient,
                "Let me look.\n```json\n{\"name\": \"host_status\"}\n```"
            ),
            "Let me look.\n"
        );
        assert_eq!(
            all_splits(ToolCallMode::Lenient, "Checking <tool_call>{}</tool_call>"),
            "Checking "
        );
        assert_eq!(
            all_splits(ToolCallMode::Lenient, "{\"name\": \"host_list\"}"),
            ""
        );
        // A fence that is not JSON streams; a fence at the very end waits
        // for what follows it, and `finish` delivers it.
        let text = "Run:\n```bash\ndf -h\n```";
        assert_eq!(
            all_splits(ToolCallMode::Lenient, text),
            "Run:\n```bash\ndf -h\n"
        );
        let (_, mut s) = feed(ToolCallMode::Lenient, &[text]);
        assert_eq!(s.finish(text), "```");
    }

    #[test]
    fn json_streams_only_a_final_answer_decoded() {
        let text = r#"{"action": "final_answer", "answer": "web-2: /var is 97% full.\nClean \"/var/log\" \u00e9\ud83d\ude00 done"}"#;
        assert_eq!(
            all_splits(ToolCallMode::JsonAction, text),
            "web-2: /var is 97% full.\nClean \"/var/log\" \u{e9}\u{1f600} done"
        );
        assert_eq!(
            all_splits(
                ToolCallMode::JsonAction,
                r#"{"action":"host_status","host":"web-2","answer":"no"}"#
            ),
            ""
        );
        assert_eq!(
            all_splits(ToolCallMode::JsonAction, r#"{"action":"final_answerx"}"#),
            ""
        );
    }

    #[test]
    fn finish_completes_what_was_shown() {
        let (shown, mut s) = feed(ToolCallMode::Lenient, &["The fix: {", "x} done"]);
        assert_eq!(shown, "The fix: ");
        assert_eq!(s.finish("The fix: {x} done"), "{x} done");
        assert_eq!(s.shown(), "The fix: {x} done");
        let (_, mut s) = feed(ToolCallMode::Lenient, &["partial"]);
        assert_eq!(s.finish("something else"), "\nsomething else");
        let (_, mut s) = feed(
            ToolCallMode::JsonAction,
            &[r#"{"action":"final_answer","answer":"ok"}"#],
        );
        assert_eq!(s.finish("ok"), "");
    }
}
