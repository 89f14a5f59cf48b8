//! Starting a server: prepare the data directory, open the store, create the bootstrap admin on
//! first start, bind the listener, and serve until told to stop. The caller owns the shutdown
//! signal; tests start many servers side by side on port 0 and read their addresses back.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warden_core::admin::BOOTSTRAP_ADMIN;
use warden_core::{Admin, Clock, Credential, CredentialKind, Redactor, Sealer};
use warden_ledger::Signer;
use warden_store::{PostgresStore, SqliteStore, Store, StoreError};

use crate::alerts::AlertBook;
use crate::api::{self, App};
use crate::config::Config;
use crate::detection::DetectionTask;
use crate::export::Exporter;
use crate::jobs;
use warden_detect::Engine;
use warden_gateway::auth::Authenticator;
use warden_gateway::http::HttpGateway;
use warden_gateway::policy::Policy;
use warden_gateway::postgres::PgGateway;
use warden_gateway::token::TokenService;
use warden_ledger::{LedgerWriter, WriterConfig};

/// Name of the bootstrap admin token file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// Name of the access-token signing key file in the data directory.
pub const TOKEN_KEY_FILE: &str = "token-signing-key";
/// Name of the file listing the bound addresses.
pub const ADDRESSES_FILE: &str = "addresses.json";
/// How often a new checkpoint is offered to `ledger.checkpoint_url`.
const CHECKPOINT_PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// How often credential use (`last_used_at`) is written.
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be prepared.
    #[error("data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another server holds the data directory.
    #[error("data directory {0} is in use by another `warden serve` (lock file {0}/lock)")]
    DataDirInUse(PathBuf),
    /// A key file could not be read or created, or does not fit the database.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An alert sink could not be set up (unreadable secret file, unwritable export file…).
    #[error("alert sink")]
    Sink(#[from] warden_sinks::SinkError),
    /// The detection settings are invalid.
    #[error("detection settings")]
    Detection(#[from] warden_detect::ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// A started server.
pub struct Running {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the HTTP gateway listens.
    pub http_addr: SocketAddr,
    /// Where the PostgreSQL gateway listens.
    pub postgres_addr: SocketAddr,
    /// The PostgreSQL gateway (for its live sessions).
    pub pg_gateway: Arc<PgGateway>,
    /// Path of the bootstrap admin token, when it was created by this start.
    pub new_admin_token: Option<PathBuf>,
    /// Which database backend is in use.
    pub backend: &'static str,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Asks the server to stop and waits until it has drained.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (after `stop`, or if it fails).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A sender that stops the server when sent `true`.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several servers in one test process
            // share one); then this handle still renders, just without the other's counts.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Starts a server with `config`, reading time from `clock`.
pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Running, ServeError> {
    prepare_data_dir(&config.data_dir)?;
    let dir_lock = lock_data_dir(&config.data_dir)?;
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(PostgresStore::connect(url, 16).await?),
        None => Arc::new(SqliteStore::open(&config.sqlite_path()).await?),
    };
    store.set_durability(config.ledger.durability).await?;
    let signer = load_or_create_signer(&config.signing_key_path())?;
    let verifier = signer.verifier();
    let keys = config.keys_dir();
    if keys != config.data_dir {
        prepare_data_dir(keys)?;
    }
    let redactor_path = keys.join("ledger-hmac-key");
    let redactor = load_or_create_redactor(&redactor_path)?;
    let token_path = keys.join(TOKEN_KEY_FILE);
    let tokens = Arc::new(load_or_create_token_service(&token_path)?);
    let master_path = keys.join("master-key");
    let sealer = master_key(&master_path)?;
    let share = "point keys_dir at the directory of keys the other instances use";
    claim_key(
        &*store,
        "ledger.verifier_key",
        &verifier.to_key_string(),
        &config.signing_key_path(),
        "point keys_dir (or ledger.signing_key_file) at the keys the other instances use",
    )
    .await?;
    claim_key(
        &*store,
        "auth.token_key_id",
        tokens.kid(),
        &token_path,
        share,
    )
    .await?;
    claim_key(
        &*store,
        "ledger.hmac_key_check",
        &redactor.hash(b"warden key check"),
        &redactor_path,
        share,
    )
    .await?;
    claim_key(
        &*store,
        "master_key_fingerprint",
        sealer.fingerprint(),
        &master_path,
        "set WARDEN_MASTER_KEY, or point keys_dir, to the master key the other instances use",
    )
    .await?;
    let new_admin_token = bootstrap_admin(&*store, &config.data_dir, &*clock).await?;
    let ledger = LedgerWriter::start(
        store.clone(),
        clock.clone(),
        WriterConfig {
            max_batch: config.ledger.max_batch,
            write_timeout: config.ledger.write_timeout,
            signer,
            checkpoint_every: config.ledger.checkpoint_every,
            checkpoint_interval: config.ledger.checkpoint_interval,
            checkpoint_dir: config.ledger.checkpoint_dir.clone(),
        },
    );
    let auth = Arc::new(
        Authenticator::new(store.clone(), clock.clone(), config.auth.cache_ttl)
            .with_tokens(tokens.clone()),
    );
    let policy = Arc::new(Policy::new(
        store.clone(),
        sealer.clone(),
        config.auth.cache_ttl,
    ));
    let door = warden_gateway::FrontDoor {
        auth: auth.clone(),
        policy: policy.clone(),
        ledger: ledger.clone(),
        clock: clock.clone(),
        redactor: redactor.clone(),
    };
    let gateway = Arc::new(HttpGateway::new(door.clone(), config.gateway.http_config()));
    let pg_tls = pg_tls_config(config)?;
    let pg_gateway = Arc::new(PgGateway::new(door, config.pg_config(), Some(pg_tls)));
    let (shutdown, stopped) = watch::channel(false);
    let mut alert_sinks = Vec::new();
    let mut export_files = Vec::new();
    for sink in &config.alerts.sinks {
        match warden_sinks::build(sink)? {
            warden_sinks::Built::Alerts(sink) => alert_sinks.push(sink),
            warden_sinks::Built::Events(file) => export_files.push(file),
        }
    }
    let alerts = Arc::new(
        AlertBook::open(
            store.clone(),
            ledger.clone(),
            clock.clone(),
            config.alerts.dedup_window,
            alert_sinks,
        )
        .await?,
    );
    let detection = if config.alerts.enabled {
        Some(Arc::new(std::sync::Mutex::new(Engine::new(
            config.detection.clone(),
        )?)))
    } else {
        None
    };
    let api_listener = bind(config.api_addr).await?;
    let http_listener = bind(config.http_addr).await?;
    let pg_listener = bind(config.postgres_addr).await?;
    let api_addr = local_addr(&api_listener, config.api_addr)?;
    let http_addr = local_addr(&http_listener, config.http_addr)?;
    let postgres_addr = local_addr(&pg_listener, config.postgres_addr)?;
    write_addresses(&config.data_dir, api_addr, http_addr, postgres_addr)?;
    let app = Arc::new(App {
        gateways: crate::api::Gateways {
            http: http_addr,
            postgres: postgres_addr,
        },
        auth,
        policy,
        tokens,
        token_ttl: config.auth.token_ttl,
        store: store.clone(),
        ledger,
        verifier,
        redactor,
        sealer,
        clock,
        metrics: metrics_handle(),
        pg: pg_gateway.clone(),
        people: config.accountability.people.clone(),
        lifecycle: config.lifecycle.clone(),
        alerts: alerts.clone(),
        detection: detection.clone(),
        stopping: stopped.clone(),
    });

    let (retention, retention_check) = (config.ledger.retention, config.ledger.retention_check);
    let rotation_check = config.postgres.rotation_check;
    let (history, retry_max_backoff) = (config.alerts.history, config.alerts.retry_max_backoff);
    let checkpoint_url = config.ledger.checkpoint_url.clone();
    let router = api::router(app.clone(), config.max_body_bytes);
    let pg_gateway_handle = pg_gateway.clone();
    let task = tokio::spawn(async move {
        // Held until the server stops: one server per data directory.
        let _dir_lock = dir_lock;
        let usage = {
            let app = app.clone();
            jobs::every(USAGE_FLUSH_INTERVAL, stopped.clone(), move || {
                let app = app.clone();
                async move { jobs::flush_usage(&app).await }
            })
        };
        let publisher = checkpoint_url.map(|url| {
            let (app, publisher) = (app.clone(), Arc::new(jobs::CheckpointPublisher::new(url)));
            jobs::every(CHECKPOINT_PUBLISH_INTERVAL, stopped.clone(), move || {
                let (app, publisher) = (app.clone(), publisher.clone());
                async move { publisher.run(&app).await }
            })
        });
        let rotation = {
            let app = app.clone();
            jobs::every(rotation_check, stopped.clone(), move || {
                jobs::rotate_due(app.clone())
            })
        };
        let retention = retention.map(|keep| {
            let app = app.clone();
            jobs::every(retention_check, stopped.clone(), move || {
                jobs::prune(app.clone(), keep)
            })
        });
        let mut background = alerts.spawn_workers(retry_max_backoff, stopped.clone());
        background.push(tokio::spawn(crate::lifecycle::scheduled(
            app.clone(),
            app.lifecycle.clone(),
            stopped.clone(),
        )));
        background.push(tokio::spawn(crate::usage::run(
            app.store.clone(),
            app.ledger.committed(),
            stopped.clone(),
        )));
        if let Some(engine) = detection {
            let task = DetectionTask {
                store: app.store.clone(),
                committed: app.ledger.committed(),
                clock: app.clock.clone(),
                history,
                engine,
                book: alerts.clone(),
            };
            background.push(tokio::spawn(task.run(stopped.clone())));
        }
        for export in export_files {
            let exporter = Exporter {
                store: app.store.clone(),
                clock: app.clock.clone(),
                export,
            };
            background.push(tokio::spawn(exporter.run(stopped.clone())));
        }
        let api = serve(api_listener, router, stopped.clone(), "API");
        let gateway = serve(
            http_listener,
            gateway.router(),
            stopped.clone(),
            "HTTP gateway",
        );
        let postgres = pg_gateway.clone().serve(pg_listener, stopped.clone());
        tokio::join!(api, gateway, postgres);
        let _ = usage.await;
        for job in [retention, publisher, Some(rotation)].into_iter().flatten() {
            let _ = job.await;
        }
        for task in background {
            let _ = task.await;
        }
        jobs::flush_usage(&app).await;
        app.ledger.flush().await;
    });
    Ok(Running {
        api_addr,
        http_addr,
        postgres_addr,
        pg_gateway: pg_gateway_handle,
        new_admin_token,
        backend: store.backend(),
        shutdown,
        task,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, ServeError> {
    listener.local_addr().map_err(|source| ServeError::Bind {
        addr: asked,
        source,
    })
}

/// Serves `router` on `listener` until `stopped` turns true, then drains.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
    what: &str,
) {
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    if let Err(e) = serve.await {
        tracing::error!(error = %e, "{what} failed");
    }
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    }
}

fn prepare_data_dir(dir: &Path) -> Result<(), ServeError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(data_dir_error(dir))
}

/// Takes the data directory's exclusive lock, released when the returned file is dropped (or the
/// process dies).
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, ServeError> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(data_dir_error(dir))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::DataDirInUse(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(data_dir_error(dir)(e)),
    }
}

/// Creates a file readable only by its owner, failing if it exists.
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// On first start (no admins), creates the bootstrap admin and writes its token to the data
/// directory with mode 0600. Returns the token file's path when it was created.
async fn bootstrap_admin(
    store: &dyn Store,
    data_dir: &Path,
    clock: &dyn Clock,
) -> Result<Option<PathBuf>, ServeError> {
    if !store.list_admins().await?.is_empty() {
        return Ok(None);
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let credential = Credential::generate(CredentialKind::AdminToken);
    let admin = Admin {
        name: BOOTSTRAP_ADMIN.to_owned(),
        token_id: credential.id().to_owned(),
        digest: credential.digest(),
        created_by: "warden".to_owned(),
        created_at: clock.now(),
    };
    // Write the file first: an admin whose token was lost would lock everyone out.
    let _ = std::fs::remove_file(&path);
    let mut file = create_private_file(&path).map_err(data_dir_error(data_dir))?;
    writeln!(file, "{}", credential.expose())
        .and_then(|()| file.sync_all())
        .map_err(data_dir_error(data_dir))?;
    match store.insert_admin(&admin).await {
        Ok(()) => Ok(Some(path)),
        // Another instance sharing the database bootstrapped first; its token is the valid one.
        Err(StoreError::Conflict(_)) => {
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads a key kept in a private file, or creates it (mode 0600) on first start.
fn load_or_create_key<K>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<K, String>,
    generate: impl FnOnce() -> Result<(K, String), String>,
) -> Result<K, ServeError> {
    let fail = |reason: String| ServeError::KeyFile {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse(text.trim()).map_err(fail),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, text) = generate().map_err(fail)?;
            let mut file = create_private_file(path).map_err(|e| fail(e.to_string()))?;
            writeln!(file, "{text}")
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The checkpoint signing key. A new key's name, the log's origin, is `warden-` and eight random
/// hex digits, so two deployments never share one.
fn load_or_create_signer(path: &Path) -> Result<Signer, ServeError> {
    load_or_create_key(
        path,
        |text| Signer::parse(text).map_err(|e| e.to_string()),
        || {
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            let signer =
                Signer::generate(&format!("warden-{}", &suffix[..8])).map_err(|e| e.to_string())?;
            let text = signer.to_key_string();
            Ok((signer, text))
        },
    )
}

/// A 256-bit key written as 64 hex digits.
fn parse_key32(text: &str) -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key).map_err(|e| format!("expected 64 hex digits: {e}"))?;
    Ok(key)
}

/// 64 random hex digits (two v4 UUIDs: 244 random bits from the OS).
fn random_key32() -> Result<([u8; 32], String), String> {
    let text = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    Ok((parse_key32(&text)?, text))
}

/// The key for hashing sensitive values.
fn load_or_create_redactor(path: &Path) -> Result<Redactor, ServeError> {
    load_or_create_key(path, parse_key32, random_key32).map(Redactor::new)
}

/// The key that signs access tokens (64 hex digits of an Ed25519 seed).
fn load_or_create_token_service(path: &Path) -> Result<TokenService, ServeError> {
    load_or_create_key(
        path,
        |text| TokenService::parse(text).map_err(|e| e.to_string()),
        || {
            let tokens = TokenService::generate();
            let text = tokens.to_key_string();
            Ok((tokens, text))
        },
    )
}

/// The master key that seals upstream credentials: `WARDEN_MASTER_KEY` (64 hex digits) if set,
/// otherwise a key file in the data directory. Never stored in the database.
fn master_key(path: &Path) -> Result<Sealer, ServeError> {
    match std::env::var("WARDEN_MASTER_KEY") {
        Ok(text) => {
            parse_key32(text.trim())
                .map(Sealer::new)
                .map_err(|reason| ServeError::KeyFile {
                    path: PathBuf::from("$WARDEN_MASTER_KEY"),
                    reason,
                })
        }
        Err(_) => load_or_create_key(path, parse_key32, random_key32).map(Sealer::new),
    }
}

/// Every instance sharing a database must hold the same keys, or outside verifiers would see
/// two logs, tokens from one instance would be refused by another, and credentials sealed by one
/// could not be opened by the next. The first start records a fingerprint of each key; later
/// starts must match it, or stop naming the setting to fix.
async fn claim_key(
    store: &dyn Store,
    setting: &str,
    fingerprint: &str,
    path: &Path,
    fix: &str,
) -> Result<(), ServeError> {
    let recorded = store.setting_or_insert(setting, fingerprint).await?;
    if recorded == fingerprint {
        Ok(())
    } else {
        Err(ServeError::KeyFile {
            path: path.to_owned(),
            reason: format!(
                "this database was set up with a different key (its {setting} is `{recorded}`, \
                 this key's is `{fingerprint}`); {fix}"
            ),
        })
    }
}

fn write_addresses(
    data_dir: &Path,
    api: SocketAddr,
    http: SocketAddr,
    postgres: SocketAddr,
) -> Result<(), ServeError> {
    let body = serde_json::json!({
        "api": api.to_string(),
        "http": http.to_string(),
        "postgres": postgres.to_string(),
    })
    .to_string();
    let tmp = data_dir.join(format!("{ADDRESSES_FILE}.tmp"));
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, data_dir.join(ADDRESSES_FILE)))
        .map_err(data_dir_error(data_dir))
}

/// The TLS configuration the PostgreSQL gateway presents to clients: the configured certificate
/// and key, or a self-signed pair created in the data directory on first start.
fn pg_tls_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let (cert_path, key_path) = match (
        &config.postgres.tls_cert_file,
        &config.postgres.tls_key_file,
    ) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let cert = config.data_dir.join("pg-tls.crt");
            let key = config.data_dir.join("pg-tls.key");
            if !cert.exists() || !key.exists() {
                let generated = rcgen::generate_simple_self_signed(vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                ])
                .map_err(|e| ServeError::KeyFile {
                    path: cert.clone(),
                    reason: format!("cannot generate a self-signed certificate: {e}"),
                })?;
                let _ = std::fs::remove_file(&key);
                create_private_file(&key)
                    .and_then(|mut f| f.write_all(generated.key_pair.serialize_pem().as_bytes()))
                    .map_err(data_dir_error(&key))?;
                std::fs::write(&cert, generated.cert.pem()).map_err(data_dir_error(&cert))?;
            }
            (cert, key)
        }
    };
    let bad = |path: &Path, reason: String| ServeError::KeyFile {
        path: path.to_owned(),
        reason,
    };
    let cert_pem = std::fs::read(&cert_path).map_err(|e| bad(&cert_path, e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(&cert_path, "no PEM certificate found".to_owned()));
    }
    let key_pem = std::fs::read(&key_path).map_err(|e| bad(&key_path, e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| bad(&key_path, e.to_string()))?
        .ok_or_else(|| bad(&key_path, "no PEM private key found".to_owned()))?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(&cert_path, e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad(&key_path, format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(tls))
}
