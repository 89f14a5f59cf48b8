//! The admin commands' HTTP client for the REST API: finds the server and the token, sends
//! requests, and turns problem documents into one-line errors.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cli::ClientArgs;

/// A connection to one Warden server's API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// Resolves the server URL and token from flags, environment and the local data directory.
    pub fn new(args: &ClientArgs) -> Result<Self> {
        let base = match &args.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => local_url(&args.data_dir).unwrap_or_else(|| "http://127.0.0.1:8470".to_owned()),
        };
        let token = match std::env::var("WARDEN_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            _ => {
                let path = args
                    .token_file
                    .clone()
                    .unwrap_or_else(|| args.data_dir.join("admin-token"));
                match std::fs::read_to_string(&path) {
                    Ok(t) => Some(t.trim().to_owned()),
                    Err(e) if args.token_file.is_some() => {
                        bail!("cannot read token file {}: {e}", path.display())
                    }
                    Err(_) => None,
                }
            }
        };
        Self::build(base, token)
    }

    /// A client of the server at `base` (`http://host:port`) presenting `token`, whatever the
    /// environment and the current directory say (`warden demo` talks to the server it started).
    pub fn with_token(base: &str, token: &str) -> Result<Self> {
        Self::build(
            base.trim_end_matches('/').to_owned(),
            Some(token.to_owned()),
        )
    }

    fn build(base: String, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("warden-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// GET `path` and decode the JSON response.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(self.url(path))).await
    }

    /// GET `path` and return the response body as text (for `text/plain` endpoints).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let bytes = self.send_raw(self.http.get(self.url(path))).await?;
        String::from_utf8(bytes).context("the server's response is not UTF-8 text")
    }

    /// DELETE `path` and decode the JSON response.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.delete(self.url(path))).await
    }

    /// POST `body` as JSON to `path` and decode the JSON response.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// PUT `body` as JSON to `path`, expecting no content back.
    pub async fn put<B: Serialize>(&self, path: &str, body: &B) -> Result<()> {
        self.send_raw(self.http.put(self.url(path)).json(body))
            .await
            .map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let bytes = self.send_raw(request).await?;
        serde_json::from_slice(&bytes).context("the server's response is not the expected JSON")
    }

    /// Sends with the token; the body of a success, or the problem document as an error.
    async fn send_raw(&self, mut request: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        match &self.token {
            Some(t) => request = request.bearer_auth(t),
            None => bail!(
                "no credentials: set WARDEN_TOKEN, pass --token-file, or run next to a local server's data directory"
            ),
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach Warden at {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the response")?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => {
                let field = p
                    .field
                    .map(|f| format!(" (field `{f}`)"))
                    .unwrap_or_default();
                bail!(
                    "{}{field} [HTTP {}, {}]",
                    p.detail.unwrap_or(p.title),
                    status.as_u16(),
                    p.kind
                )
            }
            Err(_) => bail!("HTTP {status} from {}", self.base),
        }
    }
}

#[derive(serde::Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    detail: Option<String>,
    field: Option<String>,
}

/// The API address a local server wrote to its data directory.
fn local_url(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("addresses.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("api")?.as_str().map(|a| format!("http://{a}"))
}
