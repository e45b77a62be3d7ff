-- Raw bodies are kept compressed: how each one is encoded at rest ('identity' or 'zstd').
ALTER TABLE batches ADD COLUMN body_codec TEXT NOT NULL DEFAULT 'identity';
