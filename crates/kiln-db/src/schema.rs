//! A dialect-neutral description of the store's schema (tables, columns, keys, checks, indexes,
//! triggers), read from a SQLite file here or from PostgreSQL (`postgres.rs`), so a test can
//! assert that the two migration sets build the same schema, up to one declared rule: on
//! PostgreSQL the keys of the tables distributed by session hold `session_id`
//! ([`DISTRIBUTED`], [`Schema::distributed`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection as _, Row};

use crate::Result;

/// A schema as both dialects can describe it. Compare two with [`Schema::differences`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Every table but sqlx's `_sqlx_migrations` and SQLite's internal ones, by name.
    pub tables: BTreeMap<String, Table>,
    /// The tables whose rows have a `rowid` SQL can read. In SQLite: every table that is not
    /// `WITHOUT ROWID` (the implicit rowid). In PostgreSQL: the tables with an explicit
    /// `rowid bigint` identity column with a UNIQUE constraint of its own (`rowid`, or on a
    /// [`DISTRIBUTED`] table `rowid` then its distribution column); that column and that
    /// constraint are left out of the table's `columns` and `uniques`. Not compared by
    /// [`Schema::differences`]: the two sets differ by design.
    pub rowid: BTreeSet<String>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// In table order.
    pub columns: Vec<Column>,
    /// UNIQUE constraints (not the primary key, not named unique indexes), by column list.
    pub uniques: BTreeSet<Vec<String>>,
    pub foreign_keys: BTreeSet<ForeignKey>,
    /// CHECK constraints as normalised text (see [`normalize_sql`]).
    pub checks: BTreeSet<String>,
    /// Named indexes (`CREATE INDEX`), not those behind a primary key or UNIQUE constraint.
    pub indexes: BTreeMap<String, Index>,
    pub triggers: BTreeMap<String, Trigger>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `text`, `integer`, `real` or `blob`: SQLite's affinity of the declared type; in
    /// PostgreSQL text, bigint, double precision and bytea. Any other type is `other (...)`,
    /// so a PostgreSQL `integer` (32 bits) is not mistaken for SQLite's 64-bit INTEGER.
    pub class: String,
    /// Declared NOT NULL or part of the primary key (SQLite accepts NULL in a non-INTEGER
    /// primary key of a rowid table, a quirk kept for compatibility; no Kiln row relies on it).
    pub not_null: bool,
    /// The default as normalised SQL text (`0`, `'[]'`), casts and parentheses dropped.
    pub default: Option<String>,
    /// Position in the primary key (1-based).
    pub primary_key: Option<u32>,
    /// Values are assigned when none is given: SQLite's INTEGER PRIMARY KEY (the rowid), a
    /// PostgreSQL identity (or serial).
    pub generated: bool,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub table: String,
    pub references: Vec<String>,
    /// `NO ACTION`, `CASCADE`, `SET NULL`, `SET DEFAULT` or `RESTRICT`.
    pub on_delete: String,
    pub on_update: String,
}

/// A named index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub columns: Vec<String>,
    pub unique: bool,
    /// A partial index's WHERE, normalised.
    pub predicate: Option<String>,
}

/// A trigger: when it fires. What it does is checked by running it (kiln-db's
/// `postgres_schema` test), not by reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// `BEFORE`, `AFTER` or `INSTEAD OF`.
    pub timing: String,
    /// `INSERT`, `UPDATE` or `DELETE` (several joined by ` OR `).
    pub event: String,
    /// `UPDATE OF` columns, sorted; empty for any column.
    pub columns: BTreeSet<String>,
    /// Fires once per row (SQLite's only kind).
    pub for_each_row: bool,
}

