"""Run summaries (pure data) and their rendering."""

from compress.report.markdown import render_markdown
from compress.report.summary import build_summary

__all__ = ["build_summary", "render_markdown"]
