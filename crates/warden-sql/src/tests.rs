//! Classification tests: what each kind of statement needs, and the ways a statement could hide
//! what it does.

use proptest::prelude::*;
use warden_core::SqlClass::{Admin, Ddl, Read, Tx, Write};

use crate::{classify, redact, Access, SqlClass, Statement};

fn one(sql: &str) -> Statement {
    let mut all = classify(sql);
    assert_eq!(all.len(), 1, "{sql}: {all:#?}");
    all.remove(0)
}

/// An access from `schema.name` or `name`.
fn a(class: SqlClass, table: &str) -> Access {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s.to_owned()), n.to_owned()),
        None => (None, table.to_owned()),
    };
    Access {
        class,
        schema,
        name,
    }
}

#[track_caller]
fn check(sql: &str, verb: &str, class: SqlClass, accesses: &[(SqlClass, &str)]) {
    let s = one(sql);
    assert_eq!(s.verb, verb, "{sql}");
    assert_eq!(s.class, class, "{sql}");
    let want: Vec<Access> = accesses.iter().map(|&(c, t)| a(c, t)).collect();
    assert_eq!(s.accesses, want, "{sql}");
}

#[test]
fn selects_find_every_table() {
    check(
        "SELECT o.id, c.name FROM public.orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.total > (SELECT avg(total) FROM stats.totals) \
         AND EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id)",
        "SELECT",
        Read,
        &[
            (Read, "public.orders"),
            (Read, "customers"),
            (Read, "stats.totals"),
            (Read, "refunds"),
        ],
    );
    check(
        "SELECT (SELECT max(x) FROM a), * FROM (SELECT * FROM b) sub, LATERAL (SELECT * FROM c) l \
         UNION SELECT 1, 2, 3 FROM d",
        "SELECT",
        Read,
        &[(Read, "a"), (Read, "b"), (Read, "c"), (Read, "d")],
    );
    check("SELECT 1", "SELECT", Read, &[]);
    check("VALUES (1), (2)", "VALUES", Read, &[]);
    check("SELECT * FROM t FOR UPDATE", "SELECT", Read, &[(Read, "t")]);
    // Duplicates are folded.
    check(
        "SELECT * FROM t JOIN t AS u ON true",
        "SELECT",
        Read,
        &[(Read, "t")],
    );
}

#[test]
fn ctes_are_not_tables() {
    check(
        "WITH recent AS (SELECT * FROM orders WHERE day > now() - interval '1 day') \
         SELECT * FROM recent JOIN Recent r2 ON true",
        "SELECT",
        Read,
        &[(Read, "orders")],
    );
    // A non-recursive CTE referring to its own name reads the table of that name.
    check(
        "WITH t AS (SELECT * FROM t) SELECT * FROM t",
        "SELECT",
        Read,
        &[(Read, "t")],
    );
    // A CTE sees earlier siblings only.
    check(
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b",
        "SELECT",
        Read,
        &[(Read, "b")],
    );
    check(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
         SELECT * FROM r",
        "SELECT",
        Read,
        &[],
    );
    // A qualified name is never a CTE.
    check(
        "WITH t AS (SELECT 1) SELECT * FROM public.t, t",
        "SELECT",
        Read,
        &[(Read, "public.t")],
    );
    // Scopes end with their query.
    check(
        "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x",
        "SELECT",
        Read,
        &[(Read, "x")],
    );
}

#[test]
fn table_commands_are_reads() {
    // sqlparser keeps `TABLE name` as plain identifiers, outside the relations it visits.
    check(
        "WITH x AS (TABLE secret) SELECT * FROM x",
        "SELECT",
        Read,
        &[(Read, "secret")],
    );
    check(
        "SELECT * FROM a UNION TABLE s.b",
        "SELECT",
        Read,
        &[(Read, "a"), (Read, "s.b")],
    );
    check(
        "WITH x AS (SELECT 1) SELECT * FROM a UNION TABLE x",
        "SELECT",
        Read,
        &[(Read, "a")],
    );
}

