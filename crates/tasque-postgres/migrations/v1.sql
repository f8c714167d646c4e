-- name: jobs, queues, spawn functions, checkpoints, events
-- Tasque schema, version 1, for one namespace. `@schema@` is the namespace's quoted schema name,
-- `@channel@` its LISTEN/NOTIFY channel. Run by migrate.rs inside one transaction that holds the
-- namespace's advisory lock.
--
-- Times are timestamptz from the database clock; durations are bigint milliseconds. The stored
-- state 'pending' covers both `available` and `scheduled` (told apart by run_at).

CREATE TABLE @schema@.queues (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    concurrency_limit integer,
    blocking boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE @schema@.jobs (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    task text NOT NULL,
    params jsonb NOT NULL,
    headers jsonb,
    state text NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    run_seq bigint NOT NULL DEFAULT 1,
    attempt integer NOT NULL DEFAULT 1,
    max_attempts integer NOT NULL,
    retry jsonb NOT NULL,
    timeout_ms bigint,
    max_duration_ms bigint,
    max_delay_ms bigint,
    cancel_at timestamptz,
    idempotency_key text,
    worker_id text,
    run_at timestamptz NOT NULL,
    lease_expires_at timestamptz,
    created_at timestamptz NOT NULL,
    first_started_at timestamptz,
    attempted_at timestamptz,
    finished_at timestamptz,
    result jsonb,
    failure jsonb,
    errors jsonb NOT NULL DEFAULT '[]',
    wake_at timestamptz,
    wake_event text,
    event_payload jsonb
);

-- Claims scan these in poll order, one queue at a time; only pending rows are indexed.
CREATE INDEX jobs_claim ON @schema@.jobs (queue, priority, run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_claim_age ON @schema@.jobs (queue, run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_lease ON @schema@.jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON @schema@.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_cancel_at ON @schema@.jobs (cancel_at) WHERE cancel_at IS NOT NULL;
CREATE UNIQUE INDEX jobs_idempotency ON @schema@.jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Reserved for checkpoints, sleeps and events.
CREATE TABLE @schema@.checkpoints (
    job_id bigint NOT NULL,
    step text NOT NULL,
    state jsonb NOT NULL,
    run_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, step)
);
CREATE TABLE @schema@.events (
    name text PRIMARY KEY,
    payload jsonb,
    emitted_at timestamptz NOT NULL
);

-- True when `v` is a JSON integer in [lo, hi].
CREATE FUNCTION @schema@.json_int_between(v jsonb, lo numeric, hi numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN jsonb_typeof(v) IS DISTINCT FROM 'number' THEN false
        ELSE v::text::numeric = trunc(v::text::numeric)
            AND v::text::numeric BETWEEN lo AND hi END
$fn$;

-- Why a retry strategy is invalid, or NULL when it is valid.
CREATE FUNCTION @schema@.retry_problem(r jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN jsonb_typeof(r) IS DISTINCT FROM 'object' THEN 'retry must be a JSON object'
        WHEN r->>'kind' = 'none' THEN NULL
        WHEN r->>'kind' = 'fixed' THEN CASE
            WHEN NOT @schema@.json_int_between(r->'delay', 1, 9223372036854775807)
                THEN 'retry.delay must be a positive integer of milliseconds'
            END
        WHEN r->>'kind' = 'exponential' THEN CASE
            WHEN NOT @schema@.json_int_between(r->'base', 1, 9223372036854775807)
                THEN 'retry.base must be a positive integer of milliseconds'
            WHEN jsonb_typeof(r->'factor') IS DISTINCT FROM 'number'
                THEN 'retry.factor must be a number of at least 1'
            WHEN (r->>'factor')::numeric < 1 THEN 'retry.factor must be a number of at least 1'
            WHEN coalesce(r->'cap', 'null') = 'null' THEN NULL
            WHEN NOT @schema@.json_int_between(r->'cap', 1, 9223372036854775807)
                THEN 'retry.cap must be a positive integer of milliseconds'
            WHEN (r->>'cap')::numeric < (r->>'base')::numeric
                THEN 'retry.cap must not be shorter than retry.base'
            END
        ELSE 'retry.kind must be "none", "fixed" or "exponential"'
    END
$fn$;

-- Why one job given to spawn is invalid, or NULL when it is valid: the same rules as the Rust
-- API's validation (names, attempts, retry strategy, delays, headers, idempotency key).
CREATE FUNCTION @schema@.spawn_problem(queue text, task text, o jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE
        WHEN queue IS NULL OR queue !~ '^[A-Za-z0-9_.:-]{1,128}$'
            THEN format('invalid queue name %L: 1 to 128 characters of A-Z a-z 0-9 _ . : -', queue)
        WHEN task IS NULL OR task !~ '^[A-Za-z0-9_.:-]{1,128}$'
            THEN format('invalid task name %L: 1 to 128 characters of A-Z a-z 0-9 _ . : -', task)
        WHEN jsonb_typeof(o) IS DISTINCT FROM 'object' THEN 'options must be a JSON object'
        WHEN EXISTS (SELECT 1 FROM jsonb_object_keys(o) AS k
                WHERE k NOT IN ('max_attempts', 'priority', 'run_at', 'delay_ms', 'timeout_ms',
                    'retry', 'max_duration_ms', 'max_delay_ms', 'headers', 'idempotency_key'))
            THEN 'unknown option; known: max_attempts, priority, run_at, delay_ms, timeout_ms, '
                || 'retry, max_duration_ms, max_delay_ms, headers, idempotency_key'
        WHEN o ? 'max_attempts' AND NOT @schema@.json_int_between(o->'max_attempts', 1, 2147483647)
            THEN 'max_attempts must be an integer of at least 1'
        WHEN o ? 'priority'
                AND NOT @schema@.json_int_between(o->'priority', -2147483648, 2147483647)
            THEN 'priority must be a 32-bit integer'
        WHEN o ? 'run_at' AND o ? 'delay_ms' THEN 'give run_at or delay_ms, not both'
        WHEN o ? 'run_at' AND jsonb_typeof(o->'run_at') IS DISTINCT FROM 'string'
            THEN 'run_at must be a timestamp string (ISO 8601 with a time zone)'
        WHEN o ? 'delay_ms' AND NOT @schema@.json_int_between(o->'delay_ms', 1, 9223372036854775807)
            THEN 'delay_ms must be a positive integer'
        WHEN o ? 'timeout_ms'
                AND NOT @schema@.json_int_between(o->'timeout_ms', 1, 9223372036854775807)
            THEN 'timeout_ms must be a positive integer'
        WHEN o ? 'max_duration_ms'
                AND NOT @schema@.json_int_between(o->'max_duration_ms', 1, 9223372036854775807)
            THEN 'max_duration_ms must be a positive integer'
        WHEN o ? 'max_delay_ms'
                AND NOT @schema@.json_int_between(o->'max_delay_ms', 1, 9223372036854775807)
            THEN 'max_delay_ms must be a positive integer'
        WHEN o ? 'retry' THEN @schema@.retry_problem(o->'retry')
        WHEN o ? 'headers' AND jsonb_typeof(o->'headers') NOT IN ('object', 'null')
            THEN 'headers must be a JSON object'
        WHEN o ? 'idempotency_key' AND (jsonb_typeof(o->'idempotency_key') <> 'string'
                OR octet_length(o->>'idempotency_key') NOT BETWEEN 1 AND 255
                OR o->>'idempotency_key' ~ '[[:cntrl:]]')
            THEN 'idempotency_key must be a string of 1 to 255 bytes without control characters'
    END
$fn$;

-- Enqueues many jobs at once (the arrays are parallel: job i is queues[i], tasks[i], params[i],
-- options[i]). Validates every job first (one invalid job refuses the batch, SQLSTATE 22023),
-- creates missing queues, inserts, returns one row per job in input order, and announces the
-- queues with ready jobs on the namespace's channel (delivered when the transaction commits).
-- A job whose idempotency key is already used in its queue is not inserted: the existing job
-- is returned with created = false.
CREATE FUNCTION @schema@.spawn_batch(queues text[], tasks text[], params jsonb[], options jsonb[])
RETURNS TABLE (job_id bigint, run_seq bigint, attempt integer, created boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    n integer := coalesce(array_length(queues, 1), 0);
    bad_ord bigint;
    problem text;
    ids bigint[];
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
    SELECT u.ord, @schema@.spawn_problem(u.q, u.t, coalesce(u.o, '{}'))
        INTO bad_ord, problem
        FROM unnest(queues, tasks, options) WITH ORDINALITY AS u(q, t, o, ord)
        WHERE @schema@.spawn_problem(u.q, u.t, coalesce(u.o, '{}')) IS NOT NULL
        ORDER BY u.ord LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'tasque: job % of the batch: %', bad_ord, problem USING ERRCODE = '22023';
    END IF;
    INSERT INTO @schema@.queues (name) SELECT DISTINCT q FROM unnest(queues) AS q
        ORDER BY 1 ON CONFLICT DO NOTHING;
    ids := ARRAY(SELECT nextval('@schema@.jobs_id_seq') FROM generate_series(1, n));
    INSERT INTO @schema@.jobs (id, queue, task, params, headers, state, priority, max_attempts,
            retry, timeout_ms, max_duration_ms, max_delay_ms, cancel_at, idempotency_key, run_at,
            created_at)
        SELECT x.id, x.q, x.t, coalesce(x.p, 'null'), nullif(x.o->'headers', 'null'), 'pending',
            coalesce((x.o->>'priority')::integer, 0),
            coalesce((x.o->>'max_attempts')::integer, 20),
            coalesce(x.o->'retry', '{"kind": "exponential", "base": 1000, "factor": 2.0, "cap": 3600000}'),
            (x.o->>'timeout_ms')::bigint, (x.o->>'max_duration_ms')::bigint,
            (x.o->>'max_delay_ms')::bigint,
            x.run_at + (x.o->>'max_delay_ms')::bigint * interval '1 millisecond',
            x.o->>'idempotency_key', x.run_at, at
        FROM (SELECT u.*,
                CASE WHEN u.o ? 'run_at' THEN (u.o->>'run_at')::timestamptz
                    WHEN u.o ? 'delay_ms' THEN at + (u.o->>'delay_ms')::bigint * interval '1 millisecond'
                    ELSE at END AS run_at
            FROM unnest(ids, queues, tasks, params, options) AS u(id, q, t, p, o)) AS x
        ORDER BY x.id
        ON CONFLICT DO NOTHING;
    PERFORM pg_notify('@channel@', d.q) FROM (SELECT DISTINCT u.q
        FROM unnest(queues, options) AS u(q, o)
        WHERE NOT coalesce(u.o ? 'delay_ms', false)
            AND (NOT coalesce(u.o ? 'run_at', false) OR (u.o->>'run_at')::timestamptz <= at)) AS d;
    -- A new statement, so a key taken by a transaction that committed meanwhile is seen.
    RETURN QUERY SELECT coalesce(j.id, k.id), coalesce(j.run_seq, k.run_seq),
            coalesce(j.attempt, k.attempt), j.id IS NOT NULL
        FROM unnest(ids, queues, options) WITH ORDINALITY AS u(id, q, o, ord)
        LEFT JOIN @schema@.jobs AS j ON j.id = u.id
        LEFT JOIN @schema@.jobs AS k ON j.id IS NULL AND k.queue = u.q
            AND k.idempotency_key = u.o->>'idempotency_key'
        ORDER BY u.ord;
END
$fn$;

-- Enqueues one job: the function to call from any language. `options` is a JSON object with any
-- of max_attempts, priority, run_at (timestamp text), delay_ms, timeout_ms, retry ({"kind":
-- "none"} | {"kind": "fixed", "delay": ms} | {"kind": "exponential", "base": ms, "factor": f,
-- "cap": ms}), max_duration_ms, max_delay_ms, headers (object) and idempotency_key.
CREATE FUNCTION @schema@.spawn(queue text, task text, params jsonb DEFAULT '{}',
        options jsonb DEFAULT '{}')
RETURNS TABLE (job_id bigint, run_seq bigint, attempt integer, created boolean)
LANGUAGE sql AS $fn$
    SELECT * FROM @schema@.spawn_batch(ARRAY[queue], ARRAY[task], ARRAY[params], ARRAY[options])
$fn$;
