-- What a write updates a trace from (JSON, see `trace::incremental`): a batch that adds to a
-- long prompt reads this and the reports of the calls it touched, not every fragment again.
-- NULL (traces stored before): the next write merges the trace whole and stores it.
ALTER TABLE traces ADD COLUMN state TEXT;
