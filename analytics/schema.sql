-- DuckDB projection of the event log. Applied on start-up; every statement is idempotent.
-- The projector writes these tables; queries read them; nothing else writes them.

CREATE TABLE IF NOT EXISTS projection_checkpoint (
    id       INTEGER PRIMARY KEY,
    position BIGINT NOT NULL        -- next log position to apply
);

-- Which version of this file built the tables (a CRC of it); another one means rebuild.
CREATE TABLE IF NOT EXISTS projection_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- Every entity row carries its tenant; every query filters on it.
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id     BIGINT PRIMARY KEY,
    tenant_id         VARCHAR NOT NULL,
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

CREATE TABLE IF NOT EXISTS devices (
    device_id      VARCHAR PRIMARY KEY,
    tenant_id      VARCHAR NOT NULL,
    name           VARCHAR NOT NULL,
    tags_json      VARCHAR NOT NULL,         -- [{"key":..,"value":..}]
    model_name     VARCHAR,
    model_version  VARCHAR,
    run_id         VARCHAR,                  -- tracking run the deployed model came from
    key_state      VARCHAR NOT NULL,         -- 'active' | 'revoked'
    created_ms     BIGINT NOT NULL,
    key_changed_ms BIGINT NOT NULL
);

-- Telemetry is a star: one narrow row per accepted event, and the strings it shares with
-- thousands of others (tenant, device, kind, model, severity) in a label row. Appending
-- string columns was most of the projector's cost; an integer label is nearly free.
CREATE TABLE IF NOT EXISTS telemetry_labels (
    label_id      INTEGER PRIMARY KEY,       -- numbered by the projector in log order
    tenant_id     VARCHAR NOT NULL,
    device_id     VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    model_name    VARCHAR,
    model_version VARCHAR,
    severity      VARCHAR NOT NULL           -- info | warning | critical
);

-- Typed fields become columns as they first appear: n_<name> DOUBLE, b_<name> BOOLEAN,
-- s_<name> VARCHAR (the projector adds them), so dashboards aggregate plain columns.
CREATE TABLE IF NOT EXISTS telemetry_rows (
    position      BIGINT NOT NULL,           -- log position of its TelemetryIngested event
    event_id      UUID NOT NULL,
    ts_ms         BIGINT NOT NULL,           -- device time
    received_ms   BIGINT NOT NULL,           -- server time
    label_id      INTEGER NOT NULL,
    -- The drowsiness detector's fields are declared up front, so dashboards can name them
    -- before the first event arrives.
    n_ear_value   DOUBLE,
    b_is_drowsy   BOOLEAN,
    n_duration_ms DOUBLE,
    n_latency_ms  DOUBLE,
    n_confidence  DOUBLE,
    n_battery     DOUBLE
);

-- view: telemetry
-- One row per event with its label's columns: what every query reads. (The projector
-- re-creates it after adding a field column, since a view keeps the columns it was made with.)
CREATE OR REPLACE VIEW telemetry AS
SELECT r.position, l.tenant_id, r.event_id::VARCHAR AS event_id, l.device_id, r.ts_ms, r.received_ms, l.kind,
       l.model_name, l.model_version, l.severity,
       r.* EXCLUDE (position, event_id, ts_ms, received_ms, label_id)
FROM telemetry_rows r JOIN telemetry_labels l USING (label_id);
-- end view

-- The telemetry rows the analytics parameters select; every named query reads through it.
CREATE OR REPLACE MACRO telemetry_in(tenant, from_ms, to_ms, dev, mname, mver, knd) AS TABLE
    SELECT * FROM telemetry
    WHERE tenant_id = tenant
      AND ts_ms >= from_ms AND ts_ms < to_ms
      AND (dev IS NULL OR device_id = dev)
      AND (mname IS NULL OR model_name = mname)
      AND (mver IS NULL OR model_version = mver)
      AND (knd IS NULL OR kind = knd);

-- Optimization: uploaded models and datasets, jobs (each row holds the folded job as JSON,
-- the same view the command side and the progress WebSocket use), registered model versions.
CREATE TABLE IF NOT EXISTS models (
    model_id     VARCHAR PRIMARY KEY,
    tenant_id    VARCHAR NOT NULL,
    name         VARCHAR NOT NULL,
    sha256       VARCHAR NOT NULL,
    size_bytes   BIGINT NOT NULL,
    summary_json VARCHAR NOT NULL,
    created_ms   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS datasets (
    dataset_id        VARCHAR PRIMARY KEY,
    tenant_id         VARCHAR NOT NULL,
    name              VARCHAR NOT NULL,
    source            VARCHAR NOT NULL,
    inputs_sha256     VARCHAR NOT NULL,
    labels_sha256     VARCHAR,
    preprocess_json   VARCHAR NOT NULL,
    samples           BIGINT NOT NULL,
    sample_shape_json VARCHAR NOT NULL,
    created_ms        BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    job_id     VARCHAR PRIMARY KEY,
    tenant_id  VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    status     VARCHAR NOT NULL,
    model_id   VARCHAR NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    doc_json   VARCHAR NOT NULL,
    position   BIGINT NOT NULL            -- log position of the last event folded in
);

CREATE TABLE IF NOT EXISTS model_versions (
    tenant_id       VARCHAR NOT NULL,
    name            VARCHAR NOT NULL,
    version         BIGINT NOT NULL,
    job_id          VARCHAR NOT NULL,
    technique       VARCHAR NOT NULL,
    source_model_id VARCHAR NOT NULL,
    sha256          VARCHAR NOT NULL,
    size_bytes      BIGINT NOT NULL,
    run_id          VARCHAR,
    artifact_path   VARCHAR,
    created_ms      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);
