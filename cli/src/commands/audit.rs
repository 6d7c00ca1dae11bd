//! `opscli audit show|verify`: the store's hash-chained audit log.

use std::process::ExitCode;

use anyhow::Result;
use ops_store::{AuditCheck, Store};

use crate::args::{AuditCommand, Format};
use crate::config::Config;
use crate::table::{Table, cell};

pub async fn run(cfg: &Config, cmd: AuditCommand) -> Result<ExitCode> {
    let store = ops_app::services::open_store(cfg)?;
    match cmd {
        AuditCommand::Show(a) => {
            let records = store
                .list_audit(a.session.as_deref(), a.after, a.limit)
                .await?;
            if a.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&records)?);
                return Ok(ExitCode::SUCCESS);
            }
            if records.is_empty() {
                eprintln!("No audit records.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["SEQ", "AT", "SESSION", "KIND", "DETAILS"]);
            for r in records {
                t.row([
                    r.seq.to_string(),
                    r.at,
                    r.session_id.unwrap_or_else(|| "-".into()),
                    r.kind,
                    cell(&r.payload, 100),
                ]);
            }
            print!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify => match ops_agent::audit::verify(&store).await? {
            AuditCheck::Intact { records, head } => {
                println!("audit log intact: {records} records, head {head}");
                Ok(ExitCode::SUCCESS)
            }
            AuditCheck::Broken { seq, reason } => {
                println!("audit log BROKEN at record {seq}: {reason}");
                Ok(ExitCode::from(1))
            }
        },
    }
}