/// The tables distributed by session (Citus-style; ARCHITECTURE.md, "Past one database"), each
/// with its distribution column: `sessions` by its own id, the tables that grow with a session
/// by `session_id`, all co-located. On PostgreSQL every primary or unique key of these tables
/// holds the distribution column and every foreign key between two of them pairs the two
/// distribution columns (migration 0019); SQLite keeps the keys it had ([`Schema::distributed`]
/// says how the two relate). A new table keyed by session belongs here.
pub const DISTRIBUTED: &[(&str, &str)] = &[
    ("sessions", "id"),
    ("audit_log", "session_id"),
    ("batch_items", "session_id"),
    ("batches", "session_id"),
    ("branches", "session_id"),
    ("collaborators", "session_id"),
    ("job_leases", "session_id"),
    ("merges", "session_id"),
    ("nodes", "session_id"),
    ("optimizer_controllers", "session_id"),
    ("presence", "session_id"),
    ("reflog", "session_id"),
    ("refs", "session_id"),
    ("search_outbox", "session_id"),
    ("segments", "session_id"),
    ("session_events", "session_id"),
    ("share_links", "session_id"),
    ("state_snapshots", "session_id"),
    ("track_batches", "session_id"),
    ("track_chunks", "session_id"),
];

/// Tables with a `session_id` column that are not distributed by it, and why.
pub const NOT_DISTRIBUTED_BY_SESSION: &[(&str, &str)] = &[(
    "user_memory",
    "a user's memory: distributed by user; session_id only says where a note was saved",
)];

/// The distribution column of a distributed table.
fn distribution_column(table: &str) -> Option<&'static str> {
    DISTRIBUTED
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
}

impl Schema {
    /// Returns the schema PostgreSQL is to have when `self` is SQLite's: for each table of
    /// [`DISTRIBUTED`], the primary key, every UNIQUE constraint and every unique index that
    /// lacks the distribution column take it last; every foreign key to another distributed
    /// table that lacks it pairs the two distribution columns last. Last, not first: the
    /// key's own columns still lead, so a lookup by them stays one probe of a unique index
    /// and no plan can reach a row by scanning its session instead (a lookup across sessions
    /// by the leading columns needs no extra index either). Everything else is left as it
    /// is, so comparing the result with PostgreSQL's description still reports any other
    /// difference.
    pub fn distributed(&self) -> Schema {
        let mut out = self.clone();
        for (name, table) in &mut out.tables {
            let Some(key) = distribution_column(name) else {
                continue;
            };
            let in_pk = table
                .columns
                .iter()
                .any(|c| c.name == key && c.primary_key.is_some());
            let has_pk = table.columns.iter().any(|c| c.primary_key.is_some());
            if has_pk && !in_pk {
                let last = table.columns.iter().filter_map(|c| c.primary_key).max();
                for c in &mut table.columns {
                    if c.name == key {
                        c.primary_key = last.map(|p| p + 1);
                    }
                }
            }
            let append = |cols: &Vec<String>, col: &str| {
                let mut cols = cols.clone();
                if !cols.iter().any(|c| c == col) {
                    cols.push(col.to_string());
                }
                cols
            };
            table.uniques = table.uniques.iter().map(|u| append(u, key)).collect();
            for index in table.indexes.values_mut().filter(|i| i.unique) {
                index.columns = append(&index.columns, key);
            }
            table.foreign_keys = table
                .foreign_keys
                .iter()
                .map(|fk| match distribution_column(&fk.table) {
                    Some(theirs) if !fk.columns.iter().any(|c| c == key) => ForeignKey {
                        columns: append(&fk.columns, key),
                        references: append(&fk.references, theirs),
                        ..fk.clone()
                    },
                    _ => fk.clone(),
                })
                .collect();
        }
        out
    }

    /// Lists, one readable line each, how `self` (called `left`) and `other` (`right`) differ:
    /// tables, columns, unique constraints, foreign keys, checks, indexes and triggers. Empty
    /// when they are the same. [`Schema::rowid`] is not compared.
    pub fn differences(&self, other: &Schema, left: &str, right: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (name, a) in &self.tables {
            let Some(b) = other.tables.get(name) else {
                out.push(format!("table {name}: only in {left}"));
                continue;
            };
            a.differences(b, name, left, right, &mut out);
        }
        for name in other.tables.keys() {
            if !self.tables.contains_key(name) {
                out.push(format!("table {name}: only in {right}"));
            }
        }
        out
    }
}

