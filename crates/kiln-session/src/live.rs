//! Live session events for watchers (a second user, a monitor page, a controller): what changed
//! in a session, pushed as it happens. Each watcher polls the session's change marker (its last
//! activity, one primary-key read, kept by the store's triggers) every [`POLL`]; only when it
//! moved does it read the new nodes, the branch heads and the lifecycle. Polling the store
//! rather than listening in-process means a write made by any server on a shared database
//! reaches every watcher, and a watcher never misses a write made by a path that forgot to
//! announce itself. Access is checked again every few seconds: a watcher whose access was
//! withdrawn is told so and the stream ends.
//!
//! Two things are not in the tree and come another way. Presence (who is watching) is a row
//! per open stream in the store, refreshed every few seconds, so it holds across servers. A turn
//! in progress (its tokens and tool calls, before anything is stored) comes through an
//! in-process feed per session: from the agent of this server, and on PostgreSQL from the
//! agents of the other servers through the relay (`relay.rs`), which puts their notifications
//! into the same feeds. Turn events are handed out before each poll of the store, so a watcher
//! hears a turn's tokens before the answer node they made.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures::Stream;
use kiln_db::{LiveBranch, LiveSnapshot};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::{Caller, Result, SessionManager};

/// How often a watcher looks for changes.
pub const POLL: Duration = Duration::from_millis(250);
/// Access is checked again every this many polls.
const RECHECK_EVERY: u32 = 20;
/// Most nodes one event carries (a burst beyond it comes as several events).
const NODES_PER_EVENT: u32 = 200;
/// Longest text of a node an event carries.
const CONTENT_CHARS: usize = 2000;
/// A watcher whose stream was not refreshed for this long is no longer present.
const PRESENT_FOR: Duration = Duration::from_secs(15);
/// Turn events a slow watcher may fall behind by before it is told it lagged.
const TURN_BACKLOG: usize = 1024;

/// The turns in progress on this server, per session, for its watchers.
#[derive(Default)]
pub(crate) struct TurnFeeds(Mutex<HashMap<String, broadcast::Sender<Value>>>);

impl TurnFeeds {
    fn subscribe(&self, session: &str) -> broadcast::Receiver<Value> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(session.to_owned())
            .or_insert_with(|| broadcast::channel(TURN_BACKLOG).0)
            .subscribe()
    }

    pub(crate) fn publish(&self, session: &str, data: Value) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(session)
            && tx.send(data).is_err()
        {
            // Nobody watches any more.
            map.remove(session);
        }
    }

    /// Tells every session's watchers on this server the same thing.
    pub(crate) fn publish_all(&self, data: &Value) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Feeds nobody watches any more go.
        map.retain(|_, tx| tx.send(data.clone()).is_ok());
    }
}

/// One thing a watcher is told.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    /// `snapshot` (first, the state on connect), `nodes`, `branches`, `audit`, `session`,
    /// `closed`.
    pub kind: &'static str,
    pub data: Value,
}

struct Watch {
    /// This stream's presence row.
    id: String,
    present: Vec<kiln_db::Present>,
    turns: broadcast::Receiver<Value>,
    tick: tokio::time::Interval,
    mgr: SessionManager,
    caller: Caller,
    session: String,
    marker: String,
    rowid: i64,
    audit_seq: i64,
    snapshot: Option<LiveSnapshot>,
    queue: VecDeque<LiveEvent>,
    polls: u32,
    until: tokio::time::Instant,
    done: bool,
}

impl SessionManager {
    /// Tells the watchers of `session` about a turn in progress (the agent calls it as tokens,
    /// tool calls and results come): this server's at once, and on PostgreSQL the other
    /// servers' through the relay (queued here, sent within 50 ms, see `relay.rs`). On SQLite
    /// it costs nothing when nobody watches.
    pub fn publish_turn(&self, session: &str, data: Value) {
        match &self.turn_relay {
            Some(relay) => {
                self.turn_feeds.publish(session, data.clone());
                relay.send(session, data);
            }
            None => self.turn_feeds.publish(session, data),
        }
    }

