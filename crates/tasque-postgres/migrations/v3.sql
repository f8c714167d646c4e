-- name: strict option documents, fast spawn and spawn_batch
-- Tasque schema, version 3: strict option documents and fast enqueue from SQL, for one
-- namespace. Replaces the spawn functions of version 1 (same signatures, same results).
--
-- The rules of an option document are tasque-durable's `validate::parse_options`, checked in
-- the same order with the same messages, all in `spawn_problem` (the one place they live in
-- SQL, with its helpers `json_int_between`, `parse_run_at` and `retry_problem`): integer
-- options take any integral JSON number (3, 3.0, 3e0); timestamps are text in one format (see
-- `parse_run_at`) between 1000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z; durations
-- are 1 to 31557600000000 ms (1000 years); every refusal is SQLSTATE 22023 with a message
-- naming the option.
--
-- Speed (measured with auto_explain and timed loops, see crates/tasque-bench postgres_sql):
-- version 1 ran each check as a SQL function the planner could not inline (a sub-select), so
-- every call planned it again, and wrapped one job in arrays for spawn_batch. Now the checks
-- are PL/pgSQL (statements prepared once per session, and only the checks of the options
-- present run), `spawn` inserts its one row directly, a batch checks each distinct
-- (queue, task, options) once, and both notify once per queue with ready jobs.

-- True when `v` is a JSON number with an integral value in [lo, hi] (3.0 counts as 3).
CREATE OR REPLACE FUNCTION @schema@.json_int_between(v jsonb, lo numeric, hi numeric)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN jsonb_typeof(v) IS DISTINCT FROM 'number' THEN false
        ELSE v::numeric = trunc(v::numeric) AND v::numeric BETWEEN lo AND hi END
$fn$;

-- The instant of a timestamp text, or NULL when it is not one: `YYYY-MM-DD`, `T` (or `t` or a
-- space), `HH:MM:SS`, optionally `.` and 1 to 9 fraction digits (kept to the microsecond:
-- later digits are dropped), then `Z` (or `z`) or an offset `+HH:MM` / `-HH:MM` (hours 00 to
-- 23). The date and time must exist (no 02-30, no 24:00, no leap second). A local year before
-- 999 gives -infinity (out of range whatever the offset).
CREATE FUNCTION @schema@.parse_run_at(s text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    y integer;
    mo integer;
    days integer;
    zone integer;
    offset_minutes integer := 0;
BEGIN
    IF s IS NULL OR s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
        RETURN NULL;
    END IF;
    y := substr(s, 1, 4)::integer;
    mo := substr(s, 6, 2)::integer;
    days := CASE WHEN mo = 2 THEN CASE WHEN y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0)
            THEN 29 ELSE 28 END
        WHEN mo IN (4, 6, 9, 11) THEN 30
        ELSE 31 END;
    IF mo NOT BETWEEN 1 AND 12 OR substr(s, 9, 2)::integer NOT BETWEEN 1 AND days
            OR substr(s, 12, 2)::integer > 23 OR substr(s, 15, 2)::integer > 59
            OR substr(s, 18, 2)::integer > 59 THEN
        RETURN NULL;
    END IF;
    IF right(s, 1) IN ('Z', 'z') THEN
        zone := 1;
    ELSE
        zone := 6;
        IF substr(right(s, 5), 1, 2)::integer > 23 OR substr(right(s, 5), 4, 2)::integer > 59 THEN
            RETURN NULL;
        END IF;
        offset_minutes := substr(right(s, 5), 1, 2)::integer * 60
            + substr(right(s, 5), 4, 2)::integer;
        IF left(right(s, 6), 1) = '-' THEN
            offset_minutes := -offset_minutes;
        END IF;
    END IF;
    IF y < 999 THEN
        RETURN '-infinity';
    END IF;
    RETURN (make_timestamp(y, mo, substr(s, 9, 2)::integer, substr(s, 12, 2)::integer,
            substr(s, 15, 2)::integer, substr(s, 18, 2)::integer)
        + CASE WHEN substr(s, 20, 1) = '.'
            THEN rpad(left(substr(s, 21, length(s) - 20 - zone), 6), 6, '0')::integer
            ELSE 0 END * interval '1 microsecond'
        - offset_minutes * interval '1 minute') AT TIME ZONE 'UTC';