impl Table {
    fn differences(&self, b: &Table, table: &str, left: &str, right: &str, out: &mut Vec<String>) {
        let w = left.len().max(right.len());
        let names = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let (na, nb) = (names(self), names(b));
        if na != nb {
            out.push(format!(
                "table {table}: columns differ\n    {left:<w$}: {}\n    {right:<w$}: {}",
                na.join(", "),
                nb.join(", ")
            ));
        }
        for ca in &self.columns {
            match b.columns.iter().find(|c| c.name == ca.name) {
                Some(cb) if cb != ca => out.push(format!(
                    "table {table}, column {}:\n    {left:<w$}: {ca:?}\n    {right:<w$}: {cb:?}",
                    ca.name
                )),
                _ => {}
            }
        }
        set_differences(&self.uniques, &b.uniques, table, "unique", left, right, out);
        set_differences(
            &self.foreign_keys,
            &b.foreign_keys,
            table,
            "foreign key",
            left,
            right,
            out,
        );
        set_differences(&self.checks, &b.checks, table, "check", left, right, out);
        map_differences(&self.indexes, &b.indexes, table, "index", left, right, out);
        map_differences(
            &self.triggers,
            &b.triggers,
            table,
            "trigger",
            left,
            right,
            out,
        );
    }
}

fn set_differences<T: Ord + std::fmt::Debug>(
    a: &BTreeSet<T>,
    b: &BTreeSet<T>,
    table: &str,
    what: &str,
    left: &str,
    right: &str,
    out: &mut Vec<String>,
) {
    for x in a.difference(b) {
        out.push(format!("table {table}: {what} {x:?} only in {left}"));
    }
    for x in b.difference(a) {
        out.push(format!("table {table}: {what} {x:?} only in {right}"));
    }
}

fn map_differences<T: PartialEq + std::fmt::Debug>(
    a: &BTreeMap<String, T>,
    b: &BTreeMap<String, T>,
    table: &str,
    what: &str,
    left: &str,
    right: &str,
    out: &mut Vec<String>,
) {
    for (name, x) in a {
        match b.get(name) {
            None => out.push(format!(
                "table {table}: {what} {name} only in {left}: {x:?}"
            )),
            Some(y) if y != x => {
                let w = left.len().max(right.len());
                out.push(format!(
                    "table {table}, {what} {name}:\n    {left:<w$}: {x:?}\n    {right:<w$}: {y:?}"
                ));
            }
            Some(_) => {}
        }
    }
    for (name, y) in b {
        if !a.contains_key(name) {
            out.push(format!(
                "table {table}: {what} {name} only in {right}: {y:?}"
            ));
        }
    }
}

/// Describes the schema of the SQLite database file at `path` (opened read-only).
pub async fn describe_sqlite(path: &Path) -> Result<Schema> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let schema = describe_sqlite_conn(&mut conn).await;
    let _ = conn.close().await;
    schema
}

