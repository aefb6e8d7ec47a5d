"""Reads a studyflow release the way an analyst would: validates its data package with the
`frictionless` package, then reads every table with pandas and checks each column has the
type its `datapackage.json` declares. Prints one line per problem; exits 1 on any."""

import json
import sys
from pathlib import Path

import pandas as pd
from frictionless import validate

folder = Path(sys.argv[1])
problems = []

report = validate(str(folder / "datapackage.json"))
if not report.valid:
    for task in report.tasks:
        for error in task.errors[:5]:
            problems.append(f"frictionless: {task.name}: {error.message}")
    for error in report.errors[:5]:
        problems.append(f"frictionless: {error.message}")

package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
for resource in package["resources"]:
    df = pd.read_csv(folder / resource["path"], dtype=None, keep_default_na=True)
    for field in resource["schema"]["fields"]:
        name, kind = field["name"], field["type"]
        if name not in df.columns:
            problems.append(f"pandas: {resource['path']}: no column {name}")
            continue
        col = df[name]
        if col.isna().all():
            continue
        if kind == "integer":
            ok = pd.api.types.is_integer_dtype(col) or (
                pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all()
            )
        elif kind == "number":
            ok = pd.api.types.is_numeric_dtype(col)
        elif kind == "boolean":
            ok = pd.api.types.is_bool_dtype(col) or set(col.dropna().astype(str).str.lower()) <= {"true", "false"}
        else:
            ok = True
        if not ok:
            problems.append(f"pandas: {resource['path']}: {name} is {col.dtype}, declared {kind}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