#[test]
fn data_modifying_ctes_are_writes() {
    check(
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "SELECT",
        Write,
        &[(Write, "t"), (Read, "t")],
    );
    check(
        "WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) \
         INSERT INTO archive SELECT * FROM moved",
        "INSERT",
        Write,
        &[(Write, "queue"), (Read, "queue"), (Write, "archive")],
    );
    check(
        "WITH u AS (UPDATE accounts SET balance = 0 RETURNING id) SELECT count(*) FROM u",
        "SELECT",
        Write,
        &[(Write, "accounts"), (Read, "accounts")],
    );
    // A CTE cannot be the target of a write: the name is the table.
    check(
        "WITH t AS (SELECT 1) DELETE FROM t",
        "DELETE",
        Write,
        &[(Write, "t")],
    );
}

#[test]
fn writes_name_their_target_and_sources() {
    check(
        "INSERT INTO a SELECT * FROM b",
        "INSERT",
        Write,
        &[(Write, "a"), (Read, "b")],
    );
    check(
        "INSERT INTO public.orders (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = excluded.id \
         RETURNING id",
        "INSERT",
        Write,
        &[(Write, "public.orders"), (Read, "public.orders")],
    );
    // Without RETURNING a write reads nothing back.
    check(
        "INSERT INTO public.orders (id) VALUES ($1)",
        "INSERT",
        Write,
        &[(Write, "public.orders")],
    );
    check(
        "UPDATE t SET id = id RETURNING *",
        "UPDATE",
        Write,
        &[(Write, "t"), (Read, "t")],
    );
    check(
        "UPDATE orders o SET total = s.total FROM staging.totals s WHERE s.id = o.id",
        "UPDATE",
        Write,
        &[(Write, "orders"), (Read, "staging.totals")],
    );
    check(
        "DELETE FROM orders USING customers c WHERE c.id = orders.customer_id AND c.gone",
        "DELETE",
        Write,
        &[(Write, "orders"), (Read, "customers")],
    );
    // Reading the table being written is both.
    check(
        "INSERT INTO t SELECT * FROM t",
        "INSERT",
        Write,
        &[(Write, "t"), (Read, "t")],
    );
    check(
        "MERGE INTO stock s USING deliveries d ON s.item = d.item \
         WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty \
         WHEN NOT MATCHED THEN INSERT (item, qty) VALUES (d.item, d.qty)",
        "MERGE",
        Write,
        &[(Write, "stock"), (Read, "deliveries")],
    );
    check(
        "TRUNCATE a, public.b",
        "TRUNCATE",
        Write,
        &[(Write, "a"), (Write, "public.b")],
    );
    check("NOTIFY jobs, 'x'", "NOTIFY", Write, &[]);
    check("LISTEN jobs", "LISTEN", Read, &[]);
    check("UNLISTEN *", "UNLISTEN", Read, &[]);
    check("CALL refresh_all(1)", "CALL", Write, &[]);
    check(
        "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
        "LOCK",
        Write,
        &[(Write, "t")],
    );
}

#[test]
fn copy_variants() {
    check("COPY t FROM STDIN", "COPY", Write, &[(Write, "t")]);
    check(
        "COPY public.t (a, b) FROM STDIN WITH (FORMAT csv)",
        "COPY",
        Write,
        &[(Write, "public.t")],
    );
    check("COPY t TO STDOUT", "COPY", Read, &[(Read, "t")]);
    check(
        "COPY (SELECT * FROM t JOIN u USING (id)) TO STDOUT WITH CSV HEADER",
        "COPY",
        Read,
        &[(Read, "t"), (Read, "u")],
    );
    check("COPY t TO '/tmp/x'", "COPY", Admin, &[(Read, "t")]);
    check("COPY t FROM '/etc/passwd'", "COPY", Admin, &[(Write, "t")]);
    check(
        "COPY t FROM PROGRAM 'curl evil'",
        "COPY",
        Admin,
        &[(Write, "t")],
    );
}

#[test]
fn copy_data_cannot_hide_statements() {
    // sqlparser reads the line after `FROM STDIN;` as data; PostgreSQL runs it.
    let s = one("COPY t FROM STDIN;\nDELETE FROM secret;");
    assert_eq!((s.verb.as_str(), s.class), ("UNPARSED", Admin));
    assert!(!s.text.contains("DELETE FROM secret"), "{}", s.text);
    // Without a line break sqlparser sees the second statement.
    let all = classify("COPY t FROM STDIN; DELETE FROM secret");
    assert_eq!(all[1].accesses, [a(Write, "secret")]);
}

