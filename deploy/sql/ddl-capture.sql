-- pgtrail DDL capture. pgtrail-agent installs this itself when its role may
-- (event triggers need a superuser); otherwise an administrator runs it once
-- in the source database BEFORE the agent's first start:
--   psql -d <your database> -f deploy/sql/ddl-capture.sql
-- Each DDL statement is put into the replication stream as a transactional
-- logical message (prefix 'pgtrail.ddl'), in order with the data.
CREATE SCHEMA IF NOT EXISTS pgtrail;

CREATE OR REPLACE FUNCTION pgtrail.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  schemas text[];
  objects json;
BEGIN
  IF tg_event = 'sql_drop' THEN
    SELECT pg_catalog.array_agg(DISTINCT d.schema_name),
           pg_catalog.json_agg(pg_catalog.json_build_object(
             'type', d.object_type, 'identity', d.object_identity))
      INTO schemas, objects
      FROM pg_catalog.pg_event_trigger_dropped_objects() d;
  ELSE
    SELECT pg_catalog.array_agg(DISTINCT c.schema_name),
           pg_catalog.json_agg(pg_catalog.json_build_object(
             'type', c.object_type, 'identity', c.object_identity))
      INTO schemas, objects
      FROM pg_catalog.pg_event_trigger_ddl_commands() c;
  END IF;
  schemas := pg_catalog.array_remove(schemas, NULL);
  PERFORM pg_catalog.pg_logical_emit_message(true, 'pgtrail.ddl',
    pg_catalog.json_build_object(
      'event', tg_event,
      'tag', tg_tag,
      'query', pg_catalog.current_query(),
      'search_path', pg_catalog.current_setting('search_path'),
      'schemas', COALESCE(schemas, '{}'::text[]),
      'objects', COALESCE(objects, '[]'::json))::text);
END
$fn$;

DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'pgtrail_ddl') THEN
    CREATE EVENT TRIGGER pgtrail_ddl ON ddl_command_end EXECUTE FUNCTION pgtrail.capture_ddl();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'pgtrail_drop') THEN
    CREATE EVENT TRIGGER pgtrail_drop ON sql_drop EXECUTE FUNCTION pgtrail.capture_ddl();
  END IF;
END
$do$;
