//! The scratch database: `warden_demo_<random>` created on a PostgreSQL server with a few tables
//! and rows (`public.orders`, `public.customers`, `analytics.daily`), registered as a database
//! target with the login the demo connected with, and dropped on exit.

use anyhow::{bail, Context, Result};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// The server tried when `--postgres` is not given.
pub const DEFAULT_SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
/// How long connecting may take before PostgreSQL counts as unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The tables and rows. `public.customers` is the table detection treats as sensitive.
const SEED: &str = "
CREATE SCHEMA analytics;
CREATE TABLE public.customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL
);
INSERT INTO public.customers
    SELECT i, 'Customer ' || i, 'customer' || i || '@mail.test' FROM generate_series(1, 200) i;
CREATE TABLE public.orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES public.customers,
    total_cents int NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO public.orders
    SELECT i, 1 + i % 200, 500 + (i * 37) % 50000,
           (ARRAY['new', 'paid', 'shipped', 'refunded'])[1 + i % 4],
           now() - i * interval '17 minutes'
    FROM generate_series(1, 3000) i;
CREATE TABLE analytics.daily (
    day date PRIMARY KEY,
    orders int NOT NULL,
    revenue_cents bigint NOT NULL
);
INSERT INTO analytics.daily
    SELECT current_date - i, 30 + i % 17, 100000 + i * 1234 FROM generate_series(1, 90) i;
";

/// A database that exists for the demo's lifetime.
pub struct ScratchDb {
    /// Its name, `warden_demo_…`.
    pub name: String,
    /// How to reach the server (its maintenance database), for creating and dropping.
    server: Config,
    host: String,
    port: u16,
}

impl ScratchDb {
    /// Creates and fills the database on the server `conninfo` names (a URL or `key=value`).
    pub async fn create(conninfo: &str) -> Result<Self> {
        let mut server: Config = conninfo
            .parse()
            .with_context(|| format!("`{conninfo}` is not a PostgreSQL connection string"))?;
        if server.get_connect_timeout().is_none() {
            server.connect_timeout(CONNECT_TIMEOUT);
        }
        let host = match server.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(Host::Unix(_)) => {
                bail!("Warden reaches databases over TCP: name a host, not a socket directory")
            }
            None => bail!("no host in `{conninfo}`"),
        };
        let port = server.get_ports().first().copied().unwrap_or(5432);
        let db = Self {
            name: format!("warden_demo_{:012x}", super::random_u64() >> 16),
            server,
            host,
            port,
        };
        let admin = connect(&db.server)
            .await
            .with_context(|| format!("no answer at {}", db.server()))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .await
            .with_context(|| format!("cannot create a database on {}", db.server()))?;
        drop(admin);
        let mut inside = db.server.clone();
        inside.dbname(&db.name);
        let seeded = match connect(&inside).await {
            Ok(client) => client.batch_execute(SEED).await,
            Err(e) => Err(e),
        };
        if let Err(e) = seeded {
            let _ = db.drop_database().await;
            return Err(anyhow::Error::new(e).context(format!("cannot fill {}", db.name)));
        }
        Ok(db)
    }

    /// `host:port` of the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The target's upstream URL. Without TLS: the demo itself just connected without it.
    pub fn upstream_url(&self) -> String {
        format!("postgres://{}/{}?sslmode=disable", self.server(), self.name)
    }

    /// The target's login, `role:password`: the one the demo connected with.
    pub fn login(&self) -> String {
        let user = self.server.get_user().unwrap_or("postgres");
        let password = self
            .server
            .get_password()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        format!("{user}:{password}")
    }

    /// Drops the database, closing any session still open to it.
    pub async fn drop_database(&self) -> Result<()> {
        let admin = connect(&self.server).await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Ends with the client; an error here surfaces on the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}
