"""What a monitoring run tells people: one structured JSON log line, and optionally a webhook.

The webhook body is Slack-compatible (``text`` plus ``blocks``); Mattermost, Teams workflows and
most chat tools accept it. A webhook that fails is logged and reported in the summary, never
fatal: the analysis and the decision are already stored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re

log = logging.getLogger(__name__)


def alert_record(summary: dict) -> dict:
    """The compact, machine-readable line a log pipeline indexes."""
    drift, decision = summary.get("drift", {}), summary.get("decision", {})
    return {
        "event": "patchrisk.monitor",
        "model": summary["model"]["name"],
        "model_version": summary["model"]["version"],
        "window_start": summary["window"]["start"],
        "window_end": summary["window"]["end"],
        "status": drift.get("status"),
        "rows": drift.get("rows"),
        "drifted_features": drift.get("drifted_features", []),
        "drifted_share": drift.get("drifted_share"),
        "prediction_drift": (drift.get("prediction") or {}).get("drifted"),
        "performance": {k: (summary.get("performance") or {}).get(k) for k in ("status", "current", "drop", "degraded")},
        "trigger": decision.get("trigger"),
        "reasons": decision.get("reasons", []),
        "blocked_by": decision.get("blocked_by", []),
        "launch": (summary.get("launch") or {}).get("outcome"),
        "report": summary.get("report_uri"),
    }


def headline(summary: dict) -> str:
    record = alert_record(summary)
    name = f"{record['model']} v{record['model_version']}"
    if record["status"] != "ok":
        state = {"no_data": "no data in the window"}.get(record["status"], record["status"].replace("_", " "))
        return f"{name}: {state} ({record['window_start']} to {record['window_end']})"
    what = (f"drift in {len(record['drifted_features'])} feature(s): {', '.join(record['drifted_features'])}"
            if record["drifted_features"] else "no feature drift")
    if record["prediction_drift"]:
        what += "; prediction drift"
    if record["trigger"]:
        what += f"; retraining triggered ({record['launch']})"
    elif record["reasons"]:
        what += f"; retraining held back: {'; '.join(record['blocked_by'])}"
    return f"{name}: {what} (window ending {record['window_end']})"


def slack_payload(summary: dict) -> dict:
    record = alert_record(summary)
    text = headline(summary)
    fields = [
        f"*Rows*\n{record['rows']:,}" if record["rows"] is not None else "*Rows*\n-",
        f"*Drifted share*\n{record['drifted_share']:.2f}" if record["drifted_share"] is not None else "*Drifted share*\n-",
        f"*Prediction drift*\n{'yes' if record['prediction_drift'] else 'no'}",
        f"*Retraining*\n{'triggered' if record['trigger'] else 'no'}",
    ]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"patchrisk monitor: {record['model']}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if record["reasons"]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Reasons*\n" + "\n".join(
            f"• {r}" for r in record["reasons"] + [f"held back: {b}" for b in record["blocked_by"]])}})
    if record["report"]:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Report: {record['report']}"}]})
    return {"text": text, "blocks": blocks}


def redact_url(url: str) -> str:
    """Scheme and host only: a chat webhook's path (and any user, password or query) is the
    credential, so it never reaches a log line or ``summary.json``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<redacted>"
    if not parts.scheme or not host:
        return "<redacted>"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}/<redacted>"


class _RedactUrls(logging.Filter):
    """httpx logs every request with its full URL ("HTTP Request: POST https://…"): rewrite it."""

    URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.URL.sub(lambda m: redact_url(m.group(0)), record.getMessage())
        record.args = ()
        return True


@contextlib.contextmanager
def _urls_redacted_in_http_logs():
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    redact = _RedactUrls()
    for logger in loggers:
        logger.addFilter(redact)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(redact)


def send_webhook(url: str, summary: dict, timeout_s: float) -> dict:
    """POST the Slack payload; returns what happened (the URL redacted), never raises."""
    import httpx

    shown = redact_url(url)
    try:
        # The answer's body is never read: its status says whether the post arrived, and whatever
        # stands at the URL could answer 200 and then a body that never ends.
        with (_urls_redacted_in_http_logs(), httpx.Client(timeout=timeout_s) as client,
              client.stream("POST", url, json=slack_payload(summary)) as response):
            response.raise_for_status()
        return {"status": "sent", "http_status": response.status_code, "url": shown}
    except httpx.HTTPError as exc:
        # httpx puts the full URL in some messages ("... for url '...'"): keep only scheme and host.
        status = f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else str(exc)
        error = f"{type(exc).__name__}: {_RedactUrls.URL.sub(lambda m: redact_url(m.group(0)), status)}"
        log.warning("alert webhook %s failed: %s", shown, error)
        return {"status": "failed", "error": error, "url": shown}


def log_line(summary: dict) -> str:
    return json.dumps(alert_record(summary), sort_keys=True, default=str)
