//! What each kind of statement is: its verb, the class it needs by itself, and the objects it
//! changes (registered with the [`Walk`] before the statement's children are visited).
//!
//! Decisions beyond the obvious (`SELECT` read, `INSERT` write, `CREATE TABLE` ddl, `GRANT`
//! admin):
//!
//! - `INSERT`/`UPDATE`/`DELETE … RETURNING` also read their target: `UPDATE t SET id = id
//!   RETURNING *` would otherwise dump a table that was only granted for writing. (What a
//!   `WHERE` reveals through the count of rows changed is not counted as a read.)
//! - `SELECT … FOR UPDATE/SHARE` is read: it only takes row locks. `LOCK TABLE` is write on its
//!   tables (an exclusive lock stops every writer and reader).
//! - `EXPLAIN` is read (its statement's tables become reads) unless it runs the statement
//!   (`ANALYZE`): then it is that statement. See `crate::describe`.
//! - `CALL` is write with no table: a procedure can change anything its owner can, short of
//!   admin functions, which the call's arguments are still checked for.
//! - `VACUUM`, `ANALYZE`, `REFRESH MATERIALIZED VIEW` (write: it replaces the view's rows) and
//!   `TRUNCATE` (write) name their tables; `VACUUM`/`ANALYZE` are ddl, as maintenance.
//!   `CLUSTER`, `REINDEX` and `CHECKPOINT` do not parse and so are admin.
//! - Admin besides roles and privileges: anything that installs code the gateway cannot see
//!   into (`CREATE FUNCTION`/`PROCEDURE`/`TRIGGER`/`RULE`/`OPERATOR`/`AGGREGATE`, `ALTER
//!   FUNCTION`, extensions), row-level security (`CREATE`/`ALTER`/`DROP POLICY`, `ALTER TABLE
//!   … ROW LEVEL SECURITY`), ownership (`OWNER TO`, `CREATE SCHEMA … AUTHORIZATION`), foreign
//!   servers, user mappings and foreign tables (they reach other servers), databases, `EXECUTE`
//!   of a prepared statement (what it runs is not in its text), `PREPARE TRANSACTION` and `DO`
//!   (neither parses), and every statement kind not listed here (deny by default).
//! - `PREPARE name AS stmt` is the class of `stmt`; `DECLARE` is read (its query's tables are
//!   reads), `FETCH` read with no table (the cursor's query was checked when declared), `CLOSE`
//!   tx.
//! - `LISTEN`/`UNLISTEN` are read and `NOTIFY` write, with no table.
//! - `CREATE`/`ALTER`/`DROP SCHEMA s` is a use of table `*` in `s` (see
//!   [`Walk::schema_wide`]), and `… CASCADE` (`DROP`, `TRUNCATE`) a use of table `*` in schema
//!   `*`, since what depends on the named objects can be anywhere (see [`Walk::anywhere`]);
//!   temporary objects are in schema `pg_temp`.

use std::borrow::Cow;

use sqlparser::ast::{
    AlterRoleOperation, AlterSchemaOperation, AlterTableOperation, CascadeOption, ColumnDef,
    ColumnOption, CommentObject, CopySource, CopyTarget, CreateTableLikeKind, DiscardObject,
    DropBehavior, FromTable, ObjectType, RoleKeyword, RoleOption, SchemaName, SetExpr, Statement,
    TableConstraint, TableObject,
};
use warden_core::SqlClass::{self, Admin, Ddl, Read, Tx, Write};

use crate::function;
use crate::setting;
use crate::walk::Walk;

