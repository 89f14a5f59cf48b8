//! Short-lived access tokens: EdDSA-signed JWTs (RFC 7519, RFC 8037) that a service account
//! obtains with its API key through the OAuth 2.0 client-credentials grant and may present
//! instead of the key.
//!
//! The signing key is one Ed25519 key, kept in the data directory as the 64 hex digits of its
//! 32-byte seed. Its public half is published as a JWKS; its `kid` is the first 16 hex digits of
//! the SHA-256 of the public key, so a verifier can tell which key signed a token.
//!
//! Signing and signature verification are done by `jsonwebtoken` (ring underneath). Everything
//! else is checked here, before and after it, so that each rejection has a typed reason and so
//! that time comes from Warden's injectable clock rather than the system's:
//! - the token is at most [`MAX_TOKEN_LEN`] bytes of base64url in three parts;
//! - the header's `alg` is exactly `EdDSA` (never `none`, never an HMAC with the public key), its
//!   `kid` is this service's, and it has no `crit` extensions;
//! - the signature is valid;
//! - `iss` is `warden`, `exp` is after now (no leeway), `iat` is at most
//!   [`MAX_CLOCK_SKEW_SECS`] in the future.
//!
//! A token that passes says only that Warden issued it and it has not expired: whether its key
//! and account may still be used is decided by the `Authenticator`, on every request.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_core::Timestamp;

/// The `iss` of every token Warden issues.
pub const ISSUER: &str = "warden";
/// Longest token accepted; anything longer is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 4096;
/// How far in the future a token's `iat` may be (clock skew between instances).
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// RFC 8410 PKCS#8 v1 prefix for an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a presented token is refused. The message is for the audit event, never for the client,
/// and never echoes more of the token than a short, sanitised algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not three base64url parts of JSON, or claims of the wrong shape.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than `EdDSA`.
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The header names a critical extension this verifier does not implement.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// The header's `kid` is missing or not a key of this service.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not `warden`.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `exp` has passed.
    #[error("token expired")]
    Expired {
        /// The token's account (`sub`); the signature was valid.
        account: String,
        /// The key that obtained it.
        key_id: String,
    },
    /// `iat` is further in the future than clock skew explains.
    #[error("token issued in the future")]
    IssuedInFuture,
}

impl TokenError {
    /// The account of a token whose signature verified, when the error still knows it.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Expired { account, .. } => Some(account),
            _ => None,
        }
    }

    /// The key id of a token whose signature verified, when the error still knows it.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Expired { key_id, .. } => Some(key_id),
            _ => None,
        }
    }
}

/// The signing key file's content is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected the 64 hex digits of a 32-byte Ed25519 seed")]
pub struct BadSigningKey;

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// The service account.
    pub sub: String,
    /// The API key that obtained the token.
    pub key_id: String,
    /// Unique id of the token (UUIDv4), recorded in the `token.issue` event.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// A freshly signed token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT. A bearer secret: never log or record it.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Its unique id.
    pub jti: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("jti", &self.jti)
            .finish()
    }
}

