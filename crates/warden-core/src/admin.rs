//! The humans who administer Warden. Each admin holds one bearer token (`wda_…`) for the
//! control-plane API; like API keys, only its digest is stored. Every change an admin makes is
//! recorded as an `admin` event naming them.

use serde::{Deserialize, Serialize};

use crate::{SecretDigest, Timestamp};

/// The admin created on first start, whose token is written to the data directory.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A human admin as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    /// Unique name (a lowercase DNS label).
    pub name: String,
    /// Public id of the admin's token.
    pub token_id: String,
    /// Digest of the token.
    pub digest: SecretDigest,
    /// The admin who created this one (`warden` for the bootstrap admin).
    pub created_by: String,
    /// When it was created.
    pub created_at: Timestamp,
}
