-- name: flow control: ordering keys and rate limits
-- Version 7: per-key order and concurrency, and rate limits, enforced by the claim (see
-- tasque-durable's `flow` module for the model).
--
-- A job's `ordering_key` puts it in a key of its queue. A queue with keyed jobs is flagged
-- `keyed` (by the spawn functions), which makes its claims gated: taken under the queue row's
-- lock, where a keyed job starts only while fewer than `key_concurrency` jobs of its key
-- created before it are unfinished (`jobs_key_unfinished` serves that count). A keyed job that
-- exhausts its attempts holds its key (`holds_queue`) when `key_on_exhausted` is
-- 'stay_blocked'. `rate_limit` starts per `rate_window_ms` (epoch-aligned windows) are counted
-- per `rate_key` ('queue', 'ordering_key' or 'arg:PATH') in `rate_windows`, one row per
-- (queue, key) holding its current window's start and count.
--
-- The spawn functions of version 6 are replaced (same signatures) to take `ordering_key`.

ALTER TABLE @schema@.jobs ADD COLUMN ordering_key text;
CREATE INDEX jobs_key_unfinished ON @schema@.jobs (queue, ordering_key, id)
    WHERE ordering_key IS NOT NULL
        AND (state IN ('pending', 'running', 'sleeping', 'waiting') OR holds_queue);
ALTER TABLE @schema@.queues ADD COLUMN keyed boolean NOT NULL DEFAULT false,
    ADD COLUMN key_concurrency integer NOT NULL DEFAULT 1,
    ADD COLUMN key_on_exhausted text NOT NULL DEFAULT 'continue',
    ADD COLUMN rate_limit integer,
    ADD COLUMN rate_window_ms bigint,
    ADD COLUMN rate_key text NOT NULL DEFAULT 'queue';
CREATE TABLE @schema@.rate_windows (
    queue text NOT NULL,
    key text NOT NULL,
    window_start_ms bigint NOT NULL,
    starts integer NOT NULL,
    PRIMARY KEY (queue, key)
);

CREATE OR REPLACE FUNCTION @schema@.spawn_problem(queue text, task text, o jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    known CONSTANT text[] := '{max_attempts,priority,run_at,delay_ms,timeout_ms,retry,max_duration_ms,max_delay_ms,headers,idempotency_key,unique,ordering_key}';
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
    IF o ? 'unique' THEN
        problem := @schema@.unique_problem(o->'unique');
        IF problem IS NOT NULL THEN
            RETURN problem;
        END IF;
    END IF;
    IF o ? 'ordering_key' AND (jsonb_typeof(o->'ordering_key') <> 'string'
            OR octet_length(o->>'ordering_key') NOT BETWEEN 1 AND 255
            OR o->>'ordering_key' ~ '[\x01-\x1f\x7f-\x9f]') THEN
        RETURN 'invalid option `ordering_key`: must be a string of 1 to 255 bytes without control characters';
    END IF;
    RETURN NULL;
END
$fn$;

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
    -- A queue with keyed jobs is claimed under its row lock (see the flow control docs).
    UPDATE @schema@.queues AS e SET keyed = true
        WHERE NOT e.keyed AND e.name IN (SELECT u.q FROM unnest(queues, options) AS u(q, o)
            WHERE u.o ? 'ordering_key');
    ids := ARRAY(SELECT nextval('@schema@.jobs_id_seq') FROM generate_series(1, n));
    INSERT INTO @schema@.jobs (id, queue, task, params, headers, state, priority, max_attempts,
            retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at, idempotency_key, run_at,
            created_at, unique_key, unique_bucket, unique_states, ordering_key)
        SELECT x.id, x.q, x.t, coalesce(x.p, 'null'), nullif(x.o->'headers', 'null'), 'pending',
            coalesce((x.o->'priority')::numeric::integer, 0),
            coalesce((x.o->'max_attempts')::numeric::integer, 20),
            CASE WHEN x.o ? 'retry' THEN @schema@.stored_retry(x.o->'retry')
                ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}' END,
            (x.o->'timeout_ms')::numeric::bigint, (x.o->'max_duration_ms')::numeric::bigint,
            (x.o->'max_delay_ms')::numeric::bigint,
            x.r + (x.o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
            x.o->>'idempotency_key', x.r, at, x.o->'unique'->>'key',
            @schema@.unique_bucket(x.o->'unique', x.r), @schema@.unique_mask(x.o->'unique'),
            x.o->>'ordering_key'
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
    -- Some keys or unique slots were taken. A new statement, so a key taken by a transaction
    -- that committed meanwhile is seen. (A slot whose holder left its unique states between
    -- the two statements names no job: the caller sees a NULL id and may try again.)
    RETURN QUERY SELECT coalesce(j.id, k.id, h.id), coalesce(j.run_seq, k.run_seq, h.run_seq),
            coalesce(j.attempt, k.attempt, h.attempt), j.id IS NOT NULL
        FROM unnest(ids, queues, options) WITH ORDINALITY AS u(id, q, o, ord)
        LEFT JOIN @schema@.jobs AS j ON j.id = u.id
        LEFT JOIN @schema@.jobs AS k ON j.id IS NULL AND k.queue = u.q
            AND k.idempotency_key = u.o->>'idempotency_key'
        LEFT JOIN LATERAL (SELECT h.id, h.run_seq, h.attempt FROM @schema@.jobs AS h
            WHERE j.id IS NULL AND k.id IS NULL AND h.unique_key = u.o->'unique'->>'key'
                AND h.unique_bucket = @schema@.unique_bucket(u.o->'unique',
                    @schema@.run_time(coalesce(u.o, '{}'), at))
                AND (h.unique_states & @schema@.unique_bit(h.state)) <> 0
            LIMIT 1) AS h ON true
        ORDER BY u.ord;
END
$fn$;

-- Enqueues one job: the function to call from any language. `options` is an option document
-- (a JSON object with any of max_attempts, priority, run_at, delay_ms, timeout_ms, retry,
-- max_duration_ms, max_delay_ms, headers, idempotency_key and unique). Returns one row: the job, its
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
    IF o ? 'ordering_key' THEN
        UPDATE @schema@.queues AS e SET keyed = true WHERE e.name = spawn.queue AND NOT e.keyed;
    END IF;
    LOOP
    INSERT INTO @schema@.jobs AS j (queue, task, params, headers, state, priority, max_attempts,
            retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at, idempotency_key, run_at,
            created_at, unique_key, unique_bucket, unique_states, ordering_key)
        VALUES (spawn.queue, spawn.task, coalesce(spawn.params, 'null'),
            nullif(o->'headers', 'null'), 'pending',
            coalesce((o->'priority')::numeric::integer, 0),
            coalesce((o->'max_attempts')::numeric::integer, 20),
            CASE WHEN o ? 'retry' THEN @schema@.stored_retry(o->'retry')
                ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}' END,
            (o->'timeout_ms')::numeric::bigint, (o->'max_duration_ms')::numeric::bigint,
            (o->'max_delay_ms')::numeric::bigint,
            r + (o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
            o->>'idempotency_key', r, at, o->'unique'->>'key',
            @schema@.unique_bucket(o->'unique', r), @schema@.unique_mask(o->'unique'),
            o->>'ordering_key')
        ON CONFLICT DO NOTHING
        RETURNING j.id, j.run_seq, j.attempt INTO job_id, run_seq, attempt;
    IF FOUND THEN
        created := true;
        IF r <= at THEN
            PERFORM pg_notify('@channel@', spawn.queue);
        END IF;
        EXIT;
    END IF;
    -- The key or the unique slot is taken. A new statement, so a key taken by a transaction
    -- that committed meanwhile is seen.
    created := false;
    IF o ? 'idempotency_key' THEN
        SELECT k.id, k.run_seq, k.attempt INTO job_id, run_seq, attempt
            FROM @schema@.jobs AS k
            WHERE k.queue = spawn.queue AND k.idempotency_key = o->>'idempotency_key';
        EXIT WHEN FOUND;
    END IF;
    SELECT h.id, h.run_seq, h.attempt INTO job_id, run_seq, attempt
        FROM @schema@.jobs AS h
        WHERE h.unique_key = o->'unique'->>'key'
            AND h.unique_bucket = @schema@.unique_bucket(o->'unique', r)
            AND (h.unique_states & @schema@.unique_bit(h.state)) <> 0
        LIMIT 1;
    EXIT WHEN FOUND;
    -- The holder left its unique states meanwhile: the slot is free, insert again.
    END LOOP;
    RETURN NEXT;
END
$fn$;
