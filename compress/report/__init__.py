"""Run summaries (pure data) and their rendering: Markdown, self-contained HTML, figures."""

from compress.report.markdown import render_markdown
from compress.report.summary import build_summary
from compress.report.write import write_report, write_run_report

__all__ = ["build_summary", "render_markdown", "write_report", "write_run_report"]
