"""Datasets: real portraits, pseudo alphas, re-composition and synthetic video clips."""
