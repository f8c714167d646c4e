-- name: virtual clock
-- Version 10: the virtual clock of test mode (tasque::testing::TestClock). One row at most:
-- while it exists, a store opened with MySqlConfig::with_virtual_clock renders every clock read
-- of its statements (and of the stored procedures it creates) as a read of this row, falling
-- back to the server clock. Production stores never write it and their statements never read it.
-- step unless table clock
CREATE TABLE IF NOT EXISTS `@stem@_clock` (
    id INT NOT NULL PRIMARY KEY,
    at DATETIME(6) NOT NULL,
    CONSTRAINT `@stem@_clock_one_row` CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
