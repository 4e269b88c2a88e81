//! Moving an instance from SQLite to PostgreSQL (`kiln migrate --to postgres://…`): every
//! table copied in one PostgreSQL transaction, then checked row for row and chain by chain.
//!
//! The copy reads one consistent SQLite snapshot (a read transaction) and streams each table
//! with `COPY … FROM STDIN`, parents before children, with the target's own triggers switched
//! off for the copy (the rows already carry what the triggers would have written: outbox
//! entries, last activity). Identity columns then continue after the highest id SQLite ever
//! gave (its `sqlite_sequence`, so AUTOINCREMENT ids are never reused). Nothing is visible in
//! PostgreSQL until the one commit, so a run that fails half-way leaves the target as it found
//! it and can simply be re-run. A target that already holds data is refused unless `replace`
//! (it is then emptied inside the same transaction).
//!
//! The data directory's stored content (notebook files, attachments) goes into PostgreSQL in
//! the same transaction (`content`), since servers that share a database share no disk.
//!
//! The check reads everything back from PostgreSQL: per table the row count and an
//! order-independent digest of every row's values (each value decoded by its PostgreSQL column
//! type, compared with the same digest of the SQLite rows), then every session's audit chain
//! and node hash chain recomputed from the PostgreSQL rows, which must verify exactly as they
//! do in SQLite, every blob read back and hashed, and for a sample of sessions the whole
//! session read through the PostgreSQL store, its states replayed from its events (every
//! branch state and snapshot must equal the replay) and the document compared with the same
//! read of SQLite.

mod content;

pub use content::ContentTransfer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, TypeInfo, ValueRef};

use crate::{Db, Error, Result};

/// How `copy_to_postgres` treats a target.
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// Empty a target that already holds data (in the same transaction as the copy).
    pub replace: bool,
    /// The stored content to move: (kind, folder), e.g. `("files", <data_dir>/files)`.
    pub content: Vec<(String, PathBuf)>,
    /// How many sessions to read back whole and replay (spread over all of them; 0: none).
    pub state_sample: usize,
}

/// One table's copy and check.
#[derive(Debug, Clone, Serialize)]
pub struct TableTransfer {
    pub table: String,
    pub rows_sqlite: i64,
    pub rows_postgres: i64,
    /// The digest of every row's values matches on both sides.
    pub same_content: bool,
}

/// What a copy did and what its check found.
#[derive(Debug, Clone, Serialize)]
pub struct TransferReport {
    pub tables: Vec<TableTransfer>,
    pub sessions: i64,
    /// Sessions whose audit chain verifies in PostgreSQL (and in SQLite).
    pub audit_chains_valid: i64,
    /// Sessions whose node hash chain verifies in PostgreSQL (and in SQLite).
    pub node_chains_valid: i64,
    /// Sessions whose chains verify differently in the two stores (must be empty).
    pub chain_mismatches: Vec<String>,
    /// Stored content per kind.
    pub content: Vec<ContentTransfer>,
    /// Sessions read back whole from PostgreSQL whose states were replayed.
    pub states_checked: i64,
    /// Sampled sessions whose states do not equal a replay in PostgreSQL, or whose document
    /// differs from SQLite's (must be empty), each with the reason.
    pub state_mismatches: Vec<String>,
    pub copy_seconds: f64,
    pub check_seconds: f64,
}

impl TransferReport {
    /// Everything was copied and every check held.
    pub fn verified(&self) -> bool {
        self.chain_mismatches.is_empty()
            && self.state_mismatches.is_empty()
            && self
                .content
                .iter()
                .all(|c| c.same_content && c.damaged.is_empty())
            && self
                .tables
                .iter()
                .all(|t| t.same_content && t.rows_sqlite == t.rows_postgres)
    }
}

/// A PostgreSQL column's value class, which decides how a SQLite value is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Integer,
    Real,
    Text,
    Bytes,
    Boolean,
}

