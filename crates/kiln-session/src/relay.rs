//! Turns in progress for watchers on the other servers of a shared PostgreSQL database. What a
//! turn publishes goes to this server's watchers in-process (`live.rs`) and, here, out to the
//! other servers as notifications (`kiln_db::Db::notify_turn`); each server's one listener
//! puts what the others sent into its own in-process feeds. A store skips its own
//! notifications, so a watcher sees each event once, whichever server it is connected to. On
//! SQLite there is no relay.
//!
//! Sending: a NOTIFY per token would be one database round trip per token on the turn's
//! server and a wake-up of every listener. Events of a session gather for [`WINDOW`] and go out
//! as one notification carrying a JSON array, in order; a write of that session's nodes sends
//! what gathered first, so a watcher elsewhere hears a turn's tokens before it reads the
//! answer they made. Notifications go out always on PostgreSQL, whether or not anyone watches
//! (this server cannot know who watches elsewhere): at most one per session per window.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kiln_db::{Db, TURN_PAYLOAD_MAX, TurnNotice};
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use crate::live::TurnFeeds;

/// How long events of one session gather before they go out as one notification.
pub(crate) const WINDOW: Duration = Duration::from_millis(50);
/// Events waiting to go out, across sessions; more are dropped and counted (the watchers
/// elsewhere are told how many they missed, as a slow watcher is).
const PENDING_MAX: usize = 4096;
/// What replaces the end of a text cut to fit a notification.
const CUT: &str = " … [cut: too long to relay to other servers]";

/// The relay of one SessionManager (one per server process).
pub(crate) struct TurnRelay {
    out: Arc<Outgoing>,
    feeds: Arc<TurnFeeds>,
    /// The sending task, started by the first event.
    sending: OnceLock<()>,
    /// The listening task, started by the first watcher.
    listening: tokio::sync::OnceCell<()>,
    tasks: Mutex<Vec<AbortHandle>>,
}

struct Outgoing {
    db: Db,
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
    /// Held while notifications go out, so batches of a session leave in the order they were
    /// taken.
    turn: tokio::sync::Mutex<()>,
    /// The last notify failed (warned once until one succeeds again).
    failing: AtomicBool,
}

#[derive(Default)]
struct Pending {
    batches: HashMap<String, Batch>,
    /// Events in all batches.
    events: usize,
    /// Sessions whose batches the sending task has taken and not yet sent.
    in_flight: HashSet<String>,
}

#[derive(Default)]
struct Batch {
    events: Vec<Value>,
    /// Events dropped (too many waiting, or a notify that failed).
    missed: u64,
}

impl TurnRelay {
    /// A relay for a store on PostgreSQL; `None` on SQLite.
    pub(crate) fn new(db: &Db, feeds: Arc<TurnFeeds>) -> Option<Arc<Self>> {
        db.is_postgres().then(|| {
            Arc::new(Self {
                out: Arc::new(Outgoing {
                    db: db.clone(),
                    pending: Mutex::default(),
                    wake: tokio::sync::Notify::new(),
                    turn: tokio::sync::Mutex::new(()),
                    failing: AtomicBool::new(false),
                }),
                feeds,
                sending: OnceLock::new(),
                listening: tokio::sync::OnceCell::new(),
                tasks: Mutex::default(),
            })
        })
    }

    /// Queues a turn event for the other servers. Cheap: a lock and a push; the sending task
    /// does the rest.
    pub(crate) fn send(&self, session: &str, data: Value) {
        if !self.start_sending() {
            return;
        }
        let mut guard = self.out.pending.lock().unwrap_or_else(|p| p.into_inner());
        let p = &mut *guard;
        let idle = p.events == 0;
        let batch = p.batches.entry(session.to_owned()).or_default();
        if p.events >= PENDING_MAX {
            batch.missed += 1;
        } else {
            batch.events.push(data);
            p.events += 1;
        }
        drop(guard);
        if idle {
            self.out.wake.notify_one();
        }
    }

    /// Sends what gathered for `session` now (before a write of its nodes). A session with
    /// nothing gathered and nothing on its way returns at once, without waiting for other
    /// sessions' notifications to go out.
    pub(crate) async fn flush(&self, session: &str) {
        if self.sending.get().is_none() {
            return;
        }
        {
            let p = self.out.pending.lock().unwrap_or_else(|p| p.into_inner());
            if !p.batches.contains_key(session) && !p.in_flight.contains(session) {
                return;
            }
        }
        let _turn = self.out.turn.lock().await;
        let batch = {
            let mut p = self.out.pending.lock().unwrap_or_else(|p| p.into_inner());
            let b = p.batches.remove(session);
            p.events -= b.as_ref().map_or(0, |b| b.events.len());
            b
        };
        if let Some(b) = batch {
            self.out.send(session, b).await;
        }
    }

    /// Starts the sending task once; false without a runtime to run it on.
    fn start_sending(&self) -> bool {
        if self.sending.get().is_some() {
            return true;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        self.sending.get_or_init(|| {
            let out = Arc::clone(&self.out);
            let task = rt.spawn(async move {
                loop {
                    out.wake.notified().await;
                    tokio::time::sleep(WINDOW).await;
                    out.send_all().await;
                }
            });
            self.tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task.abort_handle());
        });
        true
    }

