//! OAuth 2.0 client credentials: `POST /oauth/token` trades an API key for a short-lived EdDSA
//! JWT, `/.well-known/jwks.json` publishes the key that verifies it, and the token works wherever
//! the key does, until it expires or its key or account stops working. Once on SQLite, once on
//! PostgreSQL; expiry by moving the manual clock.

#[macro_use]
mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use warden_core::Clock;

/// What the token endpoint answered.
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// `POST /oauth/token` with `form` as the body and, optionally, HTTP Basic client credentials.
async fn token_request(
    t: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = t
        .http
        .post(format!("{}/oauth/token", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// An account with one key; returns the key and its id.
async fn account_with_key(t: &TestServer, name: &str) -> (String, String) {
    t.account(name).await;
    let key = t.key(name).await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    (key, key_id)
}

/// A token for `key` obtained with body credentials.
async fn token_for(t: &TestServer, key: &str, key_id: &str) -> String {
    let r = token_request(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", key_id),
            ("client_secret", key),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn part(token: &str, i: usize) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A token with this header and these claims, signed by `key`.
fn forge(key: &ed25519_dalek::SigningKey, header: &Value, claims: &Value) -> String {
    use ed25519_dalek::Signer;
    let message = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// The `token.issue` events, oldest first.
async fn issue_events(t: &TestServer) -> Vec<Value> {
    t.events("category=auth")
        .await
        .into_iter()
        .filter(|e| e["action"]["verb"] == "token.issue")
        .collect()
}

async fn issues_tokens(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (key, key_id) = account_with_key(&t, "etl").await;

    // Credentials in the body.
    let r = token_request(
        &t,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &key_id),
            ("client_secret", &key),
            ("scope", "anything"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(r.headers[CACHE_CONTROL], "no-store");
    let token = r.body["access_token"].as_str().unwrap().to_owned();

    // HTTP Basic.
    let r = token_request(
        &t,
        &[("grant_type", "client_credentials")],
        Some((&key_id, &key)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let basic_token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(basic_token, token);

    // The claims.
    let header = part(&token, 0);
    let claims = part(&token, 1);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], "warden");
    assert_eq!(claims["sub"], "etl");
    assert_eq!(claims["key_id"], key_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());

    // It verifies against the published key, with no credentials needed to fetch it.
    let resp = t
        .http
        .get(format!("{}/.well-known/jwks.json", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let jwks: Value = resp.json().await.unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"], &jwk["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    assert_eq!(jwk["kid"], header["kid"]);
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let (message, sig) = token.rsplit_once('.').unwrap();
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();
    public
        .verify_strict(
            message.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .expect("token signature verifies against the JWKS");

    // The token stands in for the key, and the auth event says it was a token.
    let (s, me) = t.whoami(&token).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["account"], "etl");
    assert_eq!(me["kind"], "service");
    assert_eq!(me["key_id"], key_id.as_str());
    assert_eq!(t.whoami(&basic_token).await.0, StatusCode::OK);
    let (s, _) = t.whoami(&key).await;
    assert_eq!(s, StatusCode::OK);
    let whoami: Vec<Value> = t
        .events("category=auth")
        .await
        .into_iter()
        .filter(|e| e["action"]["verb"] == "whoami")
        .collect();
    assert_eq!(whoami.len(), 3);
    assert_eq!(whoami[0]["actor"]["auth"], "token");
    assert_eq!(whoami[0]["actor"]["account"], "etl");
    assert_eq!(whoami[0]["actor"]["key_id"], key_id.as_str());
    assert_eq!(whoami[2]["actor"]["auth"], "api_key");

    // A token is not an admin credential.
    let (s, _) = t.get("/v1/accounts", &token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Issuance is recorded with the token's id, never the token.
    let issued = issue_events(&t).await;
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0]["decision"]["allowed"], true);
    assert_eq!(issued[0]["actor"]["account"], "etl");
    assert_eq!(issued[0]["actor"]["key_id"], key_id.as_str());
    assert_eq!(issued[0]["actor"]["auth"], "api_key");
    assert_eq!(issued[0]["action"]["detail"]["jti"], claims["jti"]);
    assert_eq!(issued[0]["source"]["user_agent"], "api-test/1");
    let everything = serde_json::to_string(&t.events("").await).unwrap();
    for secret in [token.as_str(), basic_token.as_str(), &key[key.len() - 64..]] {
        assert!(!everything.contains(secret));
    }
    assert!(!everything.contains(token.rsplit_once('.').unwrap().1));

    // Both endpoints are in the OpenAPI document.
    let (_, doc) = t.get("/v1/openapi.json", &t.admin).await;
    assert!(doc["paths"]["/oauth/token"]["post"].is_object(), "{doc}");
    assert!(doc["paths"]["/.well-known/jwks.json"]["get"].is_object());
    t.stop().await;
}

async fn forged_tokens_are_refused(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (key, key_id) = account_with_key(&t, "etl").await;
    account_with_key(&t, "payroll").await;
    let token = token_for(&t, &key, &key_id).await;
    let header = part(&token, 0);
    let mut claims = part(&token, 1);
    let (_, reference) = t.whoami("garbage").await;

    // The payload changed (another account), the signature kept.
    claims["sub"] = json!("payroll");
    let pieces: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", pieces[0], b64(&claims), pieces[2]);
    claims["sub"] = json!("etl");
    // Signed by another Warden's key (another kid), and by another key under this kid.
    let elsewhere = warden_gateway::token::TokenService::generate()
        .issue("etl", &key_id, t.clock.now(), Duration::from_secs(900))
        .unwrap()
        .access_token;
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let same_kid = forge(&stranger, &header, &claims);
    // `alg: none`, unsigned and "signed".
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": header["kid"]});
    let unsigned = format!("{}.{}.", b64(&none_header), b64(&claims));
    let none_signed = forge(&stranger, &none_header, &claims);
    let oversized = format!("{token}{}", "A".repeat(5000));

    for bad in [
        &tampered,
        &elsewhere,
        &same_kid,
        &unsigned,
        &none_signed,
        &oversized,
        &"a.b.c".to_owned(),
    ] {
        let (s, p) = t.whoami(bad).await;
        assert_problem(s, &p, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(p, reference, "every refusal looks the same");
    }
    assert_eq!(t.whoami(&token).await.0, StatusCode::OK);

    let reasons: Vec<String> = t
        .events("category=auth")
        .await
        .iter()
        .filter(|e| e["action"]["verb"] == "whoami" && e["decision"]["allowed"] == false)
        .map(|e| e["decision"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons[1..],
        [
            "invalid token: bad signature",
            "invalid token: unknown signing key",
            "invalid token: bad signature",
            "invalid token: malformed token",
            "invalid token: unsupported algorithm `none`",
            "invalid token: token longer than 4096 bytes",
            "invalid token: malformed token",
        ]
    );
    t.stop().await;
}

async fn tokens_expire(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (key, key_id) = account_with_key(&t, "etl").await;
    let token = token_for(&t, &key, &key_id).await;
    t.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(t.whoami(&token).await.0, StatusCode::OK);
    t.clock.advance(Duration::from_secs(2 * 60));
    let (s, p) = t.whoami(&token).await;
    assert_problem(s, &p, StatusCode::UNAUTHORIZED, "unauthorized");
    let last = t.events("category=auth").await.pop().unwrap();
    assert_eq!(last["decision"]["reason"], "invalid token: token expired");
    assert_eq!(last["actor"]["account"], "etl");
    assert_eq!(last["actor"]["key_id"], key_id.as_str());
    // The key itself still works, and gets a fresh token.
    let fresh = token_for(&t, &key, &key_id).await;
    assert_eq!(t.whoami(&fresh).await.0, StatusCode::OK);
    t.stop().await;
}

async fn token_ttl_is_configurable(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.auth.token_ttl = Duration::from_secs(60);
    })
    .await;
    let (key, key_id) = account_with_key(&t, "etl").await;
    let r = token_request(
        &t,
        &[("grant_type", "client_credentials")],
        Some((&key_id, &key)),
    )
    .await;
    assert_eq!(r.body["expires_in"], 60);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    t.clock.advance(Duration::from_secs(60));
    assert_eq!(t.whoami(&token).await.0, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

async fn disabling_or_revoking_stops_live_tokens(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (key, key_id) = account_with_key(&t, "etl").await;
    let token = token_for(&t, &key, &key_id).await;
    assert_eq!(t.whoami(&token).await.0, StatusCode::OK);

    t.post(
        "/v1/accounts/etl/disable",
        &t.admin,
        json!({"reason": "incident"}),
    )
    .await;
    assert_eq!(t.whoami(&token).await.0, StatusCode::UNAUTHORIZED);
    let last = t.events("category=auth").await.pop().unwrap();
    let reason = last["decision"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("token ") && reason.ends_with("refused: account is disabled"),
        "{reason}"
    );
    assert_eq!(last["actor"]["account"], "etl");
    // A disabled account's key gets no new token either.
    let r = token_request(
        &t,
        &[("grant_type", "client_credentials")],
        Some((&key_id, &key)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_client");

    t.post("/v1/accounts/etl/enable", &t.admin, json!({})).await;
    assert_eq!(t.whoami(&token).await.0, StatusCode::OK);

    let (s, _) = t
        .post(&format!("/v1/keys/{key_id}/revoke"), &t.admin, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.whoami(&token).await.0, StatusCode::UNAUTHORIZED);
    let last = t.events("category=auth").await.pop().unwrap();
    assert!(last["decision"]["reason"]
        .as_str()
        .unwrap()
        .ends_with("refused: key is revoked"));
    t.stop().await;
}

async fn token_request_errors(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (key, key_id) = account_with_key(&t, "etl").await;
    let (other_key, other_id) = account_with_key(&t, "payroll").await;
    let token = token_for(&t, &key, &key_id).await;
    let wrong_secret = flip_last(&key);
    let grant = ("grant_type", "client_credentials");

    let invalid_client = |r: &Reply| {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(r.body["error"], "invalid_client");
        assert_eq!(r.body["error_description"], "client authentication failed");
        assert!(r.headers[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
    };
    // Wrong secret, in the body and as Basic.
    invalid_client(
        &token_request(
            &t,
            &[
                grant,
                ("client_id", &key_id),
                ("client_secret", &wrong_secret),
            ],
            None,
        )
        .await,
    );
    invalid_client(&token_request(&t, &[grant], Some((&key_id, &wrong_secret))).await);
    // client_id naming another (valid) key.
    invalid_client(
        &token_request(
            &t,
            &[grant, ("client_id", &other_id), ("client_secret", &key)],
            None,
        )
        .await,
    );
    // No client authentication; an admin token or an access token as the secret.
    invalid_client(&token_request(&t, &[grant], None).await);
    invalid_client(&token_request(&t, &[grant], Some(("admin", &t.admin))).await);
    invalid_client(&token_request(&t, &[grant], Some((&key_id, &token))).await);

    let bad_request = |r: &Reply, error: &str| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.body["error"], error, "{}", r.body);
        assert!(r.body["error_description"].is_string());
    };
    bad_request(
        &token_request(&t, &[], Some((&key_id, &key))).await,
        "invalid_request",
    );
    bad_request(
        &token_request(&t, &[("grant_type", "password")], Some((&key_id, &key))).await,
        "unsupported_grant_type",
    );
    bad_request(
        &token_request(
            &t,
            &[
                grant,
                grant,
                ("client_id", &key_id),
                ("client_secret", &key),
            ],
            None,
        )
        .await,
        "invalid_request",
    );
    bad_request(
        &token_request(
            &t,
            &[grant, ("client_secret", &other_key)],
            Some((&key_id, &key)),
        )
        .await,
        "invalid_request",
    );
    bad_request(
        &token_request(&t, &[grant, ("client_secret", &key)], None).await,
        "invalid_request",
    );
    // Not a form.
    let resp = t
        .http
        .post(format!("{}/oauth/token", t.base))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": key_id, "client_secret": key}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    // Every attempt is a `token.issue` event; failures say why, none holds a secret.
    let issued = issue_events(&t).await;
    assert_eq!(issued.len(), 1 + 6 + 5 + 1);
    assert_eq!(issued[0]["decision"]["allowed"], true);
    assert!(issued[1..]
        .iter()
        .all(|e| e["decision"]["allowed"] == false));
    let reasons: Vec<&str> = issued[1..]
        .iter()
        .map(|e| e["decision"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "invalid_client: wrong secret");
    assert_eq!(issued[1]["actor"]["key_id"], key_id.as_str());
    assert_eq!(
        reasons[2],
        "invalid_client: client_id does not match the client_secret's key"
    );
    assert_eq!(reasons[3], "invalid_client: no client authentication");
    assert_eq!(reasons[6], "invalid_request: grant_type is required");
    assert_eq!(reasons[7], "unsupported_grant_type");
    let everything = serde_json::to_string(&t.events("").await).unwrap();
    for secret in [
        &token,
        &key[key.len() - 64..],
        &other_key[other_key.len() - 64..],
    ] {
        assert!(!everything.contains(secret), "an event holds a secret");
    }
    assert!(!everything.contains(&t.admin[t.admin.len() - 64..]));
    t.stop().await;
}

async fn signing_key_survives_restart(backend: Backend) {
    let t = TestServer::start(backend).await;
    let (key, key_id) = account_with_key(&t, "etl").await;
    let token = token_for(&t, &key, &key_id).await;
    let path = t.dir.path().join("data/token-signing-key");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, jwks_before) = t.get("/.well-known/jwks.json", &t.admin).await;
    let config = warden_server::Config {
        data_dir: t.dir.path().join("data"),
        database_url: t.db.as_ref().map(warden_testkit::ScratchDb::url),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        postgres_addr: "127.0.0.1:0".parse().unwrap(),
        ..warden_server::Config::default()
    };
    let mut t = t;
    if let Some(r) = t.running.take() {
        r.stop().await;
    }
    let running = warden_server::server::start(&config, t.clock.clone())
        .await
        .unwrap();
    t.base = format!("http://{}", running.api_addr);
    t.running = Some(running);
    let (_, jwks_after) = t.get("/.well-known/jwks.json", &t.admin).await;
    assert_eq!(jwks_before, jwks_after);
    assert_eq!(t.whoami(&token).await.0, StatusCode::OK);
    t.stop().await;
}

on_both_backends!(
    issues_tokens,
    forged_tokens_are_refused,
    tokens_expire,
    token_ttl_is_configurable,
    disabling_or_revoking_stops_live_tokens,
    token_request_errors,
    signing_key_survives_restart,
);