impl Class {
    fn of(pg_type: &str) -> Result<Self> {
        Ok(match pg_type {
            "bigint" | "integer" | "smallint" => Self::Integer,
            "double precision" | "real" | "numeric" => Self::Real,
            "text" | "character varying" | "character" | "jsonb" | "json" => Self::Text,
            "bytea" => Self::Bytes,
            "boolean" => Self::Boolean,
            other => {
                return Err(Error::Invalid(format!(
                    "PostgreSQL column type `{other}` has no SQLite counterpart"
                )));
            }
        })
    }
}

/// One table as the copy sees it.
struct Table {
    name: String,
    /// (column, class) in PostgreSQL's order; a `rowid` column takes SQLite's implicit rowid.
    columns: Vec<(String, Class)>,
    /// Identity columns, whose sequences continue after the copy.
    identity: Vec<String>,
}

/// A value as both sides decode it.
#[derive(Debug, PartialEq)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// Appends the value to a row digest (a tag, then a length-prefixed body).
    fn digest(&self, h: &mut Sha256) {
        match self {
            Value::Null => h.update([0]),
            Value::Integer(i) => {
                h.update([1]);
                h.update(i.to_le_bytes());
            }
            Value::Real(f) => {
                h.update([2]);
                // -0.0 and 0.0 are one value to both databases' comparisons.
                let f = if *f == 0.0 { 0.0 } else { *f };
                h.update(f.to_bits().to_le_bytes());
            }
            Value::Text(s) => {
                h.update([3]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            Value::Bytes(b) => {
                h.update([4]);
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
        }
    }

    /// Writes the value as a field of `COPY … FROM STDIN` text format.
    fn copy_field(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"\\N"),
            Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Real(f) => {
                let s = if f.is_nan() {
                    "NaN".to_string()
                } else if f.is_infinite() {
                    if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
                } else {
                    // Rust prints the shortest text that reads back to the same f64.
                    format!("{f:?}")
                };
                out.extend_from_slice(s.as_bytes());
            }
            Value::Text(s) => {
                for b in s.bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        _ => out.push(b),
                    }
                }
            }
            Value::Bytes(b) => {
                // bytea's hex input, with COPY's own backslash doubled.
                out.extend_from_slice(b"\\\\x");
                out.extend_from_slice(hex::encode(b).as_bytes());
            }
        }
    }
}

/// The digest of a table: the count and the wrapping sum of its rows' digests, so it does not
/// depend on the order rows come back in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct TableDigest {
    rows: i64,
    sum: u128,
}

impl TableDigest {
    fn add(&mut self, values: &[Value]) {
        let mut h = Sha256::new();
        for v in values {
            v.digest(&mut h);
        }
        let d = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
    }
}

/// Reads a SQLite value as the class of the PostgreSQL column it goes to.
fn sqlite_value(row: &SqliteRow, i: usize, class: Class, table: &str, col: &str) -> Result<Value> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    let mismatch = || {
        Error::Invalid(format!(
            "{table}.{col}: SQLite holds a {storage} value where PostgreSQL expects {class:?}"
        ))
    };
    Ok(match (class, storage.as_str()) {
        (Class::Integer | Class::Boolean, "INTEGER") => Value::Integer(row.try_get(i)?),
        (Class::Real, "REAL") => Value::Real(row.try_get(i)?),
        (Class::Real, "INTEGER") => Value::Real(row.try_get::<i64, _>(i)? as f64),
        (Class::Text, "TEXT") => {
            let s: String = row.try_get(i)?;
            if s.contains('\0') {
                return Err(Error::Invalid(format!(
                    "{table}.{col}: a text value holds a NUL character, which PostgreSQL text cannot store"
                )));
            }
            Value::Text(s)
        }
        (Class::Bytes, "BLOB") => Value::Bytes(row.try_get(i)?),
        (Class::Bytes, "TEXT") => Value::Bytes(row.try_get::<String, _>(i)?.into_bytes()),
        _ => return Err(mismatch()),
    })
}

