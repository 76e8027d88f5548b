"""Infrastructure anomaly detection: telemetry points to scores, events, incidents and tickets."""
