-- The key order: PostgreSQL's 0022 moves `session_id` to the end of the distribution keys its
-- 0019 added. SQLite's keys never took it (its 0019 is empty): nothing changes here. This file
-- keeps the two migration lists in step.
SELECT 1;
