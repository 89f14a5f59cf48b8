//! Functions whose effects a statement's shape does not show: a `SELECT` that calls them is not
//! a read.
//!
//! - Admin: functions that reach outside the database (server files, other servers), signal
//!   other sessions, change server state, change the role or `search_path` behind the gateway's
//!   back (`set_config`), or run SQL given as text whose tables cannot be seen (`query_to_xml`,
//!   `ts_stat`, `dblink*`). See [`ADMIN`] and [`ADMIN_PREFIXES`].
//! - Write: `nextval` and `setval` (on the sequence named by a string literal, or on no table in
//!   particular when the argument is computed), `pg_notify`, and large-object writes.
//!
//! Names match case-insensitively on their last part, whatever the schema: `pg_catalog.` is
//! optional in PostgreSQL, and extensions such as dblink live in whichever schema they were
//! installed in. Other functions (`current_setting`, `now`, user-defined ones) are taken at
//! face value: a user-defined function that writes cannot be seen from its call.

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, ObjectName, Value};

use crate::name;

/// Exact names of admin functions.
const ADMIN: &[&str] = &[
    "set_config",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_logdir_ls",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_logical_emit_message",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    "ts_stat",
];

/// Prefixes of admin function families: server files (`pg_read_file`, `pg_ls_dir`,
/// `pg_file_write`…), dblink, replication origins, and the XML functions that run a query or
/// dump a table, schema or database given by name.
const ADMIN_PREFIXES: &[&str] = &[
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "dblink",
    "pg_replication_origin_",
    "query_to_xml",
    "table_to_xml",
    "cursor_to_xml",
    "schema_to_xml",
    "database_to_xml",
];

/// Functions that change sequences.
const SEQUENCE_WRITES: &[&str] = &["nextval", "setval"];

/// Functions that write without naming a table.
const WRITES: &[&str] = &[
    "pg_notify",
    "lo_create",
    "lo_creat",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "lowrite",
    "lo_truncate",
    "lo_truncate64",
];

/// What calling a function does beyond computing a value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing Warden distinguishes.
    None,
    /// Makes the statement admin.
    Admin,
    /// Writes the sequence `(schema, name)`, or something unnamed.
    Write(Option<(Option<String>, String)>),
}

/// The effect of calling `name` with `first`, its first argument if any.
pub(crate) fn effect(name: &ObjectName, first: Option<&FunctionArg>) -> Effect {
    let Some(last) = name::last_part(name) else {
        // A computed function name (not PostgreSQL) could be anything.
        return Effect::Admin;
    };
    let is = |list: &[&str]| list.iter().any(|n| n.eq_ignore_ascii_case(last));
    if is(ADMIN)
        || ADMIN_PREFIXES
            .iter()
            .any(|p| starts_with_ignore_case(last, p))
    {
        Effect::Admin
    } else if is(SEQUENCE_WRITES) {
        Effect::Write(first.and_then(literal).and_then(name::from_literal))
    } else if is(WRITES) {
        Effect::Write(None)
    } else {
        Effect::None
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The text of a string-literal argument, also through a cast (`'seq'::regclass`).
fn literal(arg: &FunctionArg) -> Option<&str> {
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) = arg else {
        return None;
    };
    let mut expr = expr;
    loop {
        match expr {
            Expr::Cast { expr: inner, .. } | Expr::Nested(inner) => expr = inner.as_ref(),
            Expr::Value(v) => {
                return match &v.value {
                    Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s),
                    Value::DollarQuotedString(d) => Some(&d.value),
                    _ => None,
                }
            }
            _ => return None,
        }
    }
}
