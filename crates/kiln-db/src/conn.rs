//! One connection type for both databases and a query facade that runs the same SQL text on
//! either: the seam through which the store's repositories move from SQLite-only to SQLite or
//! PostgreSQL (ARCHITECTURE.md, "The plan for several servers on one PostgreSQL").
//!
//! A statement's text is shared (`$N` parameters, which sqlx-sqlite binds positionally as
//! PostgreSQL does); its arguments are collected as [`Bind`] values and bound to whichever
//! connection runs it; rows come back as [`Row`], whose `get` decodes any type both drivers
//! decode, or straight into a `#[derive(sqlx::FromRow)]` struct (the derive is generic over the
//! row type). SQLite pays one small vector of arguments, not `sqlx::Any`'s boxed values.
//!
//! Typing rules that keep one text valid on both: integers are `i64` (PostgreSQL's `bigint`
//! decodes into nothing narrower), flags are 0/1 integers, a NULL argument carries the type of
//! the column it stands for (`Option<String>` binds a text NULL), and `SUM` of integers is
//! cast to `BIGINT` (PostgreSQL's is `numeric`).

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use std::marker::PhantomData;

use sqlx::{ColumnIndex, Decode, Executor as _, FromRow, Row as _, SqlSafeStr, SqlStr, Type};

use crate::Result;

/// A connection to either database: SQLite's own, or one lent by PostgreSQL's pool.
pub(crate) enum Conn {
    Lite(SqliteConnection),
    Pg(PoolConnection<Postgres>),
}

impl Conn {
    /// Which database this connection talks to.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Lite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }
}

/// The two SQL dialects, for the statements that have no common text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One argument of a statement, typed so that a NULL keeps its column's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

/// A Rust value that can be an argument on both databases.
pub(crate) trait IntoBind {
    fn into_bind(self) -> Bind;
}

macro_rules! bind_as {
    ($variant:ident, $($t:ty => $conv:expr),* $(,)?) => {$(
        impl IntoBind for $t {
            fn into_bind(self) -> Bind {
                let f: fn($t) -> _ = $conv;
                Bind::$variant(Some(f(self)))
            }
        }
        impl IntoBind for Option<$t> {
            fn into_bind(self) -> Bind {
                let f: fn($t) -> _ = $conv;
                Bind::$variant(self.map(f))
            }
        }
    )*};
}

bind_as!(Int, i64 => |v| v, &i64 => |v| *v, i32 => i64::from, u32 => i64::from, bool => i64::from);
bind_as!(Real, f64 => |v| v);
bind_as!(Text, String => |v| v, &str => str::to_string, &String => String::clone, &&str => |v| v.to_string());

impl IntoBind for &Option<String> {
    fn into_bind(self) -> Bind {
        Bind::Text(self.clone())
    }
}
bind_as!(Bytes, Vec<u8> => |v| v, &[u8] => <[u8]>::to_vec, &Vec<u8> => Vec::clone);

/// A row from either database.
pub(crate) enum Row {
    Lite(SqliteRow),
    Pg(PgRow),
}

/// A type both drivers decode (`i64`, `f64`, `String`, `Vec<u8>`, `bool`, their `Option`s).
pub(crate) trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A column index both row types accept: its position (`usize`) or its name (`&str`).
pub(crate) trait Index: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

impl<I> Index for I where I: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

impl Row {
    /// Decodes column `i`.
    pub(crate) fn get<T: Column>(&self, i: usize) -> Result<T> {
        self.try_get(i)
    }

    /// Decodes the column at position or name `i` (the name sqlx's own rows use); borrowed
    /// types (`&str`) borrow from the row.
    pub(crate) fn try_get<'r, T, I: Index>(&'r self, i: I) -> Result<T>
    where
        T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>,
    {
        Ok(match self {
            Row::Lite(r) => r.try_get(i)?,
            Row::Pg(r) => r.try_get(i)?,
        })
    }

    /// Decodes a flag: a 0/1 integer column (`bigint` on PostgreSQL) or a boolean expression
    /// (a comparison, `EXISTS`, `IS NULL`: `boolean` on PostgreSQL).
    pub(crate) fn flag<I: Index + Copy>(&self, i: I) -> Result<bool> {
        Ok(match self {
            Row::Lite(r) => r.try_get(i)?,
            Row::Pg(r) => match r.try_get::<i64, _>(i) {
                Ok(v) => v != 0,
                Err(_) => r.try_get(i)?,
            },
        })
    }

    /// Decodes the whole row into a struct that derives `sqlx::FromRow`.
    pub(crate) fn to<T>(&self) -> Result<T>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
    {
        Ok(match self {
            Row::Lite(r) => T::from_row(r)?,
            Row::Pg(r) => T::from_row(r)?,
        })
    }
}

