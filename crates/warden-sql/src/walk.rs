//! The walk over one statement's syntax tree: every table it touches and how, its own class,
//! and whether it holds anything that redaction must look at.
//!
//! sqlparser's [`Visitor`] reaches every node, so no subquery, CTE or nested statement is
//! missed however it is written; this module adds what the tree alone does not say:
//!
//! - which names are *changed* rather than read: each statement registers its targets (the
//!   table of an `INSERT`, the object of a `CREATE`…) before its children are visited, by
//!   address, so the same name elsewhere in the statement is still a read;
//! - which names are CTEs rather than tables, with PostgreSQL's scoping: a CTE sees the ones
//!   before it (all of them under `RECURSIVE`), the body sees all, and a CTE never hides the
//!   target of a data-modifying statement;
//! - which functions have effects (see [`crate::function`]).

use std::borrow::Cow;
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::ptr;

use sqlparser::ast::{
    Expr, FunctionArguments, Ident, ObjectName, Query, Select, SetExpr, Statement, TableFactor,
    TableWithJoins, ValueWithSpan, Visitor,
};
use warden_core::SqlClass;

use crate::function::{self, Effect};
use crate::setting::Setting;
use crate::{command, name, rank, redact, Access};

/// What the walk found.
#[derive(Default)]
pub(crate) struct Walk {
    /// The outermost statement's verb.
    pub verb: Option<Cow<'static, str>>,
    /// The most privileged class the statements themselves need, whatever their tables.
    pub class: Option<SqlClass>,
    /// Every table touched, deduplicated, in the order met.
    pub accesses: Vec<Access>,
    /// What a `SET`/`RESET`/`DISCARD ALL` sets.
    pub setting: Option<Setting>,
    /// Whether something secret-looking was seen, so the text must go through redaction.
    pub secrets: bool,
    /// Names already recorded as changed, by address, so that visiting them as relations does
    /// not add a read.
    targets: Vec<*const ObjectName>,
    /// Table factors changed rather than read that are not plain names (not PostgreSQL, but
    /// the parser allows them): every name inside them is changed.
    target_factors: Vec<(*const TableFactor, SqlClass)>,
    /// The classes of the target factors being walked, innermost last.
    in_target: Vec<SqlClass>,
    /// Names that are function calls, not tables (`FROM generate_series(…)`).
    functions: Vec<*const ObjectName>,
    /// The CTEs in scope, innermost last.
    scopes: Vec<CteScope>,
}

/// The CTEs of one `WITH`.
struct CteScope {
    owner: *const Query,
    names: Vec<String>,
    bodies: Vec<*const Query>,
    recursive: bool,
    /// How many of `names` the part being walked sees.
    visible: usize,
}

impl Walk {
    /// Raises the statement's own class to at least `class`.
    pub(crate) fn need(&mut self, class: SqlClass) {
        if self.class.is_none_or(|c| rank(c) < rank(class)) {
            self.class = Some(class);
        }
    }

    /// Records a use of a table.
    pub(crate) fn access(&mut self, class: SqlClass, table: (Option<String>, String)) {
        let (schema, name) = table;
        if !self
            .accesses
            .iter()
            .any(|a| a.class == class && a.name == name && a.schema == schema)
        {
            self.accesses.push(Access {
                class,
                schema,
                name,
            });
        }
    }

    /// Records a use of a named object the visitor does not visit as a relation (`DROP`'s
    /// names, sequences…); a name that cannot be understood makes the statement admin.
    pub(crate) fn object(&mut self, name: &ObjectName, class: SqlClass) {
        self.object_in(name, class, None);
    }

    /// [`Self::object`] with a schema assumed when the name is unqualified.
    pub(crate) fn object_in(
        &mut self,
        name: &ObjectName,
        class: SqlClass,
        default_schema: Option<&'static str>,
    ) {
        match name::qualified(name) {
            Some((schema, n)) => {
                let schema = schema.or_else(|| default_schema.map(str::to_owned));
                self.access(class, (schema, n));
            }
            None => self.need(SqlClass::Admin),
        }
    }

    /// Records a schema-wide use (`DROP SCHEMA s`) as a use of table `*` in it: only a rule
    /// whose table pattern matches every name (`ddl:s.*`) covers it.
    pub(crate) fn schema_wide(&mut self, schema: &ObjectName, class: SqlClass) {
        match name::qualified(schema) {
            Some((_, s)) => self.access(class, (Some(s), "*".to_owned())),
            None => self.need(SqlClass::Admin),
        }
    }

    /// Records a name as changed in the way `class` says. It is recorded now, whether or not
    /// the visitor treats it as a relation, so no target can be missed; if it does, that visit
    /// adds nothing.
    pub(crate) fn target(&mut self, name: &ObjectName, class: SqlClass) {
        self.object(name, class);
        self.targets.push(name);
    }

    /// [`Self::target`] for a temporary object, which lives in `pg_temp`.
    pub(crate) fn target_temporary(&mut self, name: &ObjectName, class: SqlClass) {
        self.object_in(name, class, Some("pg_temp"));
        self.targets.push(name);
    }

    /// Marks a table factor (and its joins) as changed.
    pub(crate) fn target_tables(&mut self, t: &TableWithJoins, class: SqlClass) {
        self.target_factor(&t.relation, class);
        for j in &t.joins {
            self.target_factor(&j.relation, class);
        }
    }

