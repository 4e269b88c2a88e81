//! One agent turn at a time per branch. A turn appends the question, runs tools, then appends
//! the answer where it started; two turns on one branch at once would refuse each other with
//! `head_moved`. So turns wait in a small queue per (session, branch): a bounded line that
//! answers 429 `turn_queue_full` when full, and every turn it accepts runs to completion.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use kiln_session::Error;
use kiln_types::ErrorKind;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Key = (String, String);

/// The per-branch queues of one agent.
#[derive(Debug)]
pub(crate) struct TurnQueues {
    lanes: Mutex<HashMap<Key, Arc<Lane>>>,
    /// Turns that may wait behind the running one, per branch.
    max_waiting: usize,
}

#[derive(Debug)]
struct Lane {
    running: Arc<Semaphore>,
    /// Turns holding or waiting for the lane (the map entry goes when it drops to zero).
    users: AtomicUsize,
}

/// The right to run a turn on a branch; the next turn in line starts when it drops.
#[derive(Debug)]
pub struct TurnSlot {
    _permit: OwnedSemaphorePermit,
    _user: LaneUser,
}

/// A turn in a branch's line: [`QueuedTurn::ready`] waits for the turns ahead of it. Dropping
/// it leaves the line.
#[derive(Debug)]
pub struct QueuedTurn {
    ahead: usize,
    user: LaneUser,
}

impl QueuedTurn {
    /// Turns running or waiting ahead of this one when it joined.
    pub fn ahead(&self) -> usize {
        self.ahead
    }

    /// Waits until the turns ahead are done; the returned slot runs this one.
    pub async fn ready(self) -> Result<TurnSlot, Error> {
        let permit = self
            .user
            .lane
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the turn queue closed"))?;
        Ok(TurnSlot {
            _permit: permit,
            _user: self.user,
        })
    }
}

/// A turn holding or waiting for a lane; leaves it (and removes an unused lane) on drop, also
/// when a waiting client goes away.
#[derive(Debug)]
struct LaneUser {
    queues: Arc<TurnQueues>,
    key: Key,
    lane: Arc<Lane>,
}

impl Drop for LaneUser {
    fn drop(&mut self) {
        let mut lanes = self
            .queues
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.lane.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            lanes.remove(&self.key);
        }
    }
}

impl TurnQueues {
    pub(crate) fn new(max_waiting: usize) -> Self {
        TurnQueues {
            lanes: Mutex::default(),
            max_waiting,
        }
    }

    /// Joins the branch's line: refuses at once when `max_waiting` turns already wait behind
    /// the running one, else returns the place in line (how many are ahead).
    pub(crate) fn join(self: &Arc<Self>, session: &str, branch: &str) -> Result<QueuedTurn, Error> {
        let key = (session.to_owned(), branch.to_owned());
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Lane {
                    running: Arc::new(Semaphore::new(1)),
                    users: AtomicUsize::new(0),
                })
            })
            .clone();
        // One runs, `max_waiting` wait.
        let ahead = lane.users.load(Ordering::Acquire);
        if ahead > self.max_waiting {
            if ahead == 0 {
                lanes.remove(&key);
            }
            return Err(Error::new(
                ErrorKind::TooManyRequests,
                "turn_queue_full",
                format!(
                    "{} turns are already waiting on branch `{branch}`; retry when one finishes",
                    ahead - 1
                ),
            )
            .with_details(json!({"branch": branch, "waiting": ahead - 1})));
        }
        lane.users.fetch_add(1, Ordering::AcqRel);
        Ok(QueuedTurn {
            ahead,
            user: LaneUser {
                queues: self.clone(),
                key,
                lane,
            },
        })
    }

    /// Branches with a turn running or waiting (for tests and diagnostics).
    #[cfg(test)]
    fn lanes(&self) -> usize {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(q: &Arc<TurnQueues>, branch: &str) -> TurnSlot {
        q.join("s", branch).unwrap().ready().await.unwrap()
    }

    fn users(q: &TurnQueues, branch: &str) -> usize {
        q.lanes.lock().unwrap()[&("s".to_owned(), branch.to_owned())]
            .users
            .load(Ordering::Acquire)
    }

    #[tokio::test]
    async fn turns_on_one_branch_run_one_at_a_time_and_the_line_is_bounded() {
        let q = Arc::new(TurnQueues::new(2));
        let first = run(&q, "main").await;
        // Another branch is not held up.
        let other = run(&q, "alt").await;
        let waiting: Vec<_> = (1..=2)
            .map(|i| {
                let queued = q.join("s", "main").unwrap();
                assert_eq!(queued.ahead(), i);
                tokio::spawn(async move { queued.ready().await.map(|_| ()) })
            })
            .collect();
        assert_eq!(users(&q, "main"), 3);
        let full = q.join("s", "main").unwrap_err();
        assert_eq!(
            (full.code, full.kind),
            ("turn_queue_full", ErrorKind::TooManyRequests)
        );
        assert_eq!(full.details.unwrap()["waiting"], 2);
        tokio::task::yield_now().await;
        assert!(!waiting.iter().any(tokio::task::JoinHandle::is_finished));
        drop(first);
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        drop(other);
        assert_eq!(q.lanes(), 0, "idle branches leave no lane behind");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_line() {
        let q = Arc::new(TurnQueues::new(1));
        let first = run(&q, "main").await;
        let queued = q.join("s", "main").unwrap();
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(20), queued.ready()).await;
        assert!(gave_up.is_err());
        // Its place is free again.
        let next = q.join("s", "main").unwrap();
        drop(first);
        drop(next.ready().await.unwrap());
        assert_eq!(q.lanes(), 0);
    }
}
