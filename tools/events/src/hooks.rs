//! EventHooks delivery: a [`Hook`] is an EventHooks object compiled once
//! (subject pattern, keyword filter, sink); [`Deliverer::deliver`] hands
//! one event to its sink and returns the [`DeliveryRecord`] the caller
//! stores. Sinks:
//!
//! - `webhook`: POST of the CloudEvent (structured JSON) as it was
//!   published when the dispatcher has that text ([`as_published`]), else
//!   serialised with the hook's `additional` as an extension attribute;
//!   signed with HMAC-SHA256 of
//!   the body when the hook has `options.secret` (header
//!   `X-Ops-Signature-256: sha256=HEX`), `X-Ops-Event-Id` and `X-Ops-Hook`
//!   headers, extra headers from `options.header.NAME`; retried with
//!   exponential backoff on connection errors, timeouts, 429 and 5xx
//!   (`options.retries`, default 4), never on other 4xx.
//! - `slack`: an incoming-webhook message in Block Kit (title, severity,
//!   subject, key fields, a link from `options.link` or the event's).
//! - `xiezuo`: the anchor's chat-bot webhook, a text message
//!   (`{"msgtype":"text","text":{"content":...}}`, as WeCom-style bots take).
//! - `event`: re-publish to `url` rewritten from the source subject (each
//!   `*` filled from the same position: the anchor's findings -> alerts
//!   conversion), with an id derived from hook and event, so a redelivery
//!   is deduplicated like any re-send.
//! - `elasticsearch`: the event as a document in a dated index
//!   `{options.index or ops-events}-YYYY.MM.DD`, written with PUT under the
//!   event id (a redelivery overwrites instead of duplicating); basic auth
//!   from `options.username` / `options.password`.
//! - `task`, `pipeline`, `copilot`: handed to an [`ActionSink`] the
//!   process provides (it starts a run or a triage session; anything
//!   mutating still goes through the approval gate there).
//!
//! Secrets in options (`secret`, `password`, and the URL itself) may be
//! `${env:NAME}` / `${file:PATH}` references.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use ops_model::event::filter::render;
pub use ops_model::event::hook::{Hook, Sink};
use ops_model::event::{CloudEvent, subject};
use ops_store::DeliveryRecord;

use crate::feed::Feed;

/// Whether delivering an event published as `published` reads its
/// `data`: not where every document the hook sends is that text
/// itself (webhook and Elasticsearch sinks; see [`as_published`]),
/// so a reader may leave `data` unread. Everything else a delivery
/// uses is an attribute (id, subject, time).
pub fn reads_data(hook: &Hook, published: &bytes::Bytes) -> bool {
    let text = as_published(hook, Some(published));
    match hook.sink {
        Sink::Webhook { .. } => text.is_none(),
        Sink::Elasticsearch { .. } => text.filter(es_as_published).is_none(),
        _ => true,
    }
}

/// Starts runs or triage sessions for `task` / `pipeline` / `copilot`
/// hooks. The implementation owns the approval gate.
#[async_trait]
pub trait ActionSink: Send + Sync + std::fmt::Debug {
    /// Handles `e` for `hook`; `Ok((status, detail))` such as
    /// `("started", "run tr-...")` or `("awaiting_approval", "ap-...")`.
    async fn start(&self, hook: &Hook, e: &CloudEvent) -> Result<(String, String), String>;
}

/// A sink's document: the event's attributes, then the hook's.
#[derive(Serialize)]
struct Doc<'a> {
    #[serde(flatten)]
    event: &'a CloudEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional: Option<&'a str>,
    #[serde(rename = "@timestamp", skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a str>,
}

/// The event's text as it was published, when a sink document can be
/// exactly that: a JSON object (the caller checked that it is a
/// CloudEvent) and the hook adds no `additional`. The
/// document then carries every attribute the publisher set, extension
/// attributes this process does not know included (as a CloudEvents
/// intermediary should), and is not serialised again.
pub fn as_published<'a>(hook: &Hook, published: Option<&'a bytes::Bytes>) -> Option<&'a str> {
    if hook.additional.is_some() {
        return None;
    }
    let text = std::str::from_utf8(published?).ok()?.trim();
    (text.len() > 2 && text.starts_with('{') && text.ends_with('}')).then_some(text)
}