/// Registers what `s` changes with `w` and returns its verb and own class.
pub(crate) fn enter(w: &mut Walk, s: &Statement) -> (Cow<'static, str>, SqlClass) {
    let (verb, class): (&'static str, SqlClass) = match s {
        Statement::Query(q) => (query_verb(&q.body), Read),
        Statement::Insert(i) => {
            let TableObject::TableName(n) = &i.table else {
                // Other dialects' insert targets.
                return ("INSERT".into(), Admin);
            };
            w.target(n, Write);
            if i.returning.is_some() {
                w.target(n, Read);
            }
            ("INSERT", Write)
        }
        Statement::Update(u) => {
            w.target_tables(&u.table, Write);
            if u.returning.is_some() {
                w.target_tables(&u.table, Read);
            }
            ("UPDATE", Write)
        }
        Statement::Delete(d) => {
            let classes: &[SqlClass] = if d.returning.is_some() {
                &[Write, Read]
            } else {
                &[Write]
            };
            for &class in classes {
                for n in &d.tables {
                    w.object(n, class);
                }
                match &d.from {
                    FromTable::WithFromKeyword(ts) | FromTable::WithoutKeyword(ts) => {
                        for t in ts {
                            w.target_tables(t, class);
                        }
                    }
                }
            }
            ("DELETE", Write)
        }
        Statement::Merge(m) => {
            w.target_factor(&m.table, Write);
            ("MERGE", Write)
        }
        Statement::Copy {
            source, to, target, ..
        } => {
            let class = if *to { Read } else { Write };
            if let CopySource::Table { table_name, .. } = source {
                w.object(table_name, class);
            }
            match target {
                CopyTarget::Stdin | CopyTarget::Stdout => ("COPY", class),
                // The server's files and programs are outside the database.
                CopyTarget::File { .. } | CopyTarget::Program { .. } => ("COPY", Admin),
            }
        }
        Statement::Explain { .. } => ("EXPLAIN", Read),
        Statement::CreateTable(t) => {
            if t.temporary {
                w.target_temporary(&t.name, Ddl);
            } else {
                w.target(&t.name, Ddl);
            }
            // A partition or child changes its parent's contents.
            if let Some(parent) = &t.partition_of {
                w.target(parent, Ddl);
            }
            for parent in t.inherits.iter().flatten() {
                w.object(parent, Ddl);
            }
            match &t.like {
                Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) => {
                    w.object(&l.name, Read)
                }
                None => {}
            }
            if let Some(c) = &t.clone {
                w.object(c, Read);
            }
            for column in &t.columns {
                column_references(w, column);
            }
            for constraint in &t.constraints {
                references(w, constraint);
            }
            ("CREATE TABLE", Ddl)
        }
        Statement::CreateView(v) => {
            if v.temporary {
                w.target_temporary(&v.name, Ddl);
            } else {
                w.target(&v.name, Ddl);
            }
            if v.materialized {
                ("CREATE MATERIALIZED VIEW", Ddl)
            } else {
                ("CREATE VIEW", Ddl)
            }
        }
        Statement::CreateIndex(i) => {
            w.target(&i.table_name, Ddl);
            ("CREATE INDEX", Ddl)
        }
        Statement::CreateSequence {
            name, temporary, ..
        } => {
            w.object_in(name, Ddl, temporary.then_some("pg_temp"));
            ("CREATE SEQUENCE", Ddl)
        }
        Statement::CreateType { name, .. } => {
            w.object(name, Ddl);
            ("CREATE TYPE", Ddl)
        }
        Statement::CreateDomain(d) => {
            w.object(&d.name, Ddl);
            ("CREATE DOMAIN", Ddl)
        }
        Statement::CreateSchema { schema_name, .. } => match schema_name {
            SchemaName::Simple(n) => {
                w.schema_wide(n, Ddl);
                ("CREATE SCHEMA", Ddl)
            }
            // Naming an owner hands the schema to another role.
            SchemaName::UnnamedAuthorization(_) | SchemaName::NamedAuthorization(..) => {
                ("CREATE SCHEMA", Admin)
            }
        },
        Statement::CreateTextSearch(_) => ("CREATE TEXT SEARCH", Ddl),
        Statement::CreateCollation(_) => ("CREATE COLLATION", Ddl),
        Statement::AlterTable(t) => {
            w.target(&t.name, Ddl);
            for op in &t.operations {
                match op {
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        references(w, constraint)
                    }
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        column_references(w, column_def)
                    }
                    // The attached or detached table changes too.
                    AlterTableOperation::AttachPartitionOf { partition, .. }
                    | AlterTableOperation::DetachPartitionOf { partition, .. } => {
                        w.object(partition, Ddl)
                    }
                    _ => {}
                }
            }
            let admin = t.operations.iter().any(|op| {
                matches!(
                    op,
                    AlterTableOperation::OwnerTo { .. }
                        | AlterTableOperation::EnableRowLevelSecurity
                        | AlterTableOperation::DisableRowLevelSecurity
                        | AlterTableOperation::ForceRowLevelSecurity
                        | AlterTableOperation::NoForceRowLevelSecurity
                )
            });
            ("ALTER TABLE", if admin { Admin } else { Ddl })
        }
        Statement::AlterIndex { name, .. } => {
            w.object(name, Ddl);
            ("ALTER INDEX", Ddl)
        }
        Statement::AlterView(v) => {
            w.target(&v.name, Ddl);
            ("ALTER VIEW", Ddl)
        }
        Statement::AlterType(t) => {
            w.object(&t.name, Ddl);
            ("ALTER TYPE", Ddl)
        }
        Statement::AlterSchema(a) => {
            w.schema_wide(&a.name, Ddl);
            let admin = a
                .operations
                .iter()
                .any(|op| matches!(op, AlterSchemaOperation::OwnerTo { .. }));
            ("ALTER SCHEMA", if admin { Admin } else { Ddl })
        }
        Statement::AlterTrigger(t) => {
            w.target(&t.table_name, Ddl);
            ("ALTER TRIGGER", Ddl)
        }
        Statement::AlterCollation(_) => ("ALTER COLLATION", Ddl),
        Statement::AlterTextSearch(_) => ("ALTER TEXT SEARCH", Ddl),
        Statement::Drop {
            object_type,
            names,
            cascade,
            ..
        } => {
            let (verb, class) = drop(w, *object_type, names);
            if *cascade && class == Ddl {
                w.anywhere(Ddl);
            }
            (verb, class)
        }
        Statement::DropFunction(f) => {
            cascade(w, f.drop_behavior, Ddl);
            ("DROP FUNCTION", Ddl)
        }
        Statement::DropProcedure { drop_behavior, .. } => {
            cascade(w, *drop_behavior, Ddl);
            ("DROP PROCEDURE", Ddl)
        }
        Statement::DropDomain(d) => {
            w.object(&d.name, Ddl);
            cascade(w, d.drop_behavior, Ddl);
            ("DROP DOMAIN", Ddl)
        }
        Statement::DropTrigger(t) => {
            if let Some(table) = &t.table_name {
                w.object(table, Ddl);
            }
            ("DROP TRIGGER", Ddl)
        }
        Statement::DropRule(r) => {
            w.target(&r.table_name, Ddl);
            ("DROP RULE", Ddl)
        }
        Statement::DropOperator(_) => ("DROP OPERATOR", Ddl),
        Statement::DropOperatorFamily(_) => ("DROP OPERATOR FAMILY", Ddl),
        Statement::DropOperatorClass(_) => ("DROP OPERATOR CLASS", Ddl),
        Statement::Comment {
            object_type,
            object_name,
            ..
        } => (
            "COMMENT",
            match object_type {
                CommentObject::Role | CommentObject::User | CommentObject::Database => Admin,
                CommentObject::Schema => {
                    w.schema_wide(object_name, Ddl);
                    Ddl
                }
                CommentObject::Column => {
                    // `table.column` or `schema.table.column`: the table is what changes.
                    let mut table = object_name.clone();
                    table.0.pop();
                    if table.0.is_empty() {
                        Admin
                    } else {
                        w.object(&table, Ddl);
                        Ddl
                    }
                }
                CommentObject::Extension => Ddl,
                _ => {
                    w.object(object_name, Ddl);
                    Ddl
                }
            },
        ),
        Statement::Truncate(t) => {
            for target in &t.table_names {
                w.target(&target.name, Write);
            }
            // CASCADE also empties every table that references these.
            if matches!(t.cascade, Some(CascadeOption::Cascade)) {
                w.anywhere(Write);
            }
            ("TRUNCATE", Write)
        }
        Statement::Lock(l) => {
            for target in &l.tables {
                w.target(&target.name, Write);
            }
            ("LOCK", Write)
        }
        Statement::Analyze(a) => {
            if let Some(t) = &a.table_name {
                w.target(t, Ddl);
            }
            ("ANALYZE", Ddl)
        }
        Statement::Vacuum(v) => {
            if let Some(t) = &v.table_name {
                w.object(t, Ddl);
            }
            ("VACUUM", Ddl)
        }
        Statement::RefreshMaterializedView(r) => {
            w.target(&r.name, Write);
            ("REFRESH MATERIALIZED VIEW", Write)
        }
        Statement::Set(set) => {
            let (class, setting) = setting::set(set);
            w.setting = setting;
            ("SET", class)
        }
        Statement::Reset(r) => {
            let (class, setting) = setting::reset(&r.reset);
            w.setting = setting;
            ("RESET", class)
        }
        Statement::ShowVariable { .. } => ("SHOW", Tx),
        Statement::StartTransaction { begin, .. } => {
            (if *begin { "BEGIN" } else { "START TRANSACTION" }, Tx)
        }
        Statement::Commit { end, .. } => (if *end { "END" } else { "COMMIT" }, Tx),
        Statement::Rollback { .. } => ("ROLLBACK", Tx),
        Statement::Savepoint { .. } => ("SAVEPOINT", Tx),
        Statement::ReleaseSavepoint { .. } => ("RELEASE", Tx),
        Statement::Discard { object_type } => {
            if matches!(object_type, DiscardObject::ALL) {
                // DISCARD ALL includes RESET ALL.
                w.setting = Some(("all".into(), Vec::new()));
            }
            ("DISCARD", Tx)
        }
        Statement::Deallocate { .. } => ("DEALLOCATE", Tx),
        Statement::Prepare { .. } => ("PREPARE", Tx),
        Statement::Execute { .. } => ("EXECUTE", Admin),
        Statement::Declare { .. } => ("DECLARE", Read),
        Statement::Fetch { .. } => ("FETCH", Read),
        Statement::Close { .. } => ("CLOSE", Tx),
        Statement::LISTEN { .. } => ("LISTEN", Read),
        Statement::UNLISTEN { .. } => ("UNLISTEN", Read),
        Statement::NOTIFY { .. } => ("NOTIFY", Write),
        Statement::Call(f) => {
            let class = match function::effect(&f.name, None) {
                function::Effect::Admin => Admin,
                _ => Write,
            };
            ("CALL", class)
        }
        Statement::CreateRole(r) => {
            w.secrets = w.secrets || r.password.is_some();
            let verb = match r.keyword {
                RoleKeyword::Role => "CREATE ROLE",
                RoleKeyword::Group => "CREATE GROUP",
            };
            (verb, Admin)
        }
        Statement::AlterRole { operation, .. } => {
            if let AlterRoleOperation::WithOptions { options } = operation {
                w.secrets =
                    w.secrets || options.iter().any(|o| matches!(o, RoleOption::Password(_)));
            }
            ("ALTER ROLE", Admin)
        }
        Statement::CreateUser(_) => {
            w.secrets = true;
            ("CREATE USER", Admin)
        }
        Statement::AlterUser(_) => {
            w.secrets = true;
            ("ALTER USER", Admin)
        }
        Statement::CreateServer(_) => {
            w.secrets = true;
            ("CREATE SERVER", Admin)
        }
        Statement::CreateUserMapping(_) => {
            w.secrets = true;
            ("CREATE USER MAPPING", Admin)
        }
        Statement::Grant(_) | Statement::GrantRole(_) => ("GRANT", Admin),
        Statement::Revoke(_) | Statement::RevokeRole(_) => ("REVOKE", Admin),
        Statement::AlterDefaultPrivileges(_) => ("ALTER DEFAULT PRIVILEGES", Admin),
        Statement::CreateFunction(_) => ("CREATE FUNCTION", Admin),
        Statement::CreateProcedure { .. } => ("CREATE PROCEDURE", Admin),
        Statement::CreateTrigger(_) => ("CREATE TRIGGER", Admin),
        Statement::CreateRule(_) => ("CREATE RULE", Admin),
        Statement::CreateExtension(_) => ("CREATE EXTENSION", Admin),
        Statement::DropExtension(_) => ("DROP EXTENSION", Admin),
        Statement::CreatePolicy(_) => ("CREATE POLICY", Admin),
        Statement::AlterPolicy(_) => ("ALTER POLICY", Admin),
        Statement::DropPolicy(_) => ("DROP POLICY", Admin),
        Statement::CreateForeignTable(_) => ("CREATE FOREIGN TABLE", Admin),
        Statement::CreateForeignDataWrapper(_) => ("CREATE FOREIGN DATA WRAPPER", Admin),
        Statement::CreateDatabase { .. } => ("CREATE DATABASE", Admin),
        Statement::AlterFunction(_) => ("ALTER FUNCTION", Admin),
        // Deny by default: other dialects' statements, and anything added to sqlparser later.
        other => return (leading_words(other), Admin),
    };
    (Cow::Borrowed(verb), class)
}

