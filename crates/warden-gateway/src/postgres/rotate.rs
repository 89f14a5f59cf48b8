//! Rotating a database target's upstream password: Warden logs in with the current password,
//! sets a new random one with `ALTER ROLE … PASSWORD` (sent as a SCRAM-SHA-256 verifier, so the
//! new password itself never appears in a statement or a server log), proves the new one works
//! with a fresh login, and only then hands it back to be stored. If the proof fails, the old
//! password is put back, so a failed rotation never locks Warden out. Sessions already open are
//! not touched: PostgreSQL does not end sessions when a password changes.

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use rand::distributions::Alphanumeric;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use warden_core::UpstreamCredentials;
use warden_pgwire::scram::{generate_salt, DEFAULT_ITERATIONS};
use warden_pgwire::{parse_backend, read_frame, Backend, Verifier};

use super::upstream::{self, Endpoint, Upstream, UpstreamError};
use super::PgGateway;
use crate::policy::ResolvedTarget;

/// Length of generated passwords (alphanumeric: about 190 bits).
const PASSWORD_LEN: usize = 32;

/// Why a rotation failed; the old password still works in every case.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// Warden could not log in with the current password.
    #[error("cannot log in with the current password: {0}")]
    Login(UpstreamError),
    /// The server refused the password change.
    #[error("the database refused the password change: {0}")]
    Refused(String),
    /// The new password did not work, and the old one was restored.
    #[error("the new password did not work ({0}); the old password was restored")]
    NotProven(UpstreamError),
    /// The new password did not work, and restoring the old one failed too.
    #[error("the new password did not work ({0}) and restoring the old one failed ({1}); set the role's password by hand")]
    RestoreFailed(UpstreamError, String),
}

impl PgGateway {
    /// Rotates `target`'s upstream password, returning the new credentials to store.
    pub async fn rotate(
        &self,
        target: &ResolvedTarget,
    ) -> Result<UpstreamCredentials, RotateError> {
        let login = |credentials: UpstreamCredentials| async move {
            let endpoint = Endpoint::parse(&target.target.upstream)?;
            let tls = self.upstream_tls(target.target.ca_bundle.as_deref())?;
            upstream::connect(
                &endpoint,
                &credentials,
                tls,
                &[("application_name".to_owned(), "warden-rotation".to_owned())],
                self.config.connect_timeout,
                self.config.max_message_bytes,
            )
            .await
        };
        let old = target.credentials.clone();
        let Some((role, old_password)) = old.basic.clone() else {
            return Err(RotateError::Login(UpstreamError::Config(
                "the target has no login to rotate".into(),
            )));
        };
        let mut session = login(old.clone()).await.map_err(RotateError::Login)?;
        let new_password: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(PASSWORD_LEN)
            .map(char::from)
            .collect();
        let max = self.config.max_message_bytes;
        set_password(&mut session, &role, &new_password, max)
            .await
            .map_err(RotateError::Refused)?;
        let mut new = old.clone();
        new.basic = Some((role.clone(), new_password));
        match login(new.clone()).await {
            Ok(_) => Ok(new),
            Err(e) => match set_password(&mut session, &role, &old_password, max).await {
                Ok(()) => Err(RotateError::NotProven(e)),
                Err(restore) => Err(RotateError::RestoreFailed(e, restore)),
            },
        }
    }
}

/// `ALTER ROLE role PASSWORD 'SCRAM-SHA-256$…'` on a logged-in session.
async fn set_password(
    session: &mut Upstream,
    role: &str,
    password: &str,
    max: usize,
) -> Result<(), String> {
    let verifier = Verifier::derive(
        password.as_bytes(),
        &generate_salt(&mut rand::thread_rng()),
        DEFAULT_ITERATIONS,
    );
    let sql = format!(
        "ALTER ROLE \"{}\" PASSWORD '{verifier}'",
        role.replace('"', "\"\"")
    );
    let mut out = BytesMut::new();
    frontend::query(&sql, &mut out).map_err(|e| e.to_string())?;
    session
        .stream
        .write_all(&out)
        .await
        .map_err(|e| e.to_string())?;
    let mut error = None;
    loop {
        let frame = read_frame(&mut session.stream, &mut session.leftover, max)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the database closed the connection")?;
        match parse_backend(&frame).map_err(|e| e.to_string())? {
            Backend::ErrorResponse(e) => error = Some(format!("{} ({})", e.message, e.code)),
            Backend::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    error.map_or(Ok(()), Err)
}
