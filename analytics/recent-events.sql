-- recent-events: the newest events first (by server time), filtered, paginated with
-- $limit / $offset. Field columns (n_, b_, s_) come back as one `fields` object in JSON.

-- section: events
SELECT event_id, device_id, ts_ms, received_ms, kind, model_name, model_version, severity,
       COLUMNS('^[nbs]_')
FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
WHERE $severity IS NULL OR severity = $severity
ORDER BY received_ms DESC, position DESC, event_id
LIMIT $limit OFFSET $offset;
