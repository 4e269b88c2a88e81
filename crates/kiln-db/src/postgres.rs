//! PostgreSQL, the second backend: its migrations (`migrations/postgres`, the SQLite set
//! translated, same versions and names) applied at start, its schema described in the same
//! terms as SQLite's ([`Schema`]) so the two can be compared, and checked against the rule that
//! lets it be distributed by session ([`distribution_violations`]).

use std::collections::BTreeSet;

use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Row};

use crate::Result;
use crate::schema::{Column, ForeignKey, Index, Schema, Trigger, normalize_sql_text};

/// The PostgreSQL migrations, embedded (the same version list as SQLite's).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Applies the pending PostgreSQL migrations to the database at `url` (`postgres://…`).
/// Applying them again is a no-op.
pub async fn migrate_postgres(url: &str) -> Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let applied = MIGRATOR.run(&mut conn).await;
    let _ = conn.close().await;
    Ok(applied?)
}

/// The versions and descriptions of the embedded PostgreSQL migrations, in order.
pub fn postgres_migrations() -> Vec<(i64, String)> {
    MIGRATOR
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect()
}

/// Describes the schema of the PostgreSQL database at `url` (its current schema, normally
/// `public`), in the same terms as [`crate::describe_sqlite`].
pub async fn describe_postgres(url: &str) -> Result<Schema> {
    let mut conn = PgConnection::connect(url).await?;
    let schema = describe(&mut conn).await;
    let _ = conn.close().await;
    schema
}

/// Checks the distribution rule ([`crate::DISTRIBUTED`]) on the PostgreSQL database at `url`,
/// straight from its catalog: every table listed exists with its distribution column NOT NULL;
/// every unique index of one (primary keys and UNIQUE constraints included) holds that column;
/// every foreign key between two of them pairs their distribution columns; no table outside the
/// list references one inside; and every table with a `session_id` column is either listed or
/// declared in [`crate::NOT_DISTRIBUTED_BY_SESSION`]. Returns one line per violation (empty:
/// Citus could distribute the schema as it is).
pub async fn distribution_violations(url: &str) -> Result<Vec<String>> {
    let mut conn = PgConnection::connect(url).await?;
    let found = distribution_check(&mut conn).await;
    let _ = conn.close().await;
    found
}

async fn distribution_check(conn: &mut PgConnection) -> Result<Vec<String>> {
    use crate::schema::{DISTRIBUTED, NOT_DISTRIBUTED_BY_SESSION};
    let column = |table: &str| {
        DISTRIBUTED
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, c)| *c)
    };
    let mut out = Vec::new();

    let columns: Vec<(String, String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.relname::text, a.attname::text, a.attnotnull \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         WHERE {TABLES} AND a.attnum > 0 AND NOT a.attisdropped"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for (table, key) in DISTRIBUTED {
        match columns.iter().find(|(t, c, _)| t == table && c == key) {
            None => out.push(format!("table {table}: no distribution column {key}")),
            Some((_, _, false)) => out.push(format!("table {table}: {key} may be NULL")),
            Some(_) => {}
        }
    }
    for (table, _, _) in columns.iter().filter(|(_, c, _)| c == "session_id") {
        let declared =
            column(table).is_some() || NOT_DISTRIBUTED_BY_SESSION.iter().any(|(t, _)| t == table);
        if !declared {
            out.push(format!(
                "table {table}: has session_id but is neither in DISTRIBUTED nor in \
                 NOT_DISTRIBUTED_BY_SESSION"
            ));
        }
    }

    // Every unique index: primary keys, UNIQUE constraints and CREATE UNIQUE INDEX alike (an
    // expression counts as no column).
    let uniques: Vec<(String, String, Vec<Option<String>>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.relname::text, ic.relname::text, \
                ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                      WHERE k.n <= i.indnkeyatts ORDER BY k.n) \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_class c ON c.oid = i.indrelid \
             WHERE {TABLES} AND i.indisunique ORDER BY 1, 2"
        )))
        .fetch_all(&mut *conn)
        .await?;
    for (table, index, cols) in uniques {
        let Some(key) = column(&table) else {
            continue;
        };
        if !cols.iter().any(|c| c.as_deref() == Some(key)) {
            let shown: Vec<&str> = cols
                .iter()
                .map(|c| c.as_deref().unwrap_or("<expression>"))
                .collect();
            out.push(format!(
                "table {table}: unique key {index} ({}) lacks {key}",
                shown.join(", ")
            ));
        }
    }

    let fks: Vec<FkRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.relname::text AS tbl, con.conname::text AS name, f.relname::text AS target, \
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) \
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
                      ORDER BY k.n) AS cols, \
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n) \
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum \
                      ORDER BY k.n) AS refs \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_class f ON f.oid = con.confrelid \
             WHERE {TABLES} AND con.contype = 'f' ORDER BY 1, 2"
        )))
        .fetch_all(&mut *conn)
        .await?;
    for FkRow {
        tbl: table,
        name,
        target,
        cols,
        refs,
    } in fks
    {
        match (column(&table), column(&target)) {
            (Some(ours), Some(theirs)) => {
                let paired = cols
                    .iter()
                    .zip(&refs)
                    .any(|(c, r)| c == ours && r == theirs);
                if !paired {
                    out.push(format!(
                        "table {table}: foreign key {name} ({}) -> {target} ({}) does not pair \
                         {ours} with {theirs}",
                        cols.join(", "),
                        refs.join(", ")
                    ));
                }
            }
            (None, Some(_)) => out.push(format!(
                "table {table}: foreign key {name} into distributed table {target} from a table \
                 that is not distributed"
            )),
            _ => {}
        }
    }
    Ok(out)
}

