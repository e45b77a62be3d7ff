-- A trace's timeline as rows, one an entry: a batch that adds a tool call to a long prompt
-- writes that entry, not the whole timeline again, and the detail pages through it in order
-- (`GET /api/public/traces/{id}/observations`). `digest` tells an entry that changed.
CREATE TABLE observations (
    project_id TEXT COLLATE "C" NOT NULL,
    trace_id   TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    sort_ns    BIGINT NOT NULL,
    digest     BIGINT NOT NULL,
    body       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, trace_id, kind, id)
);
CREATE INDEX observations_in_order ON observations(project_id, trace_id, sort_ns, kind, id);

-- The timelines stored so far, from their JSON (digest 0: rewritten at the next change); an
-- entry without a start sorts last, as it does in the merge. `json`, not `jsonb`: the text is
-- kept as it is.
INSERT INTO observations (project_id, trace_id, kind, id, sort_ns, digest, body)
SELECT p, tid, v->>'type', v->>'id',
       CASE WHEN s IS NULL THEN 9223372036854775807
            ELSE EXTRACT(EPOCH FROM (substr(s, 1, 19) || 'Z')::timestamptz)::bigint * 1000000000
                 + CASE WHEN substr(s, 20, 1) = '.'
                        THEN rpad(substr(s, 21, length(s) - 21), 9, '0')::bigint
                        ELSE 0 END
       END,
       0, v::text
FROM (SELECT t.project_id AS p, t.id AS tid, o.value AS v, o.value->>'start_time' AS s
      FROM traces t, json_array_elements(t.observations::json) o) entries
ON CONFLICT DO NOTHING;

ALTER TABLE traces DROP COLUMN observations;
