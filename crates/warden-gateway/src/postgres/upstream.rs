//! Connecting to a target's PostgreSQL server as Warden: TLS first (verified against the Mozilla
//! roots and the target's CA bundle; plaintext only to a loopback server that does not offer
//! TLS, or when the target's URL says `?sslmode=disable`), then whichever password method the server asks for (SCRAM-SHA-256, md5 or cleartext)
//! with the target's stored login. The SCRAM and md5 client math is `postgres-protocol`'s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_core::UpstreamCredentials;
use warden_pgwire::{parse_backend, read_frame, Backend, WireError};

/// A byte stream that may or may not be TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream, TLS or plain.
pub type BoxIo = Box<dyn Io>;

/// Why the upstream could not be reached or logged in to. The messages name the upstream's
/// host, never its credentials.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The target's URL or credentials are unusable.
    #[error("target misconfigured: {0}")]
    Config(String),
    /// TCP or TLS failed.
    #[error("cannot reach the database at {addr}: {reason}")]
    Unreachable {
        /// host:port
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The server does not offer TLS and is not on loopback.
    #[error(
        "the database at {0} does not offer TLS; Warden will not send credentials in the clear"
    )]
    NoTls(String),
    /// The server refused the login.
    #[error("the database refused Warden's login: {0}")]
    Refused(String),
    /// The server spoke something unexpected.
    #[error("protocol error from the database: {0}")]
    Protocol(String),
    /// Connecting took longer than the connect timeout.
    #[error("the database did not accept the connection within {0:?}")]
    Timeout(Duration),
}

impl From<WireError> for UpstreamError {
    fn from(e: WireError) -> Self {
        Self::Protocol(e.to_string())
    }
}

/// A logged-in upstream connection, ready for queries.
pub struct Upstream {
    /// The stream, after the login exchange.
    pub stream: BoxIo,
    /// Bytes already read past the login (normally none).
    pub leftover: BytesMut,
    /// `ParameterStatus` values the server reported.
    pub parameters: Vec<(String, String)>,
    /// The server's process id and cancel secret.
    pub backend_key: (i32, i32),
    /// The server's address, for cancel requests.
    pub addr: SocketAddr,
}

/// Where to connect, from a target's `postgres://host:port/db` URL.
pub struct Endpoint {
    host: String,
    port: u16,
    database: Option<String>,
    /// `?sslmode=disable`: no TLS at all.
    plaintext: bool,
}

