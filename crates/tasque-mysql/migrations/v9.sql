-- name: unique jobs from SQL
-- Version 9: the spawn procedure takes `unique` like PostgreSQL's `spawn` (the same keys, key,
-- period_ms and states, the same rules and 22023 refusals); a held slot returns its holder with
-- created = 0, as a used idempotency key does. The procedure and its check replace version 6's.
-- step
DROP PROCEDURE IF EXISTS `@stem@_spawn`
-- step
DROP PROCEDURE IF EXISTS `@stem@_spawn_check`
-- step
CREATE PROCEDURE `@stem@_spawn_check`(
    IN p_queue LONGTEXT CHARACTER SET utf8mb4,
    IN p_task LONGTEXT CHARACTER SET utf8mb4,
    IN p_params LONGTEXT CHARACTER SET utf8mb4,
    IN p_options LONGTEXT CHARACTER SET utf8mb4,
    OUT p_run_at DATETIME(6))
    NO SQL
    COMMENT 'Tasque: the rules of an option document (tasque-durable validate::parse_options); refusals are SQLSTATE 22023'
check_all: BEGIN
    -- Checks, in the order of the Rust API (tasque-durable `validate::parse_options`), the
    -- names, params and option document of one job; SIGNALs SQLSTATE 22023 naming what is
    -- refused. Sets p_run_at to the UTC instant of `run_at` (NULL when not given).
    DECLARE v_options LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_key LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_unknown LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_keys LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_kind LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_message VARCHAR(128) CHARACTER SET utf8mb4;
    DECLARE v_name VARCHAR(40) CHARACTER SET utf8mb4;
    DECLARE v_lo DOUBLE;
    DECLARE v_hi DOUBLE;
    DECLARE v_number DOUBLE;
    DECLARE v_base DOUBLE;
    DECLARE v_bad BOOLEAN;
    DECLARE v_i INT;
    DECLARE v_y INT;
    DECLARE v_mo INT;
    DECLARE v_days INT;
    DECLARE v_zone INT;
    DECLARE v_offset INT;
    DECLARE v_local DATETIME(6);
    SET p_run_at = NULL;

    IF p_queue IS NULL OR CHAR_LENGTH(p_queue) NOT BETWEEN 1 AND 128
            OR p_queue REGEXP '[^A-Za-z0-9_.:-]' THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid queue name: 1 to 128 characters of A-Z a-z 0-9 _ . : -';
    END IF;
    IF p_task IS NULL OR CHAR_LENGTH(p_task) NOT BETWEEN 1 AND 128
            OR p_task REGEXP '[^A-Za-z0-9_.:-]' THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid task name: 1 to 128 characters of A-Z a-z 0-9 _ . : -';
    END IF;
    IF p_params IS NOT NULL AND NOT JSON_VALID(p_params) THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `params`: must be JSON text';
    END IF;
    SET v_options = COALESCE(p_options, '{}');
    IF NOT JSON_VALID(v_options) OR JSON_TYPE(v_options) <> 'OBJECT' THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `options`: must be a JSON object';
    END IF;
    IF JSON_LENGTH(v_options) = 0 THEN
        LEAVE check_all;
    END IF;

    -- Unknown keys: the first in jsonb order (shorter first, then bytewise), as everywhere.
    SET v_keys = JSON_KEYS(v_options);
    SET v_i = 0;
    WHILE v_i < JSON_LENGTH(v_keys) DO
        SET v_key = JSON_UNQUOTE(JSON_EXTRACT(v_keys, CONCAT('$[', v_i, ']')));
        IF v_key NOT IN ('max_attempts', 'priority', 'run_at', 'delay_ms', 'timeout_ms', 'retry',
                    'max_duration_ms', 'max_delay_ms', 'headers', 'idempotency_key',
                    'unique', 'ordering_key')
                AND (v_unknown IS NULL OR LENGTH(v_key) < LENGTH(v_unknown)
                    OR (LENGTH(v_key) = LENGTH(v_unknown)
                        AND CAST(v_key AS BINARY) < CAST(v_unknown AS BINARY))) THEN
            SET v_unknown = v_key;
        END IF;
        SET v_i = v_i + 1;
    END WHILE;
    IF v_unknown IS NOT NULL THEN
        SET v_message = CONCAT('tasque: invalid option `options`: unknown option `',
            LEFT(v_unknown, 60), '`');
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = v_message;
    END IF;

    -- Integer options: any JSON number with an integral value in range (3, 3.0, 3e0).
    SET v_i = 0;
    WHILE v_i < 6 DO
        SET v_name = ELT(v_i + 1, 'max_attempts', 'priority', 'delay_ms', 'timeout_ms',
            'max_duration_ms', 'max_delay_ms');
        SET v_value = JSON_EXTRACT(v_options, CONCAT('$.', v_name));
        IF v_i = 2 AND v_value IS NOT NULL
                AND JSON_CONTAINS_PATH(v_options, 'one', '$.run_at') THEN
            SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                'tasque: invalid option `run_at`: give run_at or delay_ms, not both';
        END IF;
        IF v_i = 2 AND JSON_CONTAINS_PATH(v_options, 'one', '$.run_at') THEN
            -- run_at, checked in its place (after priority, before delay_ms).
            SET v_value = JSON_EXTRACT(v_options, '$.run_at');
            SET v_key = JSON_UNQUOTE(v_value);
            IF JSON_TYPE(v_value) <> 'STRING' OR NOT v_key REGEXP
                    '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `run_at`: must be a timestamp like 2030-01-31T08:00:00Z or 2030-01-31T09:00:00.250+01:00';
            END IF;
            SET v_y = SUBSTRING(v_key, 1, 4) + 0;
            SET v_mo = SUBSTRING(v_key, 6, 2) + 0;
            SET v_days = CASE WHEN v_mo = 2 THEN
                    CASE WHEN v_y % 4 = 0 AND (v_y % 100 <> 0 OR v_y % 400 = 0) THEN 29 ELSE 28 END
                WHEN v_mo IN (4, 6, 9, 11) THEN 30 ELSE 31 END;
            SET v_zone = IF(RIGHT(v_key, 1) IN ('Z', 'z'), 1, 6);
            IF v_mo NOT BETWEEN 1 AND 12 OR SUBSTRING(v_key, 9, 2) + 0 NOT BETWEEN 1 AND v_days
                    OR SUBSTRING(v_key, 12, 2) + 0 > 23 OR SUBSTRING(v_key, 15, 2) + 0 > 59
                    OR SUBSTRING(v_key, 18, 2) + 0 > 59
                    OR (v_zone = 6 AND (SUBSTRING(RIGHT(v_key, 5), 1, 2) + 0 > 23
                        OR SUBSTRING(RIGHT(v_key, 5), 4, 2) + 0 > 59)) THEN
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `run_at`: must be a timestamp like 2030-01-31T08:00:00Z or 2030-01-31T09:00:00.250+01:00';
            END IF;
            SET v_offset = IF(v_zone = 1, 0, (SUBSTRING(RIGHT(v_key, 5), 1, 2) * 60
                + SUBSTRING(RIGHT(v_key, 5), 4, 2)) * IF(LEFT(RIGHT(v_key, 6), 1) = '-', -1, 1));
            IF v_y >= 999 THEN
                BEGIN
                    -- Past year 9999 the arithmetic overflows: out of range.
                    DECLARE CONTINUE HANDLER FOR SQLEXCEPTION, SQLWARNING SET p_run_at = NULL;
                    SET v_local = CAST(CONCAT(SUBSTRING(v_key, 1, 10), ' ', SUBSTRING(v_key, 12, 8),
                        '.', IF(SUBSTRING(v_key, 20, 1) = '.', RPAD(LEFT(SUBSTRING(v_key, 21,
                            CHAR_LENGTH(v_key) - 20 - v_zone), 6), 6, '0'), '000000'))
                        AS DATETIME(6));
                    SET p_run_at = v_local - INTERVAL v_offset MINUTE;
                END;
            END IF;
            IF p_run_at IS NULL OR p_run_at NOT BETWEEN '1000-01-01 00:00:00.000000'
                    AND '9999-12-31 23:59:59.999999' THEN
                SET p_run_at = NULL;
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `run_at`: must be from 1000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z';
            END IF;
            SET v_value = NULL;
        END IF;
        IF v_i = 4 AND JSON_CONTAINS_PATH(v_options, 'one', '$.retry') THEN
            -- retry, checked in its place (after timeout_ms, before max_duration_ms).
            CALL `@stem@_retry_check`(JSON_EXTRACT(v_options, '$.retry'));
        END IF;
        IF v_value IS NOT NULL THEN
            SET v_lo = ELT(v_i + 1, 1, -2147483648, 1, 1, 1, 1);
            SET v_hi = ELT(v_i + 1, 2147483647, 2147483647, 31557600000000, 31557600000000,
                31557600000000, 31557600000000);
            SET v_bad = JSON_TYPE(v_value) NOT IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL');
            IF NOT v_bad THEN
                BEGIN
                    DECLARE CONTINUE HANDLER FOR SQLEXCEPTION, SQLWARNING SET v_bad = TRUE;
                    SET v_number = JSON_UNQUOTE(v_value) + 0e0;
                END;
            END IF;
            IF v_bad OR v_number <> FLOOR(v_number) OR v_number NOT BETWEEN v_lo AND v_hi THEN
                SET v_message = CONCAT('tasque: invalid option `', v_name, '`: ',
                    ELT(v_i + 1, 'must be an integer from 1 to 2147483647',
                        'must be an integer from -2147483648 to 2147483647',
                        'must be an integer number of milliseconds from 1 to 31557600000000',
                        'must be an integer number of milliseconds from 1 to 31557600000000',
                        'must be an integer number of milliseconds from 1 to 31557600000000',
                        'must be an integer number of milliseconds from 1 to 31557600000000'));
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = v_message;
            END IF;
        END IF;
        SET v_i = v_i + 1;
    END WHILE;

    SET v_value = JSON_EXTRACT(v_options, '$.headers');
    IF v_value IS NOT NULL AND JSON_TYPE(v_value) NOT IN ('OBJECT', 'NULL') THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `headers`: must be a JSON object';
    END IF;
    SET v_value = JSON_EXTRACT(v_options, '$.idempotency_key');
    IF v_value IS NOT NULL AND (JSON_TYPE(v_value) <> 'STRING'
            OR LENGTH(JSON_UNQUOTE(v_value)) NOT BETWEEN 1 AND 255
            OR HEX(JSON_UNQUOTE(v_value)) REGEXP '^(..)*(0.|1.|7F|C2[89].)') THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `idempotency_key`: must be a string of 1 to 255 bytes without control characters';
    END IF;
    -- unique: an object of key (required), period_ms and states (every unfinished state).
    SET v_value = JSON_EXTRACT(v_options, '$.unique');
    IF v_value IS NOT NULL THEN
        IF JSON_TYPE(v_value) <> 'OBJECT' THEN
            SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                'tasque: invalid option `unique`: must be a JSON object such as {"key": "digest:42", "period_ms": 3600000}';
        END IF;
        SET v_keys = JSON_KEYS(v_value);
        SET v_unknown = NULL;
        SET v_i = 0;
        WHILE v_i < JSON_LENGTH(v_keys) DO
            SET v_key = JSON_UNQUOTE(JSON_EXTRACT(v_keys, CONCAT('$[', v_i, ']')));
            IF v_key NOT IN ('key', 'period_ms', 'states')
                    AND (v_unknown IS NULL OR LENGTH(v_key) < LENGTH(v_unknown)
                        OR (LENGTH(v_key) = LENGTH(v_unknown)
                            AND CAST(v_key AS BINARY) < CAST(v_unknown AS BINARY))) THEN
                SET v_unknown = v_key;
            END IF;
            SET v_i = v_i + 1;
        END WHILE;
        IF v_unknown IS NOT NULL THEN
            SET v_message = CONCAT('tasque: invalid option `unique`: unknown field `',
                LEFT(v_unknown, 40), '`; its fields: key, period_ms, states');
            SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = v_message;
        END IF;
        SET v_kind = JSON_EXTRACT(v_value, '$.key');
        IF v_kind IS NULL OR JSON_TYPE(v_kind) <> 'STRING' THEN
            SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                'tasque: invalid option `unique.key`: must be a string of 1 to 255 bytes without control characters';
        END IF;
        SET v_kind = JSON_EXTRACT(v_value, '$.period_ms');
        IF v_kind IS NOT NULL THEN
            SET v_bad = JSON_TYPE(v_kind) NOT IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL');
            IF NOT v_bad THEN
                BEGIN
                    DECLARE CONTINUE HANDLER FOR SQLEXCEPTION, SQLWARNING SET v_bad = TRUE;
                    SET v_number = JSON_UNQUOTE(v_kind) + 0e0;
                END;
            END IF;
            IF v_bad OR v_number <> FLOOR(v_number) OR v_number NOT BETWEEN 1 AND 31557600000000 THEN
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `unique.period_ms`: must be an integer number of milliseconds from 1 to 31557600000000';
            END IF;
        END IF;
        SET v_kind = JSON_EXTRACT(v_value, '$.states');
        IF v_kind IS NOT NULL THEN
            IF JSON_TYPE(v_kind) <> 'ARRAY' THEN
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `unique.states`: must be an array of job state names';
            END IF;
            SET v_i = 0;
            SET v_y = 0;
            WHILE v_i < JSON_LENGTH(v_kind) DO
                SET v_key = JSON_EXTRACT(v_kind, CONCAT('$[', v_i, ']'));
                IF JSON_TYPE(v_key) <> 'STRING' OR LOWER(JSON_UNQUOTE(v_key)) NOT IN ('available',
                        'scheduled', 'running', 'sleeping', 'waiting', 'completed', 'failed',
                        'cancelled') THEN
                    SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                        'tasque: invalid option `unique.states`: must be an array of job state names';
                END IF;
                SET v_y = v_y | CASE LOWER(JSON_UNQUOTE(v_key)) WHEN 'available' THEN 1
                    WHEN 'scheduled' THEN 2 WHEN 'running' THEN 4 WHEN 'sleeping' THEN 8
                    WHEN 'waiting' THEN 16 ELSE 0 END;
                SET v_i = v_i + 1;
            END WHILE;
            IF v_y <> 31 THEN
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `unique.states`: must include available, scheduled, running, sleeping and waiting';
            END IF;
        END IF;
        SET v_key = JSON_UNQUOTE(JSON_EXTRACT(v_value, '$.key'));
        IF LENGTH(v_key) NOT BETWEEN 1 AND 255
                OR HEX(v_key) REGEXP '^(..)*(0.|1.|7F|C2[89].)' THEN
            SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                'tasque: invalid option `unique.key`: must be a string of 1 to 255 bytes without control characters';
        END IF;
    END IF;
    SET v_value = JSON_EXTRACT(v_options, '$.ordering_key');
    IF v_value IS NOT NULL AND (JSON_TYPE(v_value) <> 'STRING'
            OR LENGTH(JSON_UNQUOTE(v_value)) NOT BETWEEN 1 AND 255
            OR HEX(JSON_UNQUOTE(v_value)) REGEXP '^(..)*(0.|1.|7F|C2[89].)') THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `ordering_key`: must be a string of 1 to 255 bytes without control characters';
    END IF;
