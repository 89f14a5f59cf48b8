//! Test support shared by Warden's integration tests.
//!
//! - [`ScratchDb`] creates a PostgreSQL database of its own for one test on the local server and
//!   drops it afterwards, so tests run in parallel against that server and leave nothing behind.
//!   The server is found at `WARDEN_TEST_PG` (default `postgres://postgres@127.0.0.1:5432`).
//! - [`PgCluster`] (module `cluster`) runs a whole throwaway PostgreSQL server for one test, with
//!   SCRAM-SHA-256 authentication and TLS, which the local server (trusting loopback) cannot
//!   show; it can also be stopped and restarted under a test's feet.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cluster;

pub use cluster::PgCluster;
use tokio_postgres::NoTls;

/// Base URL of the PostgreSQL server tests use, without a database name.
pub fn pg_base_url() -> String {
    std::env::var("WARDEN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A PostgreSQL database that exists for one test.
pub struct ScratchDb {
    name: String,
}

async fn admin_client() -> tokio_postgres::Client {
    let url = format!("{}/postgres", pg_base_url());
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed for this test: {e}"));
    tokio::spawn(connection);
    client
}

impl ScratchDb {
    /// Creates a new, empty database with a unique name.
    pub async fn create() -> Self {
        let name = format!("warden_test_{}", uuid::Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create scratch database");
        Self { name }
    }

    /// A new database that starts as a copy of `source` (which must have no open connections).
    pub async fn create_from(source: &ScratchDb) -> Self {
        let name = format!("warden_test_{}", uuid::Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {}", source.name))
            .await
            .expect("copy scratch database");
        Self { name }
    }

    /// The database's connection URL.
    pub fn url(&self) -> String {
        format!("{}/{}", pg_base_url(), self.name)
    }

    /// A client connected to the database, for tests that look at tables directly.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), NoTls)
            .await
            .expect("connect to scratch database");
        tokio::spawn(connection);
        client
    }

    /// Drops the database (closing any connections still open to it).
    pub async fn drop_db(self) {
        let _ = admin_client()
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}
