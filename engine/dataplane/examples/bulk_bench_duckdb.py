"""The DuckDB side of the bulk benchmark (bulk_bench.rs runs it, in the same run, on the same files).

It does the same work as the engine's bulk path, in SQL: read the Service IS extraction and
the two registries' answers, join each answer row to its client on the personal code (current
or previous), drop the identifier columns, turn dates into days relative to the client's
anchor date, band the birth year, keep only the clients whose quasi-identifier class has at
least k members (and their rows), give each client a study ID, and export a CSV per table.
It prints {"seconds": ..., "peak_mib": ..., "rows": {...}} as JSON.

Usage: python3 bulk_bench_duckdb.py CONFIG.json   (pip install duckdb)
"""

import json
import os
import resource
import sys
import time

import duckdb


def q(name):
    return '"' + name.replace('"', '""') + '"'


def main():
    config = json.load(open(sys.argv[1]))
    inp, out = config["input"], config["output"]
    os.makedirs(out, exist_ok=True)
    identifiers = set(config["identifiers"]) | {"personal_code", "previous_personal_code"}
    dates = set(config["dates"])
    anchor = config["anchor"]
    bands = config["bands"]
    qis = config["quasi_identifiers"]
    k = config["k"]

    start = time.perf_counter()
    con = duckdb.connect()

    def read(name):
        return f"read_csv({json.dumps(os.path.join(inp, name))}, header=true, all_varchar=true)"

    def header(name):
        with open(os.path.join(inp, name)) as f:
            return f.readline().strip().split(",")

    def released(column, anchor_expr):
        if column in dates:
            return f"(TRY_CAST({q(column)} AS DATE) - {anchor_expr}) AS {q(column)}"
        if column in bands:
            w = int(bands[column])
            low = f"(floor(TRY_CAST({q(column)} AS BIGINT) / {w}) * {w})::BIGINT"
            return f"CASE WHEN TRY_CAST({q(column)} AS BIGINT) IS NULL THEN {q(column)} ELSE {low}::VARCHAR || '–' || ({low} + {w - 1})::VARCHAR END AS {q(column)}"
        return q(column)

    clients_cols = [c for c in header("clients.csv") if c not in identifiers]
    con.execute(
        f"CREATE TABLE clients AS SELECT row_number() OVER () AS rn, * FROM {read('clients.csv')}"
    )
    anchor_expr = f"TRY_CAST(c.{q(anchor)} AS DATE)" if anchor else "NULL"
    subject_cols = ", ".join(released(c, f"TRY_CAST({q(anchor)} AS DATE)" if anchor else "NULL") for c in clients_cols)
    con.execute(f"CREATE TABLE anon AS SELECT rn, {subject_cols} FROM clients")
    partition = ", ".join(q(x) for x in qis)
    con.execute(
        f"""CREATE TABLE kept AS
            SELECT * FROM (SELECT *, count(*) OVER (PARTITION BY {partition}) AS class_size FROM anon)
            WHERE class_size >= {k}"""
    )
    con.execute(
        """CREATE TABLE ids AS
           SELECT personal_code AS code, rn FROM clients
           UNION ALL
           SELECT previous_personal_code, rn FROM clients WHERE previous_personal_code IS NOT NULL"""
    )
    study_id = "'P-' || substr(md5(c.rn::VARCHAR), 1, 16) AS study_id"
    rows = {}
    con.execute(
        f"COPY (SELECT {study_id}, {', '.join('c.' + q(x) for x in clients_cols)} FROM kept c) "
        f"TO {json.dumps(os.path.join(out, 'subjects.csv'))} (HEADER)"
    )
    rows["subjects"] = con.execute("SELECT count(*) FROM kept").fetchone()[0]
    for name, table in [
        ("information_centre.csv", "information_centre"),
        ("prison_administration.csv", "prison_rulings"),
    ]:
        cols = [c for c in header(name) if c not in identifiers]
        projected = ", ".join(
            released(col, anchor_expr).replace(q(col), "a." + q(col), 1) if col in dates or col in bands else "a." + q(col)
            for col in cols
        )
        target = os.path.join(out, table + ".csv")
        con.execute(
            f"""COPY (SELECT {study_id}, {projected}
                      FROM {read(name)} a
                      JOIN ids i ON i.code = a.personal_code
                      JOIN kept k ON k.rn = i.rn
                      JOIN clients c ON c.rn = i.rn)
                TO {json.dumps(target)} (HEADER)"""
        )
        rows[table] = None
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "rows": rows}))


if __name__ == "__main__":
    main()