    /// Marks one table factor as changed.
    pub(crate) fn target_factor(&mut self, t: &TableFactor, class: SqlClass) {
        match t {
            TableFactor::Table {
                name, args: None, ..
            } => self.target(name, class),
            other => self.target_factors.push((other, class)),
        }
    }

    /// Applies a function's effect.
    fn call(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Admin => self.need(SqlClass::Admin),
            Effect::Write(Some(seq)) => self.access(SqlClass::Write, seq),
            Effect::Write(None) => self.need(SqlClass::Write),
        }
    }

    /// Records the tables of `TABLE name` in a query body (`… UNION TABLE t`, `WITH x AS
    /// (TABLE t)`), which sqlparser keeps as plain identifiers that the visitor does not visit
    /// as relations.
    fn table_commands(&mut self, body: &SetExpr) {
        match body {
            SetExpr::Table(t) => match (&t.schema_name, &t.table_name) {
                (Some(schema), Some(table)) => self.access(
                    SqlClass::Read,
                    (Some(name::ident(schema)), name::ident(table)),
                ),
                (None, Some(table)) => {
                    let table = name::ident(table);
                    if !self.is_cte(&table) {
                        self.access(SqlClass::Read, (None, table));
                    }
                }
                (_, None) => self.need(SqlClass::Admin),
            },
            SetExpr::SetOperation { left, right, .. } => {
                self.table_commands(left);
                self.table_commands(right);
            }
            _ => {}
        }
    }

    /// Records that a statement may change objects it does not name (`… CASCADE`) as a use of
    /// table `*` in schema `*`: only a rule covering every table (`ddl`, `ddl:*.*`) covers it.
    pub(crate) fn anywhere(&mut self, class: SqlClass) {
        self.access(class, (Some("*".to_owned()), "*".to_owned()));
    }

    /// Whether an unqualified name refers to a CTE in scope.
    fn is_cte(&self, n: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s.names[..s.visible].iter().any(|c| c == n))
    }
}

impl Visitor for Walk {
    type Break = Infallible;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<Infallible> {
        let (verb, class) = command::enter(self, s);
        self.need(class);
        if self.verb.is_none() {
            self.verb = Some(verb);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Infallible> {
        if let Some(scope) = self.scopes.last_mut() {
            if let Some(i) = scope.bodies.iter().position(|b| ptr::eq(*b, q)) {
                scope.visible = if scope.recursive {
                    scope.names.len()
                } else {
                    i
                };
            }
        }
        if let Some(with) = &q.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|c| name::ident(&c.alias.name))
                .collect();
            self.scopes.push(CteScope {
                owner: q,
                visible: if with.recursive { names.len() } else { 0 },
                names,
                bodies: with
                    .cte_tables
                    .iter()
                    .map(|c| &*c.query as *const _)
                    .collect(),
                recursive: with.recursive,
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &Query) -> ControlFlow<Infallible> {
        // Scanned here rather than before the CTEs, so that the body sees all of them.
        self.table_commands(&q.body);
        if self.scopes.last().is_some_and(|s| ptr::eq(s.owner, q)) {
            self.scopes.pop();
        }
        // After a CTE, the next one (or the body) decides what is visible.
        if let Some(scope) = self.scopes.last_mut() {
            if scope.bodies.iter().any(|b| ptr::eq(*b, q)) {
                scope.visible = scope.names.len();
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<Infallible> {
        // `SELECT … INTO t` creates the table t.
        if let Some(into) = &s.into {
            self.need(SqlClass::Ddl);
            let default_schema = into.temporary.then_some("pg_temp");
            for target in &into.targets {
                match target {
                    Expr::Identifier(id) => self.access(
                        SqlClass::Ddl,
                        (default_schema.map(str::to_owned), name::ident(id)),
                    ),
                    Expr::CompoundIdentifier(ids) => {
                        self.object(&ObjectName::from(ids.to_vec()), SqlClass::Ddl)
                    }
                    _ => self.need(SqlClass::Admin),
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Infallible> {
        if let Some(&(_, class)) = self.target_factors.iter().find(|(f, _)| ptr::eq(*f, t)) {
            self.in_target.push(class);
        }
        match t {
            TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => {
                self.functions.push(name);
                self.call(function::effect(name, args.args.first()));
            }
            TableFactor::Function { name, args, .. } => {
                self.call(function::effect(name, args.first()));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Infallible> {
        if self.target_factors.iter().any(|(f, _)| ptr::eq(*f, t)) {
            self.in_target.pop();
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Infallible> {
        if self.functions.iter().any(|f| ptr::eq(*f, relation)) {
            return ControlFlow::Continue(());
        }
        if self.targets.iter().any(|n| ptr::eq(*n, relation)) {
            return ControlFlow::Continue(());
        }
        match self.in_target.last() {
            Some(&class) => self.object(relation, class),
            None => {
                if let Some(id) = name::single(relation) {
                    if self.is_cte(&name::ident(id)) {
                        return ControlFlow::Continue(());
                    }
                }
                self.object(relation, SqlClass::Read);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Infallible> {
        if let Expr::Function(f) = e {
            let first = match &f.args {
                FunctionArguments::List(list) => list.args.first(),
                _ => None,
            };
            self.call(function::effect(&f.name, first));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_ident(&mut self, id: &Ident) -> ControlFlow<Infallible> {
        self.secrets = self.secrets || redact::is_secret_name(&id.value);
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, v: &ValueWithSpan) -> ControlFlow<Infallible> {
        self.secrets = self.secrets || redact::is_credential_value(&v.value);
        ControlFlow::Continue(())
    }
}
