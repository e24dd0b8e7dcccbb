"""Thin DVC stage entry points over the dplc library (Ray, DVC and MLflow live here)."""
