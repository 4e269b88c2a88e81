-- Per-user budgets of expensive calls, shared by the servers on one store (a token bucket per
-- user: tokens left, when it was last charged in seconds since the epoch by the database's
-- clock, and whether that charge was granted). On SQLite the one server keeps its buckets in
-- memory and this table stays empty.
CREATE TABLE rate_buckets (
    user_id  text PRIMARY KEY,
    tokens   double precision NOT NULL,
    at_secs  double precision NOT NULL,
    granted  bigint NOT NULL DEFAULT 1 CHECK (granted IN (0, 1))
);
