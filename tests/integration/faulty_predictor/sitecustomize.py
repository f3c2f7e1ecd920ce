"""Test-only fault injection for the real predictor subprocess (never imported by production
code): put this folder on the predictor's PYTHONPATH and set ``PATCHRISK_TEST_FAILING_CALLS=k/n``
to make ``k`` of every ``n`` predict calls raise, as a model that breaks on some traffic would.
The exception reaches KServe's own handler, so the caller gets a 5xx and the logger sees no
response, exactly as with a real crash."""

import os

_SPEC = os.environ.get("PATCHRISK_TEST_FAILING_CALLS")

if _SPEC:
    import itertools

    from patchrisk_serving.catboost_predictor import model as _model

    _failing, _every = (int(part) for part in _SPEC.split("/"))
    _calls = itertools.count()
    _predict = _model.PatchRiskModel.predict

    def _sometimes_failing_predict(self, payload, headers=None):
        # Spread the failures over each block of n calls (e.g. 3/10: calls 0, 3, 6 of every 10).
        position = next(_calls) % _every
        if position % max(1, _every // _failing) == 0 and position // max(1, _every // _failing) < _failing:
            raise RuntimeError("injected fault: the canary model broke on this call")
        return _predict(self, payload, headers)

    _model.PatchRiskModel.predict = _sometimes_failing_predict
