//! Helpers shared by the PostgreSQL tests: the test server's URL and a scratch database per
//! test, dropped afterwards (`kiln_db::testing`, which the other crates' suites use too).
#![allow(dead_code)]

pub use kiln_db::testing::Scratch;

/// The server's URL (any database on it; the tests make their own).
pub fn server_url() -> String {
    kiln_db::testing::server_url().unwrap_or_else(|| {
        panic!(
            "KILN_TEST_DATABASE_URL is unset: this test needs a PostgreSQL server; run it with \
             `scripts/pg run cargo test -p kiln-db --test <name> -- --include-ignored`"
        )
    })
}
