"""CPU time of validating hostile export bodies: the worst-case e-mail and a flood of manual values.

    python -m bench.bounded_inputs [--dots 200000] [--keys 500000]

Validates one contact whose ``professionalEmail`` is ``"a@" + "." * dots + "@"`` (the shape that made the
former regex backtrack quadratically: 3.7 s at 20,000 dots) and one ``ExportRequest`` carrying ``keys``
unknown ``manualValues`` members. Both are refused after bounded work (a length cap, a size cap checked
before any member is looked at); prints the seconds of each and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import pydantic

from core.domain.export_request import ExportRequest, validate_records
from core.domain.jobs import ExportEntity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dots", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=500_000)
    args = parser.parse_args()

    record = {"id": "c1", "professionalEmail": "a@" + "." * args.dots + "@"}
    started = time.perf_counter()
    _, invalid = validate_records(ExportEntity.CONTACTS, [record])
    email_seconds = time.perf_counter() - started
    assert len(invalid) == 1

    body = {
        "entity": "contacts",
        "records": [{"id": "c1"}],
        "manualValues": {f"k{i}": "x" for i in range(args.keys)},
    }
    started = time.perf_counter()
    try:
        ExportRequest.model_validate(body)
        problems = 0
    except pydantic.ValidationError as exc:
        problems = exc.error_count()
    manual_seconds = time.perf_counter() - started

    print(f"e-mail of {args.dots:,} dots refused in {email_seconds:.4f} s")
    print(f"{args.keys:,} manualValues keys refused in {manual_seconds:.3f} s with {problems} problem(s)")
    print(
        json.dumps(
            {"email_s": round(email_seconds, 4), "manual_s": round(manual_seconds, 3), "problems": problems}
        )
    )


if __name__ == "__main__":
    main()
