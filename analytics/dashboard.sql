-- dashboard: the statistics sections, plus per-hour summaries, the busiest devices, recent
-- critical events and ingest status. The server adds projection lag (it is not in DuckDB).
-- Hours and devices are read from the hourly rollups, like the statistics.

-- include: statistics

-- section: hourly
SELECT hour_ms                                                        AS bucket_start_ms,
       sum(events)::BIGINT                                            AS events,
       coalesce(sum(events) FILTER (WHERE severity = 'critical'), 0)::BIGINT AS critical,
       sum(drowsy_true) / nullif(sum(drowsy_known), 0)                AS drowsy_rate
FROM telemetry_hours_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
GROUP BY hour_ms
ORDER BY bucket_start_ms;

-- section: top_devices
SELECT device_id, sum(events)::BIGINT AS events,
       coalesce(sum(events) FILTER (WHERE severity = 'critical'), 0)::BIGINT AS critical
FROM telemetry_hours_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
GROUP BY device_id
ORDER BY events DESC, device_id
LIMIT 10;

-- section: recent_critical
SELECT event_id, device_id, ts_ms, received_ms, kind, model_version, COLUMNS('^[nbs]_')
FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
WHERE severity = 'critical'
ORDER BY received_ms DESC, position DESC, event_id
LIMIT 20;

-- section: ingest
SELECT count(*) FILTER (WHERE received_ms >= $now_ms - 60000) / 60.0 AS events_per_second_last_minute,
       max(received_ms)                                             AS last_received_ms
FROM telemetry
WHERE tenant_id = $tenant;
