-- name: a cheaper single spawn
-- Version 12: `spawn` does only the work its options ask for (same signature, results, checks,
-- messages and notifications as version 11).
--
-- A LANGUAGE sql function that PostgreSQL cannot inline is parsed and planned again each time
-- a statement calling it starts, which cost a single `spawn` more than its insert:
-- `unique_mask` (its body has a subquery) and `unique_bucket` (declared IMMUTABLE around the
-- STABLE `extract(epoch FROM timestamptz)`) were called for every job, unique or not. Now:
-- - `unique_bucket` is STABLE, so it is inlined into its callers;
-- - `unique_mask` is PL/pgSQL, whose statements are prepared once per session;
-- - `spawn` calls them only for a job with a `unique` option, and a job with neither
--   `idempotency_key` nor `unique` cannot conflict (its id comes from the sequence), so it is
--   inserted without `ON CONFLICT` (no speculative insertion, no arbiter index checks).

CREATE OR REPLACE FUNCTION @schema@.unique_bucket(u jsonb, r timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
    SELECT CASE WHEN u IS NULL OR NOT u ? 'period_ms' THEN 0
        ELSE floor(floor(extract(epoch FROM r) * 1000)
            / (u->'period_ms')::numeric::bigint)::bigint END
$fn$;

CREATE OR REPLACE FUNCTION @schema@.unique_mask(u jsonb) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF u IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT u ? 'states' THEN
        RETURN 31;
    END IF;
    RETURN (SELECT bit_or(CASE lower(s) WHEN 'available' THEN 1 WHEN 'scheduled' THEN 1
            WHEN 'running' THEN 2 WHEN 'sleeping' THEN 4 WHEN 'waiting' THEN 8
            WHEN 'completed' THEN 16 WHEN 'failed' THEN 32 WHEN 'cancelled' THEN 64 END)
        FROM jsonb_array_elements_text(u->'states') AS s);
END
$fn$;

-- Why one job given to spawn is invalid, or NULL when it is valid: the checks of version 7, in
-- the same order with the same messages, as one expression, so PostgreSQL inlines it into the
-- calling statement (a PL/pgSQL function is a call with its own setup, and each of its checks
-- an expression evaluated on its own). Only the checks an option present needs are evaluated.
CREATE OR REPLACE FUNCTION @schema@.spawn_problem(queue text, task text, o jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN queue IS NULL OR octet_length(queue) NOT BETWEEN 1 AND 128
                OR queue ~ '[^A-Za-z0-9_.:-]'
            THEN 'invalid queue name ' || coalesce(quote_literal(left(queue, 200)), 'NULL')
                || ': 1 to 128 characters of A-Z a-z 0-9 _ . : -'
        WHEN task IS NULL OR octet_length(task) NOT BETWEEN 1 AND 128
                OR task ~ '[^A-Za-z0-9_.:-]'
            THEN 'invalid task name ' || coalesce(quote_literal(left(task, 200)), 'NULL')
                || ': 1 to 128 characters of A-Z a-z 0-9 _ . : -'
        WHEN jsonb_typeof(o) IS DISTINCT FROM 'object'
            THEN 'invalid option `options`: must be a JSON object'
        WHEN o = '{}' THEN NULL
        WHEN o - '{max_attempts,priority,run_at,delay_ms,timeout_ms,retry,max_duration_ms,max_delay_ms,headers,idempotency_key,unique,ordering_key}'::text[] <> '{}'
            THEN 'invalid option `options`: unknown option `'
                || (jsonb_path_query_first(o - '{max_attempts,priority,run_at,delay_ms,timeout_ms,retry,max_duration_ms,max_delay_ms,headers,idempotency_key,unique,ordering_key}'::text[],
                    '$.keyvalue().key') #>> '{}')
                || '`; known: max_attempts, priority, run_at, delay_ms, timeout_ms, retry, '
                || 'max_duration_ms, max_delay_ms, headers, idempotency_key, unique, ordering_key'
        WHEN o ? 'max_attempts'
                AND NOT @schema@.json_int_between(o->'max_attempts', 1, 2147483647)
            THEN 'invalid option `max_attempts`: must be an integer from 1 to 2147483647'
        WHEN o ? 'priority'
                AND NOT @schema@.json_int_between(o->'priority', -2147483648, 2147483647)
            THEN 'invalid option `priority`: must be an integer from -2147483648 to 2147483647'
        WHEN o ? 'run_at' AND o ? 'delay_ms'
            THEN 'invalid option `run_at`: give run_at or delay_ms, not both'
        WHEN o ? 'run_at' AND (jsonb_typeof(o->'run_at') <> 'string'
                OR @schema@.parse_run_at(o->>'run_at') IS NULL)
            THEN 'invalid option `run_at`: must be a timestamp like 2030-01-31T08:00:00Z or '
                || '2030-01-31T09:00:00.250+01:00 (date, T or space, time, up to 9 fraction '
                || 'digits, Z or an offset +HH:MM)'
        WHEN o ? 'run_at' AND @schema@.parse_run_at(o->>'run_at')
                NOT BETWEEN '1000-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00'
            THEN 'invalid option `run_at`: must be from 1000-01-01T00:00:00Z to '
                || '9999-12-31T23:59:59.999999Z'
        WHEN o ? 'delay_ms' AND NOT @schema@.json_int_between(o->'delay_ms', 1, 31557600000000)
            THEN 'invalid option `delay_ms`: must be an integer number of milliseconds from 1 to '
                || '31557600000000'
        WHEN o ? 'timeout_ms'
                AND NOT @schema@.json_int_between(o->'timeout_ms', 1, 31557600000000)
            THEN 'invalid option `timeout_ms`: must be an integer number of milliseconds from 1 '
                || 'to 31557600000000'
        WHEN o ? 'retry' AND @schema@.retry_problem(o->'retry') IS NOT NULL
            THEN @schema@.retry_problem(o->'retry')
        WHEN o ? 'max_duration_ms'
                AND NOT @schema@.json_int_between(o->'max_duration_ms', 1, 31557600000000)
            THEN 'invalid option `max_duration_ms`: must be an integer number of milliseconds '
                || 'from 1 to 31557600000000'
        WHEN o ? 'max_delay_ms'
                AND NOT @schema@.json_int_between(o->'max_delay_ms', 1, 31557600000000)
            THEN 'invalid option `max_delay_ms`: must be an integer number of milliseconds from '
                || '1 to 31557600000000'
        WHEN o ? 'headers' AND jsonb_typeof(o->'headers') NOT IN ('object', 'null')
            THEN 'invalid option `headers`: must be a JSON object'
        WHEN o ? 'idempotency_key' AND (jsonb_typeof(o->'idempotency_key') <> 'string'
                OR octet_length(o->>'idempotency_key') NOT BETWEEN 1 AND 255
                OR o->>'idempotency_key' ~ '[\x01-\x1f\x7f-\x9f]')
            THEN 'invalid option `idempotency_key`: must be a string of 1 to 255 bytes without '
                || 'control characters'
        WHEN o ? 'unique' AND @schema@.unique_problem(o->'unique') IS NOT NULL
            THEN @schema@.unique_problem(o->'unique')
        WHEN o ? 'ordering_key' AND (jsonb_typeof(o->'ordering_key') <> 'string'
                OR octet_length(o->>'ordering_key') NOT BETWEEN 1 AND 255
                OR o->>'ordering_key' ~ '[\x01-\x1f\x7f-\x9f]')
            THEN 'invalid option `ordering_key`: must be a string of 1 to 255 bytes without '
                || 'control characters'
    END
$fn$;

-- Enqueues one job: the function to call from any language (see version 7; quiet queues: see
-- version 11).
CREATE OR REPLACE FUNCTION @schema@.spawn(queue text, task text, params jsonb DEFAULT '{}',
        options jsonb DEFAULT '{}')
RETURNS TABLE (job_id bigint, run_seq bigint, attempt integer, created boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    o jsonb := coalesce(options, '{}');
    problem text := @schema@.spawn_problem(queue, task, o);
    at timestamptz := clock_timestamp();
    r timestamptz;
    wake boolean;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'tasque: %', problem USING ERRCODE = '22023';
    END IF;
    r := @schema@.run_time(o, at);
    SELECT e.notify INTO wake FROM @schema@.queues AS e WHERE e.name = spawn.queue;
    IF NOT FOUND THEN
        INSERT INTO @schema@.queues (name) VALUES (spawn.queue) ON CONFLICT DO NOTHING;
        SELECT e.notify INTO wake FROM @schema@.queues AS e WHERE e.name = spawn.queue;
    END IF;
    IF o ? 'ordering_key' THEN
        UPDATE @schema@.queues AS e SET keyed = true WHERE e.name = spawn.queue AND NOT e.keyed;
    END IF;
    created := true;
    IF NOT o ?| '{idempotency_key,unique}' THEN
        -- No key and no unique slot: nothing can conflict.
        INSERT INTO @schema@.jobs AS j (queue, task, params, headers, state, priority,
                max_attempts, retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at,
                run_at, created_at, ordering_key)
            VALUES (spawn.queue, spawn.task, coalesce(spawn.params, 'null'),
                nullif(o->'headers', 'null'), 'pending',
                coalesce((o->'priority')::numeric::integer, 0),
                coalesce((o->'max_attempts')::numeric::integer, 20),
                CASE WHEN o ? 'retry' THEN @schema@.stored_retry(o->'retry')
                    ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}'
                    END,
                (o->'timeout_ms')::numeric::bigint, (o->'max_duration_ms')::numeric::bigint,
                (o->'max_delay_ms')::numeric::bigint,
                r + (o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
                r, at, o->>'ordering_key')
            RETURNING j.id, j.run_seq, j.attempt INTO job_id, run_seq, attempt;
        IF r <= at AND coalesce(wake, true) THEN
            PERFORM pg_notify('@channel@', spawn.queue);
        END IF;
        RETURN NEXT;
        RETURN;
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
            CASE WHEN o ? 'unique' THEN @schema@.unique_bucket(o->'unique', r) ELSE 0 END,
            CASE WHEN o ? 'unique' THEN @schema@.unique_mask(o->'unique') ELSE 0 END,
            o->>'ordering_key')
        ON CONFLICT DO NOTHING
        RETURNING j.id, j.run_seq, j.attempt INTO job_id, run_seq, attempt;
    IF FOUND THEN
        IF r <= at AND coalesce(wake, true) THEN
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
    created := true;
    END LOOP;
    RETURN NEXT;
END
$fn$;