END
$fn$;

-- When a job given `o` (a valid option document) first runs, for a spawn at `at`.
CREATE FUNCTION @schema@.run_time(o jsonb, at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $fn$
    SELECT CASE
        WHEN o ? 'run_at' THEN @schema@.parse_run_at(o->>'run_at')
        WHEN o ? 'delay_ms' THEN at + (o->'delay_ms')::numeric::bigint * interval '1 millisecond'
        ELSE at
    END
$fn$;

-- Why a retry strategy is invalid, or NULL when it is valid.
CREATE OR REPLACE FUNCTION @schema@.retry_problem(r jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    kind text := r->>'kind';
    fields text[];
BEGIN
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' THEN
        RETURN 'invalid option `retry`: must be a JSON object such as {"kind": "fixed", "delay": 1000}';
    END IF;
    IF kind IS NULL OR kind NOT IN ('none', 'fixed', 'exponential') THEN
        RETURN 'invalid option `retry.kind`: must be "none", "fixed" or "exponential"';
    END IF;
    fields := CASE kind WHEN 'none' THEN '{kind}'::text[] WHEN 'fixed' THEN '{kind,delay}'::text[]
        ELSE '{kind,base,factor,cap}'::text[] END;
    IF r - fields <> '{}' THEN
        RETURN 'invalid option `retry`: unknown field `'
            || (jsonb_path_query_first(r - fields, '$.keyvalue().key') #>> '{}')
            || '` of kind ' || kind || '; its fields: ' || array_to_string(fields, ', ');
    END IF;
    IF kind = 'fixed' AND NOT @schema@.json_int_between(r->'delay', 1, 31557600000000) THEN
        RETURN 'invalid option `retry.delay`: must be an integer number of milliseconds from 1 to 31557600000000';
    END IF;
    IF kind = 'exponential' THEN
        IF NOT @schema@.json_int_between(r->'base', 1, 31557600000000) THEN
            RETURN 'invalid option `retry.base`: must be an integer number of milliseconds from 1 to 31557600000000';
        END IF;
        IF jsonb_typeof(r->'factor') IS DISTINCT FROM 'number'
                OR (r->'factor')::numeric NOT BETWEEN 1 AND 1000 THEN
            RETURN 'invalid option `retry.factor`: must be a number from 1 to 1000';
        END IF;
        IF coalesce(r->'cap', 'null') <> 'null' THEN
            IF NOT @schema@.json_int_between(r->'cap', 1, 31557600000000) THEN
                RETURN 'invalid option `retry.cap`: must be an integer number of milliseconds from 1 to 31557600000000';
            END IF;
            IF (r->'cap')::numeric < (r->'base')::numeric THEN
                RETURN 'invalid option `retry.cap`: must not be shorter than retry.base';
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END
$fn$;

-- Why one job given to spawn is invalid, or NULL when it is valid: the rules of the Rust API
-- (tasque-durable `validate`), in the same order. (PL/pgSQL: each check is prepared once per
-- session and only the checks an option present needs are evaluated.)
CREATE OR REPLACE FUNCTION @schema@.spawn_problem(queue text, task text, o jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    known CONSTANT text[] := '{max_attempts,priority,run_at,delay_ms,timeout_ms,retry,max_duration_ms,max_delay_ms,headers,idempotency_key}';
    millis CONSTANT text := 'must be an integer number of milliseconds from 1 to 31557600000000';
    at timestamptz;
    problem text;
BEGIN
    IF queue IS NULL OR octet_length(queue) NOT BETWEEN 1 AND 128
            OR queue ~ '[^A-Za-z0-9_.:-]' THEN
        RETURN 'invalid queue name ' || coalesce(quote_literal(left(queue, 200)), 'NULL')
            || ': 1 to 128 characters of A-Z a-z 0-9 _ . : -';
    END IF;
    IF task IS NULL OR octet_length(task) NOT BETWEEN 1 AND 128
            OR task ~ '[^A-Za-z0-9_.:-]' THEN
        RETURN 'invalid task name ' || coalesce(quote_literal(left(task, 200)), 'NULL')
            || ': 1 to 128 characters of A-Z a-z 0-9 _ . : -';
    END IF;
    IF jsonb_typeof(o) IS DISTINCT FROM 'object' THEN
        RETURN 'invalid option `options`: must be a JSON object';
    END IF;
    IF o = '{}' THEN
        RETURN NULL;
    END IF;
    IF o - known <> '{}' THEN
        RETURN 'invalid option `options`: unknown option `'
            || (jsonb_path_query_first(o - known, '$.keyvalue().key') #>> '{}')
            || '`; known: ' || array_to_string(known, ', ');
    END IF;
    IF o ? 'max_attempts' AND NOT @schema@.json_int_between(o->'max_attempts', 1, 2147483647) THEN
        RETURN 'invalid option `max_attempts`: must be an integer from 1 to 2147483647';
    END IF;
    IF o ? 'priority'
            AND NOT @schema@.json_int_between(o->'priority', -2147483648, 2147483647) THEN
        RETURN 'invalid option `priority`: must be an integer from -2147483648 to 2147483647';
    END IF;
    IF o ? 'run_at' THEN
        IF o ? 'delay_ms' THEN
            RETURN 'invalid option `run_at`: give run_at or delay_ms, not both';
        END IF;
        IF jsonb_typeof(o->'run_at') = 'string' THEN
            at := @schema@.parse_run_at(o->>'run_at');
        END IF;
        IF at IS NULL THEN
            RETURN 'invalid option `run_at`: must be a timestamp like 2030-01-31T08:00:00Z or '
                || '2030-01-31T09:00:00.250+01:00 (date, T or space, time, up to 9 fraction '
                || 'digits, Z or an offset +HH:MM)';
        END IF;
        IF at NOT BETWEEN '1000-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00' THEN
            RETURN 'invalid option `run_at`: must be from 1000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z';
        END IF;
    END IF;
    IF o ? 'delay_ms' AND NOT @schema@.json_int_between(o->'delay_ms', 1, 31557600000000) THEN
        RETURN 'invalid option `delay_ms`: ' || millis;
    END IF;
    IF o ? 'timeout_ms' AND NOT @schema@.json_int_between(o->'timeout_ms', 1, 31557600000000) THEN
        RETURN 'invalid option `timeout_ms`: ' || millis;
    END IF;
    IF o ? 'retry' THEN
        problem := @schema@.retry_problem(o->'retry');
        IF problem IS NOT NULL THEN
            RETURN problem;
        END IF;
    END IF;
    IF o ? 'max_duration_ms'
            AND NOT @schema@.json_int_between(o->'max_duration_ms', 1, 31557600000000) THEN
        RETURN 'invalid option `max_duration_ms`: ' || millis;
    END IF;
    IF o ? 'max_delay_ms'
            AND NOT @schema@.json_int_between(o->'max_delay_ms', 1, 31557600000000) THEN
        RETURN 'invalid option `max_delay_ms`: ' || millis;
    END IF;
    IF o ? 'headers' AND jsonb_typeof(o->'headers') NOT IN ('object', 'null') THEN
        RETURN 'invalid option `headers`: must be a JSON object';
    END IF;
    IF o ? 'idempotency_key' AND (jsonb_typeof(o->'idempotency_key') <> 'string'
            OR octet_length(o->>'idempotency_key') NOT BETWEEN 1 AND 255
            OR o->>'idempotency_key' ~ '[\x01-\x1f\x7f-\x9f]') THEN
        RETURN 'invalid option `idempotency_key`: must be a string of 1 to 255 bytes without control characters';
    END IF;
    RETURN NULL;
END
$fn$;

-- The retry strategy a valid `retry` option stores: only its own fields, in integer
-- milliseconds. (Absent: the default, written by the callers.)
CREATE FUNCTION @schema@.stored_retry(r jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN CASE
        WHEN r->>'kind' = 'none' THEN '{"kind": "none"}'::jsonb
        WHEN r->>'kind' = 'fixed'
            THEN jsonb_build_object('kind', 'fixed', 'delay', (r->'delay')::numeric::bigint)
        ELSE jsonb_build_object('kind', 'exponential', 'base', (r->'base')::numeric::bigint,
            'factor', r->'factor', 'cap', CASE WHEN coalesce(r->'cap', 'null') = 'null' THEN NULL
                ELSE (r->'cap')::numeric::bigint END)
    END;
END
$fn$;

-- Enqueues many jobs at once (the arrays are parallel: job i is queues[i], tasks[i], params[i],
-- options[i]). Validates every job first (one invalid job refuses the batch, SQLSTATE 22023),
-- creates missing queues, inserts, returns one row per job in input order, and announces the
-- queues with ready jobs on the namespace's channel (delivered when the transaction commits).
-- A job whose idempotency key is already used in its queue is not inserted: the existing job
-- is returned with created = false.
CREATE OR REPLACE FUNCTION @schema@.spawn_batch(queues text[], tasks text[], params jsonb[],
        options jsonb[])
RETURNS TABLE (job_id bigint, run_seq bigint, attempt integer, created boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    n integer := coalesce(array_length(queues, 1), 0);
    bad_ord bigint;
    problem text;
    ids bigint[];
    written bigint;
    at timestamptz := clock_timestamp();
BEGIN
    IF coalesce(array_length(tasks, 1), 0) <> n OR coalesce(array_length(params, 1), 0) <> n
            OR coalesce(array_length(options, 1), 0) <> n THEN
        RAISE EXCEPTION 'tasque: queues, tasks, params and options must have the same length'
            USING ERRCODE = '22023';
    END IF;
    IF n = 0 THEN
        RETURN;
    END IF;
    -- Each distinct (queue, task, options) is checked once: a batch's jobs usually share them.
    SELECT v.ord, v.problem INTO bad_ord, problem
        FROM (SELECT min(u.ord) AS ord,
                @schema@.spawn_problem(u.q, u.t, coalesce(u.o, '{}')) AS problem
            FROM unnest(queues, tasks, options) WITH ORDINALITY AS u(q, t, o, ord)
            GROUP BY u.q, u.t, u.o
            OFFSET 0) AS v -- (keeps the check per group, not pushed down to every row)
        WHERE v.problem IS NOT NULL
        ORDER BY v.ord LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'tasque: job % of the batch: %', bad_ord, problem USING ERRCODE = '22023';
    END IF;
    INSERT INTO @schema@.queues (name)
        SELECT DISTINCT u.q FROM unnest(queues) AS u(q)
        WHERE NOT EXISTS (SELECT 1 FROM @schema@.queues AS e WHERE e.name = u.q)
        ORDER BY 1 ON CONFLICT DO NOTHING;
    ids := ARRAY(SELECT nextval('@schema@.jobs_id_seq') FROM generate_series(1, n));
    INSERT INTO @schema@.jobs (id, queue, task, params, headers, state, priority, max_attempts,
            retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at, idempotency_key, run_at,
            created_at)
        SELECT x.id, x.q, x.t, coalesce(x.p, 'null'), nullif(x.o->'headers', 'null'), 'pending',
            coalesce((x.o->'priority')::numeric::integer, 0),
            coalesce((x.o->'max_attempts')::numeric::integer, 20),
            CASE WHEN x.o ? 'retry' THEN @schema@.stored_retry(x.o->'retry')
                ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}' END,
            (x.o->'timeout_ms')::numeric::bigint, (x.o->'max_duration_ms')::numeric::bigint,
            (x.o->'max_delay_ms')::numeric::bigint,
            x.r + (x.o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
            x.o->>'idempotency_key', x.r, at
        FROM (SELECT u.id, u.q, u.t, u.p, coalesce(u.o, '{}') AS o,
                @schema@.run_time(coalesce(u.o, '{}'), at) AS r
            FROM unnest(ids, queues, tasks, params, options) AS u(id, q, t, p, o)) AS x
        ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM pg_notify('@channel@', d.q) FROM (SELECT DISTINCT u.q
        FROM unnest(queues, options) AS u(q, o)
        WHERE @schema@.run_time(coalesce(u.o, '{}'), at) <= at) AS d;
    IF written = n THEN
        RETURN QUERY SELECT u.id, 1::bigint, 1, true
            FROM unnest(ids) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord;
        RETURN;
    END IF;
    -- Some keys were taken. A new statement, so a key taken by a transaction that committed
    -- meanwhile is seen.
    RETURN QUERY SELECT coalesce(j.id, k.id), coalesce(j.run_seq, k.run_seq),
            coalesce(j.attempt, k.attempt), j.id IS NOT NULL
        FROM unnest(ids, queues, options) WITH ORDINALITY AS u(id, q, o, ord)
        LEFT JOIN @schema@.jobs AS j ON j.id = u.id
        LEFT JOIN @schema@.jobs AS k ON j.id IS NULL AND k.queue = u.q
            AND k.idempotency_key = u.o->>'idempotency_key'
        ORDER BY u.ord;
END
$fn$;

-- Enqueues one job: the function to call from any language. `options` is an option document
-- (a JSON object with any of max_attempts, priority, run_at, delay_ms, timeout_ms, retry,
-- max_duration_ms, max_delay_ms, headers and idempotency_key). Returns one row: the job, its
-- first run, attempt 1, and whether it was created (false: its idempotency key was already
-- used in the queue, and this is that job). One statement inserts the row; the queue is
-- created when missing; the namespace's channel is notified when the job is ready now.
CREATE OR REPLACE FUNCTION @schema@.spawn(queue text, task text, params jsonb DEFAULT '{}',
        options jsonb DEFAULT '{}')
RETURNS TABLE (job_id bigint, run_seq bigint, attempt integer, created boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    o jsonb := coalesce(options, '{}');
    problem text := @schema@.spawn_problem(queue, task, o);
    at timestamptz := clock_timestamp();
    r timestamptz;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'tasque: %', problem USING ERRCODE = '22023';
    END IF;
    r := @schema@.run_time(o, at);
    IF NOT EXISTS (SELECT 1 FROM @schema@.queues AS e WHERE e.name = spawn.queue) THEN
        INSERT INTO @schema@.queues (name) VALUES (spawn.queue) ON CONFLICT DO NOTHING;
    END IF;
    INSERT INTO @schema@.jobs AS j (queue, task, params, headers, state, priority, max_attempts,
            retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at, idempotency_key, run_at,
            created_at)
        VALUES (spawn.queue, spawn.task, coalesce(spawn.params, 'null'),
            nullif(o->'headers', 'null'), 'pending',
            coalesce((o->'priority')::numeric::integer, 0),
            coalesce((o->'max_attempts')::numeric::integer, 20),
            CASE WHEN o ? 'retry' THEN @schema@.stored_retry(o->'retry')
                ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}' END,
            (o->'timeout_ms')::numeric::bigint, (o->'max_duration_ms')::numeric::bigint,
            (o->'max_delay_ms')::numeric::bigint,
            r + (o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
            o->>'idempotency_key', r, at)
        ON CONFLICT DO NOTHING
        RETURNING j.id, j.run_seq, j.attempt INTO job_id, run_seq, attempt;
    IF FOUND THEN
        created := true;
        IF r <= at THEN
            PERFORM pg_notify('@channel@', spawn.queue);
        END IF;
    ELSE
        -- The key is taken. A new statement, so a key taken by a transaction that committed
        -- meanwhile is seen.
        SELECT k.id, k.run_seq, k.attempt INTO job_id, run_seq, attempt
            FROM @schema@.jobs AS k
            WHERE k.queue = spawn.queue AND k.idempotency_key = o->>'idempotency_key';
        created := false;
    END IF;
    RETURN NEXT;
END
$fn$;