async fn describe_sqlite_conn(conn: &mut SqliteConnection) -> Result<Schema> {
    let mut schema = Schema::default();
    // dialect: sqlite_master: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, sql) in tables {
        let toks = tokens(&sql);
        let without_rowid = matches!(
            toks.as_slice(),
            [.., Token::Word(a), Token::Word(b)]
                if a.eq_ignore_ascii_case("without") && b.eq_ignore_ascii_case("rowid")
        );
        if !without_rowid {
            schema.rowid.insert(name.clone());
        }
        let mut table = Table::default();

        // dialect: pragma_table_info: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
        let info = sqlx::query(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info($1) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let pk_columns = info
            .iter()
            .filter(|r| r.try_get::<i64, _>(4).is_ok_and(|pk| pk > 0))
            .count();
        for r in &info {
            let declared: String = r.try_get(1)?;
            let pk: i64 = r.try_get(4)?;
            let rowid_alias = pk == 1
                && pk_columns == 1
                && !without_rowid
                && declared.eq_ignore_ascii_case("INTEGER");
            let not_null: i64 = r.try_get(2)?;
            let default: Option<String> = r.try_get(3)?;
            table.columns.push(Column {
                name: r.try_get(0)?,
                class: sqlite_class(&declared).to_string(),
                not_null: not_null != 0 || pk > 0,
                default: default.map(|d| normalize_sql(&tokens(&d))),
                primary_key: u32::try_from(pk).ok().filter(|p| *p > 0),
                generated: rowid_alias,
            });
        }

        // dialect: pragma_index_list: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
        let indexes: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT name, \"unique\", origin FROM pragma_index_list($1) ORDER BY name",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for (index, unique, origin) in indexes {
            let columns: Vec<Option<String>> =
                // dialect: pragma_index_info: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
                sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut *conn)
                    .await?;
            let columns: Vec<String> = columns
                .into_iter()
                .map(|c| c.unwrap_or_else(|| "<expression>".into()))
                .collect();
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    table.uniques.insert(columns);
                }
                _ => {
                    // dialect: sqlite_master: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
                    let sql: Option<String> = sqlx::query_scalar(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = $1",
                    )
                    .bind(&index)
                    .fetch_optional(&mut *conn)
                    .await?
                    .flatten();
                    let predicate = sql.and_then(|s| {
                        let toks = tokens(&s);
                        let at = toks.iter().position(|t| t.is_word("where"))?;
                        Some(normalize_sql(&toks[at + 1..]))
                    });
                    table.indexes.insert(
                        index,
                        Index {
                            columns,
                            unique: unique != 0,
                            predicate,
                        },
                    );
                }
            }
        }

        // dialect: pragma_foreign_key_list: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
        let fks = sqlx::query(
            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
             FROM pragma_foreign_key_list($1) ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut by_id: BTreeMap<i64, (ForeignKey, bool)> = BTreeMap::new();
        for r in fks {
            let id: i64 = r.try_get(0)?;
            let to: Option<String> = r.try_get(3)?;
            let fk = ForeignKey {
                columns: Vec::new(),
                table: r.try_get(1)?,
                references: Vec::new(),
                on_update: r.try_get(4)?,
                on_delete: r.try_get(5)?,
            };
            let entry = by_id.entry(id).or_insert((fk, false));
            entry.0.columns.push(r.try_get(2)?);
            match to {
                Some(to) => entry.0.references.push(to),
                None => entry.1 = true,
            }
        }
        for (_, (mut fk, to_primary_key)) in by_id {
            if to_primary_key {
                // `REFERENCES t` without columns: the parent's primary key.
                // dialect: pragma_table_info: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
                fk.references = sqlx::query_scalar(
                    "SELECT name FROM pragma_table_info($1) WHERE pk > 0 ORDER BY pk",
                )
                .bind(&fk.table)
                .fetch_all(&mut *conn)
                .await?;
            }
            table.foreign_keys.insert(fk);
        }

        for (at, _) in toks.iter().enumerate().filter(|(_, t)| t.is_word("check")) {
            if let Some(body) = parenthesised(&toks[at + 1..]) {
                table.checks.insert(normalize_sql(body));
            }
        }
        schema.tables.insert(name, table);
    }

    // dialect: sqlite_master: SQLite catalog (describe_sqlite): describe_postgres reads pg_catalog instead
    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, table, sql) in triggers {
        let trigger = sqlite_trigger(&tokens(&sql));
        if let Some(t) = schema.tables.get_mut(&table) {
            t.triggers.insert(name, trigger);
        }
    }
    Ok(schema)
}

/// SQLite's type affinity of a declared column type (its documented rules, in order).
fn sqlite_class(declared: &str) -> &'static str {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        "integer"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "text"
    } else if t.is_empty() || t.contains("BLOB") {
        "blob"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "real"
    } else {
        "numeric"
    }
}

/// When a trigger fires, from its `CREATE TRIGGER` header.
fn sqlite_trigger(toks: &[Token]) -> Trigger {
    let mut trigger = Trigger {
        timing: String::new(),
        event: String::new(),
        columns: BTreeSet::new(),
        for_each_row: true,
    };
    let mut i = toks
        .iter()
        .position(|t| t.is_word("trigger"))
        .map_or(toks.len(), |p| p + 1);
    while i < toks.len() {
        let t = &toks[i];
        if t.is_word("before") || t.is_word("after") {
            trigger.timing = t.text().to_ascii_uppercase();
        } else if t.is_word("instead") {
            trigger.timing = "INSTEAD OF".into();
            i += 1;
        } else if t.is_word("insert") || t.is_word("delete") || t.is_word("update") {
            trigger.event = t.text().to_ascii_uppercase();
            if t.is_word("update") && toks.get(i + 1).is_some_and(|t| t.is_word("of")) {
                i += 2;
                while i < toks.len() && !toks[i].is_word("on") {
                    if let Token::Word(w) = &toks[i] {
                        trigger.columns.insert(w.clone());
                    }
                    i += 1;
                }
            }
            break;
        }
        i += 1;
    }
    trigger
}