    /// The live events of a session the caller may read, for at most `max` (then the stream
    /// ends; clients reconnect). The first event is a snapshot of the lifecycle and branches.
    pub async fn watch(
        &self,
        caller: &Caller,
        session: &str,
        max: Duration,
    ) -> Result<impl Stream<Item = LiveEvent> + Send + 'static> {
        self.readable(caller, session).await?;
        let snap = self
            .db
            .live_snapshot(session)
            .await?
            .ok_or_else(|| crate::Error::not_found("no such session"))?;
        let audit_seq = self.db.audit_max_seq(session).await?;
        let mut queue = VecDeque::new();
        queue.push_back(LiveEvent {
            kind: "snapshot",
            data: json!(snap),
        });
        let id = kiln_types::NodeId::new().to_string();
        if let Some(relay) = &self.turn_relay {
            relay.listen().await;
        }
        let turns = self.turn_feeds.subscribe(session);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        let mut w = Watch {
            id,
            present: Vec::new(),
            turns,
            tick,
            mgr: self.clone(),
            caller: caller.clone(),
            session: session.to_owned(),
            marker: snap.last_activity_at.clone(),
            rowid: snap.max_rowid,
            audit_seq,
            snapshot: Some(snap),
            queue,
            polls: 0,
            until: tokio::time::Instant::now() + max,
            done: false,
        };
        w.presence().await;
        Ok(futures::stream::unfold(w, |mut w| async move {
            loop {
                if let Some(ev) = w.queue.pop_front() {
                    return Some((ev, w));
                }
                if w.done || tokio::time::Instant::now() >= w.until {
                    return None;
                }
                tokio::select! {
                    _ = w.tick.tick() => {
                        // Turn events published before this poll come before what it finds.
                        loop {
                            match w.turns.try_recv() {
                                Ok(data) => w.turn(Ok(data)),
                                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                    w.turn(Err(broadcast::error::RecvError::Lagged(n)));
                                }
                                Err(_) => break,
                            }
                        }
                        w.poll().await;
                    }
                    turn = w.turns.recv() => match turn {
                        // (Never while this receiver lives; wait for the next poll.)
                        Err(broadcast::error::RecvError::Closed) => w.poll().await,
                        turn => w.turn(turn),
                    },
                }
            }
        }))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The stream closed (the client left, or it ran its time): no longer present.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (db, session, id) = (self.mgr.db.clone(), self.session.clone(), self.id.clone());
            rt.spawn(async move {
                let _ = db.leave_presence(&session, &id).await;
            });
        }
    }
}

