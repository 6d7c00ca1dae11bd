//! The audit log's seal: a key kept outside the store, and a head file.
//!
//! With a seal, every audit record's hash is an HMAC-SHA256 under a key
//! that lives in its own file (mode 0600, never in the database), so a
//! chain edited and recomputed by someone who can write the database but
//! not read the key does not verify. After every append the head (the
//! last record's position and hash, MACed with the same key) is written to
//! a file of its own, inside the append's transaction, so deleting the
//! last records (or all of them) shows as a head that names a record the
//! log no longer has.
//!
//! Records written before a store was sealed keep their plain SHA-256
//! chain; the head says from which record on the chain is keyed.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::StoreError;

/// The prefix of a keyed record hash (plain SHA-256 hashes have none).
pub const KEYED: &str = "hmac-sha256:";

/// The audit key and where the head is written.
#[derive(Clone)]
pub struct AuditSeal {
    key: Vec<u8>,
    head: PathBuf,
}

impl std::fmt::Debug for AuditSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSeal")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// The head file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The last record's position (0: none yet).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// The first record whose hash is keyed.
    pub keyed_from: i64,
    /// HMAC over the three fields above.
    pub mac: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

use ops_model::hex;

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl AuditSeal {
    /// Loads the key at `key_path` (creating 32 random bytes, mode 0600,
    /// where there is none); the head goes to `head_path`. A key file
    /// others can read, or one that is not 64 hex digits, is refused.
    pub fn open(key_path: &Path, head_path: &Path) -> Result<AuditSeal, StoreError> {
        let key = match std::fs::read_to_string(key_path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(key_path)
                        .map_err(io_err(key_path))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(StoreError::Corrupt {
                            path: key_path.display().to_string(),
                            what: "audit key".into(),
                            detail: format!(
                                "the audit key is readable by others (mode {:o}); run `chmod 600` on it",
                                mode & 0o777
                            ),
                        });
                    }
                }
                unhex(text.trim())
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| StoreError::Corrupt {
                        path: key_path.display().to_string(),
                        what: "audit key".into(),
                        detail: "the audit key is not 64 hex digits".into(),
                    })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                {
                    use std::io::Read;
                    std::fs::File::open("/dev/urandom")
                        .and_then(|mut f| f.read_exact(&mut key))
                        .map_err(io_err(Path::new("/dev/urandom")))?;
                }
                write_private(key_path, &hex(&key))?;
                key
            }
            Err(e) => return Err(io_err(key_path)(e)),
        };
        Ok(AuditSeal {
            key,
            head: head_path.to_owned(),
        })
    }

    /// A seal with a given key (tests).
    pub fn with_key(key: Vec<u8>, head_path: &Path) -> AuditSeal {
        AuditSeal {
            key,
            head: head_path.to_owned(),
        }
    }

    fn mac(&self, bytes: &[u8]) -> String {
        // `new_from_slice` accepts any key length for HMAC.
        let mut m = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        m.update(bytes);
        hex(&m.finalize().into_bytes())
    }

    /// The keyed hash of one record.
    pub fn record_hash(
        &self,
        prev_hash: &str,
        seq: i64,
        at: &str,
        session_id: Option<&str>,
        kind: &str,
        payload: &str,
    ) -> String {
        let fields = super::records::audit_fields(prev_hash, seq, at, session_id, kind, payload);
        format!("{KEYED}{}", self.mac(&fields))
    }

    fn head_mac(&self, seq: i64, hash: &str, keyed_from: i64) -> String {
        self.mac(&super::records::length_prefixed(&[
            "head",
            &seq.to_string(),
            hash,
            &keyed_from.to_string(),
        ]))
    }

    /// The head file, checked: `Ok(None)` when there is none, an error
    /// when it cannot be read or its MAC does not match.
    pub fn read_head(&self) -> Result<Option<Head>, String> {
        let text = match std::fs::read_to_string(&self.head) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.head.display())),
        };
        let head: Head = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not an audit head: {e}", self.head.display()))?;
        if head.mac != self.head_mac(head.seq, &head.hash, head.keyed_from) {
            return Err(format!(
                "{}: the head's MAC does not match (the file was edited, or the key changed)",
                self.head.display()
            ));
        }
        Ok(Some(head))
    }

    /// Writes the head (to a temporary file renamed over the old one).
    pub fn write_head(&self, seq: i64, hash: &str, keyed_from: i64) -> Result<(), StoreError> {
        let head = Head {
            seq,
            hash: hash.to_owned(),
            keyed_from,
            mac: self.head_mac(seq, hash, keyed_from),
        };
        let text = serde_json::to_string(&head).map_err(|e| StoreError::Encode {
            key: "audit head".into(),
            detail: e.to_string(),
        })?;
        let mut tmp = self.head.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, &text)?;
        std::fs::rename(&tmp, &self.head).map_err(io_err(&self.head))
    }
}

/// Writes `text` to a new file of mode 0600 (never following a link at
/// `path`: `create_new` fails on any existing entry).
fn write_private(path: &Path, text: &str) -> Result<(), StoreError> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(text.as_bytes()).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}
