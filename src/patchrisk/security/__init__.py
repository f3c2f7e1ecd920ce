"""Who may do what: the principals of the loop, their MLflow grants, and the alias policy."""
