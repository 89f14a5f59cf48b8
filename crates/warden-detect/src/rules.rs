//! Custom rules: an operator's own matcher over events (category, verb, target, account,
//! decision, resource glob, SQL class) and a per-account count within a window. When the count
//! reaches the rule's threshold the engine raises `rule:NAME`.

use globset::{GlobBuilder, GlobMatcher};
use rustc_hash::FxHashMap;
use warden_core::event::Category;
use warden_core::{Event, Severity, SqlClass};

use crate::config::{human, micros, RuleConfig, RuleDecision};
use crate::window::Burst;

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    /// `rule:NAME`.
    pub detector: String,
    pub name: String,
    pub severity: Severity,
    description: String,
    threshold: usize,
    window_us: i64,
    category: Option<Category>,
    verb: Option<String>,
    target: Option<String>,
    account: Option<String>,
    allowed: Option<bool>,
    resource: Option<GlobMatcher>,
    class: Option<SqlClass>,
}

impl Rule {
    /// Compiles `config`, reporting problems under `field` through `bad`.
    pub fn compile(
        config: &RuleConfig,
        field: &str,
        bad: &mut impl FnMut(String, String),
    ) -> Option<Rule> {
        let m = &config.matches;
        if m == &Default::default() {
            bad(
                format!("{field}.match"),
                "set at least one of category, verb, target, account, decision, resource, class"
                    .into(),
            );
            return None;
        }
        if m.category == Some(Category::Alert) {
            bad(
                format!("{field}.match.category"),
                "alert events cannot be matched: rules would raise alerts about alerts".into(),
            );
            return None;
        }
        let resource = match &m.resource {
            None => None,
            Some(pattern) => match GlobBuilder::new(pattern).literal_separator(true).build() {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(e) => {
                    bad(format!("{field}.match.resource"), e.kind().to_string());
                    return None;
                }
            },
        };
        Some(Rule {
            detector: format!("rule:{}", config.name),
            name: config.name.clone(),
            severity: config.severity,
            description: config.description.clone(),
            threshold: config.threshold as usize,
            window_us: micros(config.window),
            category: m.category,
            verb: m.verb.clone(),
            target: m.target.clone(),
            account: m.account.clone(),
            allowed: m.decision.map(|d| d == RuleDecision::Allow),
            resource,
            class: m.class,
        })
    }

    /// One sentence about `who` matching this rule.
    pub fn summary(&self, who: &str) -> String {
        let mut s = format!("{who} matched rule {}", self.name);
        if self.threshold > 1 {
            s.push_str(&format!(
                " {} times within {}",
                self.threshold,
                human(self.window_us)
            ));
        }
        if !self.description.is_empty() {
            s.push_str(": ");
            s.push_str(&self.description);
        }
        s
    }

    /// Whether `event` (whose SQL class, if any, is `class`) counts for this rule.
    pub fn matches(&self, event: &Event, class: Option<&str>) -> bool {
        event.action.category != Category::Alert
            && self.category.is_none_or(|c| c == event.action.category)
            && self
                .verb
                .as_ref()
                .is_none_or(|v| v.eq_ignore_ascii_case(&event.action.verb))
            && self
                .target
                .as_ref()
                .is_none_or(|t| event.target.as_ref().is_some_and(|e| &e.name == t))
            && self
                .account
                .as_ref()
                .is_none_or(|a| event.actor.account.as_ref() == Some(a))
            && self.allowed.is_none_or(|a| a == event.decision.allowed)
            && self.resource.as_ref().is_none_or(|g| {
                event
                    .action
                    .resource
                    .as_deref()
                    .is_some_and(|r| g.is_match(r))
            })
            && self.class.is_none_or(|c| class == Some(c.as_str()))
    }
}

/// The counters of one rule: one per account, and one shared by events without an account.
#[derive(Debug, Default)]
pub(crate) struct RuleCounters {
    accounts: FxHashMap<Box<str>, Burst>,
    anonymous: Burst,
}

impl RuleCounters {
    /// Counts a matching event at `time`; true when it brings the count to the threshold.
    pub fn hit(&mut self, rule: &Rule, account: Option<&str>, time: i64) -> bool {
        let burst = match account {
            None => &mut self.anonymous,
            Some(a) => match self.accounts.get_mut(a) {
                Some(b) => b,
                None => self.accounts.entry(a.into()).or_default(),
            },
        };
        burst.hit(time, rule.threshold, rule.window_us)
    }

    /// Approximate heap bytes.
    pub fn approx_bytes(&self) -> usize {
        self.anonymous.approx_bytes()
            + self
                .accounts
                .iter()
                .map(|(k, b)| k.len() + size_of::<(Box<str>, Burst)>() + b.approx_bytes())
                .sum::<usize>()
    }
}
