//! Redaction of secrets in statement text, so that what the ledger records never holds a
//! password.
//!
//! A string literal is replaced by `'<redacted>'` when it is:
//!
//! - a password: `CREATE`/`ALTER ROLE`/`USER … [ENCRYPTED] PASSWORD '…'`, and options of
//!   foreign servers and user mappings whose name looks secret;
//! - compared to, assigned to or inserted into a column whose name looks secret (contains
//!   `password`, `passwd`, `pwd`, `secret`, `token`, `api_key` or `apikey`): in `WHERE
//!   password = 'x'`, `UPDATE u SET api_token = 'x'` or `INSERT INTO u (name, password) VALUES
//!   ('a', 'b')`, only the secret's literals go (every literal in the expression on the other
//!   side, so `crypt('pw', …)` is covered too);
//! - a connection string or URI carrying a password (`'host=db password=x'`,
//!   `'postgres://u:x@db'`), wherever it appears (`dblink`).
//!
//! Parsed statements are redacted on the syntax tree and rendered again ([`statement`]).
//! [`redact`] works on any text: on tokens, it redacts every literal after a secret-looking
//! word up to the end of the statement, literals just before one (`'x' = password`),
//! credential-looking literals and `COPY` data; if the text cannot even be tokenized it
//! redacts every quoted string, to the end of the text for an unterminated one.

use std::ops::ControlFlow;

use sqlparser::ast::helpers::key_value_options::KeyValueOptionKind;
use sqlparser::ast::{
    AlterRoleOperation, Assignment, AssignmentTarget, CreateServerOption, Expr, FunctionArg,
    FunctionArgExpr, FunctionArguments, Ident, InTarget, MergeAction, MergeInsertKind,
    MergeUpdateKind, ObjectName, OnConflictAction, OnInsert, Password, RoleOption, SelectItem, Set,
    SetExpr, Statement, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Token, Tokenizer};

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Substrings of column and parameter names that hold secrets.
const SECRET_WORDS: &[&str] = &[
    "password", "passwd", "pwd", "secret", "token", "api_key", "apikey",
];

/// Whether an identifier names something secret.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    SECRET_WORDS.iter().any(|w| {
        b.windows(w.len())
            .any(|win| win.eq_ignore_ascii_case(w.as_bytes()))
    })
}

/// Whether a string is a connection string or URI with a password in it.
fn is_credential_text(s: &str) -> bool {
    let bytes = s.as_bytes();
    // `password = x` in a libpq connection string, with or without spaces around `=`.
    let keyword = bytes
        .windows(8)
        .enumerate()
        .filter(|(_, w)| w.eq_ignore_ascii_case(b"password"))
        .any(|(i, _)| {
            bytes[i + 8..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'=')
        });
    // `scheme://user:password@host`: a `:` and an `@` before the path.
    let uri = s.split("://").skip(1).any(|rest| {
        rest.split(['/', '?'])
            .next()
            .is_some_and(|authority| authority.contains(':') && authority.contains('@'))
    });
    keyword || uri
}

/// Whether a literal value is a connection string or URI with a password in it.
pub(crate) fn is_credential_value(v: &Value) -> bool {
    string_of(v).is_some_and(is_credential_text)
}

/// The text of a string literal (of any quoting); `None` for other literals.
fn string_of(v: &Value) -> Option<&str> {
    match v {
        Value::Number(..) | Value::Boolean(_) | Value::Null | Value::Placeholder(_) => None,
        Value::DollarQuotedString(d) => Some(&d.value),
        Value::QuoteDelimitedStringLiteral(q) | Value::NationalQuoteDelimitedStringLiteral(q) => {
            Some(&q.value)
        }
        Value::SingleQuotedString(s)
        | Value::TripleSingleQuotedString(s)
        | Value::TripleDoubleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::UnicodeStringLiteral(s)
        | Value::SingleQuotedByteStringLiteral(s)
        | Value::DoubleQuotedByteStringLiteral(s)
        | Value::TripleSingleQuotedByteStringLiteral(s)
        | Value::TripleDoubleQuotedByteStringLiteral(s)
        | Value::SingleQuotedRawStringLiteral(s)
        | Value::DoubleQuotedRawStringLiteral(s)
        | Value::TripleSingleQuotedRawStringLiteral(s)
        | Value::TripleDoubleQuotedRawStringLiteral(s)
        | Value::NationalStringLiteral(s)
        | Value::HexStringLiteral(s)
        | Value::DoubleQuotedString(s) => Some(s),
    }
}