/// `… CASCADE` also drops what depends on the named objects, wherever it is.
fn cascade(w: &mut Walk, behavior: Option<DropBehavior>, class: SqlClass) {
    if matches!(behavior, Some(DropBehavior::Cascade)) {
        w.anywhere(class);
    }
}

/// A foreign key reads the table it references: inserts then reveal which keys exist there.
fn references(w: &mut Walk, constraint: &TableConstraint) {
    if let TableConstraint::ForeignKey(fk) = constraint {
        w.object(&fk.foreign_table, Read);
    }
}

/// [`references`] for a column's inline `REFERENCES`.
fn column_references(w: &mut Walk, column: &ColumnDef) {
    for option in &column.options {
        if let ColumnOption::ForeignKey(fk) = &option.option {
            w.object(&fk.foreign_table, Read);
        }
    }
}

/// The verb of a query: what its body does (`WITH … INSERT` is an insert).
fn query_verb(body: &SetExpr) -> &'static str {
    match body {
        SetExpr::Select(_) | SetExpr::SetOperation { .. } => "SELECT",
        SetExpr::Query(q) => query_verb(&q.body),
        SetExpr::Values(_) => "VALUES",
        SetExpr::Insert(_) => "INSERT",
        SetExpr::Update(_) => "UPDATE",
        SetExpr::Delete(_) => "DELETE",
        SetExpr::Merge(_) => "MERGE",
        SetExpr::Table(_) => "TABLE",
    }
}

