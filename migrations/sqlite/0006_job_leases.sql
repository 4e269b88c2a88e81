-- Scheduled-job leases: a process runs a job on a session only while it holds the lease, so
-- two server processes on one data directory never run the same job twice on one session.
CREATE TABLE job_leases (
    job         TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    holder      TEXT NOT NULL,
    until       TEXT NOT NULL,
    PRIMARY KEY (job, session_id)
) WITHOUT ROWID;