END check_all
-- step
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
    -- used in the queue, or the unique slot is held: the row is that job's). Inside the
    -- caller's transaction, a rollback leaves nothing, the queue included.
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
    DECLARE v_unique VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_bucket BIGINT DEFAULT 0;
    DECLARE v_states SMALLINT DEFAULT 0;
    DECLARE v_i INT;
    DECLARE v_tries INT DEFAULT 0;
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
    -- A unique job: its key, its period bucket (run time in ms divided by the period, as the
    -- Rust API computes it) and the states holding its slot (default: unfinished or
    -- completed), as bits: pending 1, running 2, sleeping 4, waiting 8, completed 16,
    -- failed 32, cancelled 64.
    SET v_unique = JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.unique.key'));
    IF v_unique IS NOT NULL THEN
        SET v_value = JSON_EXTRACT(v_options, '$.unique.period_ms');
        IF v_value IS NOT NULL THEN
            SET v_bucket = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', v_run) DIV 1000
                DIV CAST(JSON_UNQUOTE(v_value) + 0e0 AS SIGNED);
        END IF;
        SET v_value = JSON_EXTRACT(v_options, '$.unique.states');
        IF v_value IS NULL THEN
            SET v_states = 31;
        ELSE
            SET v_i = 0;
            WHILE v_i < JSON_LENGTH(v_value) DO
                SET v_states = v_states | CASE LOWER(JSON_UNQUOTE(JSON_EXTRACT(v_value,
                        CONCAT('$[', v_i, ']'))))
                    WHEN 'available' THEN 1 WHEN 'scheduled' THEN 1 WHEN 'running' THEN 2
                    WHEN 'sleeping' THEN 4 WHEN 'waiting' THEN 8 WHEN 'completed' THEN 16
                    WHEN 'failed' THEN 32 WHEN 'cancelled' THEN 64 ELSE 0 END;
                SET v_i = v_i + 1;
            END WHILE;
        END IF;
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
    spawn_loop: LOOP
    SET v_created = TRUE;
    INSERT INTO @jobs@ (queue, task, params, headers, state, priority, max_attempts, retry,
            timeout_ms, max_duration_ms, max_delay_ms, idempotency_key, run_at, cancel_at,
            created_at, errors, ordering_key, unique_key, unique_bucket, unique_states)
        VALUES (v_queue, p_task, COALESCE(p_params, 'null'), v_headers, 'pending',
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.priority')) + 0e0 AS SIGNED), 0),
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.max_attempts')) + 0e0 AS SIGNED), 20),
            v_retry,
            CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.timeout_ms')) + 0e0 AS SIGNED),
            CAST(JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.max_duration_ms')) + 0e0 AS SIGNED),
            v_max_delay, v_key, v_run,
            v_run + INTERVAL LEAST(v_max_delay * 1000, TIMESTAMPDIFF(MICROSECOND, v_run,
                '9999-12-31 23:59:59.999999')) MICROSECOND,
            v_now, '[]', JSON_UNQUOTE(JSON_EXTRACT(v_options, '$.ordering_key')),
            v_unique, v_bucket, v_states);
    IF v_created THEN
        SET v_id = LAST_INSERT_ID();
        LEAVE spawn_loop;
    END IF;
    -- The idempotency key or the unique slot is taken: that job (a locking read sees it even
    -- if it committed after this transaction's snapshot).
    SET v_id = NULL;
    IF v_key IS NOT NULL THEN
        SELECT MAX(id) INTO v_id FROM @jobs@
            WHERE queue = v_queue AND idempotency_key = v_key LOCK IN SHARE MODE;
    END IF;
    IF v_id IS NULL AND v_unique IS NOT NULL THEN
        SELECT MAX(id) INTO v_id FROM @jobs@
            WHERE unique_slot = v_unique AND unique_bucket = v_bucket LOCK IN SHARE MODE;
    END IF;
    IF v_id IS NOT NULL THEN
        SELECT run_seq, attempt INTO v_seq, v_attempt FROM @jobs@ WHERE id = v_id
            LOCK IN SHARE MODE;
        LEAVE spawn_loop;
    END IF;
    -- The slot's holder left its states meanwhile: the slot is free, insert again.
    SET v_tries = v_tries + 1;
    IF v_tries >= 5 THEN
        LEAVE spawn_loop;
    END IF;
    END LOOP spawn_loop;
    SELECT v_id AS job_id, v_seq AS run_seq, v_attempt AS attempt, v_created AS created;
END
