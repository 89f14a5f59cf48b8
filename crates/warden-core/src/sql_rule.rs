//! SQL rules: what a grant allows on a PostgreSQL target. A statement is sorted into one
//! [`SqlClass`] (by `warden-sql`), and each table it touches is checked against [`SqlRule`]s.
//!
//! A rule is `CLASS` or `CLASS:SCHEMA.TABLE`:
//!
//! - `CLASS` is `read`, `write`, `ddl`, `admin` or `*` (any class). `tx` is never granted: it
//!   needs no grant.
//! - `SCHEMA.TABLE` is a pattern (`public.orders`, `analytics.*`, `*.audit_*`) in which `*`
//!   matches within one name part and never crosses the `.`. Identifiers are compared
//!   lowercase, so a rule written `Public.Orders` is stored as `public.orders` and also covers
//!   the quoted table `"Orders"`.
//!
//! A rule without a pattern covers every table of its class and the statements of its class that
//! touch no table (`SELECT 1`, `NOTIFY`). A rule with a pattern covers only the tables it
//! matches, *and* the table-less statements of its class: a grant of `read:public.orders` lets
//! a program run `SELECT now()`, which reveals nothing about any table.
//!
//! `admin` is never limited to tables, because most admin statements (`ALTER ROLE`, `GRANT`,
//! unparsable text) name none and a pattern would only look narrow: `admin:PATTERN` is
//! rejected, and `*:PATTERN` covers `read`, `write` and `ddl` on the tables it matches (and their
//! table-less statements), never `admin`. Only `admin` or `*` on its own grants admin.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// How a statement uses the database, from least to most privileged `tx`, `read`, `write`,
/// `ddl`, `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlClass {
    /// Reads data without changing it: `SELECT` (also `SELECT … FOR UPDATE`, which only takes
    /// row locks), `VALUES`, `COPY … TO STDOUT`, `EXPLAIN` without `ANALYZE` (and `EXPLAIN
    /// ANALYZE` of a read), `DECLARE … CURSOR`, `FETCH`, `LISTEN`, `UNLISTEN`.
    Read,
    /// Changes data: `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE`, `COPY … FROM STDIN`,
    /// `NOTIFY`, `nextval`/`setval` of sequences, `CALL` of procedures, `LOCK`, `REFRESH
    /// MATERIALIZED VIEW`.
    Write,
    /// Changes the schema: `CREATE`, `ALTER`, `DROP` and `COMMENT ON` of tables, views, indexes,
    /// sequences, schemas and types (not roles), and maintenance such as `VACUUM` and `ANALYZE`.
    Ddl,
    /// Everything that can change who may do what or reach outside the database: `GRANT`,
    /// `REVOKE`, `CREATE`/`ALTER`/`DROP ROLE` or `USER`, `SET ROLE`, `SET SESSION
    /// AUTHORIZATION`, `ALTER SYSTEM`, `COPY` to or from a file or `PROGRAM`, `DO` blocks,
    /// functions that read files or signal backends, and anything that cannot be parsed.
    Admin,
    /// Transaction control and harmless session settings: `BEGIN`, `START TRANSACTION`,
    /// `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `SET`/`RESET`/`SHOW` of ordinary parameters,
    /// `DISCARD`, `DEALLOCATE`. It needs no grant. (`PREPARE TRANSACTION` is admin: it leaves a
    /// transaction, and its locks, behind the session.)
    Tx,
}

impl SqlClass {
    /// Every class, in the order of the API.
    pub const ALL: [SqlClass; 5] = [
        SqlClass::Read,
        SqlClass::Write,
        SqlClass::Ddl,
        SqlClass::Admin,
        SqlClass::Tx,
    ];

    /// As rules and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Ddl => "ddl",
            Self::Admin => "admin",
            Self::Tx => "tx",
        }
    }

    /// Parses `read`, `write`, `ddl`, `admin` or `tx`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "allow",
                    format!("`{s}` is not a SQL class (read, write, ddl, admin or tx)"),
                )
            })
    }
}

impl fmt::Display for SqlClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a grant allows on a database: a class, optionally limited to tables matching a
/// `schema.table` pattern. Two rules are equal when their text is.
#[derive(Debug, Clone)]
pub struct SqlRule {
    /// `None` is `*`: any class.
    class: Option<SqlClass>,
    pattern: Option<TablePattern>,
}

/// A `schema.table` pattern, one matcher per part so that `*` cannot cross the `.`.
#[derive(Debug, Clone)]
struct TablePattern {
    /// Lowercase text, as written back by `Display`.
    text: String,
    schema: GlobMatcher,
    name: GlobMatcher,
}

impl PartialEq for SqlRule {
    fn eq(&self, other: &Self) -> bool {
        self.class == other.class && self.pattern() == other.pattern()
    }
}

impl Eq for SqlRule {}

/// Shown in every parse error, so that the fix is one copy away.
const EXAMPLES: &str = "such as `read`, `write:public.orders`, `read:analytics.*` or `*`";