#[test]
fn explain_reads_unless_it_runs() {
    check("EXPLAIN SELECT * FROM t", "EXPLAIN", Read, &[(Read, "t")]);
    check(
        "EXPLAIN DELETE FROM t WHERE id IN (SELECT id FROM u)",
        "EXPLAIN",
        Read,
        &[(Read, "t"), (Read, "u")],
    );
    check(
        "EXPLAIN ANALYZE DELETE FROM t",
        "EXPLAIN",
        Write,
        &[(Write, "t")],
    );
    check(
        "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1",
        "EXPLAIN",
        Write,
        &[(Write, "t")],
    );
    check(
        "EXPLAIN (ANALYZE false) UPDATE t SET a = 1",
        "EXPLAIN",
        Read,
        &[(Read, "t")],
    );
}

#[test]
fn ddl_names_its_objects() {
    check(
        "CREATE TABLE reports.daily AS SELECT day, sum(total) FROM orders GROUP BY day",
        "CREATE TABLE",
        Ddl,
        &[(Ddl, "reports.daily"), (Read, "orders")],
    );
    check(
        "CREATE TABLE t (id int PRIMARY KEY, c int REFERENCES customers (id))",
        "CREATE TABLE",
        Ddl,
        &[(Ddl, "t"), (Read, "customers")],
    );
    check(
        "CREATE TEMP TABLE scratch (id int)",
        "CREATE TABLE",
        Ddl,
        &[(Ddl, "pg_temp.scratch")],
    );
    check(
        "CREATE VIEW public.v AS SELECT * FROM secret.keys",
        "CREATE VIEW",
        Ddl,
        &[(Ddl, "public.v"), (Read, "secret.keys")],
    );
    check(
        "CREATE INDEX CONCURRENTLY i ON orders (day)",
        "CREATE INDEX",
        Ddl,
        &[(Ddl, "orders")],
    );
    check(
        "ALTER TABLE orders ADD COLUMN note text",
        "ALTER TABLE",
        Ddl,
        &[(Ddl, "orders")],
    );
    check(
        "ALTER TABLE orders DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE",
        Admin,
        &[(Ddl, "orders")],
    );
    check(
        "ALTER TABLE orders OWNER TO mallory",
        "ALTER TABLE",
        Admin,
        &[(Ddl, "orders")],
    );
    check(
        "DROP TABLE IF EXISTS a, s.b",
        "DROP TABLE",
        Ddl,
        &[(Ddl, "a"), (Ddl, "s.b")],
    );
    check(
        "DROP SCHEMA analytics",
        "DROP SCHEMA",
        Ddl,
        &[(Ddl, "analytics.*")],
    );
    // CASCADE reaches objects the statement does not name: a use of every table.
    check(
        "DROP TABLE a CASCADE",
        "DROP TABLE",
        Ddl,
        &[(Ddl, "a"), (Ddl, "*.*")],
    );
    check(
        "TRUNCATE a CASCADE",
        "TRUNCATE",
        Write,
        &[(Write, "a"), (Write, "*.*")],
    );
    check(
        "ALTER TABLE t ATTACH PARTITION s.p FOR VALUES IN (1)",
        "ALTER TABLE",
        Ddl,
        &[(Ddl, "t"), (Ddl, "s.p")],
    );
    check(
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES s.other (id)",
        "ALTER TABLE",
        Ddl,
        &[(Ddl, "t"), (Read, "s.other")],
    );
    check(
        "CREATE SCHEMA s AUTHORIZATION bob",
        "CREATE SCHEMA",
        Admin,
        &[],
    );
    check(
        "CREATE SEQUENCE s.seq",
        "CREATE SEQUENCE",
        Ddl,
        &[(Ddl, "s.seq")],
    );
    check(
        "COMMENT ON COLUMN public.orders.total IS 'money'",
        "COMMENT",
        Ddl,
        &[(Ddl, "public.orders")],
    );
    check(
        "SELECT * INTO archive FROM orders",
        "SELECT",
        Ddl,
        &[(Ddl, "archive"), (Read, "orders")],
    );
    check("VACUUM t", "VACUUM", Ddl, &[(Ddl, "t")]);
    check("ANALYZE t", "ANALYZE", Ddl, &[(Ddl, "t")]);
    check(
        "REFRESH MATERIALIZED VIEW mv",
        "REFRESH MATERIALIZED VIEW",
        Write,
        &[(Write, "mv")],
    );
    check(
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ DELETE FROM t RETURNING 1 $$",
        "CREATE FUNCTION",
        Admin,
        &[],
    );
}

