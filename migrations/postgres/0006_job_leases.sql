-- Scheduled-job leases: a process runs a job on a session only while it holds the lease, so
-- two server processes on one database never run the same job twice on one session.
CREATE TABLE job_leases (
    job         text NOT NULL,
    session_id  text NOT NULL,
    holder      text NOT NULL,
    until       text NOT NULL,
    PRIMARY KEY (job, session_id)
);
