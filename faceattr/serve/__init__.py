"""A small web page and HTTP API for trying a model (FastAPI + uvicorn)."""
