//! Bounded capture of one output stream: the first `head` bytes and the
//! last `tail` bytes are kept; the middle is counted and dropped, so a
//! command printing gigabytes costs a fixed amount of memory.

use std::collections::VecDeque;

use super::script::StderrFilter;
use super::{ExecOutput, ExitStatus, OutputSink, Stream};

/// How much of a stream to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Bytes kept from the start.
    pub head: usize,
    /// Bytes kept from the end.
    pub tail: usize,
}

impl Default for OutputLimits {
    /// 256 KiB from each end.
    fn default() -> Self {
        OutputLimits {
            head: 256 * 1024,
            tail: 256 * 1024,
        }
    }
}

/// A captured stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    limits: (usize, usize),
    /// Bytes the command wrote.
    pub total: u64,
    /// Bytes not kept (between head and tail).
    pub dropped: u64,
}

impl Captured {
    /// An empty capture with these limits.
    pub fn new(limits: OutputLimits) -> Self {
        Captured {
            limits: (limits.head, limits.tail),
            ..Captured::default()
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let (head_cap, tail_cap) = self.limits;
        if self.head.len() < head_cap {
            let n = (head_cap - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        if tail_cap == 0 {
            self.dropped += data.len() as u64;
            return;
        }
        if data.len() >= tail_cap {
            self.dropped += (self.tail.len() + data.len() - tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(tail_cap);
        self.dropped += overflow as u64;
        self.tail.drain(..overflow);
        self.tail.extend(data);
    }

    /// The kept bytes (head then tail).
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = self.head.clone();
        v.extend(self.tail.iter());
        v
    }

    /// Text (invalid UTF-8 replaced), with a note where bytes were dropped.
    pub fn text(&self) -> String {
        let head = String::from_utf8_lossy(&self.head);
        if self.dropped == 0 {
            let mut s = head.into_owned();
            s.push_str(&String::from_utf8_lossy(
                &self.tail.iter().copied().collect::<Vec<u8>>(),
            ));
            return s;
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        format!(
            "{head}\n[... {} bytes of output dropped; {} bytes in all ...]\n{}",
            self.dropped,
            self.total,
            String::from_utf8_lossy(&tail)
        )
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// Gathers both streams of one execution: bounded capture, marker
/// filtering on stderr, and live delivery to a sink.
pub(crate) struct Collector<'a> {
    stdout: Captured,
    stderr: Captured,
    filter: StderrFilter,
    sink: Option<OutputSink<'a>>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(limits: OutputLimits, sink: Option<OutputSink<'a>>) -> Self {
        Collector {
            stdout: Captured::new(limits),
            stderr: Captured::new(limits),
            filter: StderrFilter::default(),
            sink,
        }
    }

    pub(crate) fn stdout(&mut self, data: &[u8]) {
        self.stdout.push(data);
        if let Some(s) = self.sink {
            s(Stream::Stdout, data);
        }
    }

    pub(crate) fn stderr(&mut self, data: &[u8]) {
        let kept = self.filter.feed(data);
        self.deliver_err(&kept);
    }

    fn deliver_err(&mut self, kept: &[u8]) {
        if kept.is_empty() {
            return;
        }
        self.stderr.push(kept);
        if let Some(s) = self.sink {
            s(Stream::Stderr, kept);
        }
    }

    /// The process group the wrapper reported, once seen.
    pub(crate) fn pgid(&self) -> Option<u32> {
        self.filter.pgid
    }

    pub(crate) fn finish(
        mut self,
        status: ExitStatus,
        duration: std::time::Duration,
    ) -> ExecOutput {
        let rest = self.filter.finish();
        self.deliver_err(&rest);
        ExecOutput {
            status,
            stdout: self.stdout,
            stderr: self.stderr,
            duration,
        }
    }
}

/// The status for an exit code, given whether the time limit had passed
/// (`timeout` exits 124 when it stopped the command, 137 after `-k`).
pub(crate) fn classify(code: i32, limit_passed: bool) -> ExitStatus {
    if limit_passed && (code == super::script::TIMEOUT_EXIT || code == 137) {
        ExitStatus::TimedOut
    } else {
        ExitStatus::Code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_head_and_tail() {
        let mut c = Captured::new(OutputLimits { head: 4, tail: 3 });
        c.push(b"abcdefg");
        c.push(b"hij");
        assert_eq!(c.bytes(), b"abcdhij");
        assert_eq!((c.total, c.dropped), (10, 3));
        assert!(
            c.text()
                .contains("[... 3 bytes of output dropped; 10 bytes in all ...]")
        );
    }

    proptest! {
        #[test]
        fn equals_the_reference(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20), head in 0usize..30, tail in 0usize..30) {
            let mut c = Captured::new(OutputLimits { head, tail });
            let mut all = Vec::new();
            for ch in &chunks { c.push(ch); all.extend_from_slice(ch); }
            let expect: Vec<u8> = if all.len() <= head + tail { all.clone() } else {
                let mut v = all[..head].to_vec(); v.extend_from_slice(&all[all.len() - tail..]); v
            };
            prop_assert_eq!(c.bytes(), expect);
            prop_assert_eq!(c.total, all.len() as u64);
            prop_assert_eq!(c.dropped, all.len().saturating_sub(head + tail) as u64);
        }
    }
}
