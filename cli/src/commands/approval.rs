//! `opscli approval list|approve|deny`: decisions on any pending approval
//! (a hook's call, another terminal's chat). The decision is recorded and
//! audited in the store under the local OS account; the waiting call is
//! woken by the store's change signal and runs only if it is exactly the
//! call approved. The first decision wins.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use ops_agent::approvals::{Answer, ApprovalRequest, Approvals};
use ops_store::Store;

use crate::args::{ApprovalCommand, Format};
use crate::config::Config;
use crate::table::{Table, cell};

pub async fn run(cfg: &Config, cmd: ApprovalCommand) -> Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::new(ops_app::services::open_store(cfg)?);
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
            decide(Arc::clone(&store), &approvals, &a.id, answer).await
        }
        ApprovalCommand::Deny(a) => {
            if a.session {
                bail!("--session goes with `approve`");
            }
            let reason = a.reason.clone().unwrap_or_else(|| "denied".into());
            decide(Arc::clone(&store), &approvals, &a.id, Answer::Deny(reason)).await
        }
    }
}

async fn decide(
    store: Arc<dyn Store>,
    approvals: &Approvals,
    id: &str,
    answer: Answer,
) -> Result<ExitCode> {
    // The decider is the OS account running this command; the decision
    // is recorded and audited here (the waiting call reads it from the
    // store): `audit verify` holds every decided approval against an
    // audited decision.
    let by = crate::commands::local_principal();
    let rec = approvals.answer(id, &answer, &by).await?;
    let event = ops_agent::audit::AuditEvent::decided(&rec.id, &answer, &by.to_string());
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
