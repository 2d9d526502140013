"""The Python `reader` library (https://pypi.org/project/reader/) on the ingest bench's feeds.

Usage: reader_ingest.py cold|again DB URL_LIST WORKERS

cold: a new database, every URL added, then one update of all feeds.
again: the same database updated once more (the server answers 304 to its conditional GETs).
Prints `entries=N feeds=N` (entries stored after the update).

update_feeds(scheduled=False) updates every feed now, as `tinbao poll --once --all` does;
reader's default would skip feeds its own schedule does not consider due.
"""

import sys

from reader import make_reader


def main():
    mode, db, url_list, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(url_list) as f:
        urls = [line.strip() for line in f if line.strip()]
    reader = make_reader(db)
    if mode == "cold":
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    reader.update_feeds(scheduled=False, workers=workers)
    counts = reader.get_entry_counts()
    errors = sum(1 for feed in reader.get_feeds() if feed.last_exception)
    reader.close()
    print(f"entries={counts.total} feeds={len(urls)} errors={errors}")


if __name__ == "__main__":
    main()
