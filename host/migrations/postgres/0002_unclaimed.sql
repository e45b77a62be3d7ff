-- SQLite's 0002 made the `unclaimed` table, which PostgreSQL's 0001 already has: nothing to do.
-- Here so that both engines' migrations have the same numbers and names (a database migrated
-- before this numbering has its history renumbered at start, storage/postgres.rs).
SELECT 1;
