//! HTTP delivery shared by the webhook and Slack sinks: one process-wide client, one POST per
//! attempt.

use std::fmt;
use std::sync::OnceLock;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use crate::error::Failure;

/// How much of an error response's body is kept in the error.
const ERROR_BODY_MAX: usize = 512;

static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();

/// The shared client (rustls), built on first use. Redirects are not followed: a signed body
/// goes only where it was configured to go.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
        .build()?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

/// Where an HTTP sink posts: the shared client and the URL. `Debug` shows only the URL's
/// scheme and host, since webhook URLs often carry a secret.
pub(crate) struct Endpoint {
    pub(crate) client: reqwest::Client,
    pub(crate) url: url::Url,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Endpoint({}://{}/…)",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default()
        )
    }
}

impl Endpoint {
    /// POSTs a JSON `body` with extra `headers`; any 2xx is success.
    pub(crate) async fn post_json(
        &self,
        body: Vec<u8>,
        mut headers: HeaderMap,
    ) -> Result<(), Failure> {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut response = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = Vec::new();
        while body.len() < ERROR_BODY_MAX {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(ERROR_BODY_MAX);
        Err(Failure::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
