//! BM25 over chunk text (heading path included), Okapi weighting with
//! k1 = 1.2, b = 0.75. Terms: lower-cased runs of letters and digits
//! (`_`, `-`, `.` inside a word split it too, and the whole word is kept:
//! `kube-proxy` gives `kube`, `proxy` and `kube-proxy`), without a short
//! list of English stop words, with a light suffix strip so `deleted` and
//! `deleting` meet `delete`.

use std::collections::HashMap;

const K1: f32 = 1.2;
const B: f32 = 0.75;

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has",
    "have", "how", "i", "if", "in", "is", "it", "its", "my", "of", "on", "or", "our", "so", "that",
    "the", "their", "then", "there", "this", "to", "was", "we", "what", "when", "which", "why",
    "with", "you", "your",
];

fn stem(w: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if w.len() > suffix.len() + 3 && w.ends_with(suffix) {
            return w[..w.len() - suffix.len()].to_owned();
        }
    }
    w.to_owned()
}

/// The terms of `text`.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .map(|w| w.trim_matches(|c: char| c == '.' || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
    {
        let lower = word.to_lowercase();
        let parts: Vec<&str> = lower
            .split(['_', '-', '.'])
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() > 1 {
            out.push(lower.clone());
        }
        for p in parts {
            if !STOP.contains(&p) {
                out.push(stem(p));
            }
        }
    }
    out
}

/// An index over documents `0..n`.
#[derive(Debug, Default)]
pub struct Bm25 {
    /// term -> (doc, term frequency)
    postings: HashMap<String, Vec<(u32, u32)>>,
    lengths: Vec<u32>,
    avg_len: f32,
}

impl Bm25 {
    /// Indexes `docs` in order.
    pub fn new<'a>(docs: impl IntoIterator<Item = &'a str>) -> Self {
        let mut idx = Bm25::default();
        for (d, text) in docs.into_iter().enumerate() {
            let ts = terms(text);
            idx.lengths.push(ts.len() as u32);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in ts {
                *tf.entry(t).or_default() += 1;
            }
            for (t, f) in tf {
                idx.postings.entry(t).or_default().push((d as u32, f));
            }
        }
        let total: u64 = idx.lengths.iter().map(|l| u64::from(*l)).sum();
        idx.avg_len = if idx.lengths.is_empty() {
            0.0
        } else {
            total as f32 / idx.lengths.len() as f32
        };
        idx
    }

    /// Documents scored for `query`, best first, at most `k`, score > 0.
    pub fn search(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        let n = self.lengths.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut qterms = terms(query);
        qterms.sort();
        qterms.dedup();
        for t in &qterms {
            let Some(posts) = self.postings.get(t) else {
                continue;
            };
            let df = posts.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for (d, f) in posts {
                let len = self.lengths[*d as usize] as f32;
                let f = *f as f32;
                let s =
                    idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / self.avg_len.max(1.0)));
                *scores.entry(*d).or_default() += s;
            }
        }
        let mut out: Vec<(usize, f32)> = scores
            .into_iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(d, s)| (d as usize, s))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }

    /// How many documents.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_compounds_and_drop_stop_words() {
        assert_eq!(
            terms("The kube-proxy is Restarting"),
            ["kube-proxy", "kube", "proxy", "restart"]
        );
        assert_eq!(terms("/var/log is 97% full"), ["var", "log", "97", "full"]);
    }

    #[test]
    fn rarer_terms_weigh_more() {
        let docs = [
            "disk full on web hosts: clean logs",
            "nginx fails to start: check the config",
            "disk latency high on database hosts",
        ];
        let idx = Bm25::new(docs.iter().copied());
        let hits = idx.search("nginx won't start", 3);
        assert_eq!(hits[0].0, 1);
        let hits = idx.search("disk full", 3);
        assert_eq!(hits[0].0, 0);
        assert_eq!(hits.len(), 2);
        assert!(idx.search("kubernetes", 3).is_empty());
    }
}
