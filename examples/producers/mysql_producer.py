"""Enqueue Tasque jobs from Python through MySQL or MariaDB, with PyMySQL.

Tasque's migrations install, for each namespace, the stored procedure
tasque_<namespace>_spawn(queue, task, params_json, options_json). It returns
one row (job_id, run_seq, attempt, created). Call it on your own connection,
inside your own transaction: the job exists if and only if that transaction
commits.

Run as a program, this file plays the scenarios that
crates/tasque-cli/tests/producers_python.rs checks against a real server and a
real worker: python mysql_producer.py SCENARIO URL NAMESPACE TABLE_PREFIX.
"""

import json
import sys
from urllib.parse import unquote, urlparse

import pymysql

# The SQLSTATE of every refusal (bad names, options or arguments): nothing is written.
INVALID_PARAMETER_VALUE = "22023"


def spawn_procedure(namespace, table_prefix="tasque_"):
    """A namespace's spawn procedure, quoted: `tasque_my-App_spawn`.

    Namespaces may hold '-', '.' and ':', so always quote the name.
    """
    return f"`{table_prefix}{namespace}_spawn`"


def spawn(conn, namespace, queue, task, params, options=None, table_prefix="tasque_"):
    """Enqueues one job in conn's current transaction; returns (job_id, created).

    created is False when the options' idempotency_key was already used in the
    queue: the existing job's id comes back and nothing is added.
    """
    with conn.cursor() as cursor:
        cursor.execute(
            f"CALL {spawn_procedure(namespace, table_prefix)}(%s, %s, %s, %s)",
            (queue, task, json.dumps(params), json.dumps(options or {})),
        )
        job_id, _run_seq, _attempt, created = cursor.fetchone()
        # A CALL ends with a status result of its own: read it before the next statement.
        while cursor.nextset():
            pass
    return job_id, bool(created)


def refusal(conn, error):
    """Why Tasque refused a spawn (SQLSTATE 22023), or None for any other error.

    PyMySQL reports only the error number and message, so ask the server for
    the SQLSTATE of the statement that just failed.
    """
    if not isinstance(error, pymysql.MySQLError):
        return None
    with conn.cursor() as cursor:
        cursor.execute("GET DIAGNOSTICS CONDITION 1 @tasque_sqlstate = RETURNED_SQLSTATE")
        cursor.execute("SELECT @tasque_sqlstate")
        (sqlstate,) = cursor.fetchone()
    if sqlstate == INVALID_PARAMETER_VALUE:
        return error.args[1]
    return None


def place_order(conn, namespace, total, table_prefix="tasque_"):
    """Stores an order and enqueues its confirmation: both are written or neither."""
    conn.begin()
    try:
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO orders (total) VALUES (%s)", (total,))
            order_id = cursor.lastrowid
        job_id, _ = spawn(
            conn,
            namespace,
            "mail",
            "order_confirmation",
            {"order": order_id},
            {"max_attempts": 5, "idempotency_key": f"order-{order_id}"},
            table_prefix,
        )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return order_id, job_id


# --- The scenarios the tests run -------------------------------------------------------


def scenario_transactional(conn, namespace, table_prefix):
    """10 orders committed with their jobs, 3 rolled back after their spawn, the same
    idempotency key twice, and a job with every option."""
    with conn.cursor() as cursor:
        # A temporary table: private to this connection, gone when it closes.
        cursor.execute(
            "CREATE TEMPORARY TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, total INT)"
            " ENGINE=InnoDB"
        )
    committed = [place_order(conn, namespace, total, table_prefix) for total in range(10)]
    rolled_back = []
    for total in range(3):
        conn.begin()
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO orders (total) VALUES (%s)", (1000 + total,))
            order_id = cursor.lastrowid
        job_id, _ = spawn(
            conn, namespace, "mail", "order_confirmation", {"order": order_id}, None, table_prefix
        )
        rolled_back.append(job_id)
        conn.rollback()
    again = spawn(
        conn, namespace, "mail", "order_confirmation", {"order": -1},
        {"idempotency_key": f"order-{committed[0][0]}"}, table_prefix,
    )
    conn.commit()
    options = spawn(
        conn, namespace, "reports", "build_report", {"report": "weekly"},
        {
            "priority": -5,
            "max_attempts": 3,
            "timeout_ms": 30000,
            "delay_ms": 3600000,
            "retry": {"kind": "fixed", "delay": 500},
            "headers": {"trace": "abc"},
        },
        table_prefix,
    )
    conn.commit()
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM orders")
        (orders,) = cursor.fetchone()
    return {
        "committed": committed,
        "rolled_back": rolled_back,
        "again": {"job_id": again[0], "created": again[1]},
        "options": options[0],
        "orders": orders,
    }


# Option documents the procedure must refuse, by label.
REFUSED_OPTIONS = {
    "zero_attempts": {"max_attempts": 0},
    "attempts_as_text": {"max_attempts": "3"},
    "fractional_attempts": {"max_attempts": 3.5},
    "priority_too_big": {"priority": 2**31},
    "unknown_option": {"colour": "blue"},
    "run_at_and_delay": {"run_at": "2030-01-01T00:00:00Z", "delay_ms": 10},
    "run_at_not_a_time": {"run_at": "next tuesday"},
    "run_at_out_of_range": {"run_at": "20000-01-01T00:00:00Z"},
    "delay_near_i64_max": {"delay_ms": 9223372036854775000},
    "unknown_retry_kind": {"retry": {"kind": "sometimes"}},
    "headers_not_an_object": {"headers": [1, 2]},
    "empty_idempotency_key": {"idempotency_key": ""},
    "options_not_an_object": [1, 2, 3],
}

# Option documents the procedure must accept (Python's json writes 3.0 for a float).
ACCEPTED_OPTIONS = {
    "python_floats": {"max_attempts": 3.0, "timeout_ms": 1000.0, "delay_ms": 5.0},
}


def scenario_refusals(conn, namespace, table_prefix):
    """Each refused option document, plus bad names, plus the accepted ones: the
    SQLSTATE and message of each refusal, the job id of each acceptance."""
    options = {**REFUSED_OPTIONS, **ACCEPTED_OPTIONS}
    cases = [(label, "refusals", "noop", options) for label, options in options.items()]
    cases += [
        ("queue_with_space", "bad queue", "noop", {}),
        ("empty_task", "refusals", "", {}),
    ]
    outcome = {}
    for label, queue, task, options in cases:
        conn.begin()
        try:
            job_id, _ = spawn(conn, namespace, queue, task, {}, options, table_prefix)
            conn.commit()
            outcome[label] = {"accepted": job_id}
        except pymysql.MySQLError as error:
            message = refusal(conn, error)
            conn.rollback()
            outcome[label] = {
                "sqlstate": INVALID_PARAMETER_VALUE if message else None,
                "message": message or str(error),
            }
    return outcome


SCENARIOS = {
    "transactional": scenario_transactional,
    "refusals": scenario_refusals,
}


def connect(url):
    """A PyMySQL connection from a mysql://user:password@host:port/database URL."""
    parts = urlparse(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        autocommit=False,
    )


def main(argv):
    scenario, url, namespace, table_prefix = argv[1:]
    conn = connect(url)
    try:
        result = SCENARIOS[scenario](conn, namespace, table_prefix)
    finally:
        conn.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
