"""Enqueue Tasque jobs from Python through PostgreSQL, with psycopg 3.

Tasque's migrations install two SQL functions in each namespace's schema
"tasque_<namespace>": spawn(queue, task, params, options) for one job and
spawn_batch(queues, tasks, params, options) for many. Call them on your own
connection, inside your own transaction: the job exists if and only if that
transaction commits, and workers are woken when it does.

Run as a program, this file plays the scenarios that
crates/tasque-cli/tests/producers_python.rs checks against a real server and a
real worker: python postgres_producer.py SCENARIO URL NAMESPACE.
"""

import json
import sys
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

# The SQLSTATE of every refusal (bad names, options or arguments): nothing is written.
INVALID_PARAMETER_VALUE = "22023"


def tasque_function(namespace, name):
    """A namespace's SQL function, quoted: "tasque_my-App"."spawn".

    Namespaces may hold capitals and '-', '.', ':', so always quote the schema.
    """
    return sql.Identifier("tasque_" + namespace, name)


def spawn(conn, namespace, queue, task, params, options=None):
    """Enqueues one job in conn's current transaction; returns (job_id, created).

    created is False when the options' idempotency_key was already used in the
    queue: the existing job's id comes back and nothing is added.
    """
    query = sql.SQL("SELECT job_id, created FROM {}(%s, %s, %s, %s)").format(
        tasque_function(namespace, "spawn")
    )
    row = conn.execute(query, (queue, task, Jsonb(params), Jsonb(options or {}))).fetchone()
    return row[0], row[1]


def spawn_batch(conn, namespace, jobs):
    """Enqueues many jobs in one call; jobs are (queue, task, params, options) tuples.

    Returns [(job_id, created)] in the order given. One invalid job refuses the
    whole batch (SQLSTATE 22023) and nothing is written.
    """
    if not jobs:
        return []
    queues, tasks, params, options = (list(column) for column in zip(*jobs))
    query = sql.SQL(
        "SELECT job_id, created FROM {}(%s::text[], %s::text[], %s::jsonb[], %s::jsonb[])"
    ).format(tasque_function(namespace, "spawn_batch"))
    rows = conn.execute(
        query,
        (queues, tasks, [Jsonb(p) for p in params], [Jsonb(o or {}) for o in options]),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def place_order(conn, namespace, total):
    """Stores an order and enqueues its confirmation: both are written or neither."""
    with conn.transaction():
        order_id = conn.execute(
            "INSERT INTO orders (total) VALUES (%s) RETURNING id", (total,)
        ).fetchone()[0]
        job_id, _ = spawn(
            conn,
            namespace,
            "mail",
            "order_confirmation",
            {"order": order_id},
            {"max_attempts": 5, "idempotency_key": f"order-{order_id}"},
        )
    return order_id, job_id


def refusal(error):
    """Why Tasque refused a spawn (SQLSTATE 22023), or None for any other error."""
    if isinstance(error, psycopg.Error) and error.sqlstate == INVALID_PARAMETER_VALUE:
        return error.diag.message_primary
    return None


# --- The scenarios the tests run -------------------------------------------------------


class Abandon(Exception):
    """Raised inside a transaction to roll it back."""


def scenario_transactional(conn, namespace):
    """20 orders committed with their jobs; 5 rolled back after their spawn."""
    conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, total integer NOT NULL)")
    committed = [place_order(conn, namespace, total) for total in range(20)]
    rolled_back = []
    for total in range(5):
        try:
            with conn.transaction():
                order_id = conn.execute(
                    "INSERT INTO orders (total) VALUES (%s) RETURNING id", (1000 + total,)
                ).fetchone()[0]
                job_id, _ = spawn(conn, namespace, "mail", "order_confirmation", {"order": order_id})
                rolled_back.append(job_id)
                raise Abandon()
        except Abandon:
            pass
    return {"committed": committed, "rolled_back": rolled_back}


def scenario_options(conn, namespace):
    """One job per option, and the same idempotency key twice."""
    now = datetime.now(timezone.utc)
    jobs = {}
    with conn.transaction():
        jobs["full"] = spawn(
            conn,
            namespace,
            "reports",
            "build_report",
            {"report": "weekly"},
            {
                "priority": -5,
                "max_attempts": 3,
                "timeout_ms": 30000,
                "retry": {"kind": "fixed", "delay": 500},
                "headers": {"trace": "abc"},
                "idempotency_key": "weekly-report",
            },
        )
        jobs["again"] = spawn(
            conn, namespace, "reports", "build_report", {"report": "other"},
            {"idempotency_key": "weekly-report"},
        )
        jobs["delayed"] = spawn(
            conn, namespace, "reports", "build_report", {"report": "later"}, {"delay_ms": 3600000}
        )
        jobs["past"] = spawn(
            conn, namespace, "reports", "build_report", {"report": "past"},
            {"run_at": (now - timedelta(minutes=1)).isoformat()},
        )
        jobs["future"] = spawn(
            conn, namespace, "reports", "build_report", {"report": "future"},
            {"run_at": "2099-01-01T00:00:00+00:00"},
        )
    return {name: {"job_id": job_id, "created": created} for name, (job_id, created) in jobs.items()}


