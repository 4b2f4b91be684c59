-- DuckDB projection of the event log. Applied on start-up; every statement is idempotent.
-- The projector writes these tables; queries read them; nothing else writes them.

CREATE TABLE IF NOT EXISTS projection_checkpoint (
    id       INTEGER PRIMARY KEY,
    position BIGINT NOT NULL        -- next log position to apply
);

CREATE TABLE IF NOT EXISTS experiments (
    experiment_id     BIGINT PRIMARY KEY,
    name              VARCHAR NOT NULL,
    artifact_location VARCHAR NOT NULL,
    lifecycle_stage   VARCHAR NOT NULL,   -- 'active' | 'deleted'
    creation_time     BIGINT NOT NULL,
    last_update_time  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS experiment_tags (
    experiment_id BIGINT NOT NULL,
    key           VARCHAR NOT NULL,
    value         VARCHAR NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE IF NOT EXISTS runs (
    run_id          VARCHAR PRIMARY KEY,
    experiment_id   BIGINT NOT NULL,
    run_name        VARCHAR NOT NULL,
    user_id         VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,     -- RUNNING | SCHEDULED | FINISHED | FAILED | KILLED
    start_time      BIGINT NOT NULL,
    end_time        BIGINT,
    artifact_uri    VARCHAR NOT NULL,
    lifecycle_stage VARCHAR NOT NULL      -- 'active' | 'deleted'
);

CREATE TABLE IF NOT EXISTS run_params (
    run_id VARCHAR NOT NULL,
    key    VARCHAR NOT NULL,
    value  VARCHAR NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE IF NOT EXISTS run_tags (
    run_id VARCHAR NOT NULL,
    key    VARCHAR NOT NULL,
    value  VARCHAR NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- One row per (run, metric key): the id the history rows point at, and the latest value
-- (max step, then max timestamp, then max value; NaN counts as the largest value).
CREATE TABLE IF NOT EXISTS latest_metrics (
    series_id BIGINT PRIMARY KEY,
    run_id    VARCHAR NOT NULL,
    key       VARCHAR NOT NULL,
    value     DOUBLE NOT NULL,            -- NaN stored as NaN; is_nan for ordering
    is_nan    BOOLEAN NOT NULL,
    timestamp BIGINT NOT NULL,
    step      BIGINT NOT NULL
);

-- Every logged metric value, appended in log order.
CREATE TABLE IF NOT EXISTS metric_history (
    series_id BIGINT NOT NULL,
    value     DOUBLE NOT NULL,
    is_nan    BOOLEAN NOT NULL,
    timestamp BIGINT NOT NULL,
    step      BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS run_inputs (
    run_id      VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    digest      VARCHAR NOT NULL,
    context     VARCHAR,                  -- input tag mlflow.data.context
    source_type VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    schema      VARCHAR,
    profile     VARCHAR,
    tags_json   VARCHAR NOT NULL,         -- [{"key":..,"value":..}]
    position    BIGINT NOT NULL           -- log order, for stable output
);

CREATE TABLE IF NOT EXISTS artifacts (
    path        VARCHAR PRIMARY KEY,      -- relative to the artifact root
    run_id      VARCHAR,
    size        BIGINT NOT NULL,
    crc32c      BIGINT NOT NULL,
    stored_time BIGINT NOT NULL
);