/// Appends the event as a webhook sends it: as published (see
/// [`as_published`]), else the CloudEvent with the hook's `additional`
/// as an extension attribute (serialised straight to text).
fn push_webhook_doc(
    out: &mut String,
    hook: &Hook,
    e: &CloudEvent,
    published: Option<&bytes::Bytes>,
) {
    match as_published(hook, published) {
        Some(text) => out.push_str(text),
        None => out.push_str(
            &Doc {
                event: e,
                additional: hook.additional.as_deref(),
                timestamp: None,
            }
            .to_json(),
        ),
    }
}

/// Whether a text as published can be an Elasticsearch document with
/// `@timestamp` appended: one line (a `_bulk` body holds one document per
/// line), no `@timestamp` of its own.
fn es_as_published(text: &&str) -> bool {
    !text.contains('\n') && !text.contains("\"@timestamp\"")
}

/// Appends the document an Elasticsearch sink indexes: the webhook
/// document with `@timestamp` (the event's time) as its last field, on
/// one line (a `_bulk` body holds one document per line: a text published
/// over several lines is written anew).
fn push_es_doc(out: &mut String, hook: &Hook, e: &CloudEvent, published: Option<&bytes::Bytes>) {
    match as_published(hook, published).filter(es_as_published) {
        Some(text) => {
            out.push_str(&text[..text.len() - 1]);
            out.push_str(",\"@timestamp\":");
            out.push_str(&Value::from(e.time.as_str()).to_string());
            out.push('}');
        }
        None => out.push_str(
            &Doc {
                event: e,
                additional: hook.additional.as_deref(),
                timestamp: Some(&e.time),
            }
            .to_json(),
        ),
    }
}

impl Doc<'_> {
    fn to_json(&self) -> String {
        // Plain strings and a JSON value: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Retry schedule of HTTP sinks.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff (doubled each time).
    pub base: Duration,
    /// Longest backoff.
    pub max: Duration,
    /// One attempt's time limit.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            retries: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Delivers events to sinks.
#[derive(Debug, Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    feed: Feed,
    actions: Option<Arc<dyn ActionSink>>,
    retry: Retry,
}

type HmacSha256 = Hmac<Sha256>;

/// `sha256=HEX` of HMAC-SHA256(`secret`, `body`): the webhook signature.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", ops_model::hex(&mac.finalize().into_bytes()))
}

fn resolve(v: &str) -> Result<String, String> {
    ops_exec::secret::resolve(v).map_err(|e| e.to_string())
}

/// The outcome of one HTTP attempt.
enum Attempt {
    Ok(u16),
    Retry(Option<u16>, String),
    Fail(u16, String),
}

