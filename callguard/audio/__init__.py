"""Spoken prompts (espeak-ng, cached) and the room speaker."""
