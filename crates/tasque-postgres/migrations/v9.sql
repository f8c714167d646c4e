-- name: virtual clock
-- Version 9: the virtual clock of test mode (tasque::testing::TestClock). A store in test mode
-- (PostgresConfig::with_virtual_clock) puts this schema before pg_catalog on its connections'
-- search_path, so the engine's unqualified now(), statement_timestamp() and clock_timestamp() (in its statements and
-- in its SQL functions) resolve to the functions below: the virtual time while the one row
-- of the clock table exists, the database clock otherwise. Other connections (production)
-- search pg_catalog first and never call them.
CREATE TABLE @schema@.clock (
    id integer PRIMARY KEY CHECK (id = 1),
    at timestamptz NOT NULL
);

CREATE FUNCTION @schema@.now() RETURNS timestamptz LANGUAGE sql STABLE AS $fn$
    SELECT coalesce((SELECT at FROM @schema@.clock WHERE id = 1), pg_catalog.now())
$fn$;

CREATE FUNCTION @schema@.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE AS $fn$
    SELECT coalesce((SELECT at FROM @schema@.clock WHERE id = 1), pg_catalog.clock_timestamp())
$fn$;

CREATE FUNCTION @schema@.statement_timestamp() RETURNS timestamptz LANGUAGE sql STABLE AS $fn$
    SELECT coalesce((SELECT at FROM @schema@.clock WHERE id = 1), pg_catalog.statement_timestamp())
$fn$;