/// The header fields checked before the signature.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Issues and verifies access tokens under one Ed25519 key.
pub struct TokenService {
    seed: [u8; 32],
    public: [u8; 32],
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service with a new random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The service for the Ed25519 key with this seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let kid = hex::encode(&Sha256::digest(public)[..8]);
        let mut pkcs8 = Vec::with_capacity(48);
        pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
        pkcs8.extend_from_slice(&seed);
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Time and issuer are checked against Warden's clock after the signature, below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        Self {
            seed,
            public,
            kid,
            encoding: EncodingKey::from_ed_der(&pkcs8),
            // For EdDSA, jsonwebtoken's "DER" decoding key is the raw 32-byte public key (the
            // same bytes `DecodingKey::from_ed_components` decodes from a JWK's `x`).
            decoding: DecodingKey::from_ed_der(&public),
            validation,
        }
    }

    /// Parses the key file's text: 64 hex digits of the seed.
    pub fn parse(text: &str) -> Result<Self, BadSigningKey> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| BadSigningKey)?;
        Ok(Self::from_seed(seed))
    }

    /// The key file's text: 64 hex digits of the seed. Secret.
    pub fn to_key_string(&self) -> String {
        hex::encode(self.seed)
    }

    /// The key's id, as in tokens' headers and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs a token for `account`, obtained with the key `key_id`, valid for `ttl` from `now`
    /// (whole seconds; at least one).
    pub fn issue(
        &self,
        account: &str,
        key_id: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let ttl_secs = ttl.as_secs().max(1);
        let iat = now.as_micros().div_euclid(1_000_000);
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: account.to_owned(),
            key_id: key_id.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &self.encoding)?;
        Ok(IssuedToken {
            access_token,
            expires_in: ttl_secs,
            jti: claims.jti,
        })
    }

    /// Verifies a presented token at `now` and returns its claims.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let well_formed = token.split('.').count() == 3
            && token.split('.').all(|p| !p.is_empty())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !well_formed {
            return Err(TokenError::Malformed);
        }
        let header_part = token.split('.').next().unwrap_or_default();
        let header: RawHeader = URL_SAFE_NO_PAD
            .decode(header_part)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::UnsupportedAlgorithm(sanitise(&header.alg)));
        }
        if header.crit.is_some() {
            return Err(TokenError::UnsupportedCritical);
        }
        if header.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err(TokenError::Malformed);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    TokenError::UnsupportedAlgorithm("EdDSA".to_owned())
                }
                _ => TokenError::Malformed,
            })?
            .claims;
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        let now_micros = i128::from(now.as_micros());
        if i128::from(claims.exp) * 1_000_000 <= now_micros {
            return Err(TokenError::Expired {
                account: claims.sub,
                key_id: claims.key_id,
            });
        }
        if i128::from(claims.iat) * 1_000_000
            > now_micros + i128::from(MAX_CLOCK_SKEW_SECS) * 1_000_000
        {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }

    /// The public key as a JWK Set (RFC 7517, RFC 8037), for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(self.public),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
    }
}

/// At most 20 printable ASCII characters of an attacker-chosen string, for an audit reason.
fn sanitise(s: &str) -> String {
    s.chars().filter(char::is_ascii_graphic).take(20).collect()
}

