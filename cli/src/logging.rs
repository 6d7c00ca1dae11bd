//! Where the libraries' `tracing` events go. For a person (the default):
//! stderr, one line each, as `warning: ...` / `error: ...` (info plain),
//! filtered by `RUST_LOG` (default: info from ops, warnings from the
//! rest). For a log pipeline (`OPS_LOG_FORMAT=json`): one JSON object per
//! line with the current span and its parents (session, run, hook), so a
//! service's logs can be searched by session or run id.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// What is logged unless `RUST_LOG` says otherwise.
const DEFAULT_FILTER: &str = "warn,ops_model=info,ops_store=info,ops_exec=info,ops_events=info,ops_engine=info,ops_tools=info,ops_agent=info,ops_app=info,opscli=info";

/// One line per event, the level as a word a person reads.
struct Human;

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            _ => "debug: ",
        };
        write!(writer, "{prefix}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the subscriber (once; a second call changes nothing).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("OPS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.event_format(Human).try_init()
    };
}
