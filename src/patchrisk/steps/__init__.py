"""The work behind each pipeline step, as plain functions over paths and strings.

KFP components call these (their bodies only import and call), and so can a plain script or a
test: the pipeline adds orchestration, never logic.
"""
