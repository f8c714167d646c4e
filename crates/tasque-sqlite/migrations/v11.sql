-- name: virtual clock
-- Version 11: the virtual clock of test mode (tasque::testing::TestClock). One row at most:
-- while it exists, statements rendered in test mode read "now" from it instead of the database
-- clock. Production never writes it and its statements never read it.

CREATE TABLE tasque_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL
);
