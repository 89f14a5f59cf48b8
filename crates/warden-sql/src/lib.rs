//! Classifies SQL statements for the PostgreSQL gateway: for each statement, the class of access
//! it needs ([`SqlClass`]), every table it touches and how, and its text with secrets redacted.
//! Pure: no I/O, no catalog. Grants are checked against the result by `warden-core`.
//!
//! - `command`: each kind of statement's verb, own class and changed objects.
//! - `walk`: the walk over the syntax tree that finds every table (CTEs, subqueries, nested
//!   data-modifying statements) and how it is used.
//! - `function`: functions whose effects a `SELECT` does not show.
//! - `setting`: `SET`/`RESET`, harmless or admin, and the values set.
//! - `name`: identifiers as PostgreSQL resolves them.
//! - `redact`: secrets out of statement text.
//! - `depth`: how much stack a statement's tree may need, so that no query can overflow it.
//!
//! Text is parsed with sqlparser's PostgreSQL dialect. What it cannot parse is one `UNPARSED`
//! admin statement: unparsed text is never taken for a read. The same holds for a `COPY … FROM
//! STDIN` followed by inline data, because sqlparser takes the rest of the text as that data
//! while PostgreSQL would run it as statements.
//!
//! A statement's [`Statement::class`] can be higher than all of its accesses' classes (a
//! `SELECT` calling `pg_read_file`, `NOTIFY`, `CREATE SCHEMA`…): that part of its need names no
//! table, and must be checked as `(class, no table)`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod command;
mod depth;
mod function;
mod name;
mod redact;
mod setting;
mod walk;

use sqlparser::ast::{self, Visit};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{TokenWithSpan, Tokenizer};
pub use warden_core::SqlClass;

pub use redact::redact;

/// One statement of a query string, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// An upper-case, command-tag-like verb: `SELECT`, `INSERT`, `CREATE TABLE`, `ALTER ROLE`,
    /// `BEGIN`, `SET`, `COPY`… and `UNPARSED` for text that could not be parsed.
    pub verb: String,
    /// The most privileged class the statement needs (admin > ddl > write > read > tx): the
    /// highest of its accesses and of what the statement itself does.
    pub class: SqlClass,
    /// Every table touched, each with how, deduplicated, in the order met: `INSERT INTO a
    /// SELECT * FROM b` is `(write, a), (read, b)`.
    pub accesses: Vec<Access>,
    /// The statement's text with secrets redacted. Parsed statements are rendered from the
    /// syntax tree, so spacing and case of keywords are normalized.
    pub text: String,
    /// For `SET name = v1, v2` / `SET name TO …`: the lowercase name and the values (unquoted;
    /// unquoted identifiers folded to lowercase); no values for `SET name TO DEFAULT` and
    /// `RESET name`; `("all", [])` for `RESET ALL` and `DISCARD ALL`. `SET LOCAL` is reported
    /// the same way although it ends with the transaction. Values of secret-looking parameters
    /// are redacted.
    pub setting: Option<(String, Vec<String>)>,
}

/// One use of one table (or other schema object: sequence, view, index, type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    /// How it is used.
    pub class: SqlClass,
    /// The schema, when the name is qualified (`pg_temp` for temporary objects); `None` means it
    /// is resolved through `search_path`. `DROP SCHEMA s` and its kin use table `*` in `s`, and
    /// `… CASCADE` table `*` in schema `*` (it reaches objects it does not name): only rules
    /// whose pattern matches a literal `*` there cover them.
    pub schema: Option<String>,
    /// The name: lowercase unless it was quoted, at most 63 bytes as PostgreSQL truncates it.
    pub name: String,
}

/// Classifies every statement of a simple-query string; empty (or comment-only) text gives none.
pub fn classify(sql: &str) -> Vec<Statement> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return vec![unparsed(sql)];
    };
    let Some(stack) = depth::stack_needed(&tokens) else {
        return vec![unparsed(sql)];
    };
    // The tree is built, walked and dropped inside, with enough stack for its depth.
    stacker::maybe_grow(stack, stack, || classify_tokens(sql, tokens))
}

/// [`classify`] once the text is tokenized.
fn classify_tokens(sql: &str, tokens: Vec<TokenWithSpan>) -> Vec<Statement> {
    let parsed = match Parser::new(&PostgreSqlDialect {})
        .with_tokens_with_locations(tokens)
        .parse_statements()
    {
        Ok(parsed) => parsed,
        Err(_) => return vec![unparsed(sql)],
    };
    // sqlparser reads what follows `COPY … FROM STDIN;` as the copy's data; PostgreSQL reads it
    // as more statements. Only the whole text, as admin, is safe.
    if parsed.iter().any(|s| {
        matches!(
            s,
            ast::Statement::Copy {
                payload: Some(_),
                ..
            }
        )
    }) {
        return vec![unparsed(sql)];
    }
    parsed.into_iter().map(describe).collect()
}

/// The one statement for text that could not be parsed.
fn unparsed(sql: &str) -> Statement {
    Statement {
        verb: "UNPARSED".to_owned(),
        class: SqlClass::Admin,
        accesses: Vec::new(),
        text: redact(sql),
        setting: None,
    }
}

/// Classifies one parsed statement.
fn describe(mut stmt: ast::Statement) -> Statement {
    let mut walk = walk::Walk::default();
    let _ = stmt.visit(&mut walk);
    let mut class = walk.class.unwrap_or(SqlClass::Admin);
    let mut accesses = walk.accesses;
    if plans_only(&stmt) {
        // EXPLAIN without ANALYZE runs nothing: what it would change, it only reads about.
        let lower = |c: SqlClass| match c {
            SqlClass::Write | SqlClass::Ddl => SqlClass::Read,
            c => c,
        };
        class = lower(class);
        let mut read: Vec<Access> = Vec::with_capacity(accesses.len());
        for mut a in accesses {
            a.class = lower(a.class);
            if !read.contains(&a) {
                read.push(a);
            }
        }
        accesses = read;
    }
    for a in &accesses {
        if rank(a.class) > rank(class) {
            class = a.class;
        }
    }
    if walk.secrets {
        redact::statement(&mut stmt);
    }
    Statement {
        verb: walk
            .verb
            .map_or_else(|| "UNKNOWN".to_owned(), |v| v.into_owned()),
        class,
        accesses,
        text: stmt.to_string(),
        setting: walk.setting,
    }
}

/// Whether `stmt` is an `EXPLAIN` that does not run its statement.
fn plans_only(stmt: &ast::Statement) -> bool {
    let ast::Statement::Explain {
        analyze, options, ..
    } = stmt
    else {
        return false;
    };
    let analyze_option = options.iter().flatten().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze")
            && o.arg.as_ref().is_none_or(|arg| {
                // `ANALYZE false|off|0` plans only; any other value, or none, runs it.
                !matches!(
                    arg.to_string().to_ascii_lowercase().as_str(),
                    "false" | "off" | "0" | "'false'" | "'off'"
                )
            })
    });
    !(*analyze || analyze_option)
}

/// Orders classes from least to most privileged.
fn rank(c: SqlClass) -> u8 {
    match c {
        SqlClass::Tx => 0,
        SqlClass::Read => 1,
        SqlClass::Write => 2,
        SqlClass::Ddl => 3,
        SqlClass::Admin => 4,
    }
}

#[cfg(test)]
mod tests;
