"""The migration risk detector (bot.risk, bot.risk_sql): table-driven true positives and
true negatives per rule, the sample framework migrations, the CLI entry, and a fuzz test."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.risk import (
    ALTER_TYPE,
    DEFAULT_CONFIG,
    DELETE_ALL,
    DROP_COLUMN,
    DROP_TABLE,
    FINANCIAL,
    NOT_NULL,
    RULES,
    TRUNCATE,
    RiskFlag,
    ScanConfig,
    is_migration,
    scan_command,
    scan_paths,
    scan_text,
)
from bot.risk_sql import guess_dialect, tokenize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "migrations"

Expected = list[tuple[int, str]]


def found(path: str, text: str, config: ScanConfig = DEFAULT_CONFIG) -> Expected:
    return [(f.line, f.rule) for f in scan_text(path, text, config)]


def sql(text: str) -> Expected:
    return found("db/migrate/0001.sql", text)


# --- SQL, rule by rule ----------------------------------------------------------------------

NOT_NULL_CASES = [
    ("add column", "ALTER TABLE t ADD COLUMN x int NOT NULL;", [(1, NOT_NULL)]),
    ("add without COLUMN", "ALTER TABLE t ADD x int NOT NULL", [(1, NOT_NULL)]),
    ("lower case", "alter table t add column x int not null;", [(1, NOT_NULL)]),
    ("if not exists", "ALTER TABLE t ADD COLUMN IF NOT EXISTS x int NOT NULL;", [(1, NOT_NULL)]),
    ("primary key", "ALTER TABLE t ADD COLUMN x uuid PRIMARY KEY;", [(1, NOT_NULL)]),
    ("mysql list", "ALTER TABLE t ADD (a int NULL,\n b int NOT NULL);", [(2, NOT_NULL)]),
    ("second action", "ALTER TABLE t\n ADD a int NULL,\n ADD b int NOT NULL;", [(3, NOT_NULL)]),
    ("spans lines", "ALTER TABLE t ADD COLUMN\n  x int\n  NOT\n  NULL;", [(1, NOT_NULL)]),
    ("default 0", "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 0;", []),
    ("default first", "ALTER TABLE t ADD COLUMN x int DEFAULT 0 NOT NULL;", []),
    ("explicit NULL", "ALTER TABLE t ADD COLUMN x int NULL;", []),
    ("nullable", "ALTER TABLE t ADD COLUMN x int;", []),
    ("serial", "ALTER TABLE t ADD COLUMN x bigserial NOT NULL;", []),
    ("auto_increment", "ALTER TABLE t ADD x int NOT NULL AUTO_INCREMENT;", []),
    ("generated", "ALTER TABLE t ADD x int NOT NULL GENERATED ALWAYS AS (a + 1) STORED;", []),
    ("check constraint", "ALTER TABLE t ADD CONSTRAINT c CHECK (x IS NOT NULL);", []),
    ("column check", "ALTER TABLE t ADD COLUMN x int CHECK (x IS NOT NULL);", []),
    ("create table", "CREATE TABLE t (x int NOT NULL);", []),
]
DROP_COLUMN_CASES = [
    ("drop column", "ALTER TABLE t DROP COLUMN x;", [(1, DROP_COLUMN)]),
    ("if exists", "ALTER TABLE t DROP COLUMN IF EXISTS x CASCADE;", [(1, DROP_COLUMN)]),
    ("mysql bare", "ALTER TABLE `t` DROP `x`;", [(1, DROP_COLUMN)]),
    ("two", "ALTER TABLE t DROP COLUMN a,\n DROP COLUMN b;", [(1, DROP_COLUMN), (2, DROP_COLUMN)]),
    ("constraint", "ALTER TABLE t DROP CONSTRAINT t_fk;", []),
    ("index", "ALTER TABLE t DROP INDEX t_idx;", []),
    ("foreign key", "ALTER TABLE t DROP FOREIGN KEY t_fk;", []),
    ("primary key", "ALTER TABLE t DROP PRIMARY KEY;", []),
    ("drop default", "ALTER TABLE t ALTER COLUMN x DROP DEFAULT;", []),
    ("drop not null", "ALTER TABLE t ALTER COLUMN x DROP NOT NULL;", []),
]
ALTER_TYPE_CASES = [
    ("pg type", "ALTER TABLE t ALTER COLUMN x TYPE bigint;", [(1, ALTER_TYPE)]),
    ("pg set data type", "ALTER TABLE t ALTER x SET DATA TYPE text;", [(1, ALTER_TYPE)]),
    ("pg set not null", "ALTER TABLE t ALTER COLUMN x SET NOT NULL;", [(1, ALTER_TYPE)]),
    ("mysql modify", "ALTER TABLE t MODIFY x VARCHAR(20) NOT NULL;", [(1, ALTER_TYPE)]),
    ("mysql modify col", "ALTER TABLE t MODIFY COLUMN x int;", [(1, ALTER_TYPE)]),
    ("mysql change", "ALTER TABLE t CHANGE old_x new_x int;", [(1, ALTER_TYPE)]),
    (
        "clause line",
        "ALTER TABLE t\n  ADD COLUMN y int,\n  ALTER COLUMN x TYPE int;",
        [(3, ALTER_TYPE)],
    ),
    ("set default", "ALTER TABLE t ALTER COLUMN x SET DEFAULT 0;", []),
    ("rename column", "ALTER TABLE t RENAME COLUMN x TO y;", []),
    ("alter constraint", "ALTER TABLE t ALTER CONSTRAINT c DEFERRABLE;", []),
    ("alter type", "ALTER TYPE mood ADD VALUE 'meh';", []),
]
DROP_TABLE_CASES = [
    ("drop table", "DROP TABLE t;", [(1, DROP_TABLE)]),
    ("if exists list", "drop table if exists a, b cascade;", [(1, DROP_TABLE)]),
    ("schema", "DROP SCHEMA legacy CASCADE;", [(1, DROP_TABLE)]),
    ("partition", "ALTER TABLE t DROP PARTITION p2019;", [(1, DROP_TABLE)]),
    ("spans lines", "SELECT 1;\nDROP\n  TABLE\n  t;", [(2, DROP_TABLE)]),
    ("view", "DROP VIEW v;", []),
    ("index", "DROP INDEX CONCURRENTLY t_idx;", []),
    ("temporary", "DROP TEMPORARY TABLE tmp_t;", []),
    ("function", "DROP FUNCTION f();", []),
]
TRUNCATE_CASES = [
    ("truncate", "TRUNCATE t;", [(1, TRUNCATE)]),
    ("table only", "TRUNCATE TABLE ONLY a, b RESTART IDENTITY;", [(1, TRUNCATE)]),
    ("lower", "truncate table t", [(1, TRUNCATE)]),
    ("partition", "ALTER TABLE t TRUNCATE PARTITION p1;", [(1, TRUNCATE)]),
    ("function", "SELECT TRUNCATE(1.25, 1);", []),
    ("column name", "UPDATE t SET truncate = 1 WHERE id = 2;", []),
]
DELETE_CASES = [
    ("no where", "DELETE FROM t;", [(1, DELETE_ALL)]),
    ("lower", "delete from t", [(1, DELETE_ALL)]),
    ("returning", "DELETE FROM t RETURNING id;", [(1, DELETE_ALL)]),
    ("always true", "DELETE FROM t WHERE 1 = 1;", [(1, DELETE_ALL)]),
    ("where true", "DELETE FROM t WHERE (TRUE);", [(1, DELETE_ALL)]),
    (
        "only where in subquery",
        "DELETE FROM t USING (SELECT id FROM u WHERE x) s;",
        [(1, DELETE_ALL)],
    ),
    ("in cte", "WITH d AS (DELETE FROM t RETURNING *)\nSELECT * FROM d;", [(1, DELETE_ALL)]),
    ("mysql multi", "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id;", [(1, DELETE_ALL)]),
    ("where", "DELETE FROM t WHERE id = 1;", []),
    ("where next line", "DELETE FROM t\nWHERE id = 1;", []),
    ("where subquery", "DELETE FROM t WHERE id IN (SELECT id FROM u);", []),
    ("using where", "DELETE FROM t USING u WHERE t.id = u.id;", []),
    ("where in cte", "WITH d AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM d);", []),
    ("select", "SELECT * FROM t;", []),
]
FINANCIAL_CASES = [
    ("alter", "ALTER TABLE transactions ADD COLUMN memo text;", [(1, FINANCIAL)]),
    ("pg quoted", 'ALTER TABLE "public"."transactions" ADD COLUMN memo text;', [(1, FINANCIAL)]),
    ("mysql quoted", "ALTER TABLE `ledger`.`Transactions` ADD memo text;", [(1, FINANCIAL)]),
    ("upper", "UPDATE BALANCES SET amount = 0 WHERE id = 1;", [(1, FINANCIAL)]),
    ("insert", "INSERT INTO commissions (rate) VALUES (0.1);", [(1, FINANCIAL)]),
    ("mysql insert", "INSERT IGNORE INTO withdrawals VALUES (1);", [(1, FINANCIAL)]),
    ("delete where", "DELETE FROM deposits WHERE id = 1;", [(1, FINANCIAL)]),
    ("delete", "DELETE FROM deposits;", [(1, DELETE_ALL), (1, FINANCIAL)]),
    ("truncate", "TRUNCATE deposits;", [(1, FINANCIAL), (1, TRUNCATE)]),
    ("drop", "DROP TABLE IF EXISTS public.balances;", [(1, DROP_TABLE), (1, FINANCIAL)]),
    ("drop index on", "DROP INDEX idx ON transactions;", [(1, FINANCIAL)]),
    ("create index", "CREATE INDEX CONCURRENTLY idx ON ONLY transactions (x);", [(1, FINANCIAL)]),
    (
        "create trigger",
        "CREATE TRIGGER t AFTER INSERT ON balances FOR EACH ROW EXECUTE f();",
        [(1, FINANCIAL)],
    ),
    ("create table", "CREATE TABLE IF NOT EXISTS transactions (id int);", [(1, FINANCIAL)]),
    ("rename", "RENAME TABLE tx_new TO transactions;", [(1, FINANCIAL)]),
    ("rename to", "ALTER TABLE tx_new RENAME TO transactions;", [(1, FINANCIAL)]),
    ("update join", "UPDATE orders o JOIN balances b ON b.id = o.b SET b.x = 1;", [(1, FINANCIAL)]),
    (
        "merge",
        "MERGE INTO balances b USING s ON b.id = s.id WHEN MATCHED THEN DELETE;",
        [(1, FINANCIAL)],
    ),
    ("copy from", "COPY deposits FROM '/tmp/d.csv' CSV;", [(1, FINANCIAL)]),
    (
        "cte write",
        "WITH x AS (UPDATE balances SET a = 1 WHERE id = 2 RETURNING *) SELECT 1;",
        [(1, FINANCIAL)],
    ),
    (
        "statement line",
        "SELECT 1;\n\nUPDATE\n  transactions SET a = 1 WHERE id = 2;",
        [(3, FINANCIAL)],
    ),
    ("archive", "ALTER TABLE transactions_archive ADD COLUMN memo text;", []),
    ("quoted archive", 'DELETE FROM "transactions_archive" WHERE id = 1;', []),
    ("prefix", "UPDATE old_transactions SET a = 1 WHERE id = 1;", []),
    ("read only", "SELECT * FROM transactions;", []),
    ("insert select", "INSERT INTO audit SELECT * FROM transactions;", []),
    ("view", "CREATE VIEW v AS SELECT * FROM transactions;", []),
    ("column", "ALTER TABLE orders ADD COLUMN transactions int;", []),
    ("copy to", "COPY (SELECT * FROM transactions) TO STDOUT;", []),
]
ROBUSTNESS_CASES = [
    ("line comment", "-- DROP TABLE t;\nSELECT 1;", []),
    ("block comment", "/* DROP TABLE t;\n TRUNCATE t; */ SELECT 1;", []),
    ("comment in statement", "DELETE /* WHERE */ FROM t;", [(1, DELETE_ALL)]),
    ("where after comment", "DELETE FROM t -- all of them?\nWHERE id = 1;", []),
    ("string", "SELECT 'DROP TABLE t';", []),
    ("string semicolon", "INSERT INTO log VALUES ('a; DROP TABLE t; b');", []),
    (
        "doubled quote",
        "INSERT INTO log VALUES ('it''s; DROP TABLE t');\nTRUNCATE t;",
        [(2, TRUNCATE)],
    ),
    ("pg escape string", "SELECT E'it\\'s; DROP TABLE t';", []),
    ("mysql backslash", "INSERT INTO `log` VALUES ('it\\'s; DROP TABLE t');", []),
    ("mysql hash", "SELECT 1 FROM `t`; # DROP TABLE t;\n", []),
    ("hash at line start", "# DROP TABLE t;\nSELECT 1;", []),
    ("quoted identifier", 'SELECT "DROP TABLE t" FROM x;', []),
    (
        "several per line",
        "DROP TABLE a; TRUNCATE b; DELETE FROM c;",
        [(1, DELETE_ALL), (1, DROP_TABLE), (1, TRUNCATE)],
    ),
    ("function body", "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t; $$ LANGUAGE sql;", []),
    ("tagged dollar", "SELECT $body$ DROP TABLE t; $body$;", []),
    ("do block", "DO $$\nBEGIN\n  DELETE FROM t;\nEND $$;", [(3, DELETE_ALL)]),
    (
        "mysql delimiter",
        "DELIMITER //\nCREATE PROCEDURE p() BEGIN DELETE FROM t; END //\n"
        "DELIMITER ;\nDROP TABLE t;",
        [(4, DROP_TABLE)],
    ),
    ("mysql exec comment", "/*!40101 DROP TABLE t */;", [(1, DROP_TABLE)]),
    ("unterminated string", "SELECT 'DROP TABLE t;", []),
    ("unterminated comment", "DROP TABLE t; /* TRUNCATE u;", [(1, DROP_TABLE)]),
    ("transaction wrapper", "BEGIN;\nDROP TABLE t;\nCOMMIT;", [(2, DROP_TABLE)]),
    ("crlf", "SELECT 1;\r\n\r\nDROP TABLE t;\r\n", [(3, DROP_TABLE)]),
    ("bom", "\ufeffDROP TABLE t;", [(1, DROP_TABLE)]),
    ("empty", "", []),
]


def _cases(*groups: list[tuple[str, str, Expected]]) -> list[object]:
    return [
        pytest.param(text, expected, id=name) for group in groups for name, text, expected in group
    ]


@pytest.mark.parametrize(("text", "expected"), _cases(NOT_NULL_CASES))
def test_not_null_without_default(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(DROP_COLUMN_CASES))
def test_drop_column(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(ALTER_TYPE_CASES))
def test_alter_column_type(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(DROP_TABLE_CASES))
def test_drop_table(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(TRUNCATE_CASES))
def test_truncate(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(DELETE_CASES))
def test_delete_without_where(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(FINANCIAL_CASES))
def test_financial_table(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(("text", "expected"), _cases(ROBUSTNESS_CASES))
def test_sql_lexing(text: str, expected: Expected) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize(
    ("tables", "text", "expected"),
    [
        (("ledger",), "UPDATE ledger SET a = 1 WHERE id = 2;", [(1, FINANCIAL)]),
        (("ledger",), "UPDATE transactions SET a = 1 WHERE id = 2;", []),
        (("acct.transactions",), "TRUNCATE acct.transactions;", [(1, FINANCIAL), (1, TRUNCATE)]),
        (("acct.transactions",), "TRUNCATE public.transactions;", [(1, TRUNCATE)]),
        (("acct.transactions",), "TRUNCATE transactions;", [(1, TRUNCATE)]),
        ((), "ALTER TABLE transactions ADD COLUMN memo text;", []),
    ],
)
def test_configured_tables(tables: tuple[str, ...], text: str, expected: Expected) -> None:
    assert found("x.sql", text, ScanConfig(financial_tables=tables)) == expected


def test_issue_demo_not_null_column_on_transactions() -> None:
    """The example from the issue: one statement, two flags, both with the file and line."""
    text = (
        "-- 0042: add a fee\nBEGIN;\n"
        "ALTER TABLE transactions\n  ADD COLUMN fee_cents bigint NOT NULL;\n"
        "COMMIT;\n"
    )
    flags = scan_text("db/migrations/0042_fee.sql", text)
    assert [str(f) for f in flags] == [
        "db/migrations/0042_fee.sql:3: [financial-table] ALTER TABLE changes financial table "
        "transactions",
        "db/migrations/0042_fee.sql:4: [not-null-without-default] ADD COLUMN "
        "transactions.fee_cents is NOT NULL without a DEFAULT (fails on a non-empty table)",
    ]


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("V1__x.down.sql", "DROP TABLE t;", []),
        ("migrations/20240101_add/down.sql", "DROP TABLE t;", []),
        ("U3__undo_fee.sql", "DROP TABLE t;", []),
        ("V3__fee.sql", "DROP TABLE t;", [(1, DROP_TABLE)]),
        ("schema.DDL", "DROP TABLE t;", [(1, DROP_TABLE)]),
        ("x.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\nDROP TABLE t;", []),
        (
            "x.sql",
            "-- +migrate Down\nDROP TABLE t;\n-- +migrate Up\nDROP TABLE u;",
            [(4, DROP_TABLE)],
        ),
        ("notes.txt", "DROP TABLE t;", []),
        ("README.md", "DROP TABLE t;", []),
        ("plain.py", 'op.drop_table("t")\nmigrations.DeleteModel(name="T")\n', []),
    ],
)
def test_file_types_and_rollbacks(path: str, text: str, expected: Expected) -> None:
    assert found(path, text) == expected


@pytest.mark.parametrize(
    ("text", "path", "dialect"),
    [
        ("ALTER TABLE `t` ADD x int;", "x.sql", "mysql"),
        ("CREATE TABLE t (id int) ENGINE=InnoDB;", "x.sql", "mysql"),
        ("SELECT 1::int;", "x.sql", "postgres"),
        ("SELECT 1;", "db/mysql/x.sql", "mysql"),
        ("SELECT 1;", "x.sql", "generic"),
    ],
)
def test_guess_dialect(text: str, path: str, dialect: str) -> None:
    assert guess_dialect(text, path) == dialect


def test_tokenizer_lines_and_kinds() -> None:
    tokens = tokenize("SELECT 'a\nb' AS \"x\"; -- c\n  DROP", "postgres")
    assert [(t.kind, t.value, t.line) for t in tokens] == [
        ("word", "SELECT", 1),
        ("string", "a\nb", 1),
        ("word", "AS", 2),
        ("ident", "x", 2),
        ("sep", ";", 2),
        ("word", "DROP", 3),
    ]


# --- frameworks ---------------------------------------------------------------------------

LARAVEL = "2024_01_01_000000_change.php"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Schema::table('transactions', function (Blueprint $table) {\n"
            "    $table->bigInteger('fee');\n});",
            [(1, FINANCIAL), (2, NOT_NULL)],
            id="demo",
        ),
        pytest.param(
            "Schema::table('orders', function (Blueprint $t) {\n"
            "    $t->integer('a')->default(0);\n    $t->integer('b')->nullable();\n"
            "    $t->timestamp('c')->useCurrent();\n    $t->string('d')->nullable(false);\n"
            "    $t->id();\n    $t->timestamps();\n    $t->softDeletes();\n"
            "    $t->index('a');\n    $t->dropIndex(['a']);\n    $t->dropForeign(['b']);\n});",
            [(5, NOT_NULL)],
            id="modifiers",
        ),
        pytest.param(
            "Schema::table('orders', function ($table) {\n    $table->dropColumn('a');\n"
            "    $table->dropSoftDeletes();\n    $table->renameColumn('b', 'c');\n"
            "    $table->string('e', 10)->nullable()->change();\n});",
            [(2, DROP_COLUMN), (3, DROP_COLUMN), (5, ALTER_TYPE)],
            id="drops and change",
        ),
        pytest.param(
            "Schema::create('transactions', function (Blueprint $table) {\n"
            "    $table->id();\n    $table->bigInteger('amount');\n});",
            [(1, FINANCIAL)],
            id="create",
        ),
        pytest.param("Schema::drop('orders');", [(1, DROP_TABLE)], id="drop"),
        pytest.param(
            "Schema::dropIfExists('Balances');",
            [(1, DROP_TABLE), (1, FINANCIAL)],
            id="dropIfExists",
        ),
        pytest.param(
            "Schema::dropColumns('orders', ['a', 'b']);", [(1, DROP_COLUMN)], id="dropColumns"
        ),
        pytest.param(
            "Schema::create('transactions_archive', fn ($t) => $t->id());", [], id="archive"
        ),
        pytest.param(
            'DB::statement("TRUNCATE deposits");', [(1, FINANCIAL), (1, TRUNCATE)], id="statement"
        ),
        pytest.param("DB::statement('DELETE FROM a WHERE id = 1');", [], id="statement where"),
        pytest.param(
            "DB::statement('ALTER TABLE ' . $name . '\n DROP COLUMN x');",
            [(2, DROP_COLUMN)],
            id="statement concatenated",
        ),
        pytest.param(
            "DB::unprepared(<<<SQL\n    SELECT 1;\n    DROP TABLE {$t};\n    SQL\n);",
            [(3, DROP_TABLE)],
            id="heredoc",
        ),
        pytest.param("DB::table('a')->delete();", [(1, DELETE_ALL)], id="builder delete"),
        pytest.param("DB::table('a')->where('x', 1)->delete();", [], id="builder delete where"),
        pytest.param("DB::table('a')->truncate();", [(1, TRUNCATE)], id="builder truncate"),
        pytest.param(
            "DB::table('deposits')->insert(['a' => 1]);", [(1, FINANCIAL)], id="builder insert"
        ),
        pytest.param("DB::table('deposits')->where('a', 1)->get();", [], id="builder read"),
        pytest.param(
            "// Schema::drop('orders');\n/* DB::table('a')->delete(); */", [], id="comments"
        ),
        pytest.param("$sql = 'Schema::drop(\"orders\")';", [], id="string"),
        pytest.param(
            "public function down() { Schema::drop('orders'); }\n"
            "public function up() { Schema::drop('users'); }",
            [(2, DROP_TABLE)],
            id="down is skipped",
        ),
    ],
)
def test_laravel(text: str, expected: Expected) -> None:
    assert found(LARAVEL, "<?php\n" + text) == [(line + 1, rule) for line, rule in expected]


DJANGO = "app/payments/migrations/0002_change.py"
DJANGO_HEADER = "from django.db import migrations, models\n\noperations = [\n"


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param(
            'migrations.AddField(model_name="transaction", name="fee",'
            " field=models.IntegerField()),",
            [(4, FINANCIAL), (4, NOT_NULL)],
            id="demo",
        ),
        pytest.param(
            'migrations.AddField("merchant", "fee", models.IntegerField(null=False)),',
            [(4, NOT_NULL)],
            id="positional",
        ),
        pytest.param(
            'migrations.AddField("m", "f", models.IntegerField(null=True)),', [], id="null"
        ),
        pytest.param(
            'migrations.AddField("m", "f", models.IntegerField(default=0)),', [], id="default"
        ),
        pytest.param(
            'migrations.AddField("m", "f", models.IntegerField(db_default=0)),', [], id="db_default"
        ),
        pytest.param(
            'migrations.AddField("m", "f", models.CharField(blank=True)),', [], id="blank string"
        ),
        pytest.param(
            'migrations.AddField("m", "f", models.IntegerField(blank=True)),',
            [(4, NOT_NULL)],
            id="blank int",
        ),
        pytest.param(
            'migrations.AddField("m", "f", models.DateTimeField(auto_now_add=True)),',
            [],
            id="auto_now_add",
        ),
        pytest.param('migrations.AddField("m", "f", models.ManyToManyField("x")),', [], id="m2m"),
        pytest.param(
            'migrations.AddField("m", "f", models.ForeignKey("x", models.CASCADE)),',
            [(4, NOT_NULL)],
            id="fk",
        ),
        pytest.param('migrations.AddField("m", "f", make_field(**opts)),', [], id="opaque"),
        pytest.param('migrations.RemoveField("m", "f"),', [(4, DROP_COLUMN)], id="RemoveField"),
        pytest.param(
            'migrations.AlterField("m", "f", models.TextField()),',
            [(4, ALTER_TYPE)],
            id="AlterField",
        ),
        pytest.param('migrations.DeleteModel("Legacy"),', [(4, DROP_TABLE)], id="DeleteModel"),
        pytest.param(
            'migrations.RenameModel("Deposit", "OldDeposit"),', [(4, FINANCIAL)], id="RenameModel"
        ),
        pytest.param(
            'migrations.AddIndex("balances", models.Index(fields=["a"])),',
            [(4, FINANCIAL)],
            id="plural model",
        ),
        pytest.param('migrations.AddIndex("payments_balance", "x"),', [], id="app table name"),
        pytest.param('migrations.AddIndex("TransactionArchive", "x"),', [], id="archive model"),
        pytest.param(
            'migrations.RunSQL("DROP TABLE a;", reverse_sql="DROP TABLE b;"),',
            [(4, DROP_TABLE)],
            id="RunSQL",
        ),
        pytest.param(
            'migrations.RunSQL(["TRUNCATE a", ("DELETE FROM b", [])]),',
            [(4, DELETE_ALL), (4, TRUNCATE)],
            id="RunSQL list",
        ),
        pytest.param("migrations.RunSQL(sql=\"SELECT 'DROP TABLE a'\"),", [], id="RunSQL string"),
        pytest.param(
            'migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel("X")]),',
            [],
            id="state only",
        ),
        pytest.param(
            'migrations.SeparateDatabaseAndState(database_operations=[migrations.DeleteModel("X")]),',
            [(4, DROP_TABLE)],
            id="database operations",
        ),
        pytest.param('migrations.AlterModelOptions("transaction", {}),', [], id="options only"),
    ],
)
def test_django(ops: str, expected: Expected) -> None:
    assert found(DJANGO, DJANGO_HEADER + ops + "\n]\n") == expected


def test_django_db_table_option_wins_over_model_name() -> None:
    text = DJANGO_HEADER + (
        'migrations.AlterModelTable("Transaction", "tx_archive"),\n'
        'migrations.AddField("Transaction", "x", models.IntegerField(null=True)),\n'
        'migrations.AlterModelTable("Ledger", "deposits"),\n'
        'migrations.AddField("ledger", "x", models.IntegerField(null=True)),\n]\n'
    )
    assert found(DJANGO, text) == [(6, FINANCIAL), (7, FINANCIAL)]


ALEMBIC = "alembic/versions/abc123_change.py"
ALEMBIC_HEADER = "import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade():\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            'op.add_column("transactions", sa.Column("fee", sa.Integer(), nullable=False))',
            [(6, FINANCIAL), (6, NOT_NULL)],
            id="demo",
        ),
        pytest.param(
            'op.add_column("t", sa.Column("a", sa.Integer(), nullable=False, server_default="0"))',
            [],
            id="server_default",
        ),
        pytest.param(
            'op.add_column("t", sa.Column("a", sa.Integer(), nullable=False, default=0))',
            [(6, NOT_NULL)],
            id="python default",
        ),
        pytest.param(
            'op.add_column("t", sa.Column("a", sa.Integer(), primary_key=True))',
            [(6, NOT_NULL)],
            id="primary key",
        ),
        pytest.param('op.add_column("t", sa.Column("a", sa.Integer()))', [], id="nullable"),
        pytest.param(
            'op.add_column("t", sa.Column("a", sa.Integer(), sa.Identity(), nullable=False))',
            [],
            id="identity",
        ),
        pytest.param('op.drop_column("t", "a")', [(6, DROP_COLUMN)], id="drop_column"),
        pytest.param('op.drop_table("t")', [(6, DROP_TABLE)], id="drop_table"),
        pytest.param(
            'op.drop_table("deposits", schema="public")',
            [(6, DROP_TABLE), (6, FINANCIAL)],
            id="schema",
        ),
        pytest.param(
            'op.alter_column("t", "a", type_=sa.BigInteger())', [(6, ALTER_TYPE)], id="alter type"
        ),
        pytest.param(
            'op.alter_column("t", "a", nullable=False)', [(6, ALTER_TYPE)], id="alter not null"
        ),
        pytest.param(
            'op.alter_column("t", "a", nullable=True, server_default=None)', [], id="alter relax"
        ),
        pytest.param(
            'op.alter_column("commissions", "a", comment="x")',
            [(6, FINANCIAL)],
            id="alter financial",
        ),
        pytest.param(
            'op.create_index("ix", "balances", ["a"])', [(6, FINANCIAL)], id="create_index"
        ),
        pytest.param(
            'op.create_table("transactions_archive", sa.Column("id", sa.Integer()))',
            [],
            id="archive",
        ),
        pytest.param('op.execute("DELETE FROM t")', [(6, DELETE_ALL)], id="execute"),
        pytest.param(
            'op.execute(sa.text("TRUNCATE deposits"))', [(6, FINANCIAL), (6, TRUNCATE)], id="text"
        ),
        pytest.param('op.execute(f"DELETE FROM {name}")', [(6, DELETE_ALL)], id="f-string"),
        pytest.param(
            'op.execute("""\n    SELECT 1;\n    DROP TABLE t;\n""")',
            [(8, DROP_TABLE)],
            id="multi-line",
        ),
        pytest.param(
            'op.execute("SELECT 1;\\nDROP TABLE t")', [(6, DROP_TABLE)], id="escaped newline"
        ),
        pytest.param(
            'op.get_bind().execute(sa.text("DROP TABLE t"))', [(6, DROP_TABLE)], id="bind"
        ),
        pytest.param('op.execute("UPDATE t SET a = 1 WHERE b = 2")', [], id="safe execute"),
        pytest.param(
            't = sa.table("deposits")\n    op.execute(t.delete())',
            [(7, DELETE_ALL), (7, FINANCIAL)],
            id="core delete",
        ),
        pytest.param(
            't = sa.table("x")\n    op.execute(t.delete().where(t.c.id == 1))',
            [],
            id="core delete where",
        ),
        pytest.param(
            'with op.batch_alter_table("balances") as b:\n        b.drop_column("a")\n'
            '        b.add_column(sa.Column("c", sa.Integer(), nullable=False))',
            [(7, DROP_COLUMN), (7, FINANCIAL), (8, FINANCIAL), (8, NOT_NULL)],
            id="batch",
        ),
        pytest.param(
            '# op.drop_table("t")\n    x = "op.drop_table(t)"', [], id="comment and string"
        ),
    ],
)
def test_alembic(body: str, expected: Expected) -> None:
    assert found(ALEMBIC, ALEMBIC_HEADER + "    " + body + "\n") == expected


def test_alembic_downgrade_is_skipped() -> None:
    text = (
        ALEMBIC_HEADER + '    op.create_table("t")\n\n\ndef downgrade():\n    op.drop_table("t")\n'
    )
    assert found(ALEMBIC, text) == []


def test_unparsable_python_migration_still_names_dangerous_calls() -> None:
    text = 'from alembic import op\n\ndef upgrade(:\n    op.drop_table("t")\n'
    assert found(ALEMBIC, text) == [(4, DROP_TABLE)]


# --- the sample migrations ----------------------------------------------------------------

FIXTURE_EXPECTATIONS = {
    "sql/0001_add_fee_to_transactions.sql": [
        (8, FINANCIAL),
        (8, NOT_NULL),
        (10, FINANCIAL),
        (13, ALTER_TYPE),
        (17, DELETE_ALL),
        (17, FINANCIAL),
        (25, TRUNCATE),
    ],
    "sql/V2__mysql_wallets.sql": [
        (2, ALTER_TYPE),
        (3, ALTER_TYPE),
        (5, DROP_COLUMN),
        (6, NOT_NULL),
        (10, DELETE_ALL),
        (11, FINANCIAL),
        (11, TRUNCATE),
        (19, DROP_TABLE),
        (19, FINANCIAL),
    ],
    "sql/0003_safe_changes.sql": [],
    "sql/20240501120000_payouts.sql": [],
    "laravel/2024_05_01_000000_add_fee_to_transactions_table.php": [
        (15, FINANCIAL),
        (16, NOT_NULL),
        (19, NOT_NULL),
        (22, ALTER_TYPE),
        (23, DROP_COLUMN),
        (33, NOT_NULL),
        (35, DELETE_ALL),
        (36, FINANCIAL),
    ],
    "laravel/2024_06_01_000000_drop_legacy_payouts.php": [
        (12, DROP_TABLE),
        (13, DROP_COLUMN),
        (13, FINANCIAL),
        (15, FINANCIAL),
        (17, TRUNCATE),
        (19, FINANCIAL),
    ],
    "laravel/2024_07_01_000000_add_index_to_merchants.php": [],
    "django/payments/migrations/0007_transaction_fee.py": [
        (18, FINANCIAL),
        (18, NOT_NULL),
        (23, FINANCIAL),
        (33, NOT_NULL),
        (43, DROP_COLUMN),
        (47, ALTER_TYPE),
        (47, FINANCIAL),
        (52, DROP_TABLE),
        (57, DELETE_ALL),
        (58, DROP_COLUMN),
    ],
    "alembic/versions/3f2a9c1d7e44_add_fee_to_transactions.py": [
        (17, DELETE_ALL),
        (22, FINANCIAL),
        (22, NOT_NULL),
        (23, FINANCIAL),
        (28, DROP_COLUMN),
        (29, ALTER_TYPE),
        (31, DROP_TABLE),
        (33, DROP_COLUMN),
        (33, FINANCIAL),
        (36, FINANCIAL),
        (36, TRUNCATE),
        (38, DELETE_ALL),
        (38, FINANCIAL),
    ],
}


@pytest.mark.parametrize(
    ("name", "expected"), FIXTURE_EXPECTATIONS.items(), ids=list(FIXTURE_EXPECTATIONS)
)
def test_sample_migrations(name: str, expected: Expected) -> None:
    path = FIXTURES / name
    flags = scan_paths([path])
    assert [(f.line, f.rule) for f in flags] == expected
    assert {f.path for f in flags} <= {path.as_posix()}


def test_every_sample_is_checked_and_every_rule_is_exercised() -> None:
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()}
    assert on_disk == set(FIXTURE_EXPECTATIONS)
    rules = {rule for expected in FIXTURE_EXPECTATIONS.values() for _, rule in expected}
    assert rules == set(RULES)


def test_scan_paths_recurses_into_directories() -> None:
    flags = scan_paths([FIXTURES])
    per_file = {name: len(expected) for name, expected in FIXTURE_EXPECTATIONS.items() if expected}
    assert {Path(f.path).relative_to(FIXTURES).as_posix() for f in flags} == set(per_file)
    assert len(flags) == sum(per_file.values())


def test_scan_paths_missing_path() -> None:
    with pytest.raises(FileNotFoundError):
        scan_paths([FIXTURES / "nope.sql"])


# --- paths and the command ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("migrations/0001_init.sql", True),
        ("./app/payments/migrations/0002_fee.py", True),
        ("db/migrate/20240101_add_fee.sql", True),
        ("database/migrations/2024_01_01_000000_fee.php", True),
        ("alembic/versions/abc_fee.py", True),
        ("services/ledger/alembic/versions/abc_fee.py", True),
        ("app\\payments\\migrations\\0002_fee.py", True),
        ("my_migrations/0001.sql", False),
        ("migrations.sql", False),
        ("src/app/models.py", False),
        ("alembic/env.py", False),
    ],
)
def test_is_migration(path: str, expected: bool) -> None:
    assert is_migration(path, ScanConfig()) is expected


def test_is_migration_custom_paths_and_globs() -> None:
    config = ScanConfig(migration_paths=("sql/changes/", "schema/*.sql"))
    assert is_migration("sql/changes/V1__x.sql", config)
    assert is_migration("svc/schema/v2.sql", config)
    assert not is_migration("migrations/0001.sql", config)


def test_risk_flag_str() -> None:
    flag = RiskFlag("db/x.sql", 7, DROP_TABLE, "DROP TABLE t deletes the table and its rows")
    assert str(flag) == "db/x.sql:7: [drop-table] DROP TABLE t deletes the table and its rows"


def test_scan_command_reports_flags_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text(
        "SELECT 1;\nALTER TABLE transactions ADD COLUMN f int NOT NULL;\n"
    )
    (tmp_path / "b.sql").write_text("DROP TABLE t;\n")
    (tmp_path / "c.sql").write_text("SELECT 1;\n")
    out = io.StringIO()
    assert scan_command([str(tmp_path)], out) == 1
    base = tmp_path.as_posix()
    assert out.getvalue().splitlines() == [
        f"{base}/a.sql:2: [financial-table] ALTER TABLE changes financial table transactions",
        f"{base}/a.sql:2: [not-null-without-default] ADD COLUMN transactions.f is NOT NULL "
        "without a DEFAULT (fails on a non-empty table)",
        f"{base}/b.sql:1: [drop-table] DROP TABLE t deletes the table and its rows",
        "3 risky statement(s) in 2 file(s)",
    ]


def test_scan_command_clean_exits_0(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("ALTER TABLE t ADD COLUMN f int NOT NULL DEFAULT 0;\n")
    out = io.StringIO()
    assert scan_command([str(tmp_path / "a.sql")], out) == 0
    assert out.getvalue() == "no risky migration statements\n"


def test_scan_command_financial_only_still_fails(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("UPDATE deposits SET a = 1 WHERE id = 2;\n")
    out = io.StringIO()
    assert scan_command([str(tmp_path / "a.sql")], out) == 1
    assert out.getvalue().splitlines()[-1] == "1 risky statement(s) in 1 file(s)"


def test_scan_command_custom_tables(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text(
        "UPDATE deposits SET a = 1 WHERE id = 2;\nUPDATE payouts SET a = 1 WHERE id = 2;\n"
    )
    out = io.StringIO()
    assert scan_command([str(tmp_path / "a.sql")], out, tables=["payouts"]) == 1
    assert (
        out.getvalue()
        .splitlines()[0]
        .startswith(f"{tmp_path.as_posix()}/a.sql:2: [financial-table]")
    )


def test_scan_command_missing_path_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("DROP TABLE t;\n")
    out = io.StringIO()
    missing = str(tmp_path / "missing.sql")
    assert scan_command([str(tmp_path / "a.sql"), missing], out) == 2
    assert out.getvalue() == f"error: no such file or directory: {missing}\n"


def test_scan_command_skips_hidden_directories_and_other_files(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.sql").write_text("DROP TABLE t;\n")
    (tmp_path / "notes.md").write_text("DROP TABLE t;\n")
    out = io.StringIO()
    assert scan_command([str(tmp_path)], out) == 0


# --- never raises -------------------------------------------------------------------------

FUZZ_WORDS = (
    "ALTER TABLE ADD DROP COLUMN NOT NULL DEFAULT DELETE FROM WHERE TRUNCATE UPDATE SET INSERT "
    "INTO CREATE INDEX ON WITH AS DO BEGIN END IF THEN MODIFY CHANGE TYPE RENAME TO DELIMITER "
    "transactions ; , ( ) . * ' \" ` $$ $a$ -- /* */ /*! # \\ \n E' :: Schema:: ->table( "
    "DB:: function down ( { } <<<SQL op. migrations. AddField( = , nullable=False"
)
SQL_WORDS = st.sampled_from(FUZZ_WORDS.split(" "))
PREFIXES = st.sampled_from(
    ["", "from alembic import op\n", "from django.db import migrations\n", "<?php\n"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=PREFIXES,
    body=st.one_of(st.text(max_size=300), st.lists(SQL_WORDS, max_size=60).map(" ".join)),
    suffix=st.sampled_from([".sql", ".php", ".py", ".txt"]),
)
def test_random_text_never_raises(prefix: str, body: str, suffix: str) -> None:
    flags = scan_text(f"migrations/x{suffix}", prefix + body)
    assert all(flag.rule in RULES and flag.line >= 1 for flag in flags)