/// A lexical token of SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A keyword or identifier (quoted identifiers unquoted).
    Word(String),
    /// A string literal's value.
    Str(String),
    Num(String),
    Punct(String),
}

impl Token {
    pub(crate) fn is_word(&self, w: &str) -> bool {
        matches!(self, Token::Word(x) if x.eq_ignore_ascii_case(w))
    }

    fn text(&self) -> &str {
        match self {
            Token::Word(s) | Token::Str(s) | Token::Num(s) | Token::Punct(s) => s,
        }
    }
}

/// Splits SQL into tokens, dropping whitespace and comments.
pub(crate) fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        s.push(c);
                        i += 2;
                        continue;
                    }
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(if c == '\'' {
                Token::Str(s)
            } else {
                Token::Word(s)
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Num(chars[start..i].iter().collect()));
        } else {
            let two: String = [c, next.unwrap_or(' ')].iter().collect();
            if ["::", "<=", ">=", "<>", "!=", "==", "||"].contains(&two.as_str()) {
                out.push(Token::Punct(two));
                i += 2;
            } else {
                out.push(Token::Punct(c.to_string()));
                i += 1;
            }
        }
    }
    out
}

/// The tokens inside the parenthesised group that `toks` starts with.
fn parenthesised(toks: &[Token]) -> Option<&[Token]> {
    if toks.first()? != &Token::Punct("(".into()) {
        return None;
    }
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Token::Punct(p) if p == "(" => depth += 1,
            Token::Punct(p) if p == ")" => {
                depth -= 1;
                if depth == 0 {
                    return Some(&toks[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Normalises an SQL expression so both dialects' renderings of the same thing compare equal:
/// casts (`::text`) and parentheses dropped, PostgreSQL's `= ANY (ARRAY[...])` read as `IN`,
/// keywords and identifiers lower-cased, `==` as `=` and `!=` as `<>`, one space between
/// tokens. `kind = 'summary'` and `(kind = 'summary'::text)` both become `kind = 'summary'`.
pub fn normalize_sql_text(sql: &str) -> String {
    normalize_sql(&tokens(sql))
}

pub(crate) fn normalize_sql(toks: &[Token]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t {
            Token::Punct(p) if p == "::" => {
                // The cast's type: one word, or two for `double precision`, `character varying`.
                i += 2;
                if toks
                    .get(i)
                    .is_some_and(|t| t.is_word("precision") || t.is_word("varying"))
                {
                    i += 1;
                }
                continue;
            }
            Token::Punct(p)
                if p == "=" && matches!(toks.get(i + 1), Some(t) if t.is_word("any")) =>
            {
                out.push("in".into());
                i += 2;
                continue;
            }
            Token::Word(w) if w.eq_ignore_ascii_case("array") => {}
            Token::Punct(p) if ["(", ")", "[", "]"].contains(&p.as_str()) => {}
            Token::Punct(p) if p == "==" => out.push("=".into()),
            Token::Punct(p) if p == "!=" => out.push("<>".into()),
            Token::Punct(p) => out.push(p.clone()),
            Token::Word(w) => out.push(w.to_lowercase()),
            Token::Num(n) => out.push(n.clone()),
            Token::Str(s) => out.push(format!("'{}'", s.replace('\'', "''"))),
        }
        i += 1;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_renderings_normalise_alike() {
        for (sqlite, postgres) in [
            ("kind = 'summary'", "(kind = 'summary'::text)"),
            ("is_state = 1", "is_state = 1"),
            ("import_until IS NOT NULL", "(import_until IS NOT NULL)"),
            (
                "visibility IN ('private', 'shared', 'instance')",
                "((visibility = ANY (ARRAY['private'::text, 'shared'::text, 'instance'::text])))",
            ),
            ("''", "''::text"),
            ("'it''s'", "'it''s'::character varying"),
        ] {
            assert_eq!(normalize_sql_text(sqlite), normalize_sql_text(postgres));
        }
        assert_ne!(normalize_sql_text("a = 1"), normalize_sql_text("a = 2"));
    }

    fn column(name: &str, primary_key: Option<u32>) -> Column {
        Column {
            name: name.into(),
            class: "integer".into(),
            not_null: true,
            default: None,
            primary_key,
            generated: false,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn distributed_keys_take_the_distribution_column_last() {
        let fk = |columns: &[&str], table: &str, references: &[&str]| ForeignKey {
            columns: strings(columns),
            table: table.into(),
            references: strings(references),
            on_delete: "NO ACTION".into(),
            on_update: "NO ACTION".into(),
        };
        let index = |columns: &[&str], unique: bool| Index {
            columns: strings(columns),
            unique,
            predicate: None,
        };
        let mut sqlite = Schema::default();
        sqlite.tables.insert(
            "segments".into(),
            Table {
                columns: vec![
                    column("id", Some(1)),
                    column("session_id", None),
                    column("parent_segment", None),
                ],
                foreign_keys: [
                    fk(&["session_id"], "sessions", &["id"]),
                    fk(&["parent_segment"], "segments", &["id"]),
                ]
                .into(),
                ..Table::default()
            },
        );
        sqlite.tables.insert(
            "share_links".into(),
            Table {
                columns: vec![column("id", Some(1)), column("session_id", None)],
                uniques: [strings(&["token_hash"]), strings(&["session_id", "x"])].into(),
                indexes: [
                    ("by_seq".to_string(), index(&["segment_id", "seq"], true)),
                    ("plain".to_string(), index(&["created_at"], false)),
                ]
                .into(),
                foreign_keys: [fk(&["created_by"], "users", &["id"])].into(),
                ..Table::default()
            },
        );
        // Not distributed: left alone.
        sqlite.tables.insert(
            "users".into(),
            Table {
                columns: vec![column("id", Some(1))],
                uniques: [strings(&["name"])].into(),
                ..Table::default()
            },
        );
        let pg = sqlite.distributed();

        let segments = &pg.tables["segments"];
        let pk: Vec<(&str, Option<u32>)> = segments
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.primary_key))
            .collect();
        assert_eq!(
            pk,
            [
                ("id", Some(1)),
                ("session_id", Some(2)),
                ("parent_segment", None)
            ]
        );
        assert_eq!(
            segments.foreign_keys,
            [
                fk(&["session_id"], "sessions", &["id"]),
                fk(
                    &["parent_segment", "session_id"],
                    "segments",
                    &["id", "session_id"]
                ),
            ]
            .into()
        );

        let links = &pg.tables["share_links"];
        assert_eq!(
            links.uniques,
            [
                strings(&["token_hash", "session_id"]),
                strings(&["session_id", "x"])
            ]
            .into()
        );
        assert_eq!(
            links.indexes["by_seq"],
            index(&["segment_id", "seq", "session_id"], true)
        );
        assert_eq!(links.indexes["plain"], index(&["created_at"], false));
        assert_eq!(links.indexes.len(), 2, "no index is added");
        assert_eq!(
            links.foreign_keys,
            sqlite.tables["share_links"].foreign_keys
        );

        assert_eq!(pg.tables["users"], sqlite.tables["users"]);
        // Applying the rule again changes nothing.
        assert_eq!(pg.distributed(), pg);
    }

    #[test]
    fn trigger_headers_are_read() {
        let t = sqlite_trigger(&tokens(
            "CREATE TRIGGER x -- c\nAFTER UPDATE OF name, \"status\" ON sessions BEGIN SELECT 1; END",
        ));
        assert_eq!(t.timing, "AFTER");
        assert_eq!(t.event, "UPDATE");
        assert_eq!(
            t.columns.into_iter().collect::<Vec<_>>(),
            vec!["name".to_string(), "status".to_string()]
        );
    }
}
