#!/usr/bin/env python3
"""Build the example pipelines' data from the CDNOW sample.

    python3 pipelines/data/make_data.py [CDNOW_sample.txt]

CDNOW is public research data (Fader & Hardie): the purchases of 2,357 customers of the
CDNOW online music store, January 1997 - June 1998. Each line of CDNOW_sample.txt holds
the customer's original id, the id in the sample, the date (YYYYMMDD), the number of CDs
and the amount in dollars. This writes, next to this script:

  cdnow.csv     customer_id,date,cds,amount with ISO dates
  cdnow.sqlite  the same rows in table `transactions` with declared column types

Standard library only; the outputs are committed and rebuilt byte for byte.
"""
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "..", "shared", "data", "cdnow", "CDNOW_sample.txt")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    rows = []
    with open(src) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            _, cid, day, cds, amount = parts
            rows.append((int(cid), f"{day[:4]}-{day[4:6]}-{day[6:]}", int(cds), float(amount)))
    with open(os.path.join(HERE, "cdnow.csv"), "w", newline="") as out:
        out.write("customer_id,date,cds,amount\n")
        for cid, day, cds, amount in rows:
            out.write(f"{cid},{day},{cds},{amount:.2f}\n")
    db = os.path.join(HERE, "cdnow.sqlite")
    if os.path.exists(db):
        os.remove(db)
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE transactions (customer_id INTEGER NOT NULL, date DATE NOT NULL, "
        "cds INTEGER NOT NULL, amount REAL NOT NULL)"
    )
    con.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.execute("VACUUM")
    con.close()
    print(f"{len(rows)} transactions -> cdnow.csv, cdnow.sqlite")


if __name__ == "__main__":
    main()
