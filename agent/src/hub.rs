//! The session hub: sessions addressed by id, each with any number of
//! watchers. A chat in a terminal, an SSE stream, a Slack thread and a
//! dashboard tab can all follow the same session and send it ops; each
//! event gets a sequence number, so a watcher that reconnects asks for
//! what came after the last one it saw (`Last-Event-ID`) and misses
//! nothing the hub still holds. A session that is not running is started
//! on first use and resumes its conversation from the store
//! ([`Agent::spawn`] reloads the saved history).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::session::{Agent, Event, Op, SessionConfig, SessionHandle};

/// How many recent events a session keeps for watchers that (re)connect.
pub const REPLAY: usize = 1024;

/// One event of a session, numbered from 1 in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Numbered {
    /// Its place in the session's stream (the SSE event id).
    pub seq: u64,
    /// The event.
    pub event: Event,
}

/// Why the hub could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// No running session has that id.
    #[error("no session `{0}` is running")]
    Unknown(String),
    /// The session's loop has stopped.
    #[error("session `{0}` has ended")]
    Ended(String),
}

/// A running session as the hub holds it.
#[derive(Debug)]
pub struct Live {
    id: String,
    /// `None` once closed: the loop ends when its current turn does.
    ops: Mutex<Option<mpsc::Sender<Op>>>,
    stream: broadcast::Sender<Numbered>,
    recent: Mutex<VecDeque<Numbered>>,
}

/// What a new watcher gets: the events it missed that the hub still
/// holds, then the live stream (which may repeat the last few of the
/// backlog: skip any `seq` already seen).
#[derive(Debug)]
pub struct Watch {
    /// Events after the watcher's last one, oldest first.
    pub backlog: Vec<Numbered>,
    /// Everything from now on. A watcher that falls more than
    /// [`REPLAY`] events behind is told how many it missed (`Lagged`).
    pub live: broadcast::Receiver<Numbered>,
    /// The oldest `seq` the hub still holds (a watcher whose last event
    /// is older has missed some).
    pub oldest: Option<u64>,
}

impl Live {
    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `op` to the session.
    pub async fn send(&self, op: Op) -> Result<(), HubError> {
        let ops = self
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| HubError::Ended(self.id.clone()))?;
        ops.send(op)
            .await
            .map_err(|_| HubError::Ended(self.id.clone()))
    }

    /// Closes the session: it takes no more ops and its loop ends once
    /// the running turn does (its conversation stays in the store).
    pub fn close(&self) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Starts watching after event `after` (0 or `None`: from the oldest
    /// event the hub holds).
    pub fn watch(&self, after: Option<u64>) -> Watch {
        // Subscribe before reading the backlog, so nothing falls between.
        let live = self.stream.subscribe();
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let after = after.unwrap_or(0);
        Watch {
            backlog: recent.iter().filter(|n| n.seq > after).cloned().collect(),
            live,
            oldest: recent.front().map(|n| n.seq),
        }
    }

    /// Whether the session's loop still runs.
    pub fn running(&self) -> bool {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|o| !o.is_closed())
    }
}

/// Sessions by id.
#[derive(Debug, Default, Clone)]
pub struct SessionHub {
    live: Arc<Mutex<HashMap<String, Arc<Live>>>>,
}

impl SessionHub {
    /// An empty hub.
    pub fn new() -> Self {
        SessionHub::default()
    }

    /// The running session `cfg.id`, started with `agent` if it is not
    /// running (resuming its saved conversation, if any).
    pub fn open(&self, agent: Agent, cfg: SessionConfig) -> Arc<Live> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = live.get(&cfg.id).filter(|s| s.running()) {
            return Arc::clone(s);
        }
        let id = cfg.id.clone();
        let SessionHandle {
            ops, mut events, ..
        } = agent.spawn(cfg);
        let (stream, _) = broadcast::channel(REPLAY);
        let session = Arc::new(Live {
            id: id.clone(),
            ops: Mutex::new(Some(ops)),
            stream,
            recent: Mutex::new(VecDeque::with_capacity(REPLAY)),
        });
        let pump = Arc::clone(&session);
        let hub = self.clone();
        tokio::spawn(async move {
            let mut seq = 0u64;
            while let Some(event) = events.recv().await {
                seq += 1;
                let n = Numbered { seq, event };
                {
                    let mut recent = pump.recent.lock().unwrap_or_else(|e| e.into_inner());
                    if recent.len() == REPLAY {
                        recent.pop_front();
                    }
                    recent.push_back(n.clone());
                }
                // Nobody watching is fine: the backlog keeps it.
                let _ = pump.stream.send(n);
            }
            hub.forget(&pump);
        });
        live.insert(id, Arc::clone(&session));
        session
    }

    /// The running session `id`.
    pub fn get(&self, id: &str) -> Result<Arc<Live>, HubError> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|s| s.running())
            .cloned()
            .ok_or_else(|| HubError::Unknown(id.to_owned()))
    }

    /// The ids of the running sessions, sorted.
    pub fn ids(&self) -> Vec<String> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = live
            .values()
            .filter(|s| s.running())
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Drops `session` from the hub once its loop has ended (a newer
    /// session under the same id stays).
    fn forget(&self, session: &Arc<Live>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            live.remove(&session.id);
        }
    }
}
