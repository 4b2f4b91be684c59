-- model-versions: field behaviour per model version next to the offline metrics logged by the
-- tracking run that version came from (the run named when its devices were registered), so
-- drift shows in one table.

-- section: versions
WITH field AS (
    SELECT model_name, model_version,
           count(DISTINCT device_id)                      AS devices,
           count(*)                                       AS events,
           count(*) FILTER (WHERE severity = 'critical')  AS critical,
           avg(b_is_drowsy::INTEGER)                      AS drowsy_rate,
           avg(COLUMNS('^n_(.*)$'))                       AS 'field_mean_\1'
    FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
    GROUP BY model_name, model_version
),
source AS (
    SELECT model_name, model_version, min(run_id) AS run_id
    FROM devices WHERE tenant_id = $tenant AND run_id IS NOT NULL
    GROUP BY model_name, model_version
),
offline AS (
    SELECT run_id,
           max(value) FILTER (WHERE key = 'accuracy')                     AS offline_accuracy,
           max(value) FILTER (WHERE key IN ('latency_ms', 'latency'))     AS offline_latency_ms
    FROM latest_metrics
    GROUP BY run_id
)
SELECT f.*, s.run_id AS source_run_id, o.offline_accuracy, o.offline_latency_ms
FROM field f
LEFT JOIN source s ON s.model_name IS NOT DISTINCT FROM f.model_name
                  AND s.model_version IS NOT DISTINCT FROM f.model_version
LEFT JOIN offline o ON o.run_id = s.run_id
ORDER BY f.model_name, f.model_version;
