"""JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins): one test case per regression check,
a failure element for each failed check, warnings and environment differences as properties."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from compress.bench.regress import RegressResult
from compress.fsio import write_text

__all__ = ["junit_xml", "write_junit"]


def junit_xml(result: RegressResult) -> str:
    failures = sum(not c.passed for c in result.checks)
    suites = ET.Element("testsuites", tests=str(len(result.checks)), failures=str(failures), errors="0")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="edge-compress regress",
        tests=str(len(result.checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{result.seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("model", result.model), ("mode", result.mode), ("against", result.against)):
        ET.SubElement(props, "property", name=name, value=value)
    for i, warning in enumerate(result.warnings):
        ET.SubElement(props, "property", name=f"warning.{i}", value=warning)
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"edge-compress.{Path(result.model).name}", name=check.name, time="0")
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message, type="regression")
            failure.text = json.dumps(check.details, indent=2, default=str)
        ET.SubElement(case, "system-out").text = check.message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(result: RegressResult, path: str | Path) -> None:
    write_text(path, junit_xml(result))
