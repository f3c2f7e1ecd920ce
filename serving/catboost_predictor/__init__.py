"""KServe predictor for patchrisk CatBoost models (V1, Open Inference Protocol V2, explanations).

Run it with ``python -m patchrisk_serving.catboost_predictor --model_name=patch-risk
--model_dir=/mnt/models``. Importing this package stays cheap (KServe is imported by the
submodules that need it), so :mod:`.testing` can start servers without loading KServe.
"""
