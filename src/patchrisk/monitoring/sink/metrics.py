"""Prometheus metrics of the sink, on their own registry (served at ``GET /metrics``)."""

from __future__ import annotations

import gc
import sys

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram


class SinkMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("patchrisk_sink_events_received_total", "Accepted events", ["type"], registry=r)
        self.malformed = Counter("patchrisk_sink_events_malformed_total", "Rejected events", ["reason"],
                                 registry=r)
        self.duplicates = Counter("patchrisk_sink_events_duplicate_total", "Events already buffered", ["type"],
                                  registry=r)
        self.rows_written = Counter("patchrisk_sink_rows_written_total", "Rows published to the store",
                                    ["model", "endpoint"], registry=r)
        # Events committed for the store (published with the flush; after a crash, on restart), so a
        # caller can tell when everything it sent is readable: a paired exchange counts its request and
        # its response, an event kept for pairing at read time counts itself.
        self.events_stored = Counter("patchrisk_sink_events_stored_total", "Events committed for the store",
                                     ["model", "endpoint", "type"], registry=r)
        self.flushes = Counter("patchrisk_sink_flushes_total", "Flushes", ["outcome"], registry=r)
        self.unpaired_requests = Counter("patchrisk_sink_unpaired_requests_total",
                                         "Requests with no response within the timeout (error rows)", registry=r)
        self.unpaired_responses = Counter("patchrisk_sink_unpaired_responses_total",
                                          "Responses whose request never arrived", registry=r)
        self.buffer_full_waits = Counter("patchrisk_sink_buffer_full_waits_total",
                                         "Events that found the buffer full and waited for the flush to make "
                                         "room (503 if none came within --buffer-full-wait)", registry=r)
        self.buffered_rows = Gauge("patchrisk_sink_buffered_rows", "Rows held in memory (and spool)", registry=r)
        self.flush_seconds = Histogram("patchrisk_sink_flush_seconds", "Flush duration", registry=r)
        self.collisions = Counter("patchrisk_sink_id_collisions_total",
                                  "Events refused (409): another event with the same ce-id and pod was waiting",
                                  ["type"], registry=r)
        self.dead_letters = Counter("patchrisk_sink_dead_letters_total",
                                    "Records quarantined under <spool>/dead-letter", ["source"], registry=r)
        self.publish_healthy = Gauge("patchrisk_sink_publish_healthy",
                                     "1 while flushing and publishing work, 0 after a failure (see /healthz)",
                                     registry=r)
        self.publish_healthy.set(1)
        GCCollector(registry=r)  # python_gc_collections_total and the objects collected, per generation
        self.gc_frozen_objects = Gauge("patchrisk_sink_gc_frozen_objects",
                                       "Objects left out of garbage collection (start-up, late imports: see heap.py)",
                                       registry=r)
        self.gc_frozen_objects.set_function(gc.get_freeze_count)  # read at each scrape: whoever froze them
        self.gil_switch_interval = Gauge("patchrisk_sink_gil_switch_interval_seconds",
                                         "Longest wait of a thread for the GIL before its holder is asked to "
                                         "let go (set by the sink command)", registry=r)
        self.gil_switch_interval.set_function(sys.getswitchinterval)
        self.replayed = Counter("patchrisk_sink_spool_replayed_events_total", "Events replayed at start",
                                registry=r)