impl Endpoint {
    /// Parses the target's upstream URL.
    pub fn parse(url: &str) -> Result<Self, UpstreamError> {
        let u = url::Url::parse(url).map_err(|e| UpstreamError::Config(e.to_string()))?;
        let host = u
            .host_str()
            .ok_or_else(|| UpstreamError::Config("the upstream URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let database = u.path().trim_start_matches('/');
        Ok(Self {
            host,
            port: u.port().unwrap_or(5432),
            database: (!database.is_empty()).then(|| database.to_owned()),
            plaintext: u.query() == Some("sslmode=disable"),
        })
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Connects and logs in. `client_params` are the client's startup parameters Warden passes on
/// (already filtered to harmless ones).
pub async fn connect(
    endpoint: &Endpoint,
    credentials: &UpstreamCredentials,
    tls: Arc<rustls::ClientConfig>,
    client_params: &[(String, String)],
    timeout: Duration,
    max_message: usize,
) -> Result<Upstream, UpstreamError> {
    tokio::time::timeout(
        timeout,
        connect_inner(endpoint, credentials, tls, client_params, max_message),
    )
    .await
    .map_err(|_| UpstreamError::Timeout(timeout))?
}

async fn connect_inner(
    endpoint: &Endpoint,
    credentials: &UpstreamCredentials,
    tls: Arc<rustls::ClientConfig>,
    client_params: &[(String, String)],
    max_message: usize,
) -> Result<Upstream, UpstreamError> {
    let (user, password) = credentials.basic.clone().ok_or_else(|| {
        UpstreamError::Config("a postgres target needs a login (--basic-auth-file)".into())
    })?;
    let hostport = format!("{}:{}", endpoint.host, endpoint.port);
    let unreachable = |reason: String| UpstreamError::Unreachable {
        addr: hostport.clone(),
        reason,
    };
    let mut tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let addr = tcp.peer_addr().map_err(|e| unreachable(e.to_string()))?;

    let mut buf = BytesMut::new();
    let mut stream: BoxIo = if endpoint.plaintext {
        Box::new(tcp)
    } else {
        frontend::ssl_request(&mut buf);
        tcp.write_all(&buf)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        match answer[0] {
            b'S' => {
                let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                    .map_err(|e| UpstreamError::Config(format!("upstream host: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unreachable(format!("TLS: {e}")))?;
                Box::new(tls)
            }
            b'N' if endpoint.is_loopback() => Box::new(tcp),
            b'N' => return Err(UpstreamError::NoTls(hostport)),
            other => {
                return Err(UpstreamError::Protocol(format!(
                    "unexpected answer {other:#04x} to SSLRequest"
                )))
            }
        }
    };

    let database = endpoint.database.clone().unwrap_or_else(|| user.clone());
    let mut params: Vec<(&str, &str)> = vec![("user", &user), ("database", &database)];
    params.extend(client_params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    buf.clear();
    frontend::startup_message(params.iter().copied(), &mut buf)
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    stream
        .write_all(&buf)
        .await
        .map_err(|e| unreachable(e.to_string()))?;

    let mut reader = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramSha256> = None;
    let mut parameters = Vec::new();
    let mut backend_key = None;
    loop {
        let frame = read_frame(&mut stream, &mut reader, max_message)
            .await?
            .ok_or_else(|| unreachable("connection closed during login".into()))?;
        match parse_backend(&frame)? {
            Backend::Authentication { code, data } => {
                buf.clear();
                match code {
                    0 => continue,
                    3 => frontend::password_message(password.as_bytes(), &mut buf)
                        .map_err(|e| UpstreamError::Protocol(e.to_string()))?,
                    5 => {
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(|| {
                                UpstreamError::Protocol("md5 request without a salt".into())
                            })?;
                        let hash = postgres_protocol::authentication::md5_hash(
                            user.as_bytes(),
                            password.as_bytes(),
                            salt,
                        );
                        frontend::password_message(hash.as_bytes(), &mut buf)
                            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                    }
                    10 => {
                        let offers_scram = data.split(|b| *b == 0).any(|m| m == b"SCRAM-SHA-256");
                        if !offers_scram {
                            return Err(UpstreamError::Refused(
                                "the server offers no SASL mechanism Warden supports".into(),
                            ));
                        }
                        let s =
                            ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                        frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut buf)
                            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                        scram = Some(s);
                    }
                    11 => {
                        let s = scram.as_mut().ok_or_else(|| {
                            UpstreamError::Protocol("SASL continue without SASL".into())
                        })?;
                        s.update(&data)
                            .map_err(|e| UpstreamError::Refused(format!("SCRAM: {e}")))?;
                        frontend::sasl_response(s.message(), &mut buf)
                            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                    }
                    12 => {
                        let mut s = scram.take().ok_or_else(|| {
                            UpstreamError::Protocol("SASL final without SASL".into())
                        })?;
                        s.finish(&data).map_err(|e| {
                            UpstreamError::Refused(format!("the server failed SCRAM proof: {e}"))
                        })?;
                        continue;
                    }
                    other => {
                        return Err(UpstreamError::Refused(format!(
                            "unsupported authentication method {other}"
                        )))
                    }
                }
                stream
                    .write_all(&buf)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
            }
            Backend::ParameterStatus { name, value } => parameters.push((name, value)),
            Backend::BackendKeyData { pid, secret } => backend_key = Some((pid, secret)),
            Backend::ReadyForQuery(_) => break,
            Backend::ErrorResponse(e) => {
                return Err(UpstreamError::Refused(format!(
                    "{} ({})",
                    e.message, e.code
                )))
            }
            _ => {}
        }
    }
    Ok(Upstream {
        stream,
        leftover: reader,
        parameters,
        backend_key: backend_key.unwrap_or((0, 0)),
        addr,
    })
}

/// Asks the upstream to cancel whatever backend `pid` runs (a plain `CancelRequest`, as libpq
/// sends it; cancel requests carry no credentials).
pub async fn cancel(addr: SocketAddr, pid: i32, secret: i32) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(addr).await?;
    let mut buf = BytesMut::new();
    frontend::cancel_request(pid, secret, &mut buf);
    tcp.write_all(&buf).await?;
    // The server closes the connection once it has read the request.
    let mut sink = [0u8; 1];
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut sink)).await;
    Ok(())
}
