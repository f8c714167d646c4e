CREATE PROCEDURE `@stem@_retry_check`(IN p_retry LONGTEXT CHARACTER SET utf8mb4)
    NO SQL
    COMMENT 'Tasque: the rules of a retry strategy, for spawn_check'
BEGIN
    -- Checks the `retry` option of `@stem@_spawn_check` (a JSON value, not NULL): `{"kind":
    -- "none"}`, `{"kind": "fixed", "delay": MS}` or `{"kind": "exponential", "base": MS,
    -- "factor": F, "cap": MS or null}`; SIGNALs SQLSTATE 22023 naming what is refused.
    DECLARE v_retry LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_kind LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_keys LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_key LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_unknown LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    DECLARE v_message VARCHAR(128) CHARACTER SET utf8mb4;
    DECLARE v_name VARCHAR(20) CHARACTER SET utf8mb4;
    DECLARE v_number DOUBLE;
    DECLARE v_base DOUBLE;
    DECLARE v_bad BOOLEAN;
    DECLARE v_i INT;
    SET v_retry = p_retry;
    IF JSON_TYPE(v_retry) <> 'OBJECT' THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `retry`: must be a JSON object such as {"kind": "fixed", "delay": 1000}';
    END IF;
    SET v_value = JSON_EXTRACT(v_retry, '$.kind');
    SET v_kind = JSON_UNQUOTE(v_value);
    IF v_value IS NULL OR JSON_TYPE(v_value) <> 'STRING'
            OR v_kind NOT IN ('none', 'fixed', 'exponential') THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
            'tasque: invalid option `retry.kind`: must be "none", "fixed" or "exponential"';
    END IF;
    SET v_keys = JSON_KEYS(v_retry);
    SET v_i = 0;
    WHILE v_i < JSON_LENGTH(v_keys) DO
        SET v_key = JSON_UNQUOTE(JSON_EXTRACT(v_keys, CONCAT('$[', v_i, ']')));
        IF NOT (v_key = 'kind' OR (v_kind = 'fixed' AND v_key = 'delay')
                    OR (v_kind = 'exponential' AND v_key IN ('base', 'factor', 'cap')))
                AND (v_unknown IS NULL OR LENGTH(v_key) < LENGTH(v_unknown)
                    OR (LENGTH(v_key) = LENGTH(v_unknown)
                        AND CAST(v_key AS BINARY) < CAST(v_unknown AS BINARY))) THEN
            SET v_unknown = v_key;
        END IF;
        SET v_i = v_i + 1;
    END WHILE;
    IF v_unknown IS NOT NULL THEN
        SET v_message = CONCAT('tasque: invalid option `retry`: unknown field `',
            LEFT(v_unknown, 40), '` of kind ', v_kind);
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = v_message;
    END IF;
    -- The delays: integral numbers of milliseconds in range; cap may be null or absent.
    SET v_i = 0;
    WHILE v_i < 3 DO
        SET v_name = ELT(v_i + 1, IF(v_kind = 'fixed', 'delay', 'base'), 'factor', 'cap');
        SET v_value = JSON_EXTRACT(v_retry, CONCAT('$.', v_name));
        IF NOT (v_kind = 'none' OR (v_kind = 'fixed' AND v_i > 0)
                OR (v_name = 'cap' AND (v_value IS NULL OR JSON_TYPE(v_value) = 'NULL'))) THEN
            SET v_bad = v_value IS NULL
                OR JSON_TYPE(v_value) NOT IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL');
            IF NOT v_bad THEN
                BEGIN
                    DECLARE CONTINUE HANDLER FOR SQLEXCEPTION, SQLWARNING SET v_bad = TRUE;
                    SET v_number = JSON_UNQUOTE(v_value) + 0e0;
                END;
            END IF;
            IF v_name = 'factor' THEN
                IF v_bad OR v_number NOT BETWEEN 1 AND 1000 THEN
                    SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                        'tasque: invalid option `retry.factor`: must be a number from 1 to 1000';
                END IF;
            ELSEIF v_bad OR v_number <> FLOOR(v_number)
                    OR v_number NOT BETWEEN 1 AND 31557600000000 THEN
                SET v_message = CONCAT('tasque: invalid option `retry.', v_name,
                    '`: must be an integer number of milliseconds from 1 to 31557600000000');
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = v_message;
            ELSEIF v_name = 'cap' AND v_number < v_base THEN
                SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT =
                    'tasque: invalid option `retry.cap`: must not be shorter than retry.base';
            END IF;
            IF v_name = 'base' THEN
                SET v_base = v_number;
            END IF;
        END IF;
        SET v_i = v_i + 1;
    END WHILE;
END