impl SqlRule {
    /// Parses `CLASS` or `CLASS:SCHEMA.TABLE`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let bad = |m: &str| ValidationError::new("allow", format!("`{s}`: {m}"));
        let text = s.trim();
        if text.is_empty() {
            return Err(bad(&format!("expected `CLASS[:SCHEMA.TABLE]` {EXAMPLES}")));
        }
        let (class, pattern) = match text.split_once(':') {
            Some((class, pattern)) => (class, Some(pattern)),
            None => (text, None),
        };
        let class = match class {
            "*" => None,
            "tx" => {
                return Err(bad(&format!(
                    "`tx` (transaction control) needs no grant; grant a class {EXAMPLES}"
                )))
            }
            c => Some(SqlClass::parse(c).map_err(|_| {
                bad(&format!(
                    "the class must be read, write, ddl, admin or `*`, {EXAMPLES}"
                ))
            })?),
        };
        let pattern =
            match pattern {
                None => None,
                Some(_) if class == Some(SqlClass::Admin) => return Err(bad(
                    "admin cannot be limited to tables (most admin statements name none); grant \
                     it alone, such as `admin`",
                )),
                Some(p) => Some(TablePattern::parse(p).map_err(|m| bad(&m))?),
            };
        Ok(Self { class, pattern })
    }

    /// Whether the rule covers a use of `class` on `table` (`(schema, name)`), or on no table in
    /// particular when `table` is `None`. See the module documentation for the cases.
    pub fn covers(&self, class: SqlClass, table: Option<(&str, &str)>) -> bool {
        let class_ok = match self.class {
            Some(own) => own == class,
            // `*` limited to tables never reaches admin: see the module documentation.
            None => self.pattern.is_none() || class != SqlClass::Admin,
        };
        class_ok
            && match (&self.pattern, table) {
                (None, _) | (Some(_), None) => true,
                (Some(p), Some((schema, name))) => {
                    p.schema.is_match(schema) && p.name.is_match(name)
                }
            }
    }

    /// The class it grants; `None` for `*`.
    pub fn class(&self) -> Option<SqlClass> {
        self.class
    }

    /// The `schema.table` pattern, lowercase, if the rule has one.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(|p| p.text.as_str())
    }

    /// Whether the rule is broad (for least-privilege findings): any class, any table, or a
    /// pattern with `*`.
    pub fn is_wildcard(&self) -> bool {
        match (&self.class, &self.pattern) {
            (None, _) | (_, None) => true,
            (Some(_), Some(p)) => p.text.contains('*'),
        }
    }
}

impl TablePattern {
    /// Parses `schema.table`; the error is a sentence without the input (the caller adds it).
    fn parse(p: &str) -> Result<Self, String> {
        let example = "such as `public.orders`, `analytics.*` or `*.audit_*`";
        let (schema, name) = p
            .split_once('.')
            .ok_or_else(|| format!("the table pattern must be `schema.table`, {example}"))?;
        for part in [schema, name] {
            if part.is_empty() || part.len() > 63 {
                return Err(format!(
                    "each part of `schema.table` must be 1 to 63 characters, {example}"
                ));
            }
            if let Some(c) = part.chars().find(|&c| !is_pattern_char(c)) {
                return Err(format!(
                    "`{c}` is not allowed in a table pattern (letters, digits, `_`, `$`, `-` \
                     and `*`; `schema.table` has exactly one `.`), {example}"
                ));
            }
        }
        let text = p.to_lowercase();
        Ok(Self {
            schema: part_matcher(schema)?,
            name: part_matcher(name)?,
            text,
        })
    }
}

/// The characters of PostgreSQL identifiers people name tables with, plus `*`. Everything else
/// (including globset's `?`, `[`, `{` and `\`) is refused so that `*` is the only wildcard.
fn is_pattern_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$' | '-' | '*')
}

fn part_matcher(part: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(part)
        .case_insensitive(true)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid table pattern: {e}"))
}

impl fmt::Display for SqlRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class.map_or("*", SqlClass::as_str))?;
        if let Some(p) = &self.pattern {
            write!(f, ":{}", p.text)?;
        }
        Ok(())
    }
}

