"""Embedding, nearest-neighbour metrics, galleries and evaluation reports."""
