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
                    'ordering_key')
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
    SET v_value = JSON_EXTRACT(v_options, '$.ordering_key');
    IF v_value IS NOT NULL AND (JSON_TYPE(v_value) <> 'STRING'
            OR LENGTH(JSON_UNQUOTE(v_value)) NOT BETWEEN 1 AND 255
            OR HEX(JSON_UNQUOTE(v_value)) REGEXP '^(..)*(0.|1.|7F|C2[89].)') THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `ordering_key`: must be a string of 1 to 255 bytes without control characters';
    END IF;
END check_all