/// Whether a bearer string is shaped like a compact JWT (three dot-separated parts) rather than
/// a Warden API key or admin token. Cheap; [`TokenService::verify`] does the real checks.
pub fn looks_like_jwt(bearer: &str) -> bool {
    bearer.bytes().filter(|&b| b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_micros(T0 + secs * 1_000_000)
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// A token with any header and claims, signed by `key` over exactly those bytes.
    fn forge(key: &SigningKey, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        use ed25519_dalek::Signer;
        let message = format!("{}.{}", b64(header), b64(claims));
        let sig = key.sign(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn claims_json(iat: i64, exp: i64) -> serde_json::Value {
        serde_json::json!({"iss": "warden", "sub": "ci", "key_id": "abcdefghijkl",
                           "jti": "j", "iat": T0 / 1_000_000 + iat, "exp": T0 / 1_000_000 + exp})
    }

    #[test]
    fn issue_then_verify() {
        let s = TokenService::generate();
        let t = s
            .issue("ci", "abcdefghijkl", at(0), Duration::from_secs(900))
            .unwrap();
        assert_eq!(t.expires_in, 900);
        let c = s.verify(&t.access_token, at(899)).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.key_id.as_str(), c.iss.as_str()),
            ("ci", "abcdefghijkl", "warden")
        );
        assert_eq!(c.jti, t.jti);
        assert_eq!(c.exp - c.iat, 900);
        assert!(matches!(
            s.verify(&t.access_token, at(900)),
            Err(TokenError::Expired { .. })
        ));
        assert!(!format!("{t:?}").contains(&t.access_token));
    }

    #[test]
    fn header_names_kid_and_alg() {
        let s = TokenService::generate();
        let t = s.issue("ci", "k", at(0), Duration::from_secs(60)).unwrap();
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.access_token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], s.kid());
        assert_eq!(s.kid().len(), 16);
    }

    #[test]
    fn key_text_round_trips() {
        let s = TokenService::generate();
        let text = s.to_key_string();
        assert_eq!(text.len(), 64);
        let again = TokenService::parse(&text).unwrap();
        assert_eq!(again.kid(), s.kid());
        assert_eq!(again.jwks(), s.jwks());
        assert!(TokenService::parse("zz").is_err());
        assert!(TokenService::parse(&text[..62]).is_err());
    }

    #[test]
    fn jwks_x_is_the_public_key() {
        let seed = [7u8; 32];
        let s = TokenService::from_seed(seed);
        let jwks = s.jwks();
        let x = URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().unwrap())
            .unwrap();
        assert_eq!(x, SigningKey::from_bytes(&seed).verifying_key().to_bytes());
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    }

    #[test]
    fn refuses_hostile_tokens() {
        let seed = [9u8; 32];
        let s = TokenService::from_seed(seed);
        let key = SigningKey::from_bytes(&seed);
        let good_header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": s.kid()});
        let ok = forge(&key, &good_header, &claims_json(0, 60));
        assert!(s.verify(&ok, at(1)).is_ok());

        // alg none, with and without a signature part.
        let none = serde_json::json!({"alg": "none", "typ": "JWT", "kid": s.kid()});
        let unsigned = format!("{}.{}.", b64(&none), b64(&claims_json(0, 60)));
        assert_eq!(s.verify(&unsigned, at(1)), Err(TokenError::Malformed));
        let signed_none = forge(&key, &none, &claims_json(0, 60));
        assert_eq!(
            s.verify(&signed_none, at(1)),
            Err(TokenError::UnsupportedAlgorithm("none".into()))
        );
        // HS256 keyed with the public key (algorithm confusion).
        let hs = serde_json::json!({"alg": "HS256", "kid": s.kid()});
        assert!(matches!(
            s.verify(&forge(&key, &hs, &claims_json(0, 60)), at(1)),
            Err(TokenError::UnsupportedAlgorithm(_))
        ));
        // Another key, same kid: bad signature. Another kid: unknown key.
        let other = SigningKey::from_bytes(&[1u8; 32]);
        assert_eq!(
            s.verify(&forge(&other, &good_header, &claims_json(0, 60)), at(1)),
            Err(TokenError::BadSignature)
        );
        let other_kid = serde_json::json!({"alg": "EdDSA", "kid": "0000000000000000"});
        assert_eq!(
            s.verify(&forge(&key, &other_kid, &claims_json(0, 60)), at(1)),
            Err(TokenError::UnknownKey)
        );
        let no_kid = serde_json::json!({"alg": "EdDSA"});
        assert_eq!(
            s.verify(&forge(&key, &no_kid, &claims_json(0, 60)), at(1)),
            Err(TokenError::UnknownKey)
        );
        // Tampered payload.
        let parts: Vec<&str> = ok.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(
                &serde_json::json!({"iss": "warden", "sub": "admin", "key_id": "abcdefghijkl",
                                     "jti": "j", "iat": T0 / 1_000_000, "exp": T0 / 1_000_000 + 60})
            ),
            parts[2]
        );
        assert_eq!(s.verify(&tampered, at(1)), Err(TokenError::BadSignature));
        // Crit, wrong typ, wrong issuer, future iat, expiry.
        let crit = serde_json::json!({"alg": "EdDSA", "kid": s.kid(), "crit": ["exp"]});
        assert_eq!(
            s.verify(&forge(&key, &crit, &claims_json(0, 60)), at(1)),
            Err(TokenError::UnsupportedCritical)
        );
        let typ = serde_json::json!({"alg": "EdDSA", "kid": s.kid(), "typ": "at+jwt"});
        assert_eq!(
            s.verify(&forge(&key, &typ, &claims_json(0, 60)), at(1)),
            Err(TokenError::Malformed)
        );
        let mut wrong_iss = claims_json(0, 60);
        wrong_iss["iss"] = "elsewhere".into();
        assert_eq!(
            s.verify(&forge(&key, &good_header, &wrong_iss), at(1)),
            Err(TokenError::WrongIssuer)
        );
        let future = forge(&key, &good_header, &claims_json(61, 600));
        assert_eq!(s.verify(&future, at(0)), Err(TokenError::IssuedInFuture));
        assert!(s.verify(&future, at(1)).is_ok());
        assert!(matches!(
            s.verify(&ok, at(60)),
            Err(TokenError::Expired { .. })
        ));
        // Claims of the wrong shape, even when signed.
        let mut bad_exp = claims_json(0, 60);
        bad_exp["exp"] = "soon".into();
        assert_eq!(
            s.verify(&forge(&key, &good_header, &bad_exp), at(1)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let s = TokenService::generate();
        let long = "a.".repeat(3000);
        for junk in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            "!!!.b.c",
            "eyJ.eyJ.sig",
            "e30.e30.e30",
            "bnVsbA.bnVsbA.bnVsbA",
            "W10.W10.",
            long.as_str(),
            "é.é.é",
        ] {
            assert!(s.verify(junk, at(0)).is_err(), "{junk}");
        }
        assert_eq!(
            s.verify(&"a".repeat(MAX_TOKEN_LEN + 1), at(0)),
            Err(TokenError::TooLong)
        );
    }

    #[test]
    fn shape_check() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("wdn_abcdefghijkl_00"));
        assert!(!looks_like_jwt("a.b"));
    }
}