    /// Starts listening for the other servers' turns once (the first watcher does): when this
    /// returns, what they send from now on reaches this server's feeds. A failure is logged
    /// and the next watcher tries again.
    pub(crate) async fn listen(&self) {
        let started = self
            .listening
            .get_or_try_init(|| async {
                let Some(mut listener) = self.out.db.turn_listener().await? else {
                    return Ok::<_, kiln_db::Error>(());
                };
                let feeds = Arc::clone(&self.feeds);
                let task = tokio::spawn(async move {
                    loop {
                        match listener.recv().await {
                            TurnNotice::Turn { session, payload } => {
                                match serde_json::from_str::<Vec<Value>>(&payload) {
                                    Ok(events) => {
                                        for e in events {
                                            feeds.publish(&session, e);
                                        }
                                    }
                                    Err(e) => tracing::debug!(error = %e, %session,
                                        "skipped a turn notification that is not an event list"),
                                }
                            }
                            TurnNotice::Lost => feeds.publish_all(&json!({
                                "event": "lagged",
                                "reason": "this server lost its connection to the database \
                                           for a moment: events of turns on other servers may \
                                           be missing",
                            })),
                        }
                    }
                });
                self.tasks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(task.abort_handle());
                Ok(())
            })
            .await;
        if let Err(e) = started {
            tracing::warn!(error = %e, "could not listen for turns on other servers");
        }
    }
}

impl Drop for TurnRelay {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap_or_else(|p| p.into_inner()) {
            t.abort();
        }
    }
}

impl Outgoing {
    /// Sends every batch gathered.
    async fn send_all(&self) {
        let _turn = self.turn.lock().await;
        let batches = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.events = 0;
            let batches = std::mem::take(&mut p.batches);
            p.in_flight.extend(batches.keys().cloned());
            batches
        };
        for (session, batch) in batches {
            self.send(&session, batch).await;
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .in_flight
                .remove(&session);
        }
    }

    /// Sends one session's batch, in as few notifications as fit. Called holding `turn`.
    async fn send(&self, session: &str, batch: Batch) {
        let mut events = Vec::with_capacity(batch.events.len() + 1);
        if batch.missed > 0 {
            events.push(json!({"event": "lagged", "missed": batch.missed}));
        }
        events.extend(batch.events);
        let payloads = pack(events, TURN_PAYLOAD_MAX);
        for (i, (payload, _)) in payloads.iter().enumerate() {
            match self.out(session, payload).await {
                Ok(()) => {}
                Err(e) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, %session,
                            "could not relay a turn to other servers");
                    }
                    // What did not go out is counted, and the next batch says so.
                    let lost: usize = payloads[i..].iter().map(|(_, n)| n).sum();
                    let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    p.batches.entry(session.to_owned()).or_default().missed += lost as u64;
                    return;
                }
            }
        }
    }

    async fn out(&self, session: &str, payload: &str) -> kiln_db::Result<()> {
        self.db.notify_turn(session, payload).await?;
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("relaying turns to other servers again");
        }
        Ok(())
    }
}

/// Packs events, in order, into JSON arrays of at most `max` bytes, each with how many events
/// it carries. An event takes at most a quarter of `max` (7800 / 4 = 1950 bytes in a
/// notification), so a long one leaves room for the tokens around it.
fn pack(events: Vec<Value>, max: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let (mut cur, mut n) = (String::from("["), 0);
    for e in events {
        let s = fit(e, max / 4);
        if n > 0 && cur.len() + 1 + s.len() + 1 > max {
            cur.push(']');
            out.push((std::mem::replace(&mut cur, String::from("[")), n));
            n = 0;
        }
        if n > 0 {
            cur.push(',');
        }
        cur.push_str(&s);
        n += 1;
    }
    if n > 0 {
        cur.push(']');
        out.push((cur, n));
    }
    out
}

/// One event as JSON of at most `max` bytes. Events are small (a token, a tool's name); one
/// that is not (a long streamed chunk, the asking message quoted in `started`, and a tool
/// result's text should one ever travel here) has its longest texts cut, each ending in
/// [`CUT`], and `"truncated": true`, rather than being dropped: watchers elsewhere see that
/// there was more and read the whole from the stored nodes.
fn fit(mut e: Value, max: usize) -> String {
    for _ in 0..32 {
        let s = e.to_string();
        if s.len() <= max {
            return s;
        }
        let Some(at) = longest_text(&e, String::new()).map(|(at, _)| at) else {
            break;
        };
        let Some(Value::String(text)) = e.pointer_mut(&at) else {
            break;
        };
        let whole = text.strip_suffix(CUT).unwrap_or(text);
        let mut keep = whole.len() / 2;
        while !whole.is_char_boundary(keep) {
            keep -= 1;
        }
        *text = format!("{}{CUT}", &whole[..keep]);
        if let Value::Object(o) = &mut e {
            o.insert("truncated".into(), Value::Bool(true));
        }
    }
    // A shape that cutting texts does not shrink enough: what kind of event it was.
    let short = json!({"event": e.get("event").filter(|v| v.is_string()), "truncated": true});
    let s = short.to_string();
    if s.len() <= max {
        s
    } else {
        r#"{"truncated":true}"#.into()
    }
}

