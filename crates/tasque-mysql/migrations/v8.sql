-- name: job dependencies
-- Version 8: job dependencies (see tasque-durable's `deps` module for the model). A child is
-- stored 'on_hold' while `deps_pending` (its unresolved parents) is above 0;
-- `on_parent_failure` is its policy ('cancel' or 'run'; NULL for a job spawned without
-- parents); `has_dependents` flags a parent. `job_deps` holds one edge per (parent, child),
-- `resolved` once the parent's outcome was applied; a child's edges go with it (foreign key).
-- MySQL triggers cannot write the table that fired them, so the engine resolves a parent's
-- edges itself, in the transaction that finishes the parent (see `ops/deps.rs`).
-- step unless column jobs deps_pending
ALTER TABLE @jobs@ ADD COLUMN deps_pending INT NOT NULL DEFAULT 0,
    ADD COLUMN on_parent_failure VARCHAR(16) NULL,
    ADD COLUMN has_dependents BOOLEAN NOT NULL DEFAULT FALSE
-- step
CREATE TABLE IF NOT EXISTS `@stem@_job_deps` (
    parent_id BIGINT NOT NULL,
    child_id BIGINT NOT NULL,
    resolved BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (parent_id, child_id),
    KEY job_deps_child (child_id, parent_id),
    KEY job_deps_open (resolved, parent_id),
    CONSTRAINT `@stem@_deps_child` FOREIGN KEY (child_id) REFERENCES @jobs@ (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
