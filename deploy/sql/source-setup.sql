-- What a source database needs for pgtrail-agent, for an administrator to run
-- (psql -d <your database> -f deploy/sql/source-setup.sql).
--
-- Also set in postgresql.conf (a restart is needed for wal_level):
--   wal_level = logical
--   max_replication_slots = 10     (at least one free slot per agent)
--   max_wal_senders = 10
-- and allow the role in pg_hba.conf; name the real database, because the
-- keyword "replication" matches only physical replication connections:
--   host  <your database>  pgtrail  10.0.0.0/8  scram-sha-256

-- A role that may stream and read (choose your own password, or use a
-- client certificate; never put it on a command line, use ~/.pgpass).
CREATE ROLE pgtrail WITH LOGIN REPLICATION PASSWORD 'change-me';
GRANT pg_read_all_data TO pgtrail;  -- SELECT on every table, for the base snapshot

-- The publication the agent streams. FOR ALL TABLES needs a superuser; the
-- agent creates it itself when it can.
CREATE PUBLICATION pgtrail FOR ALL TABLES;

-- Tables without a primary key need a replica identity for their UPDATEs and
-- DELETEs to be captured (and to be allowed at all while published):
--   ALTER TABLE my_log REPLICA IDENTITY FULL;