/// Reads a PostgreSQL value by its column's class.
fn pg_value(row: &sqlx::postgres::PgRow, i: usize, class: Class) -> Result<Value> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    Ok(match class {
        Class::Integer => Value::Integer(row.try_get(i)?),
        Class::Boolean => Value::Integer(i64::from(row.try_get::<bool, _>(i)?)),
        Class::Real => Value::Real(row.try_get(i)?),
        Class::Text => Value::Text(row.try_get(i)?),
        Class::Bytes => Value::Bytes(row.try_get(i)?),
    })
}

/// Statement text built from quoted identifiers (`ident`) the schema itself gave.
macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

/// Quotes an identifier for either dialect.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Hides a URL's password for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The tables of the SQLite store in an order where every table comes after those it
/// references.
async fn sqlite_tables(conn: &mut sqlx::SqliteConnection) -> Result<Vec<String>> {
    // dialect: sqlite_master, NOT LIKE 'sqlite_%': the SQLite source's catalog (the transfer reads SQLite only; PostgreSQL's side uses information_schema)
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        let refs: Vec<String> =
            // dialect: pragma_foreign_key_list: the SQLite source's catalog (the transfer reads SQLite only; PostgreSQL's side uses information_schema)
            sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)")
                .bind(name)
                .fetch_all(&mut *conn)
                .await?;
        deps.insert(
            name.clone(),
            refs.into_iter().filter(|r| r != name).collect(),
        );
    }
    let mut order = Vec::with_capacity(names.len());
    let mut placed = BTreeSet::new();
    while placed.len() < names.len() {
        let ready: Vec<String> = names
            .iter()
            .filter(|n| !placed.contains(*n))
            .filter(|n| deps[*n].iter().all(|d| placed.contains(d)))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(Error::Invalid(
                "the SQLite tables reference each other in a cycle; no copy order exists".into(),
            ));
        }
        for n in ready {
            placed.insert(n.clone());
            order.push(n);
        }
    }
    Ok(order)
}

