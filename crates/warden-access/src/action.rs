//! Observed actions as needs a grant must meet, and the narrowest set of rules that meets the
//! needs seen through one wildcard grant.
//!
//! An action is read with the kind of the grant it went through: on HTTP targets an exact
//! `METHOD /path` whose `*` stands for id-like values (`GET /v1/orders/*`); on databases
//! `class:schema.table`, a class alone for statements that touch no table (`read`), or `tx`,
//! which needs no grant. Anything else (a `**`, a `*` method, a table pattern) is not an exact
//! action, and a grant that allowed one is left as it is.
//!
//! Whether a rule covers an action is decided by the rule's own matching in `warden-core`: an
//! HTTP action's `*` is tried as a value no rule can spell (control characters, which rules
//! refuse), so only a wildcard in the rule matches it.

use std::collections::BTreeSet;

use warden_core::{HttpRule, Rule, SqlClass, SqlRule, TargetKind};

use crate::usage::ActionUse;

/// What stands in for an id-like path segment when testing a rule against an action.
const ANY_VALUE: &str = "\u{1}\u{1}\u{1}";

/// The kind of target a rule is for.
fn kind_of(rule: &Rule) -> TargetKind {
    match rule {
        Rule::Http(_) => TargetKind::Http,
        Rule::Sql(_) => TargetKind::Postgres,
    }
}

/// One observed kind of action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// An HTTP request: its method, its path with `*` for id-like segments, and that text as a
    /// rule.
    Http {
        method: String,
        path: String,
        rule: HttpRule,
    },
    /// A SQL statement of `class`, on one `(schema, table)` or on none.
    Sql {
        class: SqlClass,
        table: Option<(String, String)>,
    },
    /// Transaction control: needs no grant.
    Free,
}

impl Need {
    /// Reads `action` as seen on a target of `kind`; `None` when it is not an exact action.
    pub fn parse(kind: TargetKind, action: &str) -> Option<Self> {
        match kind {
            TargetKind::Http => {
                let (method, path) = action.trim().split_once(char::is_whitespace)?;
                let path = path.trim();
                if method == "*" || path.contains("**") {
                    return None;
                }
                let rule = HttpRule::parse(action).ok()?;
                Some(Self::Http {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    rule,
                })
            }
            TargetKind::Postgres => {
                let action = action.trim();
                if action == SqlClass::Tx.as_str() {
                    return Some(Self::Free);
                }
                if !action.contains(':') {
                    let class = SqlClass::parse(action).ok()?;
                    return Some(Self::Sql { class, table: None });
                }
                let rule = SqlRule::parse(action).ok()?;
                let (schema, table) = rule
                    .pattern()
                    .filter(|p| !p.contains('*'))?
                    .split_once('.')?;
                Some(Self::Sql {
                    class: rule.class()?,
                    table: Some((schema.to_owned(), table.to_owned())),
                })
            }
        }
    }

    /// Whether `rule` allows every action this need stands for.
    pub fn covered_by(&self, rule: &Rule) -> bool {
        match (self, rule) {
            (Self::Free, _) => true,
            (Self::Http { method, path, .. }, Rule::Http(r)) => {
                r.matches(method, &path.replace('*', ANY_VALUE))
            }
            (Self::Sql { class, table }, Rule::Sql(r)) => r.covers(
                *class,
                table.as_ref().map(|(s, t)| (s.as_str(), t.as_str())),
            ),
            _ => false,
        }
    }
}

