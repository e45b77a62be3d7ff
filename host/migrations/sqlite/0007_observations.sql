-- A trace's timeline as rows, one an entry: a batch that adds a tool call to a long prompt
-- writes that entry, not the whole timeline again, and the detail pages through it in order
-- (`GET /api/public/traces/{id}/observations`). `digest` tells an entry that changed.
CREATE TABLE observations (
    project_id TEXT NOT NULL,
    trace_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    sort_ns    INTEGER NOT NULL,
    digest     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (project_id, trace_id, kind, id)
) WITHOUT ROWID;
CREATE INDEX observations_in_order ON observations(project_id, trace_id, sort_ns, kind, id);

-- The timelines stored so far, from their JSON (digest 0: rewritten at the next change); an
-- entry without a start sorts last, as it does in the merge.
INSERT OR IGNORE INTO observations (project_id, trace_id, kind, id, sort_ns, digest, body)
SELECT p, tid, json_extract(v, '$.type'), json_extract(v, '$.id'),
       CASE WHEN s IS NULL THEN 9223372036854775807
            ELSE CAST(strftime('%s', substr(s, 1, 19)) AS INTEGER) * 1000000000
                 + CASE WHEN substr(s, 20, 1) = '.'
                        THEN CAST(substr(substr(s, 21, length(s) - 21) || '000000000', 1, 9) AS INTEGER)
                        ELSE 0 END
       END,
       0, v
FROM (SELECT t.project_id AS p, t.id AS tid, o.value AS v, json_extract(o.value, '$.start_time') AS s
      FROM traces t, json_each(t.observations) o);

ALTER TABLE traces DROP COLUMN observations;
