-- hourly: events per time bucket ($bucket_ms, an hour by default) per device, or per model
-- version when $by = 'model_version', with severity counts and the mean of each numeric field.

-- section: buckets
SELECT (ts_ms // $bucket_ms) * $bucket_ms                                   AS bucket_start_ms,
       CASE WHEN $by = 'model_version' THEN coalesce(model_version, '')
            ELSE device_id END                                              AS group_key,
       count(*)                                                             AS events,
       count(*) FILTER (WHERE severity = 'warning')                         AS warnings,
       count(*) FILTER (WHERE severity = 'critical')                        AS critical,
       avg(b_is_drowsy::INTEGER)                                            AS drowsy_rate,
       avg(COLUMNS('^n_(.*)$'))                                             AS 'mean_\1'
FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
GROUP BY ALL
ORDER BY bucket_start_ms, group_key;
