"""Runs, metrics and artefacts on disk (JSON / JSONL / safetensors, atomic writes, no pickle)."""