#[test]
fn roles_and_privileges_are_admin_with_passwords_redacted() {
    for (sql, verb) in [
        ("GRANT SELECT ON orders TO bob", "GRANT"),
        ("REVOKE ALL ON orders FROM bob", "REVOKE"),
        ("GRANT admins TO bob", "GRANT"),
        ("CREATE ROLE bob LOGIN", "CREATE ROLE"),
        ("DROP ROLE bob", "DROP ROLE"),
        ("DROP USER bob", "DROP USER"),
    ] {
        let s = one(sql);
        assert_eq!((s.verb.as_str(), s.class), (verb, Admin), "{sql}");
    }
    for sql in [
        "ALTER ROLE bob WITH PASSWORD 'hunter2'",
        "ALTER USER bob PASSWORD 'hunter2'",
        "CREATE ROLE bob LOGIN PASSWORD 'hunter2'",
        // Does not parse, so the tokens are redacted.
        "CREATE USER bob ENCRYPTED PASSWORD 'hunter2'",
        "ALTER ROLE bob PASSWORD 'hunter2' VALID UNTIL 'infinity'",
    ] {
        let s = one(sql);
        assert_eq!(s.class, Admin, "{sql}");
        assert!(!s.text.contains("hunter2"), "{sql}: {}", s.text);
        assert!(s.text.contains("'<redacted>'"), "{sql}: {}", s.text);
    }
    let s = one("CREATE USER bob ENCRYPTED PASSWORD 'hunter2'");
    assert_eq!(s.verb, "UNPARSED");
    assert_eq!(s.text, "CREATE USER bob ENCRYPTED PASSWORD '<redacted>'");
}

#[test]
fn secret_columns_are_redacted() {
    let s = one("SELECT id FROM users WHERE name = 'ann' AND password = 'hunter2'");
    assert_eq!(
        s.text,
        "SELECT id FROM users WHERE name = 'ann' AND password = '<redacted>'"
    );
    let s = one("UPDATE u SET api_token = 'tok', name = 'ann' WHERE id = 1");
    assert_eq!(
        s.text,
        "UPDATE u SET api_token = '<redacted>', name = 'ann' WHERE id = 1"
    );
    let s =
        one("INSERT INTO u (name, password) VALUES ('a', 'b'), ('c', crypt('d', gen_salt('bf')))");
    assert_eq!(
        s.text,
        "INSERT INTO u (name, password) VALUES ('a', '<redacted>'), ('c', crypt('<redacted>', \
         gen_salt('<redacted>')))"
    );
    let s = one("SELECT * FROM u WHERE 'x' = u.client_secret OR lower(apikey) IN ('k1', 'k2')");
    assert!(
        !s.text.contains("'x'") && !s.text.contains("k1"),
        "{}",
        s.text
    );
    let s = one("SELECT * FROM dblink('host=db user=a password=hunter2', 'SELECT 1') AS t(x int)");
    assert!(!s.text.contains("hunter2"), "{}", s.text);
    assert_eq!(s.class, Admin);
    // Values of secret-looking settings too.
    let s = one("SET app.api_token = 'tok'");
    assert_eq!(
        s.setting,
        Some(("app.api_token".into(), vec!["<redacted>".into()]))
    );
    assert!(!s.text.contains("tok'"), "{}", s.text);
    // Nothing secret: the text is the statement as rendered.
    let s = one("select abalance from pgbench_accounts where aid = 1");
    assert_eq!(
        s.text,
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1"
    );
}

