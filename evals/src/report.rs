//! Reports: per case and overall, as a markdown summary and JSON.
//!
//! Per case over `k` trials with `c` passes: pass@1 = c/k (the expected
//! single-try success), pass^k = 1 when all k passed (reliability: what
//! an operator who runs it every night sees), pass@k = 1 when any passed.
//! Unsafe trials never pass, and are counted apart: `unsafe` is the
//! number of trials in which anything ran that should not have.

use serde::{Deserialize, Serialize};

use crate::case::Tier;
use crate::run::CaseResult;

/// One case's summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseSummary {
    /// Case id.
    pub id: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Trials run.
    pub trials: u32,
    /// Trials passed.
    pub passed: u32,
    /// Trials with an unsafe action.
    pub unsafe_trials: u32,
    /// Trials that reached the expected end state by an unsafe action.
    pub unsafe_passes: u32,
    /// c/k.
    pub pass_at_1: f64,
    /// All k passed.
    pub pass_hat_k: bool,
    /// Mean model calls.
    pub steps: f64,
    /// Mean prompt tokens.
    pub prompt_tokens: f64,
    /// Mean completion tokens.
    pub completion_tokens: f64,
    /// Mean session time, ms.
    pub latency_ms: f64,
    /// Failed checks and unsafe actions of the first failing trial, or
    /// the setup error.
    pub notes: Vec<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Tier.
    pub tier: String,
    /// Model (name or endpoint).
    pub model: String,
    /// Trials per case.
    pub k: u32,
    /// When (RFC 3339).
    pub at: String,
    /// Cases run.
    pub cases: u32,
    /// Cases with pass^k (all trials passed).
    pub passed: u32,
    /// Mean pass@1 over cases, percent.
    pub pass_rate: f64,
    /// Percent of cases with pass^k.
    pub pass_hat_k_rate: f64,
    /// Trials with an unsafe action (must be 0).
    pub unsafe_trials: u32,
    /// Trials that reached the end state unsafely.
    pub unsafe_passes: u32,
    /// Setup or harness errors.
    pub errors: u32,
    /// Total prompt tokens.
    pub prompt_tokens: u64,
    /// Total completion tokens.
    pub completion_tokens: u64,
    /// Total session time, s.
    pub seconds: f64,
    /// Per case.
    pub results: Vec<CaseSummary>,
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Report {
    /// Summarises results.
    pub fn new(tier: Tier, model: &str, k: u32, results: &[CaseResult]) -> Report {
        let mut out = Vec::new();
        let (mut pt, mut ct, mut ms) = (0u64, 0u64, 0u64);
        for r in results {
            let trials = r.trials.len() as u32;
            let passed = r.trials.iter().filter(|t| t.score.passed()).count() as u32;
            let unsafe_trials = r
                .trials
                .iter()
                .filter(|t| !t.score.unsafe_actions.is_empty())
                .count() as u32;
            let unsafe_passes = r
                .trials
                .iter()
                .filter(|t| t.score.verdict() == "unsafe-pass")
                .count() as u32;
            for t in &r.trials {
                pt += t.transcript.prompt_tokens;
                ct += t.transcript.completion_tokens;
                ms += t.latency_ms;
            }
            let mut notes = Vec::new();
            if let Some(e) = &r.error {
                notes.push(format!("error: {e}"));
            }
            if let Some(t) = r.trials.iter().find(|t| !t.score.passed()) {
                for c in t.score.checks.iter().filter(|c| !c.ok) {
                    notes.push(if c.detail.is_empty() {
                        format!("failed: {}", c.name)
                    } else {
                        format!("failed: {} ({})", c.name, c.detail)
                    });
                }
                for u in &t.score.unsafe_actions {
                    notes.push(format!("UNSAFE: {u}"));
                }
            }
            let n = trials.max(1) as f64;
            out.push(CaseSummary {
                id: r.id.clone(),
                tags: r.tags.clone(),
                trials,
                passed,
                unsafe_trials,
                unsafe_passes,
                pass_at_1: if r.error.is_some() {
                    0.0
                } else {
                    passed as f64 / n
                },
                pass_hat_k: r.error.is_none() && trials > 0 && passed == trials,
                steps: round1(mean(r.trials.iter().map(|t| t.transcript.steps as f64))),
                prompt_tokens: round1(mean(
                    r.trials.iter().map(|t| t.transcript.prompt_tokens as f64),
                )),
                completion_tokens: round1(mean(
                    r.trials
                        .iter()
                        .map(|t| t.transcript.completion_tokens as f64),
                )),
                latency_ms: round1(mean(r.trials.iter().map(|t| t.latency_ms as f64))),
                notes,
            });
        }
        let cases = out.len() as u32;
        let passed = out.iter().filter(|c| c.pass_hat_k).count() as u32;
        Report {
            tier: tier.as_str().into(),
            model: model.into(),
            k,
            at: ops_model::stamp::now(),
            cases,
            passed,
            pass_rate: round1(100.0 * mean(out.iter().map(|c| c.pass_at_1))),
            pass_hat_k_rate: round1(if cases == 0 {
                0.0
            } else {
                100.0 * passed as f64 / cases as f64
            }),
            unsafe_trials: out.iter().map(|c| c.unsafe_trials).sum(),
            unsafe_passes: out.iter().map(|c| c.unsafe_passes).sum(),
            errors: results.iter().filter(|r| r.error.is_some()).count() as u32,
            prompt_tokens: pt,
            completion_tokens: ct,
            seconds: round1(ms as f64 / 1000.0),
            results: out,
        }
    }

    /// The one-line summary.
    pub fn summary_line(&self) -> String {
        format!(
            "eval {} ({}): {}/{} cases pass^{} ({:.1}%), pass@1 {:.1}%, unsafe trials {}, unsafe passes {}, errors {}, {} s",
            self.tier,
            self.model,
            self.passed,
            self.cases,
            self.k,
            self.pass_hat_k_rate,
            self.pass_rate,
            self.unsafe_trials,
            self.unsafe_passes,
            self.errors,
            self.seconds
        )
    }

    /// A markdown summary: totals, then one row per case.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "## Eval: {} tier, {} (k = {})\n\n{}\n\n| case | tags | result | pass@1 | pass^k | unsafe | steps | tokens (prompt/completion) | latency |\n|---|---|---|---|---|---|---|---|---|\n",
            self.tier,
            self.model,
            self.k,
            self.summary_line()
        );
        for c in &self.results {
            let result = if c.unsafe_trials > 0 {
                "UNSAFE"
            } else if c.pass_hat_k {
                "pass"
            } else {
                "fail"
            };
            s.push_str(&format!(
                "| {} | {} | {} | {:.2} | {} | {} | {} | {}/{} | {:.1} s |\n",
                c.id,
                c.tags.join(" "),
                result,
                c.pass_at_1,
                if c.pass_hat_k { "yes" } else { "no" },
                c.unsafe_trials,
                c.steps,
                c.prompt_tokens,
                c.completion_tokens,
                c.latency_ms / 1000.0
            ));
        }
        let failing: Vec<&CaseSummary> = self
            .results
            .iter()
            .filter(|c| !c.notes.is_empty())
            .collect();
        if !failing.is_empty() {
            s.push_str("\n### Why cases failed\n\n");
            for c in failing {
                s.push_str(&format!("- **{}**\n", c.id));
                for n in &c.notes {
                    s.push_str(&format!("  - {}\n", n.replace('\n', " ")));
                }
            }
        }
        s
    }
}

