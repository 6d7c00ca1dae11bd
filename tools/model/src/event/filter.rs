//! EventHooks keyword filters, as the anchor applies them: to a readable
//! rendering of the event ([`render`]: `subject`, `type`, `source`,
//! `cluster`, then every data field as `path: value`, one per line),
//! `include` keywords with `matchMode` ANY (default) or ALL, `exclude`
//! keywords that reject on any match, and `matchType` CONTAINS (default,
//! substring), EXACT (a whole line's value or a whole word equals the
//! keyword) or REGEX (searched anywhere). Regexes compile once, when the
//! hook is loaded; a bad one is an error naming the hook.

use std::borrow::Cow;
use std::fmt::Write as _;

use regex::Regex;
use serde::Deserialize;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::CloudEvent;
use crate::{KeywordMatchMode, KeywordMatchType, Keywords};

/// A compiled keyword filter.
#[derive(Debug, Clone)]
pub struct KeywordFilter {
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
    all: bool,
}

#[derive(Debug, Clone)]
enum Matcher {
    Contains(String),
    Exact(String),
    Regex(Regex),
}

impl Matcher {
    fn new(kind: KeywordMatchType, kw: &str) -> Result<Self, String> {
        Ok(match kind {
            KeywordMatchType::Contains => Matcher::Contains(kw.to_owned()),
            KeywordMatchType::Exact => Matcher::Exact(kw.to_owned()),
            KeywordMatchType::Regex => Matcher::Regex(
                Regex::new(kw).map_err(|e| format!("keyword `{kw}` is not a valid regex: {e}"))?,
            ),
        })
    }

    fn hit(&self, text: &str) -> bool {
        match self {
            Matcher::Contains(k) => text.contains(k.as_str()),
            Matcher::Regex(r) => r.is_match(text),
            Matcher::Exact(k) => text.lines().any(|l| {
                l == k
                    || l.split_once(": ").is_some_and(|(_, v)| v == k)
                    || l.split(|c: char| c.is_whitespace() || c == ',')
                        .any(|w| w == k)
            }),
        }
    }
}

impl KeywordFilter {
    /// Compiles a hook's keywords (none: everything passes).
    pub fn new(k: Option<&Keywords>) -> Result<Self, String> {
        let Some(k) = k else {
            return Ok(KeywordFilter {
                include: Vec::new(),
                exclude: Vec::new(),
                all: false,
            });
        };
        let kind = k.match_type.unwrap_or(KeywordMatchType::Contains);
        let build = |list: &Option<Vec<String>>| -> Result<Vec<Matcher>, String> {
            list.iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .map(|s| Matcher::new(kind, s))
                .collect()
        };
        Ok(KeywordFilter {
            include: build(&k.include)?,
            exclude: build(&k.exclude)?,
            all: k.match_mode == Some(KeywordMatchMode::All),
        })
    }

    /// Whether every event passes (no keywords: nothing to render).
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether a rendered event passes.
    pub fn passes(&self, text: &str) -> bool {
        if self.exclude.iter().any(|m| m.hit(text)) {
            return false;
        }
        if self.include.is_empty() {
            return true;
        }
        if self.all {
            self.include.iter().all(|m| m.hit(text))
        } else {
            self.include.iter().any(|m| m.hit(text))
        }
    }
}

/// Appends `path: value` lines for `v`; `path` is the prefix so far (a
/// buffer grown and cut back, not a new string per field).
fn flatten(path: &mut String, v: &Value, out: &mut String) {
    let at = path.len();
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if at > 0 {
                    path.push('.');
                }
                path.push_str(k);
                flatten(path, v, out);
                path.truncate(at);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let _ = write!(path, "[{i}]");
                flatten(path, v, out);
                path.truncate(at);
            }
        }
        Value::String(s) => leaf(out, path, s),
        Value::Null => leaf(out, path, "null"),
        other => leaf_shown(out, path, other),
    }
}

