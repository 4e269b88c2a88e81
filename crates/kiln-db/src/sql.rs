//! Placeholders for SQL text shared by SQLite and PostgreSQL. Both bind `$1, $2, …` by
//! number (sqlx-sqlite reads the number after the `$`), so a statement assembled at run time
//! numbers its placeholders here, in the order its values are bound.

use std::fmt::Write;

/// A running placeholder counter: each call hands out the next numbers in bind order.
#[derive(Debug, Default)]
pub(crate) struct Marks(usize);

impl Marks {
    /// A counter whose next placeholder is `$1`.
    pub(crate) fn new() -> Self {
        Self(0)
    }

    /// A counter whose next placeholder is `$(bound + 1)`: `bound` values are bound before.
    pub(crate) fn after(bound: usize) -> Self {
        Self(bound)
    }

    /// The next placeholder, `$n`.
    pub(crate) fn next(&mut self) -> String {
        self.0 += 1;
        format!("${}", self.0)
    }

    /// `n` placeholders separated by `, ` (`$4, $5, $6`), appended to `sql`.
    pub(crate) fn push_list(&mut self, sql: &mut String, n: usize) {
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            self.0 += 1;
            let _ = write!(sql, "${}", self.0);
        }
    }

    /// `n` placeholders separated by `, ` (`$4, $5, $6`).
    pub(crate) fn list(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n * 4);
        self.push_list(&mut s, n);
        s
    }

    /// `rows` parenthesised tuples of `width` placeholders separated by `, `
    /// (`($1, $2), ($3, $4)`).
    pub(crate) fn rows(&mut self, rows: usize, width: usize) -> String {
        let mut s = String::with_capacity(rows * (width * 5 + 4));
        for r in 0..rows {
            if r > 0 {
                s.push_str(", ");
            }
            s.push('(');
            self.push_list(&mut s, width);
            s.push(')');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::Marks;

    #[test]
    fn numbers_follow_bind_order() {
        let mut m = Marks::new();
        assert_eq!(m.next(), "$1");
        assert_eq!(m.list(3), "$2, $3, $4");
        assert_eq!(m.list(0), "");
        assert_eq!(m.rows(2, 2), "($5, $6), ($7, $8)");
        assert_eq!(m.next(), "$9");
        assert_eq!(Marks::after(3).next(), "$4");
    }

    /// The forms the store shares with PostgreSQL run on the bundled SQLite as they do there.
    #[tokio::test]
    async fn shared_forms_run_on_the_bundled_sqlite() {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let version: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&mut c)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE t (k TEXT NOT NULL, n INTEGER NOT NULL, v TEXT, PRIMARY KEY (k, n))",
        )
        .execute(&mut c)
        .await
        .unwrap();
        // Numbered placeholders: bound by number, reused, in any order in the text.
        let upsert = "INSERT INTO t (k, n, v) VALUES ($2, $1, $3) \
             ON CONFLICT (k, n) DO UPDATE SET v = excluded.v RETURNING n";
        for v in ["a", "bé"] {
            let n: i64 = sqlx::query_scalar(upsert)
                .bind(7_i64)
                .bind("x")
                .bind(v)
                .fetch_one(&mut c)
                .await
                .unwrap();
            assert_eq!(n, 7);
        }
        sqlx::query("INSERT INTO t (k, n, v) VALUES ($1, $2, NULL) ON CONFLICT (k, n) DO NOTHING")
            .bind("x")
            .bind(8_i64)
            .execute(&mut c)
            .await
            .unwrap();
        let row: (i64, i64, i64, bool, bool) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE v IS NOT NULL), SUM(octet_length(v)), \
             COALESCE(SUM(n) FILTER (WHERE k = $1), 0), \
             MAX(v) IS NOT DISTINCT FROM $2, MIN(v) IS DISTINCT FROM $2 FROM t",
        )
        .bind("y")
        .bind("bé")
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(row, (1, 3, 0, true, false), "SQLite {version}");
    }
}