impl Serialize for SqlRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SqlRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(s: &str) -> SqlRule {
        SqlRule::parse(s).unwrap()
    }

    #[test]
    fn documented_examples_parse() {
        for text in [
            "read",
            "write:public.orders",
            "read:analytics.*",
            "ddl",
            "admin",
            "*",
            "*:public.*",
            "read:*.audit_*",
        ] {
            let r = rule(text);
            assert_eq!(r.to_string(), text);
            assert_eq!(rule(&r.to_string()), r);
        }
        assert_eq!(rule("write:public.orders").class(), Some(SqlClass::Write));
        assert_eq!(rule("*").class(), None);
        assert_eq!(rule("write:public.orders").pattern(), Some("public.orders"));
        assert_eq!(rule("read").pattern(), None);
    }

    #[test]
    fn classes_round_trip() {
        for c in SqlClass::ALL {
            assert_eq!(SqlClass::parse(c.as_str()).unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(SqlClass::parse("READ").unwrap_err().field, "allow");
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (bad, says) in [
            ("", "CLASS"),
            ("select", "class must be"),
            ("tx", "needs no grant"),
            ("read:", "schema.table"),
            ("read:orders", "schema.table"),
            ("read:public.", "1 to 63"),
            ("read:.orders", "1 to 63"),
            ("read:a.b.c", "`.` is not allowed"),
            ("read:public.ord?rs", "`?` is not allowed"),
            ("read:public.[ab]", "`[` is not allowed"),
            ("read: public.orders", "` ` is not allowed"),
            ("read:public.orders extra", "` ` is not allowed"),
            ("admin:public.*", "admin cannot be limited"),
            ("write:public:orders", "schema.table"),
            ("read:public.or:ders", "`:` is not allowed"),
        ] {
            let e = SqlRule::parse(bad).unwrap_err();
            assert_eq!(e.field, "allow", "{bad}");
            assert!(e.message.contains(says), "{bad}: {}", e.message);
            assert!(e.message.contains("such as"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn patterns_match_within_a_part() {
        let r = rule("read:analytics.*");
        assert!(r.covers(SqlClass::Read, Some(("analytics", "daily"))));
        assert!(!r.covers(SqlClass::Read, Some(("public", "daily"))));
        assert!(!r.covers(SqlClass::Write, Some(("analytics", "daily"))));
        let r = rule("read:*.audit_*");
        assert!(r.covers(SqlClass::Read, Some(("billing", "audit_log"))));
        assert!(!r.covers(SqlClass::Read, Some(("billing", "log_audit"))));
        // `*` never crosses the `.`: a schema pattern cannot swallow a table name.
        assert!(!rule("read:*.t").covers(SqlClass::Read, Some(("s", "x.t"))));
        assert!(!rule("read:s.*").covers(SqlClass::Read, Some(("s.x", "t"))));
    }

    #[test]
    fn identifiers_compare_lowercase() {
        let r = rule("write:Public.Orders");
        assert_eq!(r.to_string(), "write:public.orders");
        assert!(r.covers(SqlClass::Write, Some(("public", "Orders"))));
        assert!(r.covers(SqlClass::Write, Some(("PUBLIC", "orders"))));
        assert_eq!(r, rule("write:public.orders"));
    }

    #[test]
    fn table_less_statements_are_covered_by_their_class() {
        assert!(rule("read").covers(SqlClass::Read, None));
        assert!(rule("read:public.orders").covers(SqlClass::Read, None));
        assert!(!rule("read:public.orders").covers(SqlClass::Write, None));
        assert!(rule("write").covers(SqlClass::Write, Some(("any", "table"))));
        assert!(rule("admin").covers(SqlClass::Admin, None));
        assert!(!rule("ddl").covers(SqlClass::Admin, None));
    }

    #[test]
    fn star_with_a_pattern_never_grants_admin() {
        assert!(rule("*").covers(SqlClass::Admin, None));
        assert!(rule("*").covers(SqlClass::Ddl, Some(("x", "y"))));
        let r = rule("*:public.*");
        assert!(r.covers(SqlClass::Write, Some(("public", "orders"))));
        assert!(r.covers(SqlClass::Ddl, None));
        assert!(!r.covers(SqlClass::Read, Some(("secret", "keys"))));
        assert!(!r.covers(SqlClass::Admin, None));
        assert!(!r.covers(SqlClass::Admin, Some(("public", "orders"))));
    }

    #[test]
    fn wildcards_are_flagged() {
        assert!(rule("*").is_wildcard());
        assert!(rule("*:public.orders").is_wildcard());
        assert!(rule("read").is_wildcard());
        assert!(rule("read:public.*").is_wildcard());
        assert!(!rule("read:public.orders").is_wildcard());
    }

    #[test]
    fn serde_uses_the_text() {
        let r = rule("read:analytics.*");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"read:analytics.*\"");
        assert_eq!(serde_json::from_str::<SqlRule>(&json).unwrap(), r);
        assert!(serde_json::from_str::<SqlRule>("\"tx\"").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(
            class in prop::sample::select(vec!["read", "write", "ddl", "*"]),
            pattern in proptest::option::of(("[a-zA-Z_*$-][a-zA-Z0-9_*$-]{0,20}", "[a-zA-Z_*$-][a-zA-Z0-9_*$-]{0,20}")),
        ) {
            let text = match &pattern {
                Some((s, t)) => format!("{class}:{s}.{t}"),
                None => class.to_owned(),
            };
            let r = SqlRule::parse(&text).unwrap();
            let shown = r.to_string();
            prop_assert_eq!(&shown, &text.to_lowercase());
            prop_assert_eq!(SqlRule::parse(&shown).unwrap(), r);
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            if let Ok(r) = SqlRule::parse(&s) {
                prop_assert_eq!(SqlRule::parse(&r.to_string()).unwrap(), r);
            }
        }
    }
}
