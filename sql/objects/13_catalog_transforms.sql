--
-- Transforms (added in 0.5.0): SQL run in PostgreSQL after the syncs of the
-- tables it names, with their runs' cutoffs written into it as literals
-- (sql/objects/88_transforms.sql, src/transform.c).  pg_dump carries the
-- definitions, as a configuration table.
--
-- A role sees and changes only its own transforms (row level security, as
-- for schedules), and a transform's statements run as its owner, whoever
-- runs the sync that triggers it.
--
CREATE TABLE etl_stream.transforms (
    name            text PRIMARY KEY
                    CHECK (name <> '' AND length(name) <= 48),
    after           text[] NOT NULL     -- registered tables; runs when they all synced
                    CHECK (cardinality(after) > 0),
    sql             text NOT NULL,      -- one or more statements, with :placeholders
    dates_from      text,               -- the column :touched_dates lists the dates of
    enabled         boolean NOT NULL DEFAULT true,
    owner           name NOT NULL DEFAULT current_user,  -- who it runs as, and who sees it
    created_at      timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.transforms', '');

ALTER TABLE etl_stream.transforms ENABLE ROW LEVEL SECURITY;
CREATE POLICY transforms_of_owner ON etl_stream.transforms
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));
-- (the grants: sql/objects/95_grants.sql)
