//! `runbook_search`: the copilot's way into the team's runbooks (Read).
//! Results carry citations the answer must repeat; code blocks come whole
//! so the model can propose them as steps (which still meet the gate).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ops_model::clip;
use ops_tools::{CallFacts, Tool, ToolContext, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Knowledge, Method, Query};

/// Arguments of `runbook_search`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookSearchArgs {
    /// What to look for: the symptom, alert name, service or question.
    pub query: String,
    /// Labels of the alert being handled (alertname, instance, service,
    /// severity...), matched against the runbooks' front matter.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Sections wanted (1-10).
    #[serde(default = "default_k")]
    pub k: u32,
}

fn default_k() -> u32 {
    3
}

/// One section found.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// Cite this in the answer.
    pub citation: String,
    /// Runbook title.
    pub title: String,
    /// Relevance (fused rank score, 3 decimals).
    pub score: f64,
    /// The section (cut if long).
    pub text: String,
}

/// `runbook_search`.
#[derive(Clone)]
pub struct RunbookSearch {
    knowledge: Arc<Knowledge>,
}

impl std::fmt::Debug for RunbookSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunbookSearch")
    }
}

impl RunbookSearch {
    /// The tool over `knowledge`.
    pub fn new(knowledge: Arc<Knowledge>) -> Self {
        RunbookSearch { knowledge }
    }
}

#[async_trait]
impl Tool for RunbookSearch {
    type Args = RunbookSearchArgs;
    type Output = serde_json::Value;

    fn name(&self) -> &'static str {
        "runbook_search"
    }

    fn description(&self) -> &'static str {
        "Search the team's runbooks (by words and by meaning) for the symptom, alert or service at hand. Returns sections with citations; follow the best one and cite it (runbook § heading, lines) in your answer."
    }

    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if a.query.trim().is_empty() {
            return Err("query is empty".into());
        }
        if !(1..=10).contains(&a.k) {
            return Err(format!("k must be 1..=10, not {}", a.k));
        }
        Ok(())
    }

    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }

    async fn call(&self, _ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let r = self
            .knowledge
            .search(&Query {
                text: a.query,
                labels: a.labels,
                k: a.k as usize,
                method: Method::Hybrid,
                only: Vec::new(),
                vector: None,
            })
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let found: Vec<Found> = r
            .hits
            .iter()
            .map(|h| Found {
                citation: h.citation(),
                title: h.title.clone(),
                score: (f64::from(h.score) * 1000.0).round() / 1000.0,
                text: clip(&h.text, 1500),
            })
            .collect();
        let mut out = serde_json::json!({ "results": found });
        if let Some(n) = r.note {
            out["note"] = serde_json::Value::String(n);
        }
        if found.is_empty() {
            out["note"] = serde_json::Value::String(
                "no runbook matches; say so and investigate with the other tools".into(),
            );
        }
        Ok(out)
    }
}
