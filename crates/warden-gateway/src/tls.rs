//! TLS to upstreams, shared by every front door: the bundled Mozilla roots plus a target's own CA
//! bundle, verified by default, with the `ring` provider.

use std::sync::Arc;

/// A client configuration trusting the Mozilla roots and the certificates in `ca_bundle`.
pub fn client_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_bundle {
        add_ca_bundle(&mut roots, pem).map_err(|e| format!("CA bundle: {e}"))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Adds the certificates of a PEM bundle to `roots`; fails on anything that is not a usable
/// certificate, and on a bundle with none.
fn add_ca_bundle(roots: &mut rustls::RootCertStore, pem: &str) -> Result<(), String> {
    let mut reader = pem.as_bytes();
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| e.to_string())?;
        roots.add(cert).map_err(|e| e.to_string())?;
        added += 1;
    }
    if added == 0 {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned());
    }
    Ok(())
}

/// Checks that `pem` is a CA bundle the gateways can use, so a target is refused when it is
/// registered rather than failing on every request.
pub fn validate_ca_bundle(pem: &str) -> Result<(), String> {
    add_ca_bundle(&mut rustls::RootCertStore::empty(), pem)
}
