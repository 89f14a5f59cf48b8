//! A throwaway PostgreSQL cluster of a test's own, for what the shared local server cannot show:
//! it trusts loopback connections, so it can prove neither SCRAM-SHA-256 nor TLS upstream.
//!
//! [`PgCluster::start`] runs `initdb` in a temporary directory with SCRAM-SHA-256 for every
//! connection and a random superuser password, gives the server a certificate signed by a test CA
//! made with `rcgen`, and starts it on a free loopback port with `pg_ctl`. TLS is offered but not
//! required (`hostssl` and `host` lines), so a test can ask `pg_stat_ssl` whether a client used it.
//! Dropping the cluster stops the server (immediate shutdown) and deletes the directory, also when
//! the test panicked.
//!
//! The binaries are taken from `WARDEN_TEST_PG_BIN` if set, else from the directory of the
//! `initdb` found on `PATH`, else from the newest `/usr/lib/postgresql/*/bin`. PostgreSQL refuses
//! to run as root, so when the tests run as root the cluster belongs to, and runs as, the OS user
//! `postgres`.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio::process::Command;
use tokio_postgres::NoTls;

/// The cluster's superuser.
const SUPERUSER: &str = "postgres";
/// The OS user that owns and runs the cluster when the tests run as root.
const OS_USER: &str = "postgres";
/// How long the server may take to accept connections after `pg_ctl start`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports tried before giving up when another process takes the free port first.
const PORT_ATTEMPTS: usize = 5;

/// The unprivileged OS user (uid, gid) the server's processes run as.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A PostgreSQL server of a test's own, with SCRAM-SHA-256 authentication and TLS, on a free port
/// of 127.0.0.1. Stopped and deleted on drop.
pub struct PgCluster {
    /// Holds `data/`, the certificates, the password file, the log and the Unix socket.
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    password: String,
    ca_pem: String,
}

impl PgCluster {
    /// Creates and starts a cluster, returning once it accepts connections.
    ///
    /// Panics, saying what is missing, if PostgreSQL's server binaries cannot be found or the
    /// server does not start.
    pub async fn start() -> PgCluster {
        let bin = bin_dir();
        let (dir, run_as) = private_dir();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let (ca_pem, cert_pem, key_pem) = certificates();
        let mut cluster = PgCluster {
            dir,
            bin,
            run_as,
            port: 0,
            password,
            ca_pem,
        };
        cluster.write_file("pwfile", &cluster.password, 0o600);
        cluster.write_file("ca.crt", &cluster.ca_pem, 0o644);
        cluster.write_file("server.crt", &cert_pem, 0o644);
        cluster.write_file("server.key", &key_pem, 0o600);

        let data = cluster.data_dir();
        let pwfile = cluster.path("pwfile");
        let output = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "--auth=scram-sha-256",
                &format!("--username={SUPERUSER}"),
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .await
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.write_file(
            "data/pg_hba.conf",
            "hostssl all all 127.0.0.1/32 scram-sha-256\n\
             host    all all 127.0.0.1/32 scram-sha-256\n",
            0o600,
        );

        let initdb_conf = fs::read_to_string(data.join("postgresql.conf")).expect("read config");
        for attempt in 1..=PORT_ATTEMPTS {
            cluster.port = free_port();
            cluster.write_file(
                "data/postgresql.conf",
                &format!("{initdb_conf}\n{}", cluster.settings()),
                0o600,
            );
            match cluster.pg_ctl_start().await {
                Ok(()) => break,
                // Something else took the port between our check and the server's bind.
                Err(log) if attempt < PORT_ATTEMPTS && log.contains("could not bind") => {}
                Err(log) => panic!("PostgreSQL did not start:\n{log}"),
            }
        }
        cluster.wait_ready().await;
        cluster
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of the superuser `postgres`.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// PEM of the CA certificate that signed the server's certificate (for `localhost` and
    /// `127.0.0.1`): what a client trusts to verify the server.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The same CA certificate as a file, for clients that take a path (`sslrootcert`).
    pub fn ca_path(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// The superuser's connection URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        self.role_url(SUPERUSER, &self.password, db)
    }

    /// A connection URL for `role` with `password` to database `db` (both used as given, so they
    /// must not need percent-encoding).
    pub fn role_url(&self, role: &str, password: &str, db: &str) -> String {
        format!("postgres://{role}:{password}@127.0.0.1:{}/{db}", self.port)
    }

    /// A client connected to database `db` as the superuser, without TLS.
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(db), NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to the test cluster's {db}: {e}"));
        tokio::spawn(connection);
        client
    }