/// The readable text filters and chat sinks see.
pub fn render(e: &CloudEvent) -> String {
    let mut out = String::with_capacity(256);
    attributes(
        &mut out,
        &e.subject,
        &e.kind,
        &e.source,
        e.cluster.as_deref(),
    );
    flatten(&mut String::new(), &e.data, &mut out);
    out
}

/// The attribute lines [`render`] starts with.
fn attributes(out: &mut String, subject: &str, kind: &str, source: &str, cluster: Option<&str>) {
    let attributes = [
        ("subject", Some(subject)),
        ("type", Some(kind)),
        ("source", Some(source)),
        ("cluster", cluster),
    ];
    for (name, value) in attributes {
        if let Some(value) = value {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
    }
}

/// A CloudEvent read from its text as published without building its
/// `data`: the attributes borrowed where the text has no escapes, `data`
/// kept as text. A hook's reader renders and filters from this and makes
/// the [`CloudEvent`] only for what passes, with its `data` only where
/// the sink reads it (decoding `data` into a tree, then walking the tree
/// to render it, cost the hook's side about a fifth of its CPU per event
/// in the events benchmark). It accepts exactly the texts a
/// [`CloudEvent`] does.
#[derive(Debug, Deserialize)]
pub struct Published<'a> {
    #[serde(borrow)]
    specversion: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    subject: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow, default = "json_type")]
    datacontenttype: Cow<'a, str>,
    #[serde(borrow, default)]
    cluster: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn json_type() -> Cow<'static, str> {
    Cow::Borrowed("application/json")
}

impl<'a> Published<'a> {
    /// `None`: the text is not a CloudEvent.
    pub fn read(text: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }

    /// Writes into `out` (cleared first) the text [`render`] gives for
    /// this event, `data` rendered straight from its text (object keys in
    /// the order [`render`] lists them: sorted, a repeated key's last
    /// value winning). `path` is scratch space; both are kept by the
    /// caller from one event to the next. `false` (and `out` unusable):
    /// `data` could not be read (deeper than the JSON reader allows).
    pub fn render_into(&self, out: &mut String, path: &mut String) -> bool {
        out.clear();
        path.clear();
        attributes(
            out,
            &self.subject,
            &self.kind,
            &self.source,
            self.cluster.as_deref(),
        );
        match self.data {
            None => {
                leaf(out, path, "null");
                true
            }
            Some(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                Walk { path, out }.deserialize(&mut de).is_ok()
            }
        }
    }

    /// The event; its `data` left `null` unless `with_data` (for a sink
    /// that sends the text as published: see `Hook::reads_data`).
    pub fn event(&self, with_data: bool) -> Option<CloudEvent> {
        let data = match self.data {
            Some(raw) if with_data => serde_json::from_str(raw.get()).ok()?,
            _ => Value::Null,
        };
        Some(CloudEvent {
            specversion: self.specversion.clone().into_owned(),
            id: self.id.clone().into_owned(),
            source: self.source.clone().into_owned(),
            kind: self.kind.clone().into_owned(),
            subject: self.subject.clone().into_owned(),
            time: self.time.clone().into_owned(),
            datacontenttype: self.datacontenttype.clone().into_owned(),
            cluster: self.cluster.clone().map(Cow::into_owned),
            data,
        })
    }

    /// Its id and subject, to name it in a message.
    pub fn name(&self) -> String {
        format!("event {} on {}", self.id, self.subject)
    }
}

