//! Scratch PostgreSQL databases for the tests of Kiln's crates, and the switch that runs a
//! crate's whole suite on PostgreSQL (the service never calls this).
//!
//! `KILN_TEST_DATABASE_URL` names a PostgreSQL server (any database on it; `scripts/pg` starts
//! a throwaway one). With `KILN_TEST_BACKEND=postgres` as well, the suites of kiln-session and
//! kiln-server open every store on a fresh database of that server instead of a SQLite file:
//! one set of tests, two backends (`scripts/test` runs both).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The variable naming the test server.
pub const SERVER_VAR: &str = "KILN_TEST_DATABASE_URL";
/// The variable choosing the backend a suite runs on: `sqlite` (unset) or `postgres`.
pub const BACKEND_VAR: &str = "KILN_TEST_BACKEND";

/// The test server's URL, if one is set.
pub fn server_url() -> Option<String> {
    std::env::var(SERVER_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Whether this run asks for PostgreSQL (`KILN_TEST_BACKEND=postgres`); panics when it does
/// without naming a server, so a misconfigured run never passes on SQLite unnoticed.
pub fn on_postgres() -> bool {
    match std::env::var(BACKEND_VAR).as_deref() {
        Ok("postgres") => {
            assert!(
                server_url().is_some(),
                "{BACKEND_VAR}=postgres needs {SERVER_VAR} (scripts/pg run starts a server)"
            );
            true
        }
        Ok("" | "sqlite") | Err(_) => false,
        Ok(other) => panic!("{BACKEND_VAR}={other}: expected sqlite or postgres"),
    }
}

/// The URL of database `name` on the server at `url` (its query string kept).
pub fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A new, empty database on the test server, dropped (connections and all) when this is.
#[derive(Debug)]
pub struct Scratch {
    server: String,
    name: String,
    /// The database's URL.
    pub url: String,
}

impl Scratch {
    /// Creates the database; panics without a server (a test that needs one says so).
    pub async fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server_url().unwrap_or_else(|| {
            panic!("{SERVER_VAR} is unset: this test needs a PostgreSQL server (scripts/pg run …)")
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "kiln_test_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {SERVER_VAR} {server}: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database on {server}: {e}"));
        let url = database_url(&server, &name);
        Self { server, name, url }
    }

    /// [`Scratch::new`] from synchronous code (or from inside a runtime): on a thread of its
    /// own with a runtime of its own.
    pub fn blocking() -> Self {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the test database")
                .block_on(Self::new())
        })
        .join()
        .expect("creating the test database")
    }

    /// A fresh database when this run asks for PostgreSQL ([`on_postgres`]), else `None`.
    pub fn for_backend() -> Option<Self> {
        on_postgres().then(Self::blocking)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_the_server_and_the_query() {
        assert_eq!(
            database_url("postgres://kiln@127.0.0.1:5432/postgres", "t1"),
            "postgres://kiln@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://kiln@h:1/postgres?sslmode=disable", "t2"),
            "postgres://kiln@h:1/t2?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "t3"), "postgres://h/t3");
    }
}
