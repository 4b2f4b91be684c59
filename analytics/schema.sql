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

-- Hourly rollups. The projector appends each batch's rollup rows in the batch's own
-- transaction (src/projection/rollup.rs), so they always agree with telemetry_rows, and a
-- background compaction merges the rows of a label and hour into one (`compacted`); readers
-- merge what is left with sum / min / max, so both states answer the same. Statistics and
-- dashboards read whole hours from here and only the partial hours at the edges of a time
-- range from the rows: over 10 M events a scan took 460 ms.
CREATE TABLE IF NOT EXISTS telemetry_hours (
    label_id     INTEGER NOT NULL,
    hour_ms      BIGINT NOT NULL,            -- start of the device-time hour
    events       BIGINT NOT NULL,
    first_ts_ms  BIGINT NOT NULL,
    last_ts_ms   BIGINT NOT NULL,
    drowsy_known BIGINT NOT NULL,            -- events that report is_drowsy
    drowsy_true  BIGINT NOT NULL,
    compacted    BOOLEAN NOT NULL            -- false: a batch's delta, not merged yet
);

-- Each numeric field's values per label and hour as a mergeable log histogram (DDSketch):
-- a value v > 0 falls in bin ceil(log_g(v)) with g = 1.01/0.99, so every value of a bin lies
-- within 1 % of the bin's centre, and a percentile read from merged bins is within 1 % of
-- the exact one. A bin also keeps its values' count, sum, min and max, so counts, means,
-- minima and maxima stay exact.
CREATE TABLE IF NOT EXISTS telemetry_bins (
    label_id  INTEGER NOT NULL,
    hour_ms   BIGINT NOT NULL,
    field     VARCHAR NOT NULL,              -- the field's name, without its n_ prefix
    bin       INTEGER NOT NULL,              -- sketch_bin(value); bins order as their values
    count     BIGINT NOT NULL,
    sum       DOUBLE NOT NULL,
    min       DOUBLE NOT NULL,
    max       DOUBLE NOT NULL,
    compacted BOOLEAN NOT NULL
);

-- 0 for |v| < 1e-9; otherwise sign(v) * (2048 + ceil(ln|v| / ln g)), which is >= 1 for
-- every |v| >= 1e-9 (ln(1e-9) / ln g = -1036), so the sign keeps bins in value order.
CREATE OR REPLACE MACRO sketch_bin(v) AS
    CASE WHEN abs(v) < 1e-9 THEN 0
         ELSE sign(v)::INTEGER * (2048 + ceil(ln(abs(v)) / ln(1.01 / 0.99))::INTEGER) END;

-- The centre of a bin: 2 g^k / (g + 1), the point with the least relative error to both ends.
CREATE OR REPLACE MACRO sketch_value(bin) AS
    CASE WHEN bin = 0 THEN 0.0
         ELSE sign(bin) * 2 * exp((abs(bin) - 2048) * ln(1.01 / 0.99)) / (1.01 / 0.99 + 1) END;

CREATE OR REPLACE MACRO hour_of(ts) AS ts // 3600000 * 3600000;

-- Rollup rows computed from the telemetry rows with device time in [t0, t1): what queries add
-- for partial hours, the same as the projector's (a unit test holds the bins equal).
CREATE OR REPLACE MACRO telemetry_hours_of(t0, t1) AS TABLE
    SELECT label_id, hour_of(ts_ms) AS hour_ms, count(*) AS events,
           min(ts_ms) AS first_ts_ms, max(ts_ms) AS last_ts_ms,
           count(b_is_drowsy) AS drowsy_known, count(*) FILTER (WHERE b_is_drowsy) AS drowsy_true,
           false AS compacted
    FROM telemetry_rows
    WHERE ts_ms >= t0 AND ts_ms < t1
    GROUP BY ALL;

CREATE OR REPLACE MACRO telemetry_bins_of(t0, t1) AS TABLE
    SELECT label_id, hour_ms, field[3:] AS field, sketch_bin(value) AS bin, count(*) AS count,
           sum(value) AS sum, min(value) AS min, max(value) AS max, false AS compacted
    FROM (UNPIVOT (SELECT label_id, hour_of(ts_ms) AS hour_ms, COLUMNS('^n_') FROM telemetry_rows
                   WHERE ts_ms >= t0 AND ts_ms < t1)
          ON COLUMNS('^n_') INTO NAME field VALUE value)
    GROUP BY ALL;

-- The labels the analytics parameters select.
CREATE OR REPLACE MACRO telemetry_labels_in(tenant, dev, mname, mver, knd) AS TABLE
    SELECT * FROM telemetry_labels
    WHERE tenant_id = tenant
      AND (dev IS NULL OR device_id = dev)
      AND (mname IS NULL OR model_name = mname)
      AND (mver IS NULL OR model_version = mver)
      AND (knd IS NULL OR kind = knd);

-- The whole hours inside [from_ms, to_ms) are [first_full_hour, end_full_hours); when there
-- are none, both are the same instant and everything comes from the rows. (A `from` beyond
-- the year 100,000 is clamped there, where no event can be, so rounding up cannot overflow.)
CREATE OR REPLACE MACRO first_full_hour(from_ms) AS
    hour_of(least(greatest(from_ms, 0), 3155760000000000) + 3599999);
CREATE OR REPLACE MACRO end_full_hours(from_ms, to_ms) AS
    greatest(first_full_hour(from_ms), hour_of(greatest(to_ms, 0)));

-- Per label and hour for the parameters' selection, with the label's columns: whole hours
-- from the rollup, the partial ones at both edges from the rows.
CREATE OR REPLACE MACRO telemetry_hours_in(tenant, from_ms, to_ms, dev, mname, mver, knd) AS TABLE
    WITH parts AS (
        SELECT * FROM telemetry_hours
        WHERE hour_ms >= first_full_hour(from_ms) AND hour_ms < end_full_hours(from_ms, to_ms)
        UNION ALL
        SELECT * FROM telemetry_hours_of(from_ms, least(to_ms, first_full_hour(from_ms)))
        UNION ALL
        SELECT * FROM telemetry_hours_of(end_full_hours(from_ms, to_ms), to_ms))
    SELECT p.*, l.* EXCLUDE (label_id)
    FROM parts p JOIN telemetry_labels_in(tenant, dev, mname, mver, knd) l USING (label_id);

-- The same for the numeric fields' histogram bins.
CREATE OR REPLACE MACRO telemetry_bins_in(tenant, from_ms, to_ms, dev, mname, mver, knd) AS TABLE
    WITH parts AS (
        SELECT * FROM telemetry_bins
        WHERE hour_ms >= first_full_hour(from_ms) AND hour_ms < end_full_hours(from_ms, to_ms)
        UNION ALL
        SELECT * FROM telemetry_bins_of(from_ms, least(to_ms, first_full_hour(from_ms)))
        UNION ALL
        SELECT * FROM telemetry_bins_of(end_full_hours(from_ms, to_ms), to_ms))
    SELECT p.*, l.* EXCLUDE (label_id)
    FROM parts p JOIN telemetry_labels_in(tenant, dev, mname, mver, knd) l USING (label_id);

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
