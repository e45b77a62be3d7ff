-- Which users each stored batch names, recorded when it is stored whether or not a plugin
-- claimed it: what erasure finds raw bodies by (a body re-sent in a second request, an
-- unclaimed, failed or pending batch carry no fragment that would lead to them).
CREATE TABLE batch_users (
    project_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    batch_id   BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id, batch_id)
);
CREATE INDEX batch_users_of_batch ON batch_users(batch_id);

-- Batches stored before this migration: their users as their fragments and usage metrics say.
INSERT INTO batch_users (project_id, user_id, batch_id)
    SELECT DISTINCT t.project_id, t.user_id, f.batch_id
    FROM traces t
    JOIN trace_keys k ON k.project_id = t.project_id AND k.trace_id = t.id
    JOIN fragments f ON f.project_id = k.project_id AND f.trace_key = k.key
    WHERE t.user_id IS NOT NULL
    ON CONFLICT DO NOTHING;
INSERT INTO batch_users (project_id, user_id, batch_id)
    SELECT DISTINCT project_id, user_id, batch_id FROM usage_metrics
    WHERE user_id IS NOT NULL AND batch_id IS NOT NULL
    ON CONFLICT DO NOTHING;

-- Users erased, and when: a batch received before that is never normalized into their data
-- again (replay, recovery, the retry of unclaimed or put-aside batches).
CREATE TABLE erased_users (
    project_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    erased_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- Trace retention counts from when the host last received a batch of the trace, not from the
-- agent's timestamps (a trace dated in the future would never expire).
ALTER TABLE traces ADD COLUMN received_ns BIGINT;
UPDATE traces SET received_ns = COALESCE(
    (SELECT MAX(b.received_at) FROM trace_keys k
       JOIN fragments f ON f.project_id = k.project_id AND f.trace_key = k.key
       JOIN batches b ON b.id = f.batch_id
     WHERE k.project_id = traces.project_id AND k.trace_id = traces.id),
    end_ns, start_ns, 0);
CREATE INDEX traces_by_received ON traces(project_id, received_ns);
