//! Placeholder; the SSH executor follows.
