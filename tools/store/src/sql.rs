//! What the SQLite modules share: a database error as a [`StoreError`].

use crate::StoreError;

/// Wraps a SQLite error with the store's location.
pub(crate) fn db_err(loc: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Database {
        path: loc.to_owned(),
        source: Box::new(source),
    }
}