fn redacted_value() -> Value {
    Value::SingleQuotedString(REDACTED.to_owned())
}

/// Redacts a parsed statement in place.
pub(crate) fn statement(s: &mut Statement) {
    let _ = s.visit(&mut Redact);
}

/// Replaces the secrets it finds in the tree.
struct Redact;

impl VisitorMut for Redact {
    type Break = ();

    fn pre_visit_statement(&mut self, s: &mut Statement) -> ControlFlow<()> {
        match s {
            Statement::CreateRole(r) => {
                if let Some(Password::Password(e)) = &mut r.password {
                    *e = Expr::Value(redacted_value().into());
                }
            }
            Statement::AlterRole {
                operation: AlterRoleOperation::WithOptions { options },
                ..
            } => {
                for o in options {
                    if let RoleOption::Password(Password::Password(e)) = o {
                        *e = Expr::Value(redacted_value().into());
                    }
                }
            }
            Statement::CreateUser(u) => {
                for o in u.options.options.iter_mut().chain(&mut u.tags.options) {
                    if is_secret_name(&o.option_name) {
                        o.option_value = KeyValueOptionKind::Single(redacted_value().into());
                    }
                }
            }
            Statement::AlterUser(u) => {
                if let Some(p) = &mut u.password {
                    if p.password.is_some() {
                        p.password = Some(REDACTED.to_owned());
                    }
                }
                for o in u.set_props.options.iter_mut() {
                    if is_secret_name(&o.option_name) {
                        o.option_value = KeyValueOptionKind::Single(redacted_value().into());
                    }
                }
            }
            Statement::CreateServer(c) => server_options(c.options.iter_mut().flatten()),
            Statement::CreateUserMapping(m) => server_options(m.options.iter_mut().flatten()),
            Statement::Update(u) => assignments(&mut u.assignments),
            Statement::Insert(i) => {
                assignments(&mut i.assignments);
                if let Some(OnInsert::OnConflict(c)) = &mut i.on {
                    if let OnConflictAction::DoUpdate(d) = &mut c.action {
                        assignments(&mut d.assignments);
                    }
                }
                if let Some(OnInsert::DuplicateKeyUpdate(a)) = &mut i.on {
                    assignments(a);
                }
                let secret = secret_positions(&i.columns);
                if secret.iter().any(|&s| s) {
                    if let Some(source) = &mut i.source {
                        positional(&mut source.body, &secret);
                    }
                }
            }
            Statement::Merge(m) => {
                for clause in &mut m.clauses {
                    match &mut clause.action {
                        MergeAction::Update(u) => {
                            if let MergeUpdateKind::Set(a) = &mut u.kind {
                                assignments(a);
                            }
                        }
                        MergeAction::Insert(ins) => {
                            let secret = secret_positions(&ins.columns);
                            if let MergeInsertKind::Values(v) = &mut ins.kind {
                                for row in &mut v.rows {
                                    blank_positions(row, &secret);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if variable
                .0
                .iter()
                .any(|p| p.as_ident().is_some_and(|id| is_secret_name(&id.value))) =>
            {
                values.iter_mut().for_each(blank)
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match e {
            Expr::BinaryOp { left, right, .. }
            | Expr::IsDistinctFrom(left, right)
            | Expr::IsNotDistinctFrom(left, right)
            | Expr::AnyOp { left, right, .. }
            | Expr::AllOp { left, right, .. } => {
                if is_secret_expr(left) {
                    blank(right);
                }
                if is_secret_expr(right) {
                    blank(left);
                }
            }
            Expr::Like { expr, pattern, .. }
            | Expr::ILike { expr, pattern, .. }
            | Expr::SimilarTo { expr, pattern, .. }
            | Expr::RLike { expr, pattern, .. }
                if is_secret_expr(expr) =>
            {
                blank(pattern)
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                ..
            } if is_secret_expr(expr) => list.iter_mut().for_each(blank),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
        if is_credential_value(&v.value) {
            v.value = redacted_value();
        }
        ControlFlow::Continue(())
    }
}

/// Whether an expression reads a secret-looking column (also through casts and functions:
/// `lower(password)`).
fn is_secret_expr(e: &Expr) -> bool {
    match e {
        Expr::Identifier(id) => is_secret_name(&id.value),
        Expr::CompoundIdentifier(ids) => ids.last().is_some_and(|id| is_secret_name(&id.value)),
        Expr::Nested(e) | Expr::Cast { expr: e, .. } => is_secret_expr(e),
        Expr::Function(f) => match &f.args {
            FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                | FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => is_secret_expr(e),
                _ => false,
            }),
            _ => false,
        },
        _ => false,
    }
}

/// Replaces every string literal inside `e`.
fn blank(e: &mut Expr) {
    let _ = e.visit(&mut Blank);
}

/// Replaces every string literal it visits.
struct Blank;

impl VisitorMut for Blank {
    type Break = ();

    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
        if string_of(&v.value).is_some() {
            v.value = redacted_value();
        }
        ControlFlow::Continue(())
    }
}

fn assignments(list: &mut [Assignment]) {
    for a in list {
        let secret = match &a.target {
            AssignmentTarget::ColumnName(n) => is_secret_object(n),
            AssignmentTarget::Tuple(ns) => ns.iter().any(is_secret_object),
        };
        if secret {
            blank(&mut a.value);
        }
    }
}

fn is_secret_object(n: &ObjectName) -> bool {
    n.0.last()
        .and_then(|p| p.as_ident())
        .is_some_and(|id: &Ident| is_secret_name(&id.value))
}

fn server_options<'a>(options: impl Iterator<Item = &'a mut CreateServerOption>) {
    for o in options {
        if is_secret_name(&o.key.value) {
            o.value.value = REDACTED.to_owned();
        }
    }
}

/// Which of an `INSERT`'s columns are secret.
fn secret_positions(columns: &[ObjectName]) -> Vec<bool> {
    columns.iter().map(is_secret_object).collect()
}

/// Redacts the secret columns' values in an `INSERT`'s rows or select list.
fn positional(body: &mut SetExpr, secret: &[bool]) {
    match body {
        SetExpr::Values(v) => {
            for row in &mut v.rows {
                blank_positions(row, secret);
            }
        }
        SetExpr::Select(s) => {
            for (item, &is_secret) in s.projection.iter_mut().zip(secret) {
                if is_secret {
                    match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                            blank(e)
                        }
                        _ => {}
                    }
                }
            }
        }
        SetExpr::Query(q) => positional(&mut q.body, secret),
        SetExpr::SetOperation { left, right, .. } => {
            positional(left, secret);
            positional(right, secret);
        }
        _ => {}
    }
}

fn blank_positions(row: &mut [Expr], secret: &[bool]) {
    for (e, &is_secret) in row.iter_mut().zip(secret) {
        if is_secret {
            blank(e);
        }
    }
}

/// How many significant tokens before a secret-looking word a literal may be and still be
/// taken as its value (`'x' = password`, `'x' IN (…) … password`).
const LOOK_AHEAD: usize = 3;

/// Redacts secrets in any text, parsed or not (see the module documentation). Never panics.
pub fn redact(sql: &str) -> String {
    let tokens = match Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() {
        Ok(t) => t,
        Err(_) => return redact_quoted(sql),
    };
    // Indexes of the tokens that are not whitespace or comments.
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect();
    let is_secret_word =
        |i: usize| matches!(&tokens[i].token, Token::Word(w) if is_secret_name(&w.value));
    let mut spans: Vec<(Location, Location)> = Vec::new();
    let mut after_secret = false;
    for (k, &i) in significant.iter().enumerate() {
        let t = &tokens[i];
        match &t.token {
            Token::SemiColon => after_secret = false,
            Token::Word(w) if is_secret_name(&w.value) => after_secret = true,
            Token::CopyData { .. } => spans.push((t.span.start, t.span.end)),
            tok => {
                if let Some(text) = token_string(tok) {
                    let before_secret = significant[k + 1..]
                        .iter()
                        .take(LOOK_AHEAD)
                        .take_while(|&&j| !matches!(tokens[j].token, Token::SemiColon))
                        .any(|&j| is_secret_word(j));
                    if after_secret || before_secret || is_credential_text(text) {
                        spans.push((t.span.start, t.span.end));
                    }
                }
            }
        }
    }
    if spans.is_empty() {
        return sql.to_owned();
    }
    let mut offsets = Offsets::new(sql);
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (start, end) in spans {
        let (Some(s), Some(e)) = (offsets.byte(start), offsets.byte(end)) else {
            // Positions that do not map back to the text: refuse to guess, redact all quotes.
            return redact_quoted(sql);
        };
        if s < at || e < s {
            return redact_quoted(sql);
        }
        out.push_str(&sql[at..s]);
        out.push('\'');
        out.push_str(REDACTED);
        out.push('\'');
        at = e;
    }
    out.push_str(&sql[at..]);
    out
}

/// The text of a string-literal token.
fn token_string(t: &Token) -> Option<&str> {
    match t {
        Token::SingleQuotedString(s)
        | Token::DoubleQuotedString(s)
        | Token::TripleSingleQuotedString(s)
        | Token::TripleDoubleQuotedString(s)
        | Token::SingleQuotedByteStringLiteral(s)
        | Token::DoubleQuotedByteStringLiteral(s)
        | Token::TripleSingleQuotedByteStringLiteral(s)
        | Token::TripleDoubleQuotedByteStringLiteral(s)
        | Token::SingleQuotedRawStringLiteral(s)
        | Token::DoubleQuotedRawStringLiteral(s)
        | Token::TripleSingleQuotedRawStringLiteral(s)
        | Token::TripleDoubleQuotedRawStringLiteral(s)
        | Token::NationalStringLiteral(s)
        | Token::EscapedStringLiteral(s)
        | Token::UnicodeStringLiteral(s)
        | Token::HexStringLiteral(s) => Some(s),
        Token::DollarQuotedString(d) => Some(&d.value),
        Token::QuoteDelimitedStringLiteral(q) | Token::NationalQuoteDelimitedStringLiteral(q) => {
            Some(&q.value)
        }
        _ => None,
    }
}

/// Maps the tokenizer's (line, column) positions, which count characters, back to bytes. Only
/// moves forward, so that mapping every token of a long one-line statement stays linear.
struct Offsets<'a> {
    sql: &'a str,
    /// Byte offset of the start of each line.
    lines: Vec<usize>,
    /// The last position mapped: line, column, byte.
    line: u64,
    column: u64,
    byte: usize,
}

impl<'a> Offsets<'a> {
    fn new(sql: &'a str) -> Self {
        let mut lines = vec![0];
        lines.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            sql,
            lines,
            line: 1,
            column: 1,
            byte: 0,
        }
    }

    /// The byte offset of `at`; `None` if it is not in the text or before the last one asked.
    fn byte(&mut self, at: Location) -> Option<usize> {
        if at.line < self.line || (at.line == self.line && at.column < self.column) {
            return None;
        }
        if at.line > self.line {
            let index = usize::try_from(at.line).ok()?.checked_sub(1)?;
            self.byte = *self.lines.get(index)?;
            self.line = at.line;
            self.column = 1;
        }
        let mut chars = self.sql.get(self.byte..)?.chars();
        while self.column < at.column {
            let c = chars.next()?;
            if c == '\n' {
                return None;
            }
            self.byte += c.len_utf8();
            self.column += 1;
        }
        Some(self.byte)
    }
}

/// The fallback when the text cannot be tokenized: every `'…'` and `$tag$…$tag$` string is
/// redacted, an unterminated one to the end of the text.
fn redact_quoted(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    loop {
        let Some(open) = rest.find(['\'', '$']) else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let end = if after.starts_with('\'') {
            quoted_end(after)
        } else if let Some(tag_len) = dollar_tag(after) {
            let tag = &after[..tag_len];
            after[tag_len..]
                .find(tag)
                .map_or(after.len(), |i| tag_len + i + tag_len)
        } else {
            // A `$` that opens no string (`$1`).
            out.push('$');
            rest = &after[1..];
            continue;
        };
        out.push('\'');
        out.push_str(REDACTED);
        out.push('\'');
        rest = &after[end..];
    }
}

/// The length of a `'…'` string at the start of `s` (quotes doubled inside), or all of `s`.
fn quoted_end(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    s.len()
}

/// The length of a dollar-quote tag (`$$`, `$tag$`) at the start of `s`.
fn dollar_tag(s: &str) -> Option<usize> {
    let body = &s[1..];
    let close = body.find('$')?;
    let tag = &body[..close];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit()));
    valid.then_some(close + 2)
}
