//! Names as PostgreSQL resolves them: unquoted identifiers fold to lowercase, quoted ones keep
//! their case, and every identifier is cut to 63 bytes. Grants are checked against these forms,
//! so they must be the tables PostgreSQL will actually open.

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// PostgreSQL's `NAMEDATALEN - 1`: longer identifiers are silently truncated by the server, so a
/// name that only differs after this many bytes is the same table.
const MAX_IDENT_BYTES: usize = 63;

/// An identifier as PostgreSQL stores it.
pub(crate) fn ident(id: &Ident) -> String {
    // PostgreSQL folds only ASCII letters in UTF-8 databases; `to_lowercase` would fold more.
    let mut s = if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_ascii_lowercase()
    };
    truncate(&mut s);
    s
}

/// Cuts `s` to at most 63 bytes without splitting a character, as the server does.
fn truncate(s: &mut String) {
    if s.len() > MAX_IDENT_BYTES {
        let mut end = MAX_IDENT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The `(schema, name)` a possibly qualified object name refers to (`db.schema.name` keeps the
/// last two parts: PostgreSQL refuses other databases). `None` when a part is not a plain
/// identifier, which callers treat as unknown and therefore admin.
pub(crate) fn qualified(name: &ObjectName) -> Option<(Option<String>, String)> {
    let mut parts = name.0.iter().rev().map(|p| match p {
        ObjectNamePart::Identifier(id) => Some(id),
        ObjectNamePart::Function(_) => None,
    });
    let last = parts.next()??;
    let schema = match parts.next() {
        Some(part) => Some(ident(part?)),
        None => None,
    };
    Some((schema, ident(last)))
}

/// The unqualified name, if `name` has a single plain part (a candidate CTE reference).
pub(crate) fn single(name: &ObjectName) -> Option<&Ident> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => Some(id),
        _ => None,
    }
}

/// The last part of a name, as written (for matching function names case-insensitively).
pub(crate) fn last_part(name: &ObjectName) -> Option<&str> {
    match name.0.last()? {
        ObjectNamePart::Identifier(id) => Some(id.value.as_str()),
        ObjectNamePart::Function(_) => None,
    }
}

/// Parses the text of a regclass-like string literal (`'public.seq'`, `'"MySeq"'`) into
/// `(schema, name)`, following the same folding rules as identifiers in SQL.
pub(crate) fn from_literal(s: &str) -> Option<(Option<String>, String)> {
    let mut parts: Vec<String> = Vec::with_capacity(2);
    let mut chars = s.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    return None;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return None;
        }
        truncate(&mut part);
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(_) => return None,
        }
    }
    let name = parts.pop()?;
    Some((parts.pop(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_fold_like_postgres() {
        assert_eq!(ident(&Ident::new("Orders")), "orders");
        assert_eq!(ident(&Ident::with_quote('"', "Orders")), "Orders");
        // Only ASCII folds.
        assert_eq!(ident(&Ident::new("ÄBC")), "Äbc");
        let long = "a".repeat(70);
        assert_eq!(ident(&Ident::new(long)).len(), 63);
        let wide = "é".repeat(40);
        let cut = ident(&Ident::with_quote('"', wide));
        assert!(cut.len() <= 63 && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn literals_name_sequences() {
        assert_eq!(from_literal("seq"), Some((None, "seq".into())));
        assert_eq!(
            from_literal("Public.Seq"),
            Some((Some("public".into()), "seq".into()))
        );
        assert_eq!(
            from_literal("\"My\"\"Seq\""),
            Some((None, "My\"Seq".into()))
        );
        assert_eq!(from_literal("a.b.c"), Some((Some("b".into()), "c".into())));
        for bad in ["", "a.", ".a", "a b", "\"open", "a;b"] {
            assert_eq!(from_literal(bad), None, "{bad}");
        }
    }
}
