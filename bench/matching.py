"""CPU time of matching a batch of platform contacts against candidate Dynamics rows.

    python -m bench.matching [--records 10000]

Builds one ``CandidateIndex`` (LinkedIn URL, else first + last + company name) over one row for every
third record, in the spellings a CRM holds (upper case, typographic apostrophes, ``Inc`` punctuation,
``LinkedIn.com`` with a query string), then matches every record. Prints the CPU seconds of indexing and
of matching and a final JSON line. The matcher indexes normalised values, so the cost grows with records
+ rows, not their product (tests/unit/test_matching.py counts the row reads that show it); on the shared
2-CPU box 10,000 records took about 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from core.domain.matching import CandidateIndex, IdentifierConfig, contact_rule

RULE = IdentifierConfig.from_json(
    {"contactIdentifier": "linkedin_or_name_company", "columns": {"contactLinkedinUrl": "new_linkedinurl"}}
)


def batch(size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for i in range(size):
        company = f"Acme {i % 2000}, Inc."
        linkedin = f"https://www.linkedin.com/in/user-{i}/"
        records.append(
            {"id": f"p{i}", "firstName": f"Jané{i}", "lastName": "O’Brien", "company": {"name": company}}
            | {"linkedinUrl": linkedin}
        )
        if i % 3 == 0:
            account = {"name": f"ACME {i % 2000} INC"}
            rows.append(
                {"contactid": f"c{i}", "firstname": f"JANE{i}", "lastname": "O'Brien"}
                | {"parentcustomerid_account": account}
                | {"new_linkedinurl": f"http://LinkedIn.com/in/User-{i}?x=1" if i % 2 else None}
            )
    return records, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    records, rows = batch(args.records)
    started = time.process_time()
    index = CandidateIndex(contact_rule(RULE), rows, id_column="contactid")
    indexed = time.process_time()
    matched = sum(1 for record in records if index.match(record).dynamics_id)
    done = time.process_time()
    print(f"{args.records} records, {len(rows)} rows, {matched} matched")
    print(f"index {indexed - started:.3f} s CPU, match {done - indexed:.3f} s CPU")
    figures = {"records": args.records, "rows": len(rows), "matched": matched}
    figures |= {"index_cpu_s": round(indexed - started, 3), "match_cpu_s": round(done - indexed, 3)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
