"""Hold reference/icd10cm.csv, the ICD-10-CM codes the clinic uses, to a
maintained ICD-10-CM package (simple-icd-10-cm, pinned): every code exists,
is billable exactly when the classification has it as a leaf, carries the
classification's description, and sits under a root of its indication.

Usage: icd10_check.py reference/icd10cm.csv
"""

import csv
import sys

import simple_icd_10_cm as cm

# The categories each indication's codes come from (docs/BILLING.md).
ROOTS = {
    "depression": ["F32", "F33"],
    "anxiety": ["F41"],
    "migraine": ["G43"],
    "chronic_pain": ["G89"],
    "chronic_pain.crps": ["G90.5", "G56.4", "G57.7"],
    "chronic_pain.neuropathic": ["M79.2"],
}


def main(path: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    problems = []
    for row in rows:
        code, indication = row["code"], row["indication"]
        if not cm.is_valid_item(code):
            problems.append(f"{code}: not an ICD-10-CM code")
            continue
        leaf = cm.is_leaf(code)
        if (row["billable"] == "true") != leaf:
            problems.append(f"{code}: billable is {row['billable']}, the classification says "
                            f"{'a leaf (billable)' if leaf else 'a category (not billable)'}")
        if row["description"] != cm.get_description(code):
            problems.append(f"{code}: description {row['description']!r}, the classification's "
                            f"{cm.get_description(code)!r}")
        roots = ROOTS.get(indication)
        if roots is None:
            problems.append(f"{code}: unknown indication {indication!r}")
        elif not any(code == r or cm.is_descendant(code, r) for r in roots):
            problems.append(f"{code}: not under {', '.join(roots)} ({indication})")
    # The whole of each root is in the table: no billable code left out.
    listed = {row["code"] for row in rows}
    for indication, roots in ROOTS.items():
        for root in roots:
            for code in [root, *cm.get_descendants(root)]:
                if code not in listed:
                    problems.append(f"{code} ({indication}, under {root}): missing from the table")
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        sys.exit(f"{len(problems)} problems in {path}")
    billable = sum(row["billable"] == "true" for row in rows)
    print(f"ok  {len(rows)} codes ({billable} billable) agree with simple-icd-10-cm "
          f"{cm.__version__ if hasattr(cm, '__version__') else ''}".rstrip())


if __name__ == "__main__":
    main(sys.argv[1])