/// The rules that would replace a wildcard `rule` through which exactly `actions` were seen:
/// the actions' own rule texts, de-duplicated and sorted. `None` when the rule should stay as it
/// is: it is not a wildcard, an action is not exact or not covered by it, nothing needs a
/// grant, or the narrowest set is the rule itself.
///
/// A statement that touches no table (`read`) is covered by any rule of its class, so it needs
/// a rule of its own only when no table of its class was seen; it then gets the grant's class
/// limited to the grant's own pattern (`read:analytics.*` from `*:analytics.*`), or the bare
/// class when the grant has no pattern.
pub(crate) fn narrowed(rule: &Rule, actions: &[ActionUse]) -> Option<Vec<String>> {
    if !rule.is_wildcard() {
        return None;
    }
    let kind = kind_of(rule);
    let needs = actions
        .iter()
        .map(|a| Need::parse(kind, &a.action).filter(|n| n.covered_by(rule)))
        .collect::<Option<Vec<_>>>()?;
    let mut into = BTreeSet::new();
    for need in &needs {
        match need {
            Need::Http { rule, .. } => {
                into.insert(rule.to_string());
            }
            Need::Sql {
                class,
                table: Some((schema, table)),
            } => {
                into.insert(format!("{class}:{schema}.{table}"));
            }
            Need::Sql { class, table: None } => {
                let has_table_rule = needs
                    .iter()
                    .any(|n| matches!(n, Need::Sql { class: c, table: Some(_) } if c == class));
                if !has_table_rule {
                    let pattern = match rule {
                        Rule::Sql(r) => r.pattern(),
                        Rule::Http(_) => None,
                    };
                    into.insert(match pattern {
                        Some(p) => format!("{class}:{p}"),
                        None => class.to_string(),
                    });
                }
            }
            Need::Free => {}
        }
    }
    let own = rule.to_string();
    let into: Vec<String> = into.into_iter().collect();
    let valid = into.iter().all(|r| Rule::parse(kind, r).is_ok());
    (valid && !into.is_empty() && !into.contains(&own)).then_some(into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Timestamp;

    fn rule(s: &str) -> Rule {
        Rule::parse_stored(s).unwrap()
    }

    fn uses(actions: &[&str]) -> Vec<ActionUse> {
        actions
            .iter()
            .map(|a| ActionUse {
                action: (*a).into(),
                count: 1,
                last_at: Timestamp::from_micros(0),
            })
            .collect()
    }

    fn narrow(r: &str, actions: &[&str]) -> Option<Vec<String>> {
        narrowed(&rule(r), &uses(actions))
    }

    #[test]
    fn http_actions_stand_for_any_id() {
        let need = Need::parse(TargetKind::Http, "GET /v1/orders/*").unwrap();
        assert!(need.covered_by(&rule("GET /v1/orders/*")));
        assert!(need.covered_by(&rule("* /v1/**")));
        assert!(!need.covered_by(&rule("GET /v1/orders/42")));
        assert!(!need.covered_by(&rule("GET /v1/orders/4*")));
        assert!(!need.covered_by(&rule("POST /v1/orders/*")));
        assert!(!need.covered_by(&rule("read")));
        for inexact in ["* /v1/orders", "GET /v1/**", "GET", "read"] {
            assert_eq!(Need::parse(TargetKind::Http, inexact), None, "{inexact}");
        }
    }

    #[test]
    fn sql_actions_are_tables_classes_or_free() {
        let p = |s| Need::parse(TargetKind::Postgres, s);
        assert_eq!(p("tx"), Some(Need::Free));
        assert!(p("tx").unwrap().covered_by(&rule("GET /")));
        assert!(p("read:Analytics.Daily")
            .unwrap()
            .covered_by(&rule("read:analytics.*")));
        assert!(!p("read:public.daily")
            .unwrap()
            .covered_by(&rule("read:analytics.*")));
        assert!(p("read").unwrap().covered_by(&rule("read:analytics.*")));
        for inexact in ["read:analytics.*", "select", "tx:a.b", "GET /x"] {
            assert_eq!(p(inexact), None, "{inexact}");
        }
    }

    #[test]
    fn wildcards_narrow_to_what_was_seen() {
        assert_eq!(
            narrow("read:analytics.*", &["read:analytics.daily", "read", "tx"]),
            Some(vec!["read:analytics.daily".into()])
        );
        assert_eq!(
            narrow(
                "GET /v1/**",
                &["GET /v1/users/me", "GET /v1/orders/*", "GET /v1/orders/*"]
            ),
            Some(vec!["GET /v1/orders/*".into(), "GET /v1/users/me".into()])
        );
        assert_eq!(
            narrow("*:public.*", &["read", "write:public.orders"]),
            Some(vec!["read:public.*".into(), "write:public.orders".into()])
        );
        assert_eq!(narrow("*", &["ddl"]), Some(vec!["ddl".into()]));
    }

    #[test]
    fn some_grants_stay_as_they_are() {
        // Not a wildcard.
        assert_eq!(
            narrow("read:analytics.daily", &["read:analytics.daily"]),
            None
        );
        // Already the narrowest rule for what was seen.
        assert_eq!(narrow("GET /v1/orders/*", &["GET /v1/orders/*"]), None);
        assert_eq!(narrow("read", &["read"]), None);
        assert_eq!(narrow("read:analytics.*", &["read"]), None);
        // Nothing that needs a grant, or an action that is not exact or not covered.
        assert_eq!(narrow("*", &["tx"]), None);
        assert_eq!(narrow("*", &[]), None);
        assert_eq!(narrow("* /**", &["GET /v1/**"]), None);
        assert_eq!(narrow("read:analytics.*", &["read:public.users"]), None);
        assert_eq!(narrow("GET /v1/**", &["read:analytics.daily"]), None);
    }
}