/// A foreign key as the distribution check reads it: its table, name, referenced table, and
/// the column lists on both sides.
#[derive(sqlx::FromRow)]
struct FkRow {
    tbl: String,
    name: String,
    target: String,
    cols: Vec<String>,
    refs: Vec<String>,
}

/// The tables of the current schema, but sqlx's bookkeeping.
const TABLES: &str = "c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
     AND c.relkind IN ('r', 'p') AND c.relname <> '_sqlx_migrations'";

async fn describe(conn: &mut PgConnection) -> Result<Schema> {
    let mut schema = Schema::default();

    let columns = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE {TABLES} AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY c.relname, a.attnum"
    )))
    .fetch_all(&mut *conn)
    .await?;
    // Explicit `rowid` columns, held back until their UNIQUE constraint is seen.
    let mut rowid_candidates = BTreeSet::new();
    for r in columns {
        let table: String = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let pg_type: String = r.try_get(2)?;
        let default: Option<String> = r.try_get(4)?;
        let identity: String = r.try_get(5)?;
        let generated = !identity.is_empty()
            || default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("));
        let column = Column {
            name,
            class: pg_class(&pg_type),
            not_null: r.try_get(3)?,
            default: if generated {
                None
            } else {
                default.map(|d| normalize_sql_text(&d))
            },
            primary_key: None,
            generated,
        };
        if column.name == "rowid" && pg_type == "bigint" && column.not_null && generated {
            rowid_candidates.insert(table.clone());
        }
        schema.tables.entry(table).or_default().columns.push(column);
    }

    let constraints = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.relname::text, con.contype::text, \
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) \
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
                  ORDER BY k.n), \
            COALESCE(f.relname::text, ''), \
            ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n) \
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum \
                  ORDER BY k.n), \
            con.confdeltype::text, con.confupdtype::text, pg_get_constraintdef(con.oid) \
         FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
         LEFT JOIN pg_class f ON f.oid = con.confrelid \
         WHERE {TABLES} AND con.contype IN ('p', 'u', 'f', 'c') \
         ORDER BY c.relname, con.conname"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for r in constraints {
        let table_name: String = r.try_get(0)?;
        let kind: String = r.try_get(1)?;
        let columns: Vec<String> = r.try_get(2)?;
        let Some(table) = schema.tables.get_mut(&table_name) else {
            continue;
        };
        match kind.as_str() {
            "p" => {
                for (position, name) in columns.iter().enumerate() {
                    if let Some(c) = table.columns.iter_mut().find(|c| &c.name == name) {
                        c.primary_key = u32::try_from(position + 1).ok();
                    }
                }
            }
            // The rowid's own key: alone, or after the table's distribution column.
            "u" if rowid_key(&table_name, &columns) && rowid_candidates.contains(&table_name) => {
                table.columns.retain(|c| c.name != "rowid");
                schema.rowid.insert(table_name);
            }
            "u" => {
                table.uniques.insert(columns);
            }
            "f" => {
                let on_delete: String = r.try_get(5)?;
                let on_update: String = r.try_get(6)?;
                table.foreign_keys.insert(ForeignKey {
                    columns,
                    table: r.try_get(3)?,
                    references: r.try_get(4)?,
                    on_delete: fk_action(&on_delete),
                    on_update: fk_action(&on_update),
                });
            }
            _ => {
                let def: String = r.try_get(7)?;
                let body = def.trim_start();
                let body = body
                    .get(..5)
                    .filter(|w| w.eq_ignore_ascii_case("check"))
                    .map_or(body, |_| &body[5..]);
                table.checks.insert(normalize_sql_text(body));
            }
        }
    }

    let indexes = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.relname::text, ic.relname::text, i.indisunique, \
            ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) \
                  FROM generate_series(1, i.indnkeyatts::int) AS k ORDER BY k), \
            pg_get_expr(i.indpred, i.indrelid, true) \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class c ON c.oid = i.indrelid \
         WHERE {TABLES} AND NOT EXISTS (SELECT 1 FROM pg_constraint con \
             WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid \
             AND con.contype IN ('p', 'u', 'x')) \
         ORDER BY c.relname, ic.relname"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for r in indexes {
        let table: String = r.try_get(0)?;
        let predicate: Option<String> = r.try_get(4)?;
        if let Some(t) = schema.tables.get_mut(&table) {
            t.indexes.insert(
                r.try_get(1)?,
                Index {
                    columns: r.try_get(3)?,
                    unique: r.try_get(2)?,
                    predicate: predicate.map(|p| normalize_sql_text(&p)),
                },
            );
        }
    }

    let triggers = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.relname::text, t.tgname::text, t.tgtype::int, \
            ARRAY(SELECT a.attname::text FROM unnest(t.tgattr::int2[]) AS k(attnum) \
                  JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum) \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         WHERE {TABLES} AND NOT t.tgisinternal ORDER BY c.relname, t.tgname"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for r in triggers {
        let table: String = r.try_get(0)?;
        let tgtype: i32 = r.try_get(2)?;
        let columns: Vec<String> = r.try_get(3)?;
        // pg_trigger.tgtype bits (PostgreSQL's catalog/pg_trigger.h).
        let timing = if tgtype & 64 != 0 {
            "INSTEAD OF"
        } else if tgtype & 2 != 0 {
            "BEFORE"
        } else {
            "AFTER"
        };
        let event = [
            (4, "INSERT"),
            (16, "UPDATE"),
            (8, "DELETE"),
            (32, "TRUNCATE"),
        ]
        .iter()
        .filter(|(bit, _)| tgtype & bit != 0)
        .map(|(_, e)| *e)
        .collect::<Vec<_>>()
        .join(" OR ");
        if let Some(t) = schema.tables.get_mut(&table) {
            t.triggers.insert(
                r.try_get(1)?,
                Trigger {
                    timing: timing.into(),
                    event,
                    columns: columns.into_iter().collect(),
                    for_each_row: tgtype & 1 != 0,
                },
            );
        }
    }
    Ok(schema)
}

/// Whether a UNIQUE constraint's columns are a rowid's key: `rowid` alone, or `rowid` then the
/// table's distribution column ([`crate::DISTRIBUTED`]).
fn rowid_key(table: &str, columns: &[String]) -> bool {
    match columns {
        [r] => r == "rowid",
        [r, d] => {
            r == "rowid"
                && crate::DISTRIBUTED
                    .iter()
                    .any(|(t, c)| *t == table && c == d)
        }
        _ => false,
    }
}

/// The type class of a PostgreSQL column type (see [`Column::class`]).
fn pg_class(pg_type: &str) -> String {
    match pg_type {
        "text" => "text".into(),
        "bigint" => "integer".into(),
        "double precision" => "real".into(),
        "bytea" => "blob".into(),
        other => format!("other ({other})"),
    }
}

/// A foreign key action as SQLite's `pragma_foreign_key_list` names it.
fn fk_action(code: &str) -> String {
    match code {
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        "r" => "RESTRICT",
        _ => "NO ACTION",
    }
    .into()
}