/// A statement with its arguments, not yet run.
pub(crate) struct Query {
    sql: SqlStr,
    binds: Vec<Bind>,
}

/// Starts a statement. The text must be valid on both databases, or be chosen by
/// [`Conn::dialect`].
pub(crate) fn query(sql: impl SqlSafeStr) -> Query {
    Query {
        sql: sql.into_sql_str(),
        binds: Vec::new(),
    }
}

/// Builds the driver's own query with the collected arguments bound in order.
macro_rules! bound {
    ($sql:expr, $binds:expr) => {{
        let mut q = sqlx::query($sql);
        for b in $binds {
            q = match b {
                Bind::Int(v) => q.bind(v),
                Bind::Real(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
                Bind::Bytes(v) => q.bind(v),
            };
        }
        q
    }};
}

impl Query {
    /// Adds the next argument (`$1`, `$2`, … in call order).
    pub(crate) fn bind(mut self, v: impl IntoBind) -> Self {
        self.binds.push(v.into_bind());
        self
    }

    /// Runs the statement; returns the number of rows it changed.
    pub(crate) async fn execute(self, conn: &mut Conn) -> Result<u64> {
        Ok(match conn {
            Conn::Lite(c) => bound!(self.sql, self.binds)
                .execute(&mut *c)
                .await?
                .rows_affected(),
            Conn::Pg(c) => bound!(self.sql, self.binds)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    /// Runs the statement and returns every row.
    pub(crate) async fn fetch_all(self, conn: &mut Conn) -> Result<Vec<Row>> {
        Ok(match conn {
            Conn::Lite(c) => bound!(self.sql, self.binds)
                .fetch_all(&mut *c)
                .await?
                .into_iter()
                .map(Row::Lite)
                .collect(),
            Conn::Pg(c) => bound!(self.sql, self.binds)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect(),
        })
    }

    /// Runs the statement and returns its first row, if any.
    pub(crate) async fn fetch_optional(self, conn: &mut Conn) -> Result<Option<Row>> {
        Ok(match conn {
            Conn::Lite(c) => bound!(self.sql, self.binds)
                .fetch_optional(&mut *c)
                .await?
                .map(Row::Lite),
            Conn::Pg(c) => bound!(self.sql, self.binds)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Pg),
        })
    }

    /// Runs the statement and returns its one row (`RowNotFound` when there is none).
    pub(crate) async fn fetch_one(self, conn: &mut Conn) -> Result<Row> {
        self.fetch_optional(conn)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    /// Runs the statement and decodes the first column of its one row.
    pub(crate) async fn scalar<T: Column>(self, conn: &mut Conn) -> Result<T> {
        self.fetch_one(conn).await?.get(0)
    }

    /// Runs the statement and decodes every row into `T`.
    pub(crate) async fn fetch_as<T>(self, conn: &mut Conn) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
    {
        self.fetch_all(conn).await?.iter().map(Row::to).collect()
    }
}

/// A statement whose rows are one column of `T` (sqlx's `query_scalar`, on either database).
pub(crate) struct Scalar<T> {
    q: Query,
    t: PhantomData<fn() -> T>,
}

/// Starts a statement whose first column is decoded as `T`.
pub(crate) fn query_scalar<S: SqlSafeStr, T: Column>(sql: S) -> Scalar<T> {
    Scalar {
        q: query(sql),
        t: PhantomData,
    }
}

impl<T: Column> Scalar<T> {
    /// Adds the next argument.
    pub(crate) fn bind(mut self, v: impl IntoBind) -> Self {
        self.q = self.q.bind(v);
        self
    }

    /// The first column of the one row (`RowNotFound` when there is none).
    pub(crate) async fn fetch_one(self, conn: &mut Conn) -> Result<T> {
        self.q.scalar(conn).await
    }

    /// The first column of the first row, if any.
    pub(crate) async fn fetch_optional(self, conn: &mut Conn) -> Result<Option<T>> {
        self.q
            .fetch_optional(conn)
            .await?
            .map(|r| r.get(0))
            .transpose()
    }

    /// The first column of every row.
    pub(crate) async fn fetch_all(self, conn: &mut Conn) -> Result<Vec<T>> {
        self.q
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// A statement whose rows decode into `T` (sqlx's `query_as`, on either database).
pub(crate) struct As<T> {
    q: Query,
    t: PhantomData<fn() -> T>,
}

/// Starts a statement whose rows decode into `T` (a `FromRow` struct or a tuple).
pub(crate) fn query_as<S: SqlSafeStr, T>(sql: S) -> As<T>
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
{
    As {
        q: query(sql),
        t: PhantomData,
    }
}

impl<T> As<T>
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
{
    /// Adds the next argument.
    pub(crate) fn bind(mut self, v: impl IntoBind) -> Self {
        self.q = self.q.bind(v);
        self
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional(self, conn: &mut Conn) -> Result<Option<T>> {
        self.q
            .fetch_optional(conn)
            .await?
            .map(|r| r.to())
            .transpose()
    }

    /// Every row.
    pub(crate) async fn fetch_all(self, conn: &mut Conn) -> Result<Vec<T>> {
        self.q.fetch_as(conn).await
    }
}

/// Runs statements without arguments (transaction control, settings) on either database.
pub(crate) async fn run_plain(conn: &mut Conn, sql: &'static str) -> Result<()> {
    match conn {
        Conn::Lite(c) => {
            c.execute(sql).await?;
        }
        Conn::Pg(c) => {
            c.execute(sql).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    #[derive(Debug, PartialEq, sqlx::FromRow)]
    struct Item {
        id: i64,
        name: String,
        note: Option<String>,
        weight: Option<f64>,
        blob: Option<Vec<u8>>,
        flag: i64,
    }

    /// One script of shared SQL, run on whichever connection it is given.
    async fn exercise(conn: &mut Conn) -> Vec<Item> {
        let create = match conn.dialect() {
            Dialect::Sqlite => {
                "CREATE TEMP TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
                 note TEXT, weight REAL, blob BLOB, flag INTEGER NOT NULL DEFAULT 0)"
            }
            Dialect::Postgres => {
                "CREATE TEMP TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
                 name text NOT NULL UNIQUE, note text, weight double precision, blob bytea, \
                 flag bigint NOT NULL DEFAULT 0)"
            }
        };
        run_plain(conn, create).await.unwrap();
        let insert = "INSERT INTO items (name, note, weight, blob, flag) VALUES ($1, $2, $3, $4, $5) \
                      ON CONFLICT (name) DO UPDATE SET note = excluded.note RETURNING id";
        let a: i64 = query(insert)
            .bind("olivine")
            .bind(None::<String>)
            .bind(Some(1.5))
            .bind(&b"\x00\xff"[..])
            .bind(true)
            .scalar(conn)
            .await
            .unwrap();
        let b: i64 = query(insert)
            .bind("spinel")
            .bind(Some("cubic"))
            .bind(None::<f64>)
            .bind(None::<Vec<u8>>)
            .bind(false)
            .scalar(conn)
            .await
            .unwrap();
        assert_ne!(a, b);
        // The upsert path: same name, the note replaced, the id kept.
        let again: i64 = query(insert)
            .bind("olivine")
            .bind(Some("Pnma"))
            .bind(None::<f64>)
            .bind(None::<Vec<u8>>)
            .bind(0)
            .scalar(conn)
            .await
            .unwrap();
        assert_eq!(again, a);
        let changed = query("UPDATE items SET flag = flag + $1 WHERE name <> $2")
            .bind(2i64)
            .bind("nothing")
            .execute(conn)
            .await
            .unwrap();
        assert_eq!(changed, 2);
        let total: i64 = query("SELECT CAST(SUM(flag) AS BIGINT) FROM items")
            .scalar(conn)
            .await
            .unwrap();
        assert_eq!(total, 5);
        let none = query("SELECT name FROM items WHERE id = $1")
            .bind(-1i64)
            .fetch_optional(conn)
            .await
            .unwrap();
        assert!(none.is_none());
        let row = query("SELECT name, note FROM items WHERE id = $1")
            .bind(a)
            .fetch_one(conn)
            .await
            .unwrap();
        assert_eq!(row.get::<String>(0).unwrap(), "olivine");
        assert_eq!(
            row.get::<Option<String>>(1).unwrap().as_deref(),
            Some("Pnma")
        );
        query("SELECT id, name, note, weight, blob, flag FROM items ORDER BY id")
            .fetch_as(conn)
            .await
            .unwrap()
    }

    fn expected() -> Vec<Item> {
        vec![
            Item {
                id: 1,
                name: "olivine".into(),
                note: Some("Pnma".into()),
                weight: Some(1.5),
                blob: Some(vec![0, 255]),
                flag: 3,
            },
            Item {
                id: 2,
                name: "spinel".into(),
                note: Some("cubic".into()),
                weight: None,
                blob: None,
                flag: 2,
            },
        ]
    }

    #[tokio::test]
    async fn the_same_statements_run_on_sqlite() {
        let mut conn = Conn::Lite(SqliteConnection::connect("sqlite::memory:").await.unwrap());
        assert_eq!(exercise(&mut conn).await, expected());
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
    async fn the_same_statements_run_on_postgres() {
        let url = std::env::var("KILN_TEST_DATABASE_URL").expect(
            "KILN_TEST_DATABASE_URL is unset: run `scripts/pg run cargo test -p kiln-db --lib \
             -- --include-ignored`",
        );
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let mut conn = Conn::Pg(pool.acquire().await.unwrap());
        assert_eq!(exercise(&mut conn).await, expected());
    }
}
