//! `SET` and `RESET`: which session parameters are harmless (`tx`) and which change who the
//! session is or how the server reads the text that follows (`admin`), and the values set, so
//! that the proxy can track `search_path`.
//!
//! Admin parameters:
//! - `role` and `session_authorization` (also as `SET role = …`, not only `SET ROLE`);
//! - `standard_conforming_strings` set to anything but `on`, `backslash_quote`, and
//!   `client_encoding` (or `SET NAMES`) other than UTF-8: each makes PostgreSQL split later
//!   strings, and so statements, differently from this classifier, which would let a write hide
//!   inside what looks like a string;
//! - superuser-only knobs that defeat auditing or integrity: `session_replication_role` (skips
//!   triggers and foreign keys), `allow_system_table_mods`, `allow_in_place_tablespaces`,
//!   `zero_damaged_pages`, `ignore_*`, `lo_compat_privileges`, `*_preload_libraries`,
//!   `dynamic_library_path`, `jit_provider`, `log_*`, `debug_*`, `trace_*`.
//!
//! Everything else (`search_path`, `statement_timeout`, `application_name`, `TimeZone`, custom
//! `app.*` parameters…) is `tx`.

use sqlparser::ast::{Expr, ObjectName, ObjectNamePart, Reset, Set, Value};
use warden_core::SqlClass;

use crate::{name, redact};

/// A parameter and the values it was set to; no values means back to its default.
pub(crate) type Setting = (String, Vec<String>);

/// Parameters that are admin whatever their value.
const ADMIN: &[&str] = &[
    "role",
    "session_authorization",
    "backslash_quote",
    "session_replication_role",
    "allow_system_table_mods",
    "allow_in_place_tablespaces",
    "zero_damaged_pages",
    "lo_compat_privileges",
    "dynamic_library_path",
    "jit_provider",
];

/// Prefixes and suffixes of admin parameter families.
const ADMIN_PREFIXES: &[&str] = &["log_", "debug_", "trace_", "ignore_"];
const ADMIN_SUFFIXES: &[&str] = &["_preload_libraries"];

/// The class of a `SET` and what it sets.
pub(crate) fn set(s: &Set) -> (SqlClass, Option<Setting>) {
    match s {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let Some(param) = parameter(variable) else {
                return (SqlClass::Admin, None);
            };
            let mut values: Vec<String> = match values.as_slice() {
                // `DEFAULT` (unquoted) is the keyword; `"default"` would be a value.
                [Expr::Identifier(id)]
                    if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") =>
                {
                    Vec::new()
                }
                values => values.iter().map(value).collect(),
            };
            let class = class_of(&param, Some(&values));
            if redact::is_secret_name(&param) {
                values
                    .iter_mut()
                    .for_each(|v| *v = redact::REDACTED.to_owned());
            }
            (class, Some((param, values)))
        }
        Set::SetTimeZone { value: v, .. } => {
            (SqlClass::Tx, Some(("timezone".into(), vec![value(v)])))
        }
        Set::SetNames { charset_name, .. } => {
            let values = vec![name::ident(charset_name)];
            (
                class_of("client_encoding", Some(&values)),
                Some(("client_encoding".into(), values)),
            )
        }
        Set::SetNamesDefault {} => (SqlClass::Tx, Some(("client_encoding".into(), Vec::new()))),
        Set::SetTransaction { .. } => (SqlClass::Tx, None),
        // SET ROLE, SET SESSION AUTHORIZATION, and other dialects' forms PostgreSQL rejects.
        _ => (SqlClass::Admin, None),
    }
}

/// The class of a `RESET` and what it resets.
pub(crate) fn reset(r: &Reset) -> (SqlClass, Option<Setting>) {
    match r {
        Reset::ALL => (SqlClass::Tx, Some(("all".into(), Vec::new()))),
        Reset::SessionAuthorization => (SqlClass::Admin, None),
        Reset::ConfigurationParameter(variable) => match parameter(variable) {
            // Back to the default is safe for the value-dependent parameters.
            Some(param) => (class_of(&param, None), Some((param, Vec::new()))),
            None => (SqlClass::Admin, None),
        },
    }
}

/// A parameter's name as PostgreSQL matches it: case-insensitive, `.`-joined for custom ones.
fn parameter(variable: &ObjectName) -> Option<String> {
    let mut out = String::new();
    for (i, part) in variable.0.iter().enumerate() {
        let ObjectNamePart::Identifier(id) = part else {
            return None;
        };
        if i > 0 {
            out.push('.');
        }
        // Parameter names are case-insensitive even when quoted.
        out.push_str(&id.value.to_ascii_lowercase());
    }
    Some(out)
}

/// The class of setting `param`; `values` is `None` for a reset to the default.
fn class_of(param: &str, values: Option<&[String]>) -> SqlClass {
    let admin = ADMIN.contains(&param)
        || ADMIN_PREFIXES.iter().any(|p| param.starts_with(p))
        || ADMIN_SUFFIXES.iter().any(|p| param.ends_with(p))
        || match (param, values) {
            ("standard_conforming_strings", Some(v)) => {
                !matches!(v, [one] if matches!(one.as_str(), "on" | "true" | "1" | "yes"))
            }
            ("client_encoding", Some(v)) => match v {
                [] => false,
                [e] => !["utf8", "utf-8", "unicode"]
                    .iter()
                    .any(|u| e.eq_ignore_ascii_case(u)),
                _ => true,
            },
            _ => false,
        };
    if admin {
        SqlClass::Admin
    } else {
        SqlClass::Tx
    }
}

/// A value as PostgreSQL reads it: identifiers folded, strings unquoted.
fn value(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => name::ident(id),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => s.clone(),
            Value::DollarQuotedString(d) => d.value.clone(),
            Value::Number(n, _) => n.to_string(),
            Value::Boolean(b) => b.to_string(),
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}