impl Deliverer {
    /// A deliverer publishing `event` sinks to `feed`.
    pub fn new(feed: Feed, actions: Option<Arc<dyn ActionSink>>, retry: Retry) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(retry.timeout)
            .pool_max_idle_per_host(32)
            .build()
            .unwrap_or_default();
        Deliverer {
            http,
            feed,
            actions,
            retry,
        }
    }

    /// How many events `hook` takes per request: Elasticsearch always
    /// bulk-indexes (up to 500), a webhook with `options.batch: N` gets
    /// CloudEvents batches of up to N; every other sink one at a time.
    pub fn batch_size(hook: &Hook) -> usize {
        match &hook.sink {
            Sink::Elasticsearch { .. } => hook
                .options
                .get("batch")
                .and_then(|b| b.parse().ok())
                .unwrap_or(500),
            Sink::Webhook { .. } => hook
                .options
                .get("batch")
                .and_then(|b| b.parse().ok())
                .unwrap_or(1),
            _ => 1,
        }
        .clamp(1, 5000)
    }

    /// Delivers `events` to `hook` in batches of [`Self::batch_size`];
    /// one record per request, in order (a batch's record names every
    /// event it carried).
    pub async fn deliver_all(&self, hook: &Hook, events: &[CloudEvent]) -> Vec<DeliveryRecord> {
        self.deliver_all_as_published(hook, events, &[]).await
    }

    /// [`Self::deliver_all`] with each event's text as it was published
    /// (`published[i]` for `events[i]`; empty when unknown): webhook and
    /// Elasticsearch documents are made from it (see [`as_published`]).
    pub async fn deliver_all_as_published(
        &self,
        hook: &Hook,
        events: &[CloudEvent],
        published: &[bytes::Bytes],
    ) -> Vec<DeliveryRecord> {
        let size = Self::batch_size(hook);
        let mut out = Vec::with_capacity(events.len());
        if size == 1 {
            for (i, e) in events.iter().enumerate() {
                out.push(self.deliver_as_published(hook, e, published.get(i)).await);
            }
            return out;
        }
        for (i, chunk) in events.chunks(size).enumerate() {
            let texts = published
                .get(i * size..(i * size + chunk.len()))
                .unwrap_or(&[]);
            out.push(self.deliver_batch(hook, chunk, texts).await);
        }
        out
    }

    async fn deliver_batch(
        &self,
        hook: &Hook,
        events: &[CloudEvent],
        published: &[bytes::Bytes],
    ) -> DeliveryRecord {
        let mut rec = self.record(hook, &events[0]);
        if events.len() > 1 {
            rec.batch = events.iter().map(|e| e.id.clone()).collect();
        }
        let outcome = match &hook.sink {
            Sink::Elasticsearch { url, index } => {
                let mut body = String::new();
                for (i, e) in events.iter().enumerate() {
                    let idx = format!("{index}-{}", day(e));
                    body.push_str(&json!({"index": {"_index": idx, "_id": e.id}}).to_string());
                    body.push('\n');
                    push_es_doc(&mut body, hook, e, published.get(i));
                    body.push('\n');
                }
                let target = format!("{url}/_bulk");
                self.send_ct(
                    hook,
                    reqwest::Method::POST,
                    &target,
                    &body,
                    "application/x-ndjson",
                    &[],
                    &mut rec,
                )
                .await
                .map(|(_, detail)| (detail, Some(body)))
            }
            _ => {
                // Webhook, CloudEvents batch mode: a JSON array.
                let mut body = String::from("[");
                for (i, e) in events.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    push_webhook_doc(&mut body, hook, e, published.get(i));
                }
                body.push(']');
                let url = match &hook.sink {
                    Sink::Webhook { url } => url.clone(),
                    _ => String::new(),
                };
                match self.webhook_headers(hook, &events[0], &body) {
                    Ok(headers) => self
                        .send_ct(
                            hook,
                            reqwest::Method::POST,
                            &url,
                            &body,
                            "application/cloudevents-batch+json",
                            &headers,
                            &mut rec,
                        )
                        .await
                        .map(|(_, d)| (d, None)),
                    Err(e) => Err(e),
                }
            }
        };
        let n = events.len();
        match &outcome {
            Ok((detail, _)) => {
                rec.status = "delivered".into();
                rec.detail = format!("{detail} (batch of {n})");
            }
            Err(why) => {
                rec.status = "failed".into();
                rec.detail = ops_model::clip(&format!("{why} (batch of {n})"), 500);
            }
        }
        rec
    }

    fn record(&self, hook: &Hook, e: &CloudEvent) -> DeliveryRecord {
        DeliveryRecord {
            seq: 0,
            hook: hook.key.clone(),
            event_id: e.id.clone(),
            subject: e.subject.clone(),
            batch: Vec::new(),
            sink: hook.sink.kind().to_owned(),
            status: String::new(),
            attempts: 0,
            code: None,
            detail: String::new(),
            at: String::new(),
        }
    }

    /// Signature and extra headers of a webhook request.
    fn webhook_headers(
        &self,
        hook: &Hook,
        e: &CloudEvent,
        body: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let mut headers: Vec<(String, String)> = vec![
            ("X-Ops-Event-Id".into(), e.id.clone()),
            ("X-Ops-Hook".into(), hook.key.clone()),
        ];
        if let Some(secret) = hook.options.get("secret") {
            let secret = resolve(secret)?;
            headers.push((
                "X-Ops-Signature-256".into(),
                signature(secret.as_bytes(), body.as_bytes()),
            ));
        }
        for (k, v) in &hook.options {
            if let Some(name) = k.strip_prefix("header.") {
                headers.push((name.to_owned(), resolve(v)?));
            }
        }
        Ok(headers)
    }

    /// Hands `e` to `hook`'s sink (the caller checked [`Hook::wants`]).
    pub async fn deliver(&self, hook: &Hook, e: &CloudEvent) -> DeliveryRecord {
        self.deliver_as_published(hook, e, None).await
    }

    /// [`Self::deliver`] with the event's text as it was published, when
    /// known (see [`as_published`]).
    pub async fn deliver_as_published(
        &self,
        hook: &Hook,
        e: &CloudEvent,
        published: Option<&bytes::Bytes>,
    ) -> DeliveryRecord {
        let mut rec = self.record(hook, e);
        let result = match &hook.sink {
            Sink::Webhook { url } => self.webhook(hook, url, e, published, &mut rec).await,
            Sink::Slack { url } => {
                let body = slack_message(hook, e).to_string();
                self.post(hook, url, &body, &[], &mut rec).await
            }
            Sink::Xiezuo { url } => {
                let mut text = render(e);
                if let Some(a) = &hook.additional {
                    text.push_str(a);
                    text.push('\n');
                }
                let body = json!({"msgtype": "text", "text": {"content": text}});
                self.post(hook, url, &body.to_string(), &[], &mut rec).await
            }
            Sink::Event { subject } => self.republish(hook, subject, e).await,
            Sink::Elasticsearch { url, index } => {
                self.elasticsearch(hook, url, index, e, published, &mut rec)
                    .await
            }
            Sink::Action { .. } => match &self.actions {
                Some(a) => {
                    rec.attempts = 1;
                    a.start(hook, e).await
                }
                None => Err(format!(
                    "{} hooks are handled by `opscli hook run` (no action runner here)",
                    hook.sink.kind()
                )),
            },
        };
        match result {
            Ok((status, detail)) => {
                rec.status = status;
                rec.detail = detail;
            }
            Err(detail) => {
                rec.status = "failed".into();
                rec.detail = ops_model::clip(&detail, 500);
            }
        }
        rec
    }

    async fn webhook(
        &self,
        hook: &Hook,
        url: &str,
        e: &CloudEvent,
        published: Option<&bytes::Bytes>,
        rec: &mut DeliveryRecord,
    ) -> Result<(String, String), String> {
        let mut body = String::new();
        push_webhook_doc(&mut body, hook, e, published);
        let headers = self.webhook_headers(hook, e, &body)?;
        self.post(hook, url, &body, &headers, rec).await
    }

    async fn republish(
        &self,
        hook: &Hook,
        target: &str,
        e: &CloudEvent,
    ) -> Result<(String, String), String> {
        let to = subject::rewrite(target, &e.subject);
        if to == e.subject || subject::matches(&hook.subject, &to) {
            return Err(format!(
                "re-publishing to {to} would feed the hook its own event"
            ));
        }
        let mut out = e.clone();
        out.id =
            ops_model::hex(&Sha256::digest(format!("{}\n{}", hook.key, e.id)))[..32].to_owned();
        out.subject = to.clone();
        out.source = format!("ops/eventhooks/{}", hook.key);
        if let Some(a) = &hook.additional {
            if let Value::Object(m) = &mut out.data {
                m.insert("additional".into(), json!(a));
            }
        }
        self.feed.publish(out).await.map_err(|x| x.to_string())?;
        Ok(("delivered".into(), format!("published to {to}")))
    }

    async fn elasticsearch(
        &self,
        hook: &Hook,
        url: &str,
        index: &str,
        e: &CloudEvent,
        published: Option<&bytes::Bytes>,
        rec: &mut DeliveryRecord,
    ) -> Result<(String, String), String> {
        let target = format!("{url}/{index}-{}/_doc/{}", day(e), e.id);
        let mut doc = String::new();
        push_es_doc(&mut doc, hook, e, published);
        self.send(hook, reqwest::Method::PUT, &target, &doc, &[], rec)
            .await
    }

    async fn post(
        &self,
        hook: &Hook,
        url: &str,
        body: &str,
        headers: &[(String, String)],
        rec: &mut DeliveryRecord,
    ) -> Result<(String, String), String> {
        self.send(hook, reqwest::Method::POST, url, body, headers, rec)
            .await
    }

    async fn send(
        &self,
        hook: &Hook,
        method: reqwest::Method,
        url: &str,
        body: &str,
        headers: &[(String, String)],
        rec: &mut DeliveryRecord,
    ) -> Result<(String, String), String> {
        self.send_ct(hook, method, url, body, "application/json", headers, rec)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_ct(
        &self,
        hook: &Hook,
        method: reqwest::Method,
        url: &str,
        body: &str,
        content_type: &str,
        headers: &[(String, String)],
        rec: &mut DeliveryRecord,
    ) -> Result<(String, String), String> {
        let url = resolve(url)?;
        let retries = hook
            .options
            .get("retries")
            .and_then(|r| r.parse().ok())
            .unwrap_or(self.retry.retries);
        let mut backoff = self.retry.base;
        loop {
            rec.attempts += 1;
            match self
                .attempt(hook, &method, &url, body, content_type, headers)
                .await
            {
                Attempt::Ok(code) => {
                    rec.code = Some(code);
                    return Ok(("delivered".into(), format!("HTTP {code}")));
                }
                Attempt::Fail(code, why) => {
                    rec.code = Some(code);
                    return Err(format!("HTTP {code}: {why}"));
                }
                Attempt::Retry(code, why) => {
                    rec.code = code;
                    if rec.attempts > retries {
                        return Err(format!("gave up after {} attempts: {why}", rec.attempts));
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max);
        }
    }

    async fn attempt(
        &self,
        hook: &Hook,
        method: &reqwest::Method,
        url: &str,
        body: &str,
        content_type: &str,
        headers: &[(String, String)],
    ) -> Attempt {
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("Content-Type", content_type)
            .body(body.to_owned());
        if let (Some(u), Some(p)) = (hook.options.get("username"), hook.options.get("password")) {
            match resolve(p) {
                Ok(p) => req = req.basic_auth(u, Some(p)),
                Err(e) => return Attempt::Fail(0, e),
            }
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if resp.status().is_success() {
                    // A bulk request succeeds as a whole but reports
                    // failed items in its body.
                    if url.ends_with("/_bulk") {
                        let text = resp.text().await.unwrap_or_default();
                        let v: Value = serde_json::from_str(&text).unwrap_or_default();
                        if v["errors"] == json!(true) {
                            let first = v["items"]
                                .as_array()
                                .and_then(|items| {
                                    items
                                        .iter()
                                        .find_map(|i| i["index"]["error"]["reason"].as_str())
                                })
                                .unwrap_or("item errors");
                            return Attempt::Fail(code, format!("bulk: {first}"));
                        }
                    }
                    return Attempt::Ok(code);
                }
                let text = resp.text().await.unwrap_or_default();
                let why = ops_model::clip(text.trim(), 200);
                if code == 429 || code >= 500 {
                    Attempt::Retry(Some(code), format!("HTTP {code}: {why}"))
                } else {
                    Attempt::Fail(code, why)
                }
            }
            Err(e) => Attempt::Retry(None, error_chain(&e)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The Slack Block Kit message for `e`.
pub fn slack_message(hook: &Hook, e: &CloudEvent) -> Value {
    let d = &e.data;
    let pick = |keys: &[&str]| {
        keys.iter()
            .map(|k| text_of(&d[*k]))
            .find(|s| !s.is_empty())
            .unwrap_or_default()
    };
    let channel = e.subject.rsplit('.').next().unwrap_or("");
    let mut severity = pick(&["severity", "level", "status", "phase"]);
    if severity.is_empty() {
        severity = match channel {
            "alerts" => "warning".into(),
            _ => "info".into(),
        };
    }
    let mut title = pick(&["title", "summary", "message", "reason"]);
    if title.is_empty() {
        title = format!("{} on {}", e.kind, e.subject);
    }
    let title = ops_model::clip(&title, 140);
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{severity}")}),
        json!({"type": "mrkdwn", "text": format!("*Subject*\n`{}`", e.subject)}),
    ];
    if let Some(c) = &e.cluster {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Cluster*\n{c}")}));
    }
    if let Value::Object(m) = d {
        for (k, v) in m.iter().filter(|(k, _)| {
            !["title", "summary", "message", "severity", "level"].contains(&k.as_str())
        }) {
            if fields.len() >= 10 {
                break;
            }
            let v = text_of(v);
            if !v.is_empty() {
                fields.push(json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", ops_model::clip(&v, 120))}));
            }
        }
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(a) = &hook.additional {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": a}}));
    }
    let link = hook
        .options
        .get("link")
        .cloned()
        .or_else(|| Some(pick(&["link", "url", "generatorURL"])).filter(|s| !s.is_empty()));
    let mut context =
        vec![json!({"type": "mrkdwn", "text": format!("{} · {} · {}", e.source, e.time, e.id)})];
    if let Some(l) = link {
        context.push(json!({"type": "mrkdwn", "text": format!("<{l}|Open>")}));
    }
    blocks.push(json!({"type": "context", "elements": context}));
    json!({
        "text": format!("[{severity}] {title}"),
        "blocks": blocks,
    })
}

/// `YYYY.MM.DD` of the event's time (UTC; now when it does not parse).
fn day(e: &CloudEvent) -> String {
    chrono::DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now())
        .format("%Y.%m.%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_model::event::filter::Published;
    use ops_model::{Kind, Object};

    fn hook(kind: &str, additional: &str) -> Hook {
        let url = match kind {
            "event" => "ops.clusters.*.nodes.*.alerts",
            _ => "http://127.0.0.1:9/x",
        };
        let yaml = format!(
            "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: h, namespace: ops-system}}\nspec:\n  type: {kind}\n  subject: ops.clusters.*.nodes.*.findings\n  url: '{url}'\n{additional}"
        );
        let Ok(Object::EventHooks(h)) = Object::from_yaml_str(Kind::EventHooks, &yaml) else {
            panic!("not an EventHooks: {yaml}")
        };
        Hook::compile(&h).unwrap()
    }

    /// Where a sink does not read `data`, an event read without it gives
    /// the same documents as the whole event.
    #[test]
    fn sinks_that_send_the_published_text_do_not_read_data() {
        let e = CloudEvent::new(
            "opscli/h",
            "dev.ops.taskrun.report",
            "ops.clusters.c1.nodes.n1.findings",
            json!({"status": "alerting", "n": [1, {"b": 2}]}),
        );
        let one_line = bytes::Bytes::from(serde_json::to_vec(&e).unwrap());
        let pretty = bytes::Bytes::from(serde_json::to_vec_pretty(&e).unwrap());
        let stamped = {
            let mut v = serde_json::to_value(&e).unwrap();
            v["@timestamp"] = json!("2026-01-01T00:00:00Z");
            bytes::Bytes::from(v.to_string())
        };
        let hooks = [
            hook("webhook", ""),
            hook("webhook", "  additional: 'team: gpu'\n"),
            hook("elasticsearch", ""),
            hook("slack", ""),
            hook("event", ""),
        ];
        let mut lazy_ones = 0;
        for h in &hooks {
            for text in [&one_line, &pretty, &stamped] {
                let p = Published::read(text).unwrap();
                let full = p.event(true).unwrap();
                assert_eq!(full, e);
                if reads_data(h, text) {
                    continue;
                }
                lazy_ones += 1;
                let lazy = p.event(false).unwrap();
                assert_eq!(lazy.data, Value::Null);
                let (mut a, mut b) = (String::new(), String::new());
                match h.sink {
                    Sink::Webhook { .. } => {
                        push_webhook_doc(&mut a, h, &full, Some(text));
                        push_webhook_doc(&mut b, h, &lazy, Some(text));
                    }
                    Sink::Elasticsearch { .. } => {
                        push_es_doc(&mut a, h, &full, Some(text));
                        push_es_doc(&mut b, h, &lazy, Some(text));
                    }
                    _ => panic!("{} should read data", h.sink.kind()),
                }
                assert_eq!(a, b, "{} with {text:?}", h.sink.kind());
                assert!(a.contains("alerting"), "{a}");
            }
        }
        // Webhook: all three texts; Elasticsearch: the one-line one.
        assert_eq!(lazy_ones, 4);
        assert!(reads_data(&hooks[2], &pretty) && reads_data(&hooks[2], &stamped));
        assert!(reads_data(&hooks[1], &one_line));
    }
}