#[test]
fn roles_cannot_be_set_but_search_path_can() {
    for sql in [
        "SET ROLE postgres",
        "SET LOCAL ROLE postgres",
        "SET role = 'postgres'",
        "SET SESSION AUTHORIZATION postgres",
        "SET session_authorization = 'postgres'",
        "RESET ROLE",
        "RESET SESSION AUTHORIZATION",
        "SET standard_conforming_strings = off",
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'BIG5'",
        "SET session_replication_role = replica",
        "SET log_statement = 'none'",
    ] {
        let s = one(sql);
        assert_eq!(s.class, Admin, "{sql}");
    }
    let s = one("SET search_path TO analytics, public");
    assert_eq!((s.verb.as_str(), s.class), ("SET", Tx));
    assert_eq!(
        s.setting,
        Some((
            "search_path".into(),
            vec!["analytics".into(), "public".into()]
        ))
    );
    let s = one("SET search_path = \"$user\", 'Public', Other");
    assert_eq!(s.setting.unwrap().1, ["$user", "Public", "other"]);
    let s = one("SET LOCAL search_path TO DEFAULT");
    assert_eq!(s.setting, Some(("search_path".into(), vec![])));
    for (sql, setting) in [
        (
            "SET statement_timeout = 5000",
            Some(("statement_timeout", vec!["5000"])),
        ),
        (
            "SET application_name TO 'etl'",
            Some(("application_name", vec!["etl"])),
        ),
        ("SET TIME ZONE 'UTC'", Some(("timezone", vec!["UTC"]))),
        (
            "SET client_encoding TO 'UTF8'",
            Some(("client_encoding", vec!["UTF8"])),
        ),
        (
            "SET standard_conforming_strings = on",
            Some(("standard_conforming_strings", vec!["on"])),
        ),
        ("RESET search_path", Some(("search_path", vec![]))),
        ("RESET ALL", Some(("all", vec![]))),
        ("DISCARD ALL", Some(("all", vec![]))),
        ("SHOW search_path", None),
        ("DEALLOCATE ALL", None),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", None),
    ] {
        let s = one(sql);
        assert_eq!(s.class, Tx, "{sql}");
        let want = setting.map(|(n, v): (&str, Vec<&str>)| {
            (n.to_owned(), v.into_iter().map(str::to_owned).collect())
        });
        assert_eq!(s.setting, want, "{sql}");
    }
}

