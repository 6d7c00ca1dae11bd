//! Timestamps as `ops` writes them everywhere (store records, events,
//! approvals, heartbeats): RFC 3339 in UTC with milliseconds and `Z`, so
//! they also sort as text.

use chrono::{DateTime, SecondsFormat, Utc};

/// `t` as `2026-11-22T14:35:38.123Z`.
pub fn of(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now.
pub fn now() -> String {
    of(Utc::now())
}

/// `age` ago (now when it does not fit a date).
pub fn ago(age: std::time::Duration) -> String {
    of(Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::zero()))
}
