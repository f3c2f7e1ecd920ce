"""The CI risk gate: score patches on the serving endpoint and fail the build above a threshold."""