impl Watch {
    fn turn(&mut self, turn: std::result::Result<Value, broadcast::error::RecvError>) {
        let data = match turn {
            Ok(data) => data,
            Err(broadcast::error::RecvError::Lagged(n)) => json!({"event": "lagged", "missed": n}),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        self.queue.push_back(LiveEvent { kind: "turn", data });
    }

    fn close(&mut self, reason: &str) {
        self.queue.push_back(LiveEvent {
            kind: "closed",
            data: json!({ "reason": reason }),
        });
        self.done = true;
    }

    /// Refreshes this stream's presence and says who is watching when that changed.
    async fn presence(&mut self) {
        let client = self.caller.client.as_ref().map(|c| c.name.as_str());
        if self
            .mgr
            .db
            .touch_presence(&self.session, &self.id, &self.caller.user_id, client)
            .await
            .is_err()
        {
            return;
        }
        let since = kiln_db::stamp(
            chrono::Utc::now() - chrono::Duration::from_std(PRESENT_FOR).unwrap_or_default(),
        );
        let Ok(now) = self.mgr.db.present(&self.session, &since).await else {
            return;
        };
        if now != self.present {
            self.queue.push_back(LiveEvent {
                kind: "presence",
                data: json!({ "present": now }),
            });
            self.present = now;
        }
    }

    async fn poll(&mut self) {
        self.polls += 1;
        if self.polls.is_multiple_of(RECHECK_EVERY) {
            if self
                .mgr
                .readable(&self.caller, &self.session)
                .await
                .is_err()
            {
                return self.close("access withdrawn or session deleted");
            }
            self.presence().await;
        }
        let marker = match self.mgr.db.live_marker(&self.session).await {
            Ok(Some(m)) => m,
            Ok(None) => return self.close("session deleted"),
            // A busy or failing store: try again at the next poll.
            Err(_) => return,
        };
        if marker == self.marker {
            return;
        }
        self.marker = marker;
        // New nodes, in the order they were written.
        loop {
            let Ok(nodes) = self
                .mgr
                .db
                .nodes_after(&self.session, self.rowid, NODES_PER_EVENT)
                .await
            else {
                return;
            };
            let full = nodes.len() as u32 == NODES_PER_EVENT;
            if let Some((last, _)) = nodes.last() {
                self.rowid = *last;
                let ids: Vec<&str> = nodes
                    .iter()
                    .filter_map(|(_, n)| n.author.as_deref())
                    .collect();
                let names = self.mgr.db.user_names(ids).await.unwrap_or_default();
                let items: Vec<Value> = nodes
                    .iter()
                    .map(|(_, n)| {
                        json!({
                            "id": n.id, "parent": n.parent_id, "kind": n.kind,
                            "author": n.author.as_ref().map(|a| names.get(a).unwrap_or(a)),
                            "text": kiln_types::clip(&n.readable_text(), CONTENT_CHARS),
                            "created_at": n.created_at,
                        })
                    })
                    .collect();
                self.queue.push_back(LiveEvent {
                    kind: "nodes",
                    data: json!({ "nodes": items }),
                });
            }
            if !full {
                break;
            }
        }
        // Decisions that write no node (a controller lock taken or released) and every other
        // audit entry, in order.
        if let Ok(entries) = self
            .mgr
            .db
            .audit_after(&self.session, self.audit_seq, NODES_PER_EVENT)
            .await
            && let Some(last) = entries.last()
        {
            self.audit_seq = last.seq;
            let names = self
                .mgr
                .db
                .user_names(entries.iter().map(|e| e.actor.as_str()))
                .await
                .unwrap_or_default();
            let items: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "seq": e.seq, "action": e.action, "at": e.at, "payload": e.payload,
                        "actor": names.get(&e.actor).unwrap_or(&e.actor),
                    })
                })
                .collect();
            self.queue.push_back(LiveEvent {
                kind: "audit",
                data: json!({ "entries": items }),
            });
        }
        // Heads, branches and the lifecycle, when they changed.
        let Ok(Some(now)) = self.mgr.db.live_snapshot(&self.session).await else {
            return;
        };
        let before = self.snapshot.take();
        let moved: Vec<&LiveBranch> = now
            .branches
            .iter()
            .filter(|b| !before.as_ref().is_some_and(|s| s.branches.contains(b)))
            .collect();
        let gone: Vec<&str> = before
            .as_ref()
            .map(|s| {
                s.branches
                    .iter()
                    .filter(|b| !now.branches.iter().any(|n| n.name == b.name))
                    .map(|b| b.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        if !moved.is_empty() || !gone.is_empty() {
            self.queue.push_back(LiveEvent {
                kind: "branches",
                data: json!({ "changed": moved, "removed": gone }),
            });
        }
        if before
            .as_ref()
            .is_none_or(|s| s.status != now.status || s.name != now.name)
        {
            self.queue.push_back(LiveEvent {
                kind: "session",
                data: json!({ "status": now.status, "name": now.name, "last_activity_at": now.last_activity_at }),
            });
        }
        self.snapshot = Some(now);
    }
}
