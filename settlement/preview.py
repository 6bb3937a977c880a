"""``ecoledger settle preview``: a statement computed offline from files, for finance bureaus
checking a figure before it is final and for auditors. No server, no database."""

import json
from decimal import Decimal
from typing import IO, Any

from marshmallow import ValidationError, fields, validate

from contracts.agreement_document import load_agreement, validation_message
from contracts.agreements import Sample, document_digest
from contracts.fields import StrictSchema, ref
from settlement.periods import PeriodError, period_bounds
from settlement.rules import four_places
from settlement.statement import compute_statement


class PreviewError(ValueError):
    """An input file that cannot be used; the message names the file and the field."""


class Submission(StrictSchema):
    section = ref(required=True)
    samples = fields.List(fields.Nested(Sample), required=True, validate=validate.Length(min=1))


def _read(file: IO[str], what: str) -> Any:
    try:
        return json.load(file)
    except json.JSONDecodeError as error:
        raise PreviewError(f"{file.name}: the {what} is not JSON: {error}") from None


def preview(agreement_file: IO[str], monitoring_file: IO[str], period: str) -> dict[str, Any]:
    document = _read(agreement_file, "agreement")
    try:
        agreement = load_agreement(document)
    except ValidationError as error:
        raise PreviewError(f"{agreement_file.name}: {validation_message(error)}") from None
    try:
        period_bounds(period, agreement["period"])
    except PeriodError as error:
        raise PreviewError(f"--period: {error}") from None
    submissions = _read(monitoring_file, "monitoring data")
    if not isinstance(submissions, list):
        raise PreviewError(f"{monitoring_file.name}: expected a list of monitoring.submit bodies")
    sections = {s["id"] for s in agreement["sections"]}
    for index, submission in enumerate(submissions):
        try:
            Submission().load(submission)
        except ValidationError as error:
            raise PreviewError(f"{monitoring_file.name}: {index}.{validation_message(error)}") from None
        if submission["section"] not in sections:
            raise PreviewError(f"{monitoring_file.name}: {index}.section: {submission['section']!r} "
                               "is not a section of the agreement")
    statement = compute_statement(document, submissions, period)
    statement["digest"] = document_digest(document)
    return statement


def render(statement: dict[str, Any]) -> str:
    """The statement for reading on a terminal."""
    lines = [f"{statement['agreement']} v{statement['version']}, period {statement['period']} "
             f"(reference {statement['reference_period']})"]
    for section in statement["sections"]:
        if section["status"] != "settled":
            lines.append(f"section {section['section']} {section['name']}: {section['reason']}")
            continue
        reference = section["reference_index"]
        lines.append(f"section {section['section']} {section['name']}: class {section['class']}, "
                     f"index {four_places(Decimal(section['index']))}"
                     + (f" (reference {four_places(Decimal(reference))})" if reference else " (no reference)"))
        lines.append("  means: " + ", ".join(f"{k} {v}" for k, v in section["means"].items()))
        for rule in section["rules"]:
            lines.append(f"  {rule['type']:<13} {rule['amount']:>16}  {rule['reason']}")
        lines.append(f"  {'total':<13} {section['amount']:>16}")
    for pool in statement.get("pools", []):
        lines.append(f"pool of {pool['fund']}: nets " + ", ".join(f"{p} {a}" for p, a in pool["nets"].items()))
    lines.append("transfers:" if statement["transfers"] else "transfers: none")
    lines += [f"  {t['from']} → {t['to']}  {t['amount']}" for t in statement["transfers"]]
    return "\n".join(lines)
