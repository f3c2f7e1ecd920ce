"""Alerts: the JSON log line and a Slack-compatible webhook whose failure is never fatal."""

import json
import time
from http.server import BaseHTTPRequestHandler

from patchrisk.monitoring.drift.alerts import headline, log_line, send_webhook
from tests.conftest import free_port
from tests.unit.canned_http import loopback_http_server, streaming_http_server

SUMMARY = {
    "model": {"name": "patch-risk", "version": "3"},
    "window": {"start": "2026-03-01T00:00:00+00:00", "end": "2026-03-02T00:00:00+00:00"},
    "drift": {"status": "ok", "rows": 2000, "drifted_features": ["code_churn_score", "region"],
              "drifted_share": 0.15, "prediction": {"drifted": True}},
    "performance": None,
    "decision": {"trigger": True, "reasons": ["drifted feature share >= 0.1 in the last 1 window(s) (0.15)"],
                 "blocked_by": []},
    "launch": {"outcome": "submitted"},
    "report_uri": "s3://logs/reports/patch-risk/20260302T000000Z/drift.html",
}


def test_log_line_is_one_json_object_with_the_decision():
    line = log_line(SUMMARY)
    assert "\n" not in line
    record = json.loads(line)
    assert record["event"] == "patchrisk.monitor" and record["drifted_features"] == ["code_churn_score", "region"]
    assert record["trigger"] is True and record["launch"] == "submitted" and record["prediction_drift"] is True
    assert "retraining triggered" in headline(SUMMARY) and "code_churn_score, region" in headline(SUMMARY)


def test_webhook_posts_a_slack_payload():
    received = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append((self.headers["Content-Type"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    with loopback_http_server(Hook) as base:
        result = send_webhook(f"{base}/hook", SUMMARY, 5)
    assert result == {"status": "sent", "http_status": 200, "url": f"{base}/<redacted>"}
    content_type, body = received[0]
    assert content_type == "application/json" and body["text"] == headline(SUMMARY)
    assert body["blocks"][0]["type"] == "header" and any("Reasons" in json.dumps(b) for b in body["blocks"])


def test_a_webhook_answer_that_never_ends_does_not_hold_the_monitor():
    """The POST is what matters: a webhook (or what stands at its URL) answering 200 and then a body a
    byte at a time kept the monitor's run reading it for as long as it went on (httpx bounds each read,
    not the answer); its status is all the monitor needs."""

    def trickle():
        for _ in range(40):
            yield b"o"
            time.sleep(0.25)

    with streaming_http_server(trickle, {"content-type": "text/plain"}) as base:
        started = time.monotonic()
        result = send_webhook(f"{base}/hook", SUMMARY, 1)
        took = time.monotonic() - started
    assert result == {"status": "sent", "http_status": 200, "url": f"{base}/<redacted>"}
    assert took < 3, f"the monitor waited {took:.1f} s for the webhook's answer"


def test_webhook_failure_is_reported_not_raised():
    result = send_webhook(f"http://127.0.0.1:{free_port()}/hook", SUMMARY, 1)
    assert result["status"] == "failed" and "Connect" in result["error"]


def test_webhook_url_is_redacted_in_the_result_and_the_log(caplog):
    """A Slack webhook URL is a credential: neither the summary nor the log may carry its path."""

    class Refusing(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(404)
            self.end_headers()

    secret = "services/T0000/B0000/s3cr3t-t0ken"
    with loopback_http_server(Refusing) as base, caplog.at_level("DEBUG"):
        url = base.replace("http://", "http://hook-user:pw@") + f"/{secret}?token=also-secret"
        result = send_webhook(url, SUMMARY, 5)
    assert result["status"] == "failed" and "404" in result["error"]
    assert result["url"] == f"{base}/<redacted>"
    for text in (json.dumps(result), caplog.text):
        assert "s3cr3t" not in text and "also-secret" not in text and "pw@" not in text, text
    assert "<redacted>" in caplog.text


def test_redacting_keeps_scheme_and_host_only():
    from patchrisk.monitoring.drift.alerts import redact_url

    assert redact_url("https://hooks.slack.com/services/T/B/XYZ") == "https://hooks.slack.com/<redacted>"
    assert redact_url("https://u:p@chat.example:8443/hooks/abc?x=1") == "https://chat.example:8443/<redacted>"
    assert redact_url("not a url") == "<redacted>"
