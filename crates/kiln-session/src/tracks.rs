//! Metric track storage with the caller's access: appending a batch of points (write) and
//! reading the batches a branch's notebook names (read). Which batches a branch sees is the
//! notebook's business (kiln-agent); this module stores and fetches them.

use kiln_db::{Point, TrackBatch, point_from_json};
use kiln_types::{ErrorKind, Permission};
use serde_json::Value;

use crate::sessions::check_text;
use crate::{Caller, Error, Result, SessionManager};

/// The most points one append may carry.
pub const MAX_BATCH_POINTS: usize = 100_000;

/// Checks a track name: 1–200 bytes, no control characters.
pub fn check_track_name(name: &str) -> Result<()> {
    check_text("track", name, 200, true)
}

/// Reads points given as JSON, naming the first bad one.
pub fn points_from_json(points: &[Value]) -> Result<Vec<Point>> {
    if points.is_empty() {
        return Err(Error::bad_request("`points` must hold at least one point"));
    }
    if points.len() > MAX_BATCH_POINTS {
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            "payload_too_large",
            format!("at most {MAX_BATCH_POINTS} points per append; send several batches"),
        ));
    }
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            point_from_json(p).map_err(|e| {
                Error::new(
                    ErrorKind::BadRequest,
                    "invalid_point",
                    format!("point {i}: {e}"),
                )
            })
        })
        .collect()
}

impl SessionManager {
    /// Stores a batch of points of `track` in the session (write access; refused on a
    /// protected session) and counts it against the caller's quota. The batch is seen by no
    /// branch until a node names it (the notebook's `append_track`).
    pub async fn store_track_batch(
        &self,
        caller: &Caller,
        session: &str,
        track: &str,
        points: &[Point],
    ) -> Result<TrackBatch> {
        self.require(caller, session, Permission::Write).await?;
        check_track_name(track)?;
        // About what the chunks take: a field name once a chunk, then ~12 bytes a value.
        let bytes: u64 = points.iter().map(|p| 12 * p.len() as u64).sum();
        self.check_quota(caller, bytes)?;
        let batch = self
            .db
            .append_track_batch(session, track, points, &caller.user_id)
            .await?;
        self.count_written(caller, bytes);
        Ok(batch)
    }

    /// The stored batches among `batches` (read access).
    pub async fn track_batches(
        &self,
        caller: &Caller,
        session: &str,
        batches: &[i64],
    ) -> Result<Vec<TrackBatch>> {
        self.readable(caller, session).await?;
        Ok(self.db.track_batches(session, batches).await?)
    }

    /// The points of chunks `from..=to` of a batch, each with its index in the batch, only
    /// chunks meeting the step range when one is given (read access).
    pub async fn track_points(
        &self,
        caller: &Caller,
        session: &str,
        batch: i64,
        chunks: (i64, i64),
        steps: Option<(f64, f64)>,
    ) -> Result<Vec<(u64, Point)>> {
        self.readable(caller, session).await?;
        Ok(self
            .db
            .track_points(session, batch, chunks.0, chunks.1, steps)
            .await?)
    }
}
