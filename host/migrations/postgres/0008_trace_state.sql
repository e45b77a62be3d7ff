-- Numbered as on SQLite (0008) from here on: a gap at 0007 on PostgreSQL, whose 0001 already had
-- what SQLite added in 0002; the test `both_engines_reach_the_same_schema_version` holds them level.
-- What a write updates a trace from (JSON, see `trace::incremental`): a batch that adds to a
-- long prompt reads this and the reports of the calls it touched, not every fragment again.
-- NULL (traces stored before): the next write merges the trace whole and stores it.
ALTER TABLE traces ADD COLUMN state TEXT;