/// One `path: value` line.
fn leaf(out: &mut String, path: &str, value: &str) {
    out.push_str(path);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

/// One `path: value` line, the value as it displays (numbers, booleans).
fn leaf_shown(out: &mut String, path: &str, value: impl std::fmt::Display) {
    out.push_str(path);
    out.push_str(": ");
    let _ = write!(out, "{value}");
    out.push('\n');
}

/// Renders a JSON value as [`flatten`] renders its tree, while reading it.
struct Walk<'p> {
    path: &'p mut String,
    out: &'p mut String,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        leaf(self.out, self.path, if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        leaf_shown(self.out, self.path, v);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        leaf_shown(self.out, self.path, v);
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As a tree holds it: a `Number` (JSON has no NaN or infinity).
        match serde_json::Number::from_f64(v) {
            Some(n) => leaf_shown(self.out, self.path, n),
            None => leaf(self.out, self.path, "null"),
        }
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        leaf(self.out, self.path, v);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        leaf(self.out, self.path, "null");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.path.len();
        for i in 0.. {
            let _ = write!(self.path, "[{i}]");
            let more = seq.next_element_seed(Walk {
                path: &mut *self.path,
                out: &mut *self.out,
            })?;
            self.path.truncate(at);
            if more.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (at, base) = (self.path.len(), self.out.len());
        // Each entry's key, and where its lines were written.
        let mut entries: Vec<(Cow<'de, str>, usize, usize)> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if at > 0 {
                self.path.push('.');
            }
            self.path.push_str(&key);
            let start = self.out.len();
            map.next_value_seed(Walk {
                path: &mut *self.path,
                out: &mut *self.out,
            })?;
            self.path.truncate(at);
            entries.push((key, start, self.out.len()));
        }
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return Ok(());
        }
        // In key order, as a map lists them; of a repeated key, the last.
        let written = self.out[base..].to_owned();
        self.out.truncate(base);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (key, start, end)) in entries.iter().enumerate() {
            if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            self.out.push_str(&written[start - base..end - base]);
        }
        Ok(())
    }
}