#[test]
fn transaction_control_is_tx() {
    for (sql, verb) in [
        ("BEGIN", "BEGIN"),
        ("BEGIN ISOLATION LEVEL REPEATABLE READ", "BEGIN"),
        ("START TRANSACTION READ ONLY", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("END", "END"),
        ("ROLLBACK", "ROLLBACK"),
        ("SAVEPOINT a", "SAVEPOINT"),
        ("RELEASE SAVEPOINT a", "RELEASE"),
        ("ROLLBACK TO SAVEPOINT a", "ROLLBACK"),
        ("CLOSE c", "CLOSE"),
    ] {
        check(sql, verb, Tx, &[]);
    }
    check(
        "PREPARE q AS DELETE FROM t",
        "PREPARE",
        Write,
        &[(Write, "t")],
    );
    check("EXECUTE q(1)", "EXECUTE", Admin, &[]);
    check(
        "DECLARE c CURSOR FOR SELECT * FROM t",
        "DECLARE",
        Read,
        &[(Read, "t")],
    );
    check("FETCH 10 FROM c", "FETCH", Read, &[]);
}

#[test]
fn unparsable_text_is_admin() {
    for sql in [
        "this is not sql",
        "SELECT * FROM",
        "DO $$ BEGIN DELETE FROM t; END $$",
        "PREPARE TRANSACTION 'x'",
        "ALTER SYSTEM SET log_statement = 'none'",
        "CLUSTER t",
        "TABLE t",
        "SELECT 'unterminated",
    ] {
        let s = one(sql);
        assert_eq!((s.verb.as_str(), s.class), ("UNPARSED", Admin), "{sql}");
        assert!(s.accesses.is_empty());
    }
    // One bad statement makes the whole string one unparsed statement.
    let s = one("BEGIN; SELECT 1; TABLE t; COMMIT");
    assert_eq!(s.verb, "UNPARSED");
}

#[test]
fn several_statements() {
    let all = classify("BEGIN; INSERT INTO t VALUES (1); SELECT * FROM u; COMMIT;");
    let verbs: Vec<_> = all.iter().map(|s| (s.verb.as_str(), s.class)).collect();
    assert_eq!(
        verbs,
        [
            ("BEGIN", Tx),
            ("INSERT", Write),
            ("SELECT", Read),
            ("COMMIT", Tx)
        ]
    );
    assert_eq!(all[2].text, "SELECT * FROM u");
    assert!(classify("").is_empty());
    assert!(classify("  -- nothing\n").is_empty());
}

#[test]
fn strings_split_like_postgres() {
    // With standard_conforming_strings on, a backslash does not escape the quote: PostgreSQL
    // sees a DELETE here, and so must we.
    let all = classify(r"SELECT '\'; DELETE FROM t; --'");
    assert!(
        all.iter().any(|s| s.accesses.contains(&a(Write, "t"))),
        "{all:#?}"
    );
    let all = classify("SELECT $a$ '; $a$; DELETE FROM t");
    assert!(all.iter().any(|s| s.accesses.contains(&a(Write, "t"))));
    // PostgreSQL nests block comments.
    check("SELECT 1 /* /* */ ; DELETE FROM t; */", "SELECT", Read, &[]);
    // In E'' strings a backslash does escape.
    for sql in [
        r"SELECT E'\''; DELETE FROM t; --'",
        r"SELECT E'\\'; DELETE FROM t; --'",
    ] {
        let all = classify(sql);
        assert!(
            all.iter().any(|s| s.accesses.contains(&a(Write, "t"))),
            "{sql}"
        );
    }
    // A carriage return ends a `--` comment, for PostgreSQL and for us.
    let all = classify("SELECT 1; -- x\rDELETE FROM t");
    assert!(all.iter().any(|s| s.accesses.contains(&a(Write, "t"))));
}

#[test]
fn deep_queries_cannot_overflow_the_stack() {
    // Dropping sqlparser's tree of a long operator chain recurses once per operator; on a
    // small thread stack this used to abort the process.
    let worker = std::thread::Builder::new().stack_size(256 * 1024);
    let handle = worker
        .spawn(|| {
            let chain = format!("SELECT {}1 FROM t", "1 + ".repeat(25_000));
            assert_eq!(one(&chain).class, Read);
            let casts = format!("SELECT password{} = 'x' FROM t", "::text".repeat(20_000));
            let s = one(&casts);
            assert!(!s.text.contains("'x'"));
            // Beyond the bound the text is refused, not parsed.
            let too_deep = format!("SELECT {}1", "1 + ".repeat(100_000));
            assert_eq!(one(&too_deep).verb, "UNPARSED");
            let unions = format!("SELECT 1, 2{}", " UNION SELECT 1, 2".repeat(5_000));
            assert_eq!(one(&unions).class, Read);
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn redaction_of_long_lines_is_linear() {
    // Mapping token positions back to bytes once walked the line for every literal.
    let sql = format!(
        "SELECT password FROM t WHERE x IN ({})",
        vec!["'v'"; 30_000].join(",")
    );
    let out = redact(&sql);
    assert!(!out.contains("'v'"));
    assert_eq!(out.matches("<redacted>").count(), 30_000);
}

#[test]
fn functions_with_effects() {
    for sql in [
        "SELECT set_config('role', 'postgres', false)",
        "SELECT pg_catalog.set_config('search_path', 'secret', false)",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT PG_READ_BINARY_FILE('/etc/passwd')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT pg_stat_file('x')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT lo_export(1, '/tmp/x')",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        "SELECT pg_cancel_backend(1)",
        "SELECT pg_reload_conf()",
        "SELECT pg_rotate_logfile()",
        "SELECT pg_promote()",
        "SELECT pg_file_write('x', 'y', false)",
        "SELECT * FROM dblink('db', 'DELETE FROM t') AS r(x int)",
        "SELECT public.dblink_exec('db', 'DELETE FROM t')",
        "SELECT query_to_xml('SELECT * FROM secret.keys', true, false, '')",
        "SELECT id FROM t WHERE id IN (SELECT pg_read_file('/etc/passwd'))",
        "CALL pg_catalog.pg_reload_conf()",
    ] {
        assert_eq!(one(sql).class, Admin, "{sql}");
    }
    check(
        "SELECT current_setting('search_path'), now()",
        "SELECT",
        Read,
        &[],
    );
    check(
        "SELECT nextval('public.order_ids')",
        "SELECT",
        Write,
        &[(Write, "public.order_ids")],
    );
    check(
        "SELECT setval('\"Seq\"'::regclass, 10)",
        "SELECT",
        Write,
        &[(Write, "Seq")],
    );
    check("SELECT nextval($1)", "SELECT", Write, &[]);
    check(
        "INSERT INTO t (id) VALUES (nextval('t_id_seq'))",
        "INSERT",
        Write,
        &[(Write, "t"), (Write, "t_id_seq")],
    );
    check("SELECT pg_notify('c', 'x')", "SELECT", Write, &[]);
    check("SELECT * FROM generate_series(1, 3) g", "SELECT", Read, &[]);
}

#[test]
fn names_fold_like_postgres() {
    check(
        "SELECT * FROM \"Orders\", Public.Customers, \"Sales\".\"Q1\"",
        "SELECT",
        Read,
        &[
            (Read, "Orders"),
            (Read, "public.customers"),
            (Read, "Sales.Q1"),
        ],
    );
    check(
        "SELECT * FROM mydb.public.t",
        "SELECT",
        Read,
        &[(Read, "public.t")],
    );
    let long = format!("SELECT * FROM {}", "x".repeat(80));
    assert_eq!(one(&long).accesses[0].name.len(), 63);
}

#[test]
fn psql_and_pgbench_queries() {
    check(
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        "SELECT",
        Read,
        &[(Read, "pgbench_accounts")],
    );
    check(
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        "UPDATE",
        Write,
        &[(Write, "pgbench_accounts")],
    );
    check(
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default \
         AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;",
        "SELECT",
        Read,
        &[
            (Read, "pg_catalog.pg_class"),
            (Read, "pg_catalog.pg_namespace"),
        ],
    );
}

#[test]
fn redact_handles_tokens() {
    assert_eq!(
        redact("ALTER ROLE x PASSWORD 'a''b' LOGIN; SELECT 'keep'"),
        "ALTER ROLE x PASSWORD '<redacted>' LOGIN; SELECT 'keep'"
    );
    assert_eq!(
        redact("UPDATE u SET name = 'ok' WHERE 'x' = pwd"),
        "UPDATE u SET name = 'ok' WHERE '<redacted>' = pwd"
    );
    assert_eq!(
        redact("SELECT 'é', 'ü' FROM t WHERE\n  secret = E'\\x'"),
        "SELECT 'é', 'ü' FROM t WHERE\n  secret = '<redacted>'"
    );
    assert_eq!(
        redact("select dblink_connect('postgres://u:hunter2@db/x')"),
        "select dblink_connect('<redacted>')"
    );
    // Not even tokenizable: every quoted string goes, an open one to the end.
    assert_eq!(
        redact("ALTER ROLE x PASSWORD 'abc"),
        "ALTER ROLE x PASSWORD '<redacted>'"
    );
    assert_eq!(
        redact("SELECT 'a', $t$b$t$, $1 /* unterminated"),
        "SELECT '<redacted>', '<redacted>', $1 /* unterminated"
    );
    assert_eq!(redact(""), "");
}

proptest! {
    #[test]
    fn redact_never_panics(s in any::<String>()) {
        let _ = redact(&s);
    }

    #[test]
    fn redact_never_panics_on_sqlish_text(s in "[ a-zA-Z'\"$;=\\\\\n()é*/-]{0,60}") {
        let _ = redact(&s);
        let _ = classify(&s);
    }

    #[test]
    fn redacted_passwords_never_survive(
        pw in "[a-zA-Z0-9]{6,12}",
        prefix in "(ALTER ROLE bob|CREATE ROLE bob|ALTER USER bob|CREATE USER bob ENCRYPTED)",
    ) {
        let sql = format!("{prefix} PASSWORD '{pw}'");
        prop_assert!(!redact(&sql).contains(&pw));
        for s in classify(&sql) {
            prop_assert!(!s.text.contains(&pw), "{}", s.text);
        }
    }

    #[test]
    fn classify_never_panics(s in any::<String>()) {
        for st in classify(&s) {
            prop_assert!(!st.verb.is_empty());
        }
    }
}
