-- Resources no plugin claimed, counted per service.name and scope: never dropped silently.
CREATE TABLE unclaimed (
    project_id   TEXT NOT NULL,
    service_name TEXT NOT NULL,
    scope_name   TEXT NOT NULL,
    resources    INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    PRIMARY KEY (project_id, service_name, scope_name)
);
CREATE INDEX usage_metrics_by_batch ON usage_metrics(batch_id);
