--
-- (0.5.0) Rows a run kept aside: a table's on_bad_value 'quarantine'
-- leaves out a row whose value does not convert, and keeps it here with
-- the value's facts; etl_stream.retry_rejects() fetches such rows again by
-- key and deletes the rejects it landed.  Created once.
--
CREATE TABLE etl_stream.rejects (
    reject_id       bigserial PRIMARY KEY,
    run_id          bigint NOT NULL,    -- the run of etl_stream.runs that left it out
    table_name      text NOT NULL,      -- the registration
    key             jsonb,              -- {"key column": "value as MySQL sent it"}; NULL: no key
    key_text        text,               -- the same as in messages: (id)=(42)
    column_name     text NOT NULL,      -- the target column whose value did not convert
    mysql_type      text,               -- the MySQL type it came from
    value           text,               -- as shown: at most 60 bytes, others as \xNN
    reason          text NOT NULL,      -- the error's message
    detail          text,
    sqlstate        text NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    owner           name NOT NULL DEFAULT current_user  -- the registration's owner
);
CREATE INDEX rejects_table_name_run_id_idx ON etl_stream.rejects (table_name, run_id);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.rejects', '');
SELECT pg_catalog.pg_extension_config_dump('etl_stream.rejects_reject_id_seq', '');

-- confined to the roles whose privileges the caller has, as runs are
ALTER TABLE etl_stream.rejects ENABLE ROW LEVEL SECURITY;
CREATE POLICY rejects_of_owner ON etl_stream.rejects
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));

COMMENT ON TABLE etl_stream.rejects IS
  'rows left out by on_bad_value ''quarantine'': key, column, MySQL type, value as shown, reason';