/// A table's columns as PostgreSQL has them.
async fn pg_table(pg: &mut PgConnection, name: &str) -> Result<Table> {
    let rows = sqlx::query(
        "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(name)
    .fetch_all(&mut *pg)
    .await?;
    if rows.is_empty() {
        return Err(Error::Invalid(format!(
            "table `{name}` is in SQLite but not in the PostgreSQL schema"
        )));
    }
    let mut columns = Vec::with_capacity(rows.len());
    let mut identity = Vec::new();
    for r in &rows {
        let col: String = r.try_get(0)?;
        let ty: String = r.try_get(1)?;
        let is_identity: String = r.try_get(2)?;
        if is_identity == "YES" {
            identity.push(col.clone());
        }
        columns.push((col, Class::of(&ty)?));
    }
    Ok(Table {
        name: name.to_string(),
        columns,
        identity,
    })
}

impl Db {
    /// Copies this store into the PostgreSQL database at `url` (its schema made or brought up
    /// to date first) and checks the copy. Fails, leaving the target unchanged, on any error.
    pub async fn copy_to_postgres(
        &self,
        url: &str,
        options: TransferOptions,
        mut progress: impl FnMut(&str, i64),
    ) -> Result<TransferReport> {
        crate::postgres::migrate_postgres(url).await?;
        let mut read = self.read().await?;
        let crate::conn::Conn::Lite(lite) = &mut *read else {
            return Err(Error::Invalid(
                "copy_to_postgres copies a SQLite store; this store is already on PostgreSQL"
                    .into(),
            ));
        };
        let started = Instant::now();
        let mut found = Vec::with_capacity(options.content.len());
        for (kind, dir) in &options.content {
            let (f, damaged) = content::scan(dir).await?;
            found.push((kind.clone(), f, damaged));
        }
        let mut pg = PgConnection::connect(url).await?;
        sqlx::query("BEGIN").execute(&mut *lite).await?;
        let copied = copy_all(lite, &mut pg, &options, &found, &mut progress).await;
        let _ = sqlx::query("ROLLBACK").execute(&mut *lite).await;
        let (tables, digests) = copied?;
        let copy_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let report = check(lite, &mut pg, tables, digests).await;
        let mut content = Vec::with_capacity(found.len());
        let mut content_err = None;
        if report.is_ok() {
            for (kind, f, damaged) in found {
                match content::check(&mut pg, &kind, &f, damaged).await {
                    Ok(c) => content.push(c),
                    Err(e) => {
                        content_err = Some(e);
                        break;
                    }
                }
            }
        }
        let _ = pg.close().await;
        drop(read);
        let mut report = report?;
        if let Some(e) = content_err {
            return Err(e);
        }
        report.content = content;
        self.check_states(url, &mut report, options.state_sample)
            .await?;
        report.copy_seconds = copy_seconds;
        report.check_seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Reads a sample of sessions whole through a PostgreSQL store on `url` and through this
    /// one: PostgreSQL's must pass the replay check, and both documents must be the same.
    async fn check_states(
        &self,
        url: &str,
        report: &mut TransferReport,
        sample: usize,
    ) -> Result<()> {
        if sample == 0 {
            return Ok(());
        }
        let ids: Vec<String> = {
            let mut conn = self.read().await?;
            crate::conn::query_scalar("SELECT id FROM sessions ORDER BY id")
                .fetch_all(&mut conn)
                .await?
        };
        let n = ids.len();
        let picked: BTreeSet<usize> = (0..sample.min(n)).map(|i| i * n / sample.min(n)).collect();
        let pg = Db::open_postgres(url, &crate::DbOptions::default()).await?;
        for i in picked {
            let id = &ids[i];
            let mut there = pg.export(id).await?;
            let mut here = self.export(id).await?;
            // The one field that is not the session's: when the document was made.
            there.exported_at.clear();
            here.exported_at.clear();
            report.states_checked += 1;
            if let Err(e) = there.check() {
                report.state_mismatches.push(format!("{id}: {e}"));
            } else if there.digest()? != here.digest()? {
                report
                    .state_mismatches
                    .push(format!("{id}: reads differently from SQLite"));
            }
        }
        pg.close().await;
        Ok(())
    }
}

type Copied = (Vec<Table>, HashMap<String, TableDigest>);

async fn copy_all(
    lite: &mut sqlx::SqliteConnection,
    pg: &mut PgConnection,
    options: &TransferOptions,
    found: &[(String, content::Found, Vec<String>)],
    progress: &mut impl FnMut(&str, i64),
) -> Result<Copied> {
    let names = sqlite_tables(lite).await?;
    let mut tables = Vec::with_capacity(names.len());
    for name in &names {
        tables.push(pg_table(pg, name).await?);
    }
    let mut tx = pg.begin().await?;
    let mut held = Vec::new();
    for t in &tables {
        let any: bool =
            sqlx::query_scalar(sql!("SELECT EXISTS (SELECT 1 FROM {})", ident(&t.name)))
                .fetch_one(&mut *tx)
                .await?;
        if any {
            held.push(t.name.clone());
        }
    }
    if !held.is_empty() {
        if !options.replace {
            return Err(Error::AlreadyExists(format!(
                "data in the PostgreSQL database (tables {}); pass --replace to overwrite it",
                held.join(", ")
            )));
        }
        let list: Vec<String> = tables.iter().map(|t| ident(&t.name)).collect();
        sqlx::query(sql!(
            "TRUNCATE {} RESTART IDENTITY CASCADE",
            list.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
    }
    // The content tables are empty on SQLite: filled from the data directory below instead.
    tables.retain(|t| !content::CONTENT_TABLES.contains(&t.name.as_str()));
    let mut digests = HashMap::new();
    for t in &tables {
        sqlx::query(sql!("ALTER TABLE {} DISABLE TRIGGER USER", ident(&t.name)))
            .execute(&mut *tx)
            .await?;
        let digest = copy_table(lite, &mut tx, t, progress).await?;
        sqlx::query(sql!("ALTER TABLE {} ENABLE TRIGGER USER", ident(&t.name)))
            .execute(&mut *tx)
            .await?;
        digests.insert(t.name.clone(), digest);
    }
    // Identity columns continue after the highest id SQLite gave, deleted rows included.
    let mut seqs: HashMap<String, i64> = HashMap::new();
    // dialect: sqlite_master: the SQLite source's catalog (the transfer reads SQLite only; PostgreSQL's side uses information_schema)
    let has_seq: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
    )
    .fetch_one(&mut *lite)
    .await?;
    if has_seq {
        // dialect: sqlite_sequence: the SQLite source's catalog (the transfer reads SQLite only; PostgreSQL's side uses information_schema)
        for r in sqlx::query("SELECT name, seq FROM sqlite_sequence")
            .fetch_all(&mut *lite)
            .await?
        {
            seqs.insert(r.try_get(0)?, r.try_get(1)?);
        }
    }
    for t in &tables {
        for col in &t.identity {
            let floor = seqs.get(&t.name).copied().unwrap_or(0);
            sqlx::query(sql!(
                "SELECT setval(pg_get_serial_sequence($1, $2), \
                 GREATEST(COALESCE((SELECT MAX({c}) FROM {t}), 0), $3, 1), \
                 GREATEST(COALESCE((SELECT MAX({c}) FROM {t}), 0), $3) > 0)",
                c = ident(col),
                t = ident(&t.name)
            ))
            .bind(&t.name)
            .bind(col)
            .bind(floor)
            .execute(&mut *tx)
            .await?;
        }
    }
    for (kind, f, _) in found {
        content::copy(&mut tx, kind, f).await?;
        progress(kind, f.len() as i64);
    }
    tx.commit().await?;
    Ok((tables, digests))
}

/// Streams one table into PostgreSQL and returns the digest of what was sent.
async fn copy_table(
    lite: &mut sqlx::SqliteConnection,
    pg: &mut PgConnection,
    t: &Table,
    progress: &mut impl FnMut(&str, i64),
) -> Result<TableDigest> {
    // dialect: pragma_table_info: the SQLite source's catalog (the transfer reads SQLite only; PostgreSQL's side uses information_schema)
    let lite_cols: BTreeSet<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
        .bind(&t.name)
        .fetch_all(&mut *lite)
        .await?
        .into_iter()
        .collect();
    let mut select = Vec::with_capacity(t.columns.len());
    for (col, _) in &t.columns {
        if lite_cols.contains(col) || col == "rowid" {
            select.push(ident(col));
        } else {
            return Err(Error::Invalid(format!(
                "column {}.{col} is in PostgreSQL but not in SQLite",
                t.name
            )));
        }
    }
    let pg_cols = select.join(", ");
    // Rowid tables go in rowid order, so a row that references an earlier row of its own
    // table (a segment's parent) follows it; WITHOUT ROWID tables come in key order.
    // dialect: sqlite_master, instr, WITHOUT ROWID: the SQLite source's catalog (the transfer reads SQLite only; PostgreSQL's side uses information_schema)
    let without_rowid: bool = sqlx::query_scalar(
        "SELECT COALESCE(instr(upper(sql), 'WITHOUT ROWID') > 0, 0) FROM sqlite_master \
         WHERE type = 'table' AND name = $1",
    )
    .bind(&t.name)
    .fetch_one(&mut *lite)
    .await?;
    let mut copy = pg
        .copy_in_raw(&format!("COPY {} ({pg_cols}) FROM STDIN", ident(&t.name)))
        .await?;
    let order = if without_rowid { "" } else { " ORDER BY rowid" };
    let sql = format!("SELECT {pg_cols} FROM {}{order}", ident(&t.name));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).fetch(&mut *lite);
    let mut digest = TableDigest::default();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut values = Vec::with_capacity(t.columns.len());
    let result: Result<()> = async {
        while let Some(row) = rows.try_next().await? {
            values.clear();
            for (i, (col, class)) in t.columns.iter().enumerate() {
                values.push(sqlite_value(&row, i, *class, &t.name, col)?);
            }
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                v.copy_field(&mut buf);
            }
            buf.push(b'\n');
            digest.add(&values);
            if buf.len() >= 1 << 20 {
                copy.send(std::mem::take(&mut buf)).await?;
                progress(&t.name, digest.rows);
            }
        }
        Ok(())
    }
    .await;
    drop(rows);
    if let Err(e) = result {
        let _ = copy.abort("kiln migrate stopped").await;
        return Err(e);
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    copy.finish().await?;
    progress(&t.name, digest.rows);
    Ok(digest)
}

/// Reads everything back from PostgreSQL and compares it with what was sent.
async fn check(
    lite: &mut sqlx::SqliteConnection,
    pg: &mut PgConnection,
    tables: Vec<Table>,
    sent: HashMap<String, TableDigest>,
) -> Result<TransferReport> {
    let mut out = Vec::with_capacity(tables.len());
    for t in &tables {
        let cols: Vec<String> = t.columns.iter().map(|(c, _)| ident(c)).collect();
        let sql = format!("SELECT {} FROM {}", cols.join(", "), ident(&t.name));
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).fetch(&mut *pg);
        let mut digest = TableDigest::default();
        let mut values = Vec::with_capacity(cols.len());
        while let Some(row) = rows.try_next().await? {
            values.clear();
            for (i, (_, class)) in t.columns.iter().enumerate() {
                values.push(pg_value(&row, i, *class)?);
            }
            digest.add(&values);
        }
        let before = sent.get(&t.name).copied().unwrap_or_default();
        out.push(TableTransfer {
            table: t.name.clone(),
            rows_sqlite: before.rows,
            rows_postgres: digest.rows,
            same_content: before == digest,
        });
    }
    let sessions: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions ORDER BY id")
        .fetch_all(&mut *pg)
        .await?;
    let mut audit_valid = 0;
    let mut nodes_valid = 0;
    let mut mismatches = Vec::new();
    for s in &sessions {
        let a_pg = crate::audit::verify(&crate::audit::entries_in(&mut *pg, s).await?);
        let a_lite = crate::audit::verify(&crate::audit::entries_in(&mut *lite, s).await?);
        let n_pg = crate::chain::verify_in(&mut *pg, s).await?;
        let n_lite = crate::chain::verify_in(&mut *lite, s).await?;
        if a_pg.valid {
            audit_valid += 1;
        }
        if n_pg.valid {
            nodes_valid += 1;
        }
        if a_pg != a_lite || n_pg != n_lite {
            mismatches.push(s.clone());
        }
    }
    Ok(TransferReport {
        tables: out,
        sessions: sessions.len() as i64,
        audit_chains_valid: audit_valid,
        node_chains_valid: nodes_valid,
        chain_mismatches: mismatches,
        content: Vec::new(),
        states_checked: 0,
        state_mismatches: Vec::new(),
        copy_seconds: 0.0,
        check_seconds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_escape_what_copy_text_format_reads_as_syntax() {
        let mut out = Vec::new();
        Value::Text("a\tb\nc\\d\re".into()).copy_field(&mut out);
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re");
        out.clear();
        Value::Bytes(vec![0, 255]).copy_field(&mut out);
        assert_eq!(out, b"\\\\x00ff");
        out.clear();
        Value::Null.copy_field(&mut out);
        assert_eq!(out, b"\\N");
        out.clear();
        Value::Real(1e-7).copy_field(&mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap().parse::<f64>().unwrap(),
            1e-7
        );
    }

    #[test]
    fn a_table_digest_ignores_row_order_and_sees_any_changed_value() {
        let rows = [
            vec![Value::Integer(1), Value::Text("a".into())],
            vec![Value::Integer(2), Value::Null],
        ];
        let mut a = TableDigest::default();
        let mut b = TableDigest::default();
        a.add(&rows[0]);
        a.add(&rows[1]);
        b.add(&rows[1]);
        b.add(&rows[0]);
        assert_eq!(a, b);
        let mut c = TableDigest::default();
        c.add(&rows[0]);
        c.add(&[Value::Integer(2), Value::Text(String::new())]);
        assert_ne!(a, c);
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redact_url("postgres://kiln:s3cret@db:5432/kiln"),
            "postgres://kiln:***@db:5432/kiln"
        );
        assert_eq!(
            redact_url("postgres://kiln@db/kiln"),
            "postgres://kiln@db/kiln"
        );
    }
}