/// The JSON pointer and length of the longest text inside `v` of more than a cut marker.
fn longest_text(v: &Value, at: String) -> Option<(String, usize)> {
    let inner: Box<dyn Iterator<Item = (String, &Value)>> = match v {
        Value::String(s) if s.len() > 2 * CUT.len() => return Some((at, s.len())),
        Value::Array(items) => Box::new(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("{at}/{i}"), x)),
        ),
        Value::Object(o) => Box::new(o.iter().map(|(k, x)| {
            let k = k.replace('~', "~0").replace('/', "~1");
            (format!("{at}/{k}"), x)
        })),
        _ => return None,
    };
    inner
        .filter_map(|(p, x)| longest_text(x, p))
        .max_by_key(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay as on PostgreSQL, over a SQLite store (the paths tested here do not reach it).
    async fn relay(dir: &std::path::Path) -> TurnRelay {
        let db = Db::open(&dir.join("kiln.db"), &kiln_db::DbOptions::default())
            .await
            .unwrap();
        TurnRelay {
            out: Arc::new(Outgoing {
                db,
                pending: Mutex::default(),
                wake: tokio::sync::Notify::new(),
                turn: tokio::sync::Mutex::new(()),
                failing: AtomicBool::new(false),
            }),
            feeds: Arc::new(TurnFeeds::default()),
            sending: OnceLock::new(),
            listening: tokio::sync::OnceCell::new(),
            tasks: Mutex::default(),
        }
    }

    #[tokio::test]
    async fn a_flush_waits_only_for_its_own_sessions_notifications() {
        let dir = tempfile::tempdir().unwrap();
        let r = relay(dir.path()).await;
        r.send("s1", json!({"event": "token", "text": "a"}));
        // Another session's notifications are going out (the sending task holds `turn`).
        let turn = r.out.turn.lock().await;
        let quick = Duration::from_millis(200);
        tokio::time::timeout(quick, r.flush("s2"))
            .await
            .expect("a session with nothing gathered waited for another's notifications");
        // A session with events gathered waits its turn: its events go before its write.
        assert!(tokio::time::timeout(quick, r.flush("s1")).await.is_err());
        // So does one whose batch the sending task took and has not sent yet.
        {
            let mut p = r.out.pending.lock().unwrap();
            p.batches.clear();
            p.events = 0;
            p.in_flight.insert("s1".into());
        }
        assert!(tokio::time::timeout(quick, r.flush("s1")).await.is_err());
        drop(turn);
    }

    #[test]
    fn small_events_pack_in_order_into_arrays_under_the_cap() {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"event": "token", "text": format!("t{i} ")}))
            .collect();
        let packed = pack(events.clone(), 1000);
        assert!(packed.len() > 1);
        let mut back = Vec::new();
        for (p, n) in &packed {
            assert!(p.len() <= 1000, "{}", p.len());
            let v: Vec<Value> = serde_json::from_str(p).unwrap();
            assert_eq!(v.len(), *n);
            back.extend(v);
        }
        assert_eq!(back, events);
        assert!(pack(Vec::new(), 1000).is_empty());
    }

    #[test]
    fn a_large_event_is_cut_with_a_marker_and_still_fits() {
        for text in [
            "é".repeat(10_000),
            "\u{1}".repeat(10_000),
            "x".repeat(10_000),
        ] {
            let e = json!({"event": "tool_result", "name": "materials", "text": text, "ok": true});
            let packed = pack(vec![e, json!({"event": "token", "text": "a"})], 2000);
            assert_eq!(packed.len(), 1);
            let (p, n) = &packed[0];
            assert!(p.len() <= 2000 && *n == 2, "{} bytes, {n} events", p.len());
            let v: Vec<Value> = serde_json::from_str(p).unwrap();
            assert_eq!(v[0]["event"], "tool_result");
            assert_eq!(v[0]["name"], "materials");
            assert_eq!(v[0]["truncated"], true);
            let cut = v[0]["text"].as_str().unwrap();
            assert!(cut.ends_with(CUT) && cut.len() > CUT.len() + 20, "{cut}");
            assert_eq!(cut.matches(CUT).count(), 1);
            assert_eq!(v[1]["text"], "a");
        }
    }

    #[test]
    fn an_event_made_of_many_small_parts_falls_back_to_its_kind() {
        let parts: Vec<String> = (0..2000).map(|i| format!("p{i}")).collect();
        let s = fit(json!({"event": "tool_call", "args": parts}), 500);
        assert_eq!(s, r#"{"event":"tool_call","truncated":true}"#);
        for e in [
            json!({"event": "x".repeat(600)}),
            json!("y".repeat(600)),
            json!(null),
        ] {
            let s = fit(e.clone(), 100);
            assert!(s.len() <= 100, "{e}: {s}");
            serde_json::from_str::<Value>(&s).unwrap();
        }
    }
}
