-- name: schedules and leader lease
-- Version 4: periodic jobs (schedules) and the leader lease.
-- step
CREATE TABLE IF NOT EXISTS `@stem@_schedules` (
    id VARCHAR(128) NOT NULL PRIMARY KEY,
    definition LONGTEXT NOT NULL,
    registered_at DATETIME(6) NOT NULL,
    last_tick DATETIME(6) NULL,
    last_fired_at DATETIME(6) NULL,
    last_job BIGINT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
-- step
CREATE TABLE IF NOT EXISTS `@stem@_leases` (
    name VARCHAR(128) NOT NULL PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