    /// Creates a role that can log in with `password` (stored as a SCRAM-SHA-256 verifier).
    pub async fn create_role(&self, name: &str, password: &str) {
        self.superuser_execute(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            quote_ident(name),
            quote_literal(password)
        ))
        .await;
    }

    /// Creates database `name` owned by role `owner`.
    pub async fn create_database(&self, name: &str, owner: &str) {
        self.superuser_execute(&format!(
            "CREATE DATABASE {} OWNER {}",
            quote_ident(name),
            quote_ident(owner)
        ))
        .await;
    }

    /// Stops the server with a fast shutdown (sessions are ended, work is checkpointed).
    pub async fn stop(&self) {
        self.pg_ctl_stop("fast").await;
    }

    /// Stops the server at once, as if it crashed (immediate shutdown): what a client sees when
    /// its upstream goes away mid-session.
    pub async fn stop_now(&self) {
        self.pg_ctl_stop("immediate").await;
    }

    /// Starts a stopped server again, on the same port, returning once it accepts connections.
    pub async fn start_again(&self) {
        if let Err(log) = self.pg_ctl_start().await {
            panic!("PostgreSQL did not start again:\n{log}");
        }
        self.wait_ready().await;
    }

    /// [`stop_now`](Self::stop_now) then [`start_again`](Self::start_again): every open session
    /// is cut, and the server is back on the same port with its data.
    pub async fn restart(&self) {
        self.stop_now().await;
        self.start_again().await;
    }

    /// The postmaster's process id, read from its pid file; `None` when the server is stopped.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// The cluster's data directory (removed on drop).
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// The directory holding the PostgreSQL binaries the cluster runs (`pg_ctl`, `psql`, ...).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The server's log so far, for a failing test to show.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path("logfile")).unwrap_or_default()
    }

    /// The lines added to `postgresql.conf`.
    fn settings(&self) -> String {
        let dir = self.dir.path().display();
        format!(
            "# Added by warden-testkit's PgCluster: a throwaway cluster.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{dir}'\n\
             ssl = on\n\
             ssl_cert_file = '{dir}/server.crt'\n\
             ssl_key_file = '{dir}/server.key'\n\
             password_encryption = 'scram-sha-256'\n\
             shared_buffers = '16MB'\n\
             max_connections = 50\n\
             fsync = off\n\
             full_page_writes = off\n",
            port = self.port
        )
    }

    async fn superuser_execute(&self, sql: &str) {
        self.client("postgres")
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `pg_ctl start`, waiting for the server; on failure, the server's log.
    async fn pg_ctl_start(&self) -> Result<(), String> {
        let status = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.path("logfile"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("run pg_ctl start");
        if status.success() {
            Ok(())
        } else {
            Err(self.log())
        }
    }

    async fn pg_ctl_stop(&self, mode: &str) {
        let output = self
            .command("pg_ctl")
            .args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(self.data_dir())
            .output()
            .await
            .expect("run pg_ctl stop");
        assert!(
            output.status.success(),
            "pg_ctl stop -m {mode} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until the superuser can log in over TCP (`pg_ctl -w` only watches the pid file).
    async fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match tokio_postgres::connect(&self.url("postgres"), NoTls).await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "PostgreSQL does not accept connections: {e}\n{}",
                        self.log()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A PostgreSQL binary as a command run by the cluster's owner, in the cluster's directory.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(self.dir.path()).env_remove("PGDATA");
        if let Some(user) = self.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        command
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` in the cluster's directory, readable by the cluster's owner.
    fn write_file(&self, name: &str, contents: &str, mode: u32) {
        let path = self.path(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("set file mode");
        if let Some(user) = self.run_as {
            chown(&path, Some(user.uid), Some(user.gid)).expect("chown to postgres");
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Blocking, as drop must be; an immediate stop takes milliseconds. Fails harmlessly when
        // the server is already stopped or never started.
        let mut command = std::process::Command::new(self.bin.join("pg_ctl"));
        command
            .args(["stop", "-w", "-t", "60", "-m", "immediate", "-D"])
            .arg(self.data_dir())
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(user) = self.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        let _ = command.status();
        // The TempDir field then deletes the directory.
    }
}

/// The directory with `initdb` and `pg_ctl`; panics saying what to install when there is none.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WARDEN_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file());
    if let Some(initdb) = on_path {
        // Through symlinks, so pg_ctl and postgres come from the same installation.
        let initdb = initdb.canonicalize().unwrap_or(initdb);
        return initdb.parent().expect("initdb has a directory").to_owned();
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PgCluster needs PostgreSQL's server binaries (initdb, pg_ctl, postgres) and found no \
             initdb on PATH or in /usr/lib/postgresql/*/bin: install them (Debian/Ubuntu: \
             `apt-get install postgresql`) or set WARDEN_TEST_PG_BIN to their directory"
        ),
    }
}

/// A new private (0700) temporary directory, and the unprivileged user it is given to when we
/// are root. As root it is made under /tmp, which that user can reach whatever TMPDIR says.
fn private_dir() -> (tempfile::TempDir, Option<RunAs>) {
    let make = |parent: &Path| {
        tempfile::Builder::new()
            .prefix("warden-pg-")
            .tempdir_in(parent)
            .expect("create a temporary directory")
    };
    let dir = make(&std::env::temp_dir());
    let is_root = dir
        .path()
        .metadata()
        .expect("stat temporary directory")
        .uid()
        == 0;
    if !is_root {
        return (dir, None);
    }
    let user = os_user(OS_USER).unwrap_or_else(|| {
        panic!(
            "PostgreSQL refuses to run as root and there is no OS user `{OS_USER}` to run it as: \
             create one (`useradd --system {OS_USER}`) or run the tests as another user"
        )
    });
    let dir = if std::env::temp_dir() == Path::new("/tmp") {
        dir
    } else {
        make(Path::new("/tmp"))
    };
    chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown to postgres");
    (dir, Some(user))
}

/// Looks `name` up in /etc/passwd.
fn os_user(name: &str) -> Option<RunAs> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [user, _, uid, gid, ..] if user == name => Some(RunAs {
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
            }),
            _ => None,
        }
    })
}

/// A port nothing listens on now: bound, read, released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// A test CA's certificate, and a server certificate for `localhost` and `127.0.0.1` signed by
/// it with its key, all as PEM.
fn certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("generate CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "warden-testkit PgCluster CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA certificate");

    let key = KeyPair::generate().expect("generate server key");
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server certificate parameters");
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("sign server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
