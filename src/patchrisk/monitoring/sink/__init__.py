"""The prediction log sink: receives KServe's payload-logger CloudEvents and writes Parquet rows.

events.py (parse a CloudEvent), buffer.py (pairing, bounded buffer, write-ahead spool),
rows.py (a request/response pair -> rows), attribution.py (default vs canary), writer.py (Parquet
batches, outbox, publishing), service.py (ties them together), app.py (HTTP), metrics.py,
testing.py (subprocess runner, KServe-logger event builder for tests and demos).
"""
