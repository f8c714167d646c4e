CREATE PROCEDURE `@stem@_spawn`(
    IN p_queue LONGTEXT CHARACTER SET utf8mb4,
    IN p_task LONGTEXT CHARACTER SET utf8mb4,
    IN p_params LONGTEXT CHARACTER SET utf8mb4,
    IN p_options LONGTEXT CHARACTER SET utf8mb4)
    MODIFIES SQL DATA
    COMMENT 'Tasque: enqueue one job; returns (job_id, run_seq, attempt, created)'
BEGIN
    -- Enqueues one job, the call for producers in any language:
    --   CALL `@stem@_spawn`(queue, task, params_json, options_json)
    -- params_json is JSON text (NULL: null); options_json an option document (NULL: {}), the
    -- same as PostgreSQL's `spawn` takes. Validates (`@stem@_spawn_check`: refusals are SQLSTATE
    -- 22023), creates the queue when missing, inserts the job, and returns one row: job_id,
    -- run_seq (its first run), attempt (1) and created (0 when the idempotency key was already
    -- used in the queue: the row is that job's). Inside the caller's transaction, a rollback
    -- leaves nothing, the queue included.
    DECLARE v_options LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_queue VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_headers LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_retry LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_now DATETIME(6);
    DECLARE v_run DATETIME(6);
    DECLARE v_max_delay BIGINT;
    DECLARE v_id BIGINT;
    DECLARE v_seq BIGINT DEFAULT 1;
    DECLARE v_attempt INT DEFAULT 1;
    DECLARE v_created BOOLEAN DEFAULT TRUE;
    DECLARE CONTINUE HANDLER FOR 1062 SET v_created = FALSE;

    SET v_options = COALESCE(p_options, '{}');
    CALL `@stem@_spawn_check`(p_queue, p_task, p_params, v_options, v_run);
    SET v_queue = p_queue;
    SET v_now = UTC_TIMESTAMP(6);
    IF v_run IS NULL THEN
        SET v_run = v_now + INTERVAL CAST(COALESCE(
            JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.delay_ms')) + 0e0, 0) AS SIGNED) * 1000
            MICROSECOND;
    END IF;
    SET v_max_delay = CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.max_delay_ms')) + 0e0 AS SIGNED);
    SET v_key = JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.idempotency_key'));
    SET v_headers = JSON_EXTRACT(v_options, '$.headers');
    IF JSON_TYPE(v_headers) <> 'OBJECT' THEN
        SET v_headers = NULL;
    END IF;
    SET v_value = JSON_EXTRACT(v_options, '$.retry');
    SET v_retry = CASE
        WHEN v_value IS NULL THEN '{"kind":"exponential","base":1000,"factor":2.0,"cap":3600000}'
        WHEN JSON_UNQUOTE(JSON_EXTRACT(v_value, '$.kind')) = 'none' THEN '{"kind":"none"}'
        WHEN JSON_UNQUOTE(JSON_EXTRACT(v_value, '$.kind')) = 'fixed' THEN CONCAT(
            '{"kind":"fixed","delay":',
            CAST(JSON_UNQUOTE(JSON_EXTRACT(v_value, '$.delay')) + 0e0 AS SIGNED), '}')
        ELSE CONCAT('{"kind":"exponential","base":',
            CAST(JSON_UNQUOTE(JSON_EXTRACT(v_value, '$.base')) + 0e0 AS SIGNED),
            ',"factor":', JSON_EXTRACT(v_value, '$.factor'), ',"cap":',
            IF(COALESCE(JSON_TYPE(JSON_EXTRACT(v_value, '$.cap')), 'NULL') = 'NULL', 'null',
                CAST(JSON_UNQUOTE(JSON_EXTRACT(v_value, '$.cap')) + 0e0 AS SIGNED)),
            '}')
    END;

    -- A queue used for the first time is created here, in the caller's transaction (a
    -- rollback takes it away with the job); an existing one is not locked.
    IF NOT EXISTS (SELECT 1 FROM @queues@ WHERE name = v_queue) THEN
        INSERT INTO @queues@ (name, created_at) VALUES (v_queue, v_now)
            ON DUPLICATE KEY UPDATE name = name;
    END IF;
    -- A queue with keyed jobs is claimed through the gated path (flow control).
    IF JSON_EXTRACT(v_options, '$.ordering_key') IS NOT NULL THEN
        UPDATE @queues@ SET keyed = TRUE WHERE name = v_queue AND NOT keyed;
    END IF;
    INSERT INTO @jobs@ (queue, task, params, headers, state, priority, max_attempts, retry,
            timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, run_at, cancel_at,
            created_at, errors, ordering_key)
        VALUES (v_queue, p_task, COALESCE(p_params, 'null'), v_headers, 'pending',
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.priority')) + 0e0 AS SIGNED), 0),
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.max_attempts')) + 0e0 AS SIGNED), 20),
            v_retry,
            CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.timeout_ms')) + 0e0 AS SIGNED),
            CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.max_duration_ms')) + 0e0 AS SIGNED),
            v_max_delay, v_key, v_run,
            v_run + INTERVAL LEAST(v_max_delay * 1000, TIMESTAMPDIFF(MICROSECOND, v_run,
                '9999-12-31 23:59:59.999999')) MICROSECOND,
            v_now, '[]', JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.ordering_key')));
    IF v_created THEN
        SET v_id = LAST_INSERT_ID();
    ELSE
        -- The key is taken: that job (a locking read sees it even if it committed after this
        -- transaction's snapshot).
        SELECT id, run_seq, attempt INTO v_id, v_seq, v_attempt FROM @jobs@
            WHERE queue = v_queue AND idempotency_key = v_key LOCK IN SHARE MODE;
    END IF;
    SELECT v_id AS job_id, v_seq AS run_seq, v_attempt AS attempt, v_created AS created;
END
