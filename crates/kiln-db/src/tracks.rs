//! Metric track points: batches appended in chunks of up to [`CHUNK`] points, and the reads a
//! branch makes of the batches its state names (see ARCHITECTURE.md, "Experiment tracking").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conn::{Dialect, query, query_scalar};
use crate::{Db, Error, Result, now};

/// Points per stored chunk (one row).
pub const CHUNK: usize = 1000;

/// One point: field name → value (`step`, `epoch`, `value`, …).
pub type Point = BTreeMap<String, f64>;

/// Count, extremes, sum and last value of one field over some points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FieldStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub last: f64,
}

impl FieldStats {
    fn of(v: f64) -> Self {
        FieldStats {
            count: 1,
            min: v,
            max: v,
            sum: v,
            last: v,
        }
    }

    /// Adds `later`, whose points come after these.
    pub fn then(&mut self, later: &FieldStats) {
        self.count += later.count;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.last = later.last;
    }
}

/// A stored batch as a branch's state names it and a read needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackBatch {
    pub batch: i64,
    pub track: String,
    pub count: u64,
    pub stats: BTreeMap<String, FieldStats>,
    pub min_step: Option<f64>,
    pub max_step: Option<f64>,
}

/// Stats of `points`, field by field, in order.
fn stats_of(points: &[Point]) -> BTreeMap<String, FieldStats> {
    let mut out: BTreeMap<String, FieldStats> = BTreeMap::new();
    for p in points {
        for (k, v) in p {
            match out.get_mut(k) {
                Some(s) => s.then(&FieldStats::of(*v)),
                None => {
                    out.insert(k.clone(), FieldStats::of(*v));
                }
            }
        }
    }
    out
}

fn step_range(points: &[Point]) -> (Option<f64>, Option<f64>) {
    let steps = points.iter().filter_map(|p| p.get("step").copied());
    steps.fold((None, None), |(lo, hi), s| {
        (
            Some(lo.map_or(s, |l: f64| l.min(s))),
            Some(hi.map_or(s, |h: f64| h.max(s))),
        )
    })
}

/// A chunk's points as stored: the field names once, then one row of values (or null) each.
fn encode(points: &[Point]) -> String {
    let mut fields: Vec<&String> = points.iter().flat_map(|p| p.keys()).collect();
    fields.sort();
    fields.dedup();
    let rows: Vec<Vec<Option<f64>>> = points
        .iter()
        .map(|p| fields.iter().map(|f| p.get(*f).copied()).collect())
        .collect();
    serde_json::json!({"fields": fields, "rows": rows}).to_string()
}

fn decode(text: &str) -> Result<Vec<Point>> {
    #[derive(Deserialize)]
    struct Stored {
        fields: Vec<String>,
        rows: Vec<Vec<Option<f64>>>,
    }
    let s: Stored = serde_json::from_str(text)?;
    Ok(s.rows
        .into_iter()
        .map(|row| {
            s.fields
                .iter()
                .zip(row)
                .filter_map(|(f, v)| Some((f.clone(), v?)))
                .collect()
        })
        .collect())
}