def scenario_batch(conn, namespace):
    """100 jobs in one call; then a batch with one bad job, refused whole."""
    jobs = [("batch", "count", {"n": n}, {"priority": n % 3}) for n in range(100)]
    with conn.transaction():
        spawned = spawn_batch(conn, namespace, jobs)
    bad = [("batch", "count", {"n": 1000}, {}), ("batch", "count", {"n": 1001}, {"max_attempts": 0})]
    try:
        with conn.transaction():
            spawn_batch(conn, namespace, bad)
        refused = None
    except psycopg.Error as error:
        refused = {"sqlstate": error.sqlstate, "message": error.diag.message_primary}
    return {"job_ids": [job_id for job_id, _ in spawned], "refused": refused}


# Option documents the function must refuse, by label.
REFUSED_OPTIONS = {
    "zero_attempts": {"max_attempts": 0},
    "attempts_as_text": {"max_attempts": "3"},
    "fractional_attempts": {"max_attempts": 3.5},
    "priority_too_big": {"priority": 2**31},
    "unknown_option": {"colour": "blue"},
    "run_at_and_delay": {"run_at": "2030-01-01T00:00:00Z", "delay_ms": 10},
    "run_at_not_a_time": {"run_at": "next tuesday"},
    "run_at_infinity": {"run_at": "infinity"},
    "run_at_minus_infinity": {"run_at": "-infinity"},
    "run_at_out_of_range": {"run_at": "20000-01-01T00:00:00Z"},
    "delay_near_i64_max": {"delay_ms": 9223372036854775000},
    "negative_timeout": {"timeout_ms": -1},
    "unknown_retry_kind": {"retry": {"kind": "sometimes"}},
    "cap_below_base": {"retry": {"kind": "exponential", "base": 1000, "factor": 2, "cap": 10}},
    "headers_not_an_object": {"headers": [1, 2]},
    "empty_idempotency_key": {"idempotency_key": ""},
    "options_not_an_object": [1, 2, 3],
}


# Option documents the function must accept: Python's json writes any float with a
# fraction part (3.0), and integer-valued numbers count as integers.
ACCEPTED_OPTIONS = {
    "python_floats": {"max_attempts": 3.0, "timeout_ms": 1000.0, "delay_ms": 5.0},
    "float_priority": {"priority": -2.0},
}


def scenario_refusals(conn, namespace):
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
        try:
            with conn.transaction():
                job_id, _ = spawn(conn, namespace, queue, task, {}, options)
            outcome[label] = {"accepted": job_id}
        except psycopg.Error as error:
            outcome[label] = {"sqlstate": error.sqlstate, "message": error.diag.message_primary}
    return outcome


def scenario_exec(conn, namespace, directory):
    """Two jobs for the built-in exec task: one writes a file, one fails twice."""
    with conn.transaction():
        writes, _ = spawn(
            conn, namespace, "default", "exec",
            {
                "argv": ["sh", "-c", 'printf "%s" "$GREETING" > greeting.txt'],
                "cwd": directory,
                "env": {"GREETING": "hello from python"},
                "timeout_secs": 30,
            },
            {"max_attempts": 1},
        )
        fails, _ = spawn(
            conn, namespace, "default", "exec",
            {"argv": ["sh", "-c", "echo no such invoice >&2; exit 3"], "timeout_secs": 30},
            {"max_attempts": 2, "retry": {"kind": "fixed", "delay": 100}},
        )
    return {"writes": writes, "fails": fails}


SCENARIOS = {
    "transactional": scenario_transactional,
    "options": scenario_options,
    "batch": scenario_batch,
    "refusals": scenario_refusals,
    "exec": scenario_exec,
}


def main(argv):
    scenario, url, namespace, *rest = argv[1:]
    # autocommit: every statement outside a `with conn.transaction()` block commits alone.
    with psycopg.connect(url, autocommit=True) as conn:
        # The test keeps its own tables (orders) in the namespace's schema, dropped with it.
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier("tasque_" + namespace)))
        result = SCENARIOS[scenario](conn, namespace, *rest)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
