"""A local pod runner: the rendered overlay run on this machine as the cluster would run it.

``patchrisk local up --overlay NAME`` renders the overlay (render), plans its pods, Services and
Secrets (plan, secrets), starts each pod as processes in a bubblewrap sandbox (sandbox, volumes,
env, images) behind per-Service proxies and an InferenceService router (network, proxy), and
records everything under ``.state/local/<overlay>/`` (state) so ``status`` and ``down`` work from
another shell. See docs/local-cluster.md for what is emulated and what is not.
"""