impl Db {
    /// Stores one batch of points of `track` (checked by the caller: finite numbers, at least
    /// one point) and returns it with its number, in one transaction.
    pub async fn append_track_batch(
        &self,
        session: &str,
        track: &str,
        points: &[Point],
        actor: &str,
    ) -> Result<TrackBatch> {
        if points.is_empty() {
            return Err(Error::Invalid("a batch needs at least one point".into()));
        }
        let stats = stats_of(points);
        let (min_step, max_step) = step_range(points);
        let mut tx = self.write().await?;
        let batch: i64 = query_scalar(
            "SELECT COALESCE(MAX(batch), 0) + 1 FROM track_batches WHERE session_id = $1",
        )
        .bind(session)
        .fetch_one(&mut tx)
        .await?;
        query(
            "INSERT INTO track_batches (session_id, batch, track, count, stats, min_step, \
             max_step, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(session)
        .bind(batch)
        .bind(track)
        .bind(points.len() as i64)
        .bind(serde_json::to_string(&stats)?)
        .bind(min_step)
        .bind(max_step)
        .bind(actor)
        .bind(now())
        .execute(&mut tx)
        .await?;
        for (i, chunk) in points.chunks(CHUNK).enumerate() {
            let (lo, hi) = step_range(chunk);
            query(
                "INSERT INTO track_chunks (session_id, batch, chunk, count, min_step, max_step, \
                 points) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(session)
            .bind(batch)
            .bind(i as i64)
            .bind(chunk.len() as i64)
            .bind(lo)
            .bind(hi)
            .bind(encode(chunk))
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(TrackBatch {
            batch,
            track: track.to_owned(),
            count: points.len() as u64,
            stats,
            min_step,
            max_step,
        })
    }

    /// The stored batches among `batches` (one query), in no particular order.
    pub async fn track_batches(&self, session: &str, batches: &[i64]) -> Result<Vec<TrackBatch>> {
        // dialect: json_each($2) over a JSON array: PostgreSQL uses jsonb_array_elements_text($2::jsonb)::bigint (or = ANY($2))
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT batch, track, count, stats, min_step, max_step FROM track_batches \
                 WHERE session_id = $1 AND batch IN (SELECT value FROM json_each($2))"
            }
            Dialect::Postgres => {
                "SELECT batch, track, count, stats, min_step, max_step FROM track_batches \
                 WHERE session_id = $1 \
                   AND batch IN (SELECT jsonb_array_elements_text($2::jsonb)::bigint)"
            }
        };
        let rows = query(sql)
            .bind(session)
            .bind(serde_json::to_string(batches)?)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TrackBatch {
                    batch: r.try_get(0)?,
                    track: r.try_get(1)?,
                    count: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                    stats: serde_json::from_str(r.try_get::<&str, _>(3)?)?,
                    min_step: r.try_get(4)?,
                    max_step: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// The points of chunks `from..=to` of a batch, in order, optionally only chunks whose
    /// step range meets `[lo, hi]`; each with its index in the batch.
    pub async fn track_points(
        &self,
        session: &str,
        batch: i64,
        from: i64,
        to: i64,
        steps: Option<(f64, f64)>,
    ) -> Result<Vec<(u64, Point)>> {
        let (lo, hi) = steps.map_or((None, None), |(l, h)| (Some(l), Some(h)));
        let rows = query(
            "SELECT chunk, points FROM track_chunks WHERE session_id = $1 AND batch = $2 \
             AND chunk BETWEEN $3 AND $4 AND ($5 IS NULL OR (max_step >= $5 AND min_step <= $6)) \
             ORDER BY chunk",
        )
        .bind(session)
        .bind(batch)
        .bind(from)
        .bind(to)
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let chunk: i64 = r.try_get(0)?;
            let first = u64::try_from(chunk).unwrap_or(0) * CHUNK as u64;
            for (i, p) in decode(r.try_get::<&str, _>(1)?)?.into_iter().enumerate() {
                out.push((first + i as u64, p));
            }
        }
        Ok(out)
    }
}

/// Checks one point given as JSON: an object of 1–32 fields, each a finite number under a
/// name of 1–64 bytes.
pub fn point_from_json(v: &Value) -> std::result::Result<Point, String> {
    let Some(o) = v.as_object() else {
        return Err("a point must be an object of field → number".into());
    };
    if o.is_empty() || o.len() > 32 {
        return Err("a point has 1 to 32 fields".into());
    }
    o.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.len() > 64 || k.chars().any(char::is_control) {
                return Err(format!(
                    "field name `{}` must be 1-64 bytes",
                    k.escape_debug()
                ));
            }
            match v.as_f64().filter(|x| x.is_finite()) {
                Some(x) => Ok((k.clone(), x)),
                None => Err(format!("field `{k}` must be a finite number, not {v}")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_with_missing_fields() {
        let a: Point = [("step".into(), 0.0), ("loss".into(), 2.5)].into();
        let b: Point = [("step".into(), 1.0), ("acc".into(), 0.5)].into();
        let pts = vec![a.clone(), b.clone()];
        assert_eq!(decode(&encode(&pts)).unwrap(), pts);
        let s = stats_of(&pts);
        assert_eq!(s["step"].count, 2);
        assert_eq!(s["loss"].count, 1);
        assert_eq!(s["step"].last, 1.0);
        assert_eq!(step_range(&pts), (Some(0.0), Some(1.0)));
    }

    #[test]
    fn points_must_be_objects_of_finite_numbers() {
        assert!(point_from_json(&serde_json::json!({"step": 1, "value": 0.5})).is_ok());
        for bad in [
            serde_json::json!({"value": "high"}),
            serde_json::json!({}),
            serde_json::json!([1, 2]),
            serde_json::json!({"value": null}),
        ] {
            assert!(point_from_json(&bad).is_err(), "{bad}");
        }
    }
}
