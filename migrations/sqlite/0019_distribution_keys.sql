-- Distribution keys: PostgreSQL's 0019 puts `session_id` into every key of the tables that are
-- to be distributed by session (ARCHITECTURE.md, "Past one database"). SQLite never distributes,
-- and changing a key here means rebuilding the table (nodes can hold millions of rows), while an
-- INTEGER PRIMARY KEY is the rowid itself: nothing changes here. This file keeps the two
-- migration lists in step; `kiln_db::DISTRIBUTED` (schema.rs) states how the schemas differ.
SELECT 1;
