-- name: quiet queues and a leaner spawn_batch
-- Version 11: queues that skip NOTIFY, and a cheaper batch insert. The spawn functions of
-- version 7 are replaced (same signatures, same results, same checks and messages).
--
-- `queues.notify` (default true): whether a spawn of a ready job into the queue notifies the
-- namespace's channel. A NOTIFY makes PostgreSQL take a database-wide lock when the
-- transaction commits and hold it through the commit's WAL flush, so producers that notify
-- commit one at a time; with many producing connections that lock, not the insert, bounds the
-- rate. A queue with `notify = false` is "quiet": its spawns write the row only, and workers
-- find its jobs by polling (the worker's poll interval), or at once while they are busy, since
-- a worker that claimed a full batch claims again without waiting.
--
-- spawn_batch: the checks are unchanged; the per-row work is only what the batch's options
-- need: a batch without `idempotency_key` or `unique` options cannot conflict (its ids come
-- from the sequence), so it inserts without `ON CONFLICT` (no speculative insertion), and the
-- run time, unique bucket and mask are computed only for rows whose options have them.
ALTER TABLE @schema@.queues ADD COLUMN notify boolean NOT NULL DEFAULT true;

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
    keyed boolean;
    timed boolean;
    exclusive boolean;
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
    -- What the batch's options ask for, in one pass (the options are valid objects now).
    SELECT coalesce(bool_or(u.o ? 'ordering_key'), false),
            coalesce(bool_or(u.o ?| '{run_at,delay_ms}'), false),
            coalesce(bool_or(u.o ?| '{idempotency_key,unique}'), false)
        INTO keyed, timed, exclusive
        FROM unnest(options) AS u(o) WHERE u.o IS NOT NULL AND u.o <> '{}';
    INSERT INTO @schema@.queues (name)
        SELECT DISTINCT u.q FROM unnest(queues) AS u(q)
        WHERE NOT EXISTS (SELECT 1 FROM @schema@.queues AS e WHERE e.name = u.q)
        ORDER BY 1 ON CONFLICT DO NOTHING;
    -- A queue with keyed jobs is claimed under its row lock (see the flow control docs).
    IF keyed THEN
        UPDATE @schema@.queues AS e SET keyed = true
            WHERE NOT e.keyed AND e.name IN (SELECT u.q FROM unnest(queues, options) AS u(q, o)
                WHERE u.o ? 'ordering_key');
    END IF;
    ids := ARRAY(SELECT nextval('@schema@.jobs_id_seq') FROM generate_series(1, n));
    IF exclusive THEN
        INSERT INTO @schema@.jobs (id, queue, task, params, headers, state, priority,
                max_attempts, retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at,
                idempotency_key, run_at, created_at, unique_key, unique_bucket, unique_states,
                ordering_key)
            SELECT x.id, x.q, x.t, coalesce(x.p, 'null'), nullif(x.o->'headers', 'null'),
                'pending', coalesce((x.o->'priority')::numeric::integer, 0),
                coalesce((x.o->'max_attempts')::numeric::integer, 20),
                CASE WHEN x.o ? 'retry' THEN @schema@.stored_retry(x.o->'retry')
                    ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}' END,
                (x.o->'timeout_ms')::numeric::bigint, (x.o->'max_duration_ms')::numeric::bigint,
                (x.o->'max_delay_ms')::numeric::bigint,
                x.r + (x.o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
                x.o->>'idempotency_key', x.r, at, x.o->'unique'->>'key',
                CASE WHEN x.o ? 'unique' THEN @schema@.unique_bucket(x.o->'unique', x.r)
                    ELSE 0 END,
                CASE WHEN x.o ? 'unique' THEN @schema@.unique_mask(x.o->'unique') ELSE 0 END,
                x.o->>'ordering_key'
            FROM (SELECT u.id, u.q, u.t, u.p, coalesce(u.o, '{}') AS o,
                    @schema@.run_time(coalesce(u.o, '{}'), at) AS r
                FROM unnest(ids, queues, tasks, params, options) AS u(id, q, t, p, o)) AS x
            ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS written = ROW_COUNT;
    ELSE
        -- No key and no unique slot: nothing can conflict (the ids are new).
        INSERT INTO @schema@.jobs (id, queue, task, params, headers, state, priority,
                max_attempts, retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at,
                run_at, created_at, ordering_key)
            SELECT x.id, x.q, x.t, coalesce(x.p, 'null'), nullif(x.o->'headers', 'null'),
                'pending', coalesce((x.o->'priority')::numeric::integer, 0),
                coalesce((x.o->'max_attempts')::numeric::integer, 20),
                CASE WHEN x.o ? 'retry' THEN @schema@.stored_retry(x.o->'retry')
                    ELSE '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}' END,
                (x.o->'timeout_ms')::numeric::bigint, (x.o->'max_duration_ms')::numeric::bigint,
                (x.o->'max_delay_ms')::numeric::bigint,
                x.r + (x.o->'max_delay_ms')::numeric::bigint * interval '1 millisecond',
                x.r, at, x.o->>'ordering_key'
            FROM (SELECT u.id, u.q, u.t, u.p, coalesce(u.o, '{}') AS o,
                    CASE WHEN timed THEN @schema@.run_time(coalesce(u.o, '{}'), at)
                        ELSE at END AS r
                FROM unnest(ids, queues, tasks, params, options) AS u(id, q, t, p, o)) AS x;
        written := n;
    END IF;
    -- Wake the workers of each queue with ready jobs, unless the queue is quiet.
    PERFORM pg_notify('@channel@', d.q) FROM (SELECT DISTINCT u.q
            FROM unnest(queues, options) AS u(q, o)
            WHERE NOT timed OR @schema@.run_time(coalesce(u.o, '{}'), at) <= at) AS d
        JOIN @schema@.queues AS e ON e.name = d.q AND e.notify;
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

-- Enqueues one job: the function to call from any language (see version 7; unchanged but for
-- the queue's `notify` flag: a quiet queue's spawns do not notify).
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
    END LOOP;
    RETURN NEXT;
END
$fn$;
