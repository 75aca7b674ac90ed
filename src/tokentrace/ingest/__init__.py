"""Ingest: OTLP decode → normalize → price → durable spool → batch writer."""