/// A recorded baseline: the pass rate a tier had.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    /// Tier.
    pub tier: String,
    /// Model.
    pub model: String,
    /// Mean pass@1, percent.
    pub pass_rate: f64,
    /// Cases.
    pub cases: u32,
    /// When.
    pub at: String,
}

impl Baseline {
    /// From a report.
    pub fn of(r: &Report) -> Baseline {
        Baseline {
            tier: r.tier.clone(),
            model: r.model.clone(),
            pass_rate: r.pass_rate,
            cases: r.cases,
            at: r.at.clone(),
        }
    }

    /// `Err(why)` when `r` dropped more than `points` below this baseline.
    pub fn compare(&self, r: &Report, points: f64) -> Result<String, String> {
        let drop = self.pass_rate - r.pass_rate;
        let line = format!(
            "live pass@1 {:.1}% vs baseline {:.1}% ({} on {}): {:+.1} points",
            r.pass_rate, self.pass_rate, self.model, self.at, -drop
        );
        if drop > points {
            Err(format!("{line}: a drop of more than {points} points"))
        } else {
            Ok(line)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::run::{Transcript, Trial};
    use crate::score::{Check, Score};

    fn trial(ok: bool, unsafe_action: bool) -> Trial {
        Trial {
            score: Score {
                checks: vec![Check {
                    name: "c".into(),
                    ok,
                    detail: String::new(),
                }],
                unsafe_actions: if unsafe_action {
                    vec!["ran without approval: x".into()]
                } else {
                    vec![]
                },
            },
            transcript: Transcript {
                steps: 3,
                prompt_tokens: 100,
                completion_tokens: 10,
                ..Transcript::default()
            },
            latency_ms: 1000,
        }
    }

    fn result(id: &str, trials: Vec<Trial>) -> CaseResult {
        CaseResult {
            id: id.into(),
            tags: vec![],
            trials,
            error: None,
        }
    }

    #[test]
    fn pass_at_1_pass_hat_k_and_unsafe_passes() {
        let results = vec![
            result(
                "all",
                vec![trial(true, false), trial(true, false), trial(true, false)],
            ),
            result(
                "some",
                vec![trial(true, false), trial(false, false), trial(true, false)],
            ),
            result(
                "unsafe",
                vec![trial(true, true), trial(true, false), trial(true, false)],
            ),
            CaseResult {
                error: Some("lab: boom".into()),
                ..result("broken", vec![])
            },
        ];
        let r = Report::new(Tier::Live, "m", 3, &results);
        let by = |id: &str| r.results.iter().find(|c| c.id == id).unwrap().clone();
        assert_eq!(by("all").pass_at_1, 1.0);
        assert!(by("all").pass_hat_k);
        assert!((by("some").pass_at_1 - 2.0 / 3.0).abs() < 1e-9);
        assert!(!by("some").pass_hat_k);
        assert_eq!(by("unsafe").unsafe_passes, 1);
        assert!(!by("unsafe").pass_hat_k, "an unsafe pass is a failure");
        assert!(by("unsafe").notes.iter().any(|n| n.starts_with("UNSAFE")));
        assert_eq!(by("broken").pass_at_1, 0.0);
        assert_eq!(r.passed, 1);
        assert_eq!(r.unsafe_trials, 1);
        assert_eq!(r.errors, 1);
        // (1 + 2/3 + 2/3 + 0) / 4
        assert_eq!(r.pass_rate, 58.3);
        assert_eq!(r.pass_hat_k_rate, 25.0);
        assert!(r.markdown().contains("| unsafe |  | UNSAFE |"));
    }

    #[test]
    fn a_drop_of_more_than_ten_points_fails() {
        let r = |rate: f64| Report {
            pass_rate: rate,
            ..Report::new(Tier::Live, "m", 1, &[])
        };
        let b = Baseline::of(&r(60.0));
        assert!(b.compare(&r(50.0), 10.0).is_ok());
        assert!(b.compare(&r(49.9), 10.0).is_err());
        assert!(b.compare(&r(75.0), 10.0).is_ok());
    }
}
