"""Watershed compensation: water-quality classes, payment rules, settlement statements,
obligations and clearing, and the scheduled jobs that run them."""
