"""Analysis: MLflow runs → pandas → paper tables and plots."""