/// `DROP …`: ddl on tables and their kin, admin on roles and databases.
fn drop(
    w: &mut Walk,
    object_type: ObjectType,
    names: &[sqlparser::ast::ObjectName],
) -> (&'static str, SqlClass) {
    let (verb, class) = match object_type {
        ObjectType::Table => ("DROP TABLE", Ddl),
        ObjectType::View => ("DROP VIEW", Ddl),
        ObjectType::MaterializedView => ("DROP MATERIALIZED VIEW", Ddl),
        ObjectType::Index => ("DROP INDEX", Ddl),
        ObjectType::Sequence => ("DROP SEQUENCE", Ddl),
        ObjectType::Type => ("DROP TYPE", Ddl),
        ObjectType::ForeignTable => ("DROP FOREIGN TABLE", Ddl),
        ObjectType::Collation => ("DROP COLLATION", Ddl),
        ObjectType::Schema => {
            for n in names {
                w.schema_wide(n, Ddl);
            }
            return ("DROP SCHEMA", Ddl);
        }
        ObjectType::Database => ("DROP DATABASE", Admin),
        ObjectType::Role => ("DROP ROLE", Admin),
        ObjectType::User => ("DROP USER", Admin),
        ObjectType::Group => ("DROP GROUP", Admin),
        ObjectType::Stage | ObjectType::Stream | ObjectType::Warehouse => ("DROP", Admin),
    };
    if class == Ddl {
        for n in names {
            w.object(n, Ddl);
        }
    }
    (verb, class)
}

/// A command-tag-like verb for statements without their own arm: the leading keywords of the
/// statement's text (`CREATE OPERATOR`, `KILL`).
fn leading_words(s: &Statement) -> Cow<'static, str> {
    const SKIP: &[&str] = &["OR", "REPLACE", "TEMP", "TEMPORARY", "IF", "NOT", "EXISTS"];
    let text = s.to_string();
    let mut words = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphabetic()))
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphabetic()));
    let Some(first) = words.next() else {
        return Cow::Borrowed("UNKNOWN");
    };
    let first = first.to_ascii_uppercase();
    if matches!(first.as_str(), "CREATE" | "ALTER" | "DROP") {
        if let Some(second) = words.find(|w| !SKIP.iter().any(|s| s.eq_ignore_ascii_case(w))) {
            return Cow::Owned(format!("{first} {}", second.to_ascii_uppercase()));
        }
    }
    Cow::Owned(first)
}
