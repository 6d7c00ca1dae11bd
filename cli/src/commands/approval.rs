//! `opscli approval list|approve|deny`: decisions on approvals that no
//! chat is waiting on (runs and sessions started by EventHooks). The
//! decision is recorded in the store; the session that asked picks it up,
//! audits it, and runs the call only if it is exactly the one approved.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use ops_agent::approvals::{Answer, ApprovalRequest, Approvals};
use ops_store::Store;

use crate::args::{ApprovalCommand, Format};
use crate::config::Config;
use crate::table::{Table, cell};

fn who(by: Option<&String>) -> String {
    by.cloned()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into())
}

pub async fn run(cfg: &Config, cmd: ApprovalCommand) -> Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::new(crate::commands::open_store(cfg)?);
    let approvals = Approvals::new(Arc::clone(&store), Duration::from_secs(3600));
    match cmd {
        ApprovalCommand::List(a) => {
            let recs = store.list_approvals(None, !a.all).await?;
            if a.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&recs)?);
                return Ok(ExitCode::SUCCESS);
            }
            if recs.is_empty() {
                eprintln!("No approvals{}.", if a.all { "" } else { " pending" });
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["ID", "STATE", "SESSION", "EXPIRES", "CALL"]);
            for r in &recs {
                let summary = serde_json::from_str::<ApprovalRequest>(&r.request)
                    .map(|q| q.summary)
                    .unwrap_or_default();
                t.row([
                    r.id.clone(),
                    r.state.clone(),
                    r.session_id.clone().unwrap_or_default(),
                    r.expires_at.clone().unwrap_or_default(),
                    cell(&summary, 70),
                ]);
            }
            print!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        ApprovalCommand::Approve(a) => {
            if a.reason.is_some() {
                bail!("--reason goes with `deny`");
            }
            let answer = if a.session {
                Answer::Session
            } else {
                Answer::Once
            };
            decide(Arc::clone(&store), &approvals, &a.id, answer, a.by.as_ref()).await
        }
        ApprovalCommand::Deny(a) => {
            if a.session {
                bail!("--session goes with `approve`");
            }
            let reason = a.reason.clone().unwrap_or_else(|| "denied".into());
            decide(
                Arc::clone(&store),
                &approvals,
                &a.id,
                Answer::Deny(reason),
                a.by.as_ref(),
            )
            .await
        }
    }
}

async fn decide(
    store: Arc<dyn Store>,
    approvals: &Approvals,
    id: &str,
    answer: Answer,
    by: Option<&String>,
) -> Result<ExitCode> {
    let by = who(by);
    let rec = approvals.answer(id, &answer, &by).await?;
    // The decider records the decision (the waiting session records it
    // again when it acts on it): `audit verify` holds every decided
    // approval against an audited decision.
    let event = ops_agent::audit::AuditEvent::decided(&rec.id, &answer, &by);
    ops_agent::audit::Audit::new(store)
        .record(rec.session_id.as_deref(), &event)
        .await
        .map_err(|e| anyhow::anyhow!("the decision is stored but could not be audited: {e}"))?;
    println!(
        "{} {} by {}",
        rec.id,
        rec.state,
        rec.decided_by.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