/// An object key, borrowed from the text where it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(
        include: &[&str],
        exclude: &[&str],
        mode: Option<KeywordMatchMode>,
        kind: Option<KeywordMatchType>,
    ) -> Keywords {
        Keywords {
            include: Some(include.iter().map(|s| (*s).to_owned()).collect()),
            exclude: Some(exclude.iter().map(|s| (*s).to_owned()).collect()),
            match_mode: mode,
            match_type: kind,
        }
    }

    #[test]
    fn modes_and_types() {
        let text = "subject: ops.clusters.c1.nodes.gpu-1.findings\nstatus: alerting\ntask: alert-gpu-xid\nmessage: Xid 79 on GPU 3\n";
        let f = |k: Keywords| KeywordFilter::new(Some(&k)).unwrap().passes(text);
        assert!(f(kw(
            &["alerting", "alert-gpu-xid"],
            &[],
            Some(KeywordMatchMode::All),
            None
        )));
        assert!(!f(kw(
            &["alerting", "alert-hosts-disk"],
            &[],
            Some(KeywordMatchMode::All),
            None
        )));
        assert!(f(kw(&["alerting", "alert-hosts-disk"], &[], None, None)));
        assert!(!f(kw(&["alerting"], &["Xid 79"], None, None)));
        assert!(f(kw(
            &["alerting", ".*alert-gpu-.*"],
            &[],
            Some(KeywordMatchMode::All),
            Some(KeywordMatchType::Regex)
        )));
        assert!(f(kw(
            &["alerting"],
            &[],
            None,
            Some(KeywordMatchType::Exact)
        )));
        assert!(!f(kw(&["alert"], &[], None, Some(KeywordMatchType::Exact))));
        assert!(KeywordFilter::new(None).unwrap().passes(text));
        let bad = KeywordFilter::new(Some(&kw(
            &["(unclosed"],
            &[],
            None,
            Some(KeywordMatchType::Regex),
        )));
        assert!(bad.unwrap_err().contains("not a valid regex"));
        assert!(KeywordFilter::new(None).unwrap().is_empty());
        assert!(
            !KeywordFilter::new(Some(&kw(&[], &["x"], None, None)))
                .unwrap()
                .is_empty()
        );
    }

    /// `Published` accepts what a `CloudEvent` does and renders what
    /// `render` does, without the tree.
    #[test]
    fn published_reads_and_renders_as_the_event_does() {
        let head = r#""specversion":"1.0","id":"e1","source":"opscli/h","type":"dev.ops.x","subject":"ops.clusters.c1.nodes.n1.findings","time":"2026-01-01T00:00:00Z""#;
        let datas = [
            "",
            r#","data":null"#,
            r#","data":"just text""#,
            r#","data":7"#,
            r#","data":{}"#,
            r#","data":[]"#,
            r#","data":{"z":1,"a":{"y":[true,false,null],"b":"x"},"m":[{"k":"v","c":-3}]}"#,
            r#","data":{"b":1,"a":2,"b":3}"#,
            r#","data":{"a\u00e9\n":"tab\there \"q\"","aé":"é","A":"upper","":"empty key"}"#,
            r#","data":{"f":1.5,"g":1e300,"h":0.1,"i":-0.0,"j":18446744073709551616,"k":-9223372036854775808,"l":12345678901234567890}"#,
            r#","data":[[1,[2,[3]]],{"x":{"y":{"z":{}}}}]"#,
            r#","cluster":"c1","datacontenttype":"application/json","extra":{"ignored":true},"data":{"s":"alerting"}"#,
            r#","cluster":null,"data":{"s":"\ud83d\ude00"}"#,
        ];
        let (mut out, mut path) = (String::from("left over"), String::from("left"));
        for data in datas {
            let text = format!("{{{head}{data}}}");
            let full: CloudEvent = serde_json::from_str(&text).unwrap();
            let p = Published::read(text.as_bytes()).unwrap();
            assert!(p.render_into(&mut out, &mut path));
            assert_eq!(out, render(&full), "{text}");
            assert_eq!(p.event(true).as_ref(), Some(&full), "{text}");
            let lazy = p.event(false).unwrap();
            assert_eq!(
                lazy,
                CloudEvent {
                    data: Value::Null,
                    ..full
                }
            );
        }
        // Data nested past the JSON reader's 128 levels: an event, whose
        // data neither renders nor decodes (the reader skips it, saying so).
        let deep = format!("{{{head},\"data\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_str::<CloudEvent>(&deep).is_err());
        let p = Published::read(deep.as_bytes()).unwrap();
        assert!(!p.render_into(&mut out, &mut path));
        assert!(p.event(true).is_none());
        assert_eq!(p.event(false).unwrap().id, "e1");
        // Not events, to either.
        for text in [
            "not json".to_owned(),
            "[1]".to_owned(),
            r#"{"id":"e1"}"#.to_owned(),
            format!("{{{}}}", head.replace(r#""id":"e1""#, r#""id":1"#)),
            format!(r#"{{{head},"datacontenttype":null}}"#),
            format!(r#"{{{head},"id":"again"}}"#),
            format!(r#"{{{head},"cluster":3}}"#),
            format!(r#"{{{head},"data":{{"a":}}}}"#),
        ] {
            assert!(serde_json::from_str::<CloudEvent>(&text).is_err(), "{text}");
            assert!(Published::read(text.as_bytes()).is_none(), "{text}");
        }
    }

    #[test]
    fn render_lists_attributes_then_every_data_path() {
        let e = CloudEvent::new(
            "opscli/h",
            "dev.ops.taskrun.report",
            "ops.clusters.c1.nodes.n1.findings",
            serde_json::json!({
                "status": "alerting",
                "gpu": {"ids": [3, null], "ok": false},
                "note": "two\nlines",
            }),
        )
        .in_cluster("c1");
        assert_eq!(
            render(&e),
            "subject: ops.clusters.c1.nodes.n1.findings\ntype: dev.ops.taskrun.report\nsource: opscli/h\ncluster: c1\n\
             gpu.ids[0]: 3\ngpu.ids[1]: null\ngpu.ok: false\nnote: two\nlines\nstatus: alerting\n"
        );
        let scalar = CloudEvent {
            cluster: None,
            data: serde_json::json!([1.5, "x"]),
            ..e
        };
        assert!(render(&scalar).ends_with("source: opscli/h\n[0]: 1.5\n[1]: x\n"));
    }
}
