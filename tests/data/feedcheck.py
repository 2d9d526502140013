"""Checks merged feed documents against the rules feed validators apply: RFC 4287's MUSTs for
Atom, RSS 2.0's required elements, and the W3C Feed Validation Service's warnings that feed
readers trip on (entries sharing one atom:updated, atom:source without atom:updated, a feed
without atom:link rel="self").

    python3 feedcheck.py SELF_URL_PREFIX FILE...

Each FILE is checked as Atom (.atom) or RSS (.xml); its self link must be SELF_URL_PREFIX +
"feeds/" + the file's path after its "/feeds/" folder (`https://tin.example.vn/` and
`public/feeds/province/lao-cai.atom`: `https://tin.example.vn/feeds/province/lao-cai.atom`).
Prints a JSON list of problems, each {"file", "rule", "detail"}; an empty list means every check
passed. Exit 0 either way; 2 on bad usage."""

import email.utils
import json
import re
import sys
import xml.etree.ElementTree as ET

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)
IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def text_of(el):
    return (el.text or "").strip() if el is not None else ""


class Checker:
    def __init__(self, name):
        self.name = name
        self.problems = []

    def fail(self, rule, detail):
        self.problems.append({"file": self.name, "rule": rule, "detail": detail})

    def one(self, parent, tag, where, required=True):
        found = parent.findall(tag)
        if len(found) > 1:
            self.fail("at most one " + tag, where)
        if required and not found:
            self.fail("required " + tag, where)
        return found[0] if found else None

    def date(self, el, where):
        if el is not None and not RFC3339.match(text_of(el)):
            self.fail("RFC 3339 date", f"{where}: {text_of(el)!r}")

    def text_construct(self, el, where):
        if el is not None and el.get("type", "text") not in ("text", "html", "xhtml"):
            self.fail("text construct type", f"{where}: {el.get('type')!r}")

    def atom(self, root, self_url):
        if root.tag != ATOM + "feed":
            self.fail("atom:feed root", root.tag)
            return
        for tag in ("id", "title", "updated"):
            self.one(root, ATOM + tag, "feed")
        feed_id = self.one(root, ATOM + "id", "feed", required=False)
        if feed_id is not None and not IRI.match(text_of(feed_id)):
            self.fail("atom:id is an IRI", text_of(feed_id))
        self.date(root.find(ATOM + "updated"), "feed updated")
        self.text_construct(root.find(ATOM + "title"), "feed title")
        self.links(root, "feed")
        selfs = [l.get("href") for l in root.findall(ATOM + "link") if l.get("rel") == "self"]
        if selfs != [self_url]:
            self.fail("atom:link rel=self", f"{selfs} != [{self_url!r}]")
        entries = root.findall(ATOM + "entry")
        feed_has_author = root.find(ATOM + "author") is not None
        ids, updated = {}, {}
        for n, entry in enumerate(entries):
            where = f"entry {n + 1}"
            for tag in ("id", "title", "updated"):
                self.one(entry, ATOM + tag, where)
            self.one(entry, ATOM + "published", where, required=False)
            self.one(entry, ATOM + "content", where, required=False)
            self.one(entry, ATOM + "summary", where, required=False)
            for tag in ("updated", "published"):
                self.date(entry.find(ATOM + tag), f"{where} {tag}")
            for tag in ("title", "summary", "content"):
                self.text_construct(entry.find(ATOM + tag), f"{where} {tag}")
            self.links(entry, where)
            eid = text_of(entry.find(ATOM + "id"))
            if eid and not IRI.match(eid):
                self.fail("atom:id is an IRI", f"{where}: {eid!r}")
            ids.setdefault(eid, []).append(n + 1)
            updated.setdefault(text_of(entry.find(ATOM + "updated")), []).append(n + 1)
            alternate = [
                l for l in entry.findall(ATOM + "link") if l.get("rel", "alternate") == "alternate"
            ]
            if entry.find(ATOM + "content") is None and not alternate:
                self.fail("entry without content has rel=alternate link", where)
            content = entry.find(ATOM + "content")
            if content is not None and content.get("src") and entry.find(ATOM + "summary") is None:
                self.fail("entry with out-of-line content has a summary", where)
            source = entry.find(ATOM + "source")
            has_author = entry.find(ATOM + "author") is not None or (
                source is not None and source.find(ATOM + "author") is not None
            )
            if not (feed_has_author or has_author):
                self.fail("author in feed or entry", where)
            if source is not None:
                for tag in ("id", "title", "updated"):
                    if source.find(ATOM + tag) is None:
                        self.fail("source element: " + tag, where)
                self.date(source.find(ATOM + "updated"), f"{where} source updated")
        for eid, where in ids.items():
            if len(where) > 1:
                self.fail("unique entry ids", f"{eid!r} in entries {where}")
        for value, where in updated.items():
            if len(where) > 1:
                self.fail("distinct entry updated", f"{value!r} in entries {where}")

    def links(self, parent, where):
        seen = set()
        for link in parent.findall(ATOM + "link"):
            if not link.get("href"):
                self.fail("link href", where)
            if link.get("rel", "alternate") == "alternate":
                key = (link.get("type"), link.get("hreflang"))
                if key in seen:
                    self.fail("one alternate link per type and hreflang", f"{where}: {key}")
                seen.add(key)

    def rss(self, root, self_url):
        if root.tag != "rss" or root.get("version") != "2.0":
            self.fail("rss version 2.0 root", f"{root.tag} {root.get('version')}")
            return
        channel = self.one(root, "channel", "rss")
        if channel is None:
            return
        for tag in ("title", "link", "description"):
            self.one(channel, tag, "channel")
        selfs = [
            (l.get("href"), l.get("type"))
            for l in channel.findall(ATOM + "link")
            if l.get("rel") == "self"
        ]
        if selfs != [(self_url, "application/rss+xml")]:
            self.fail("atom:link rel=self", f"{selfs} != [{self_url!r}, application/rss+xml]")
        for tag in ("lastBuildDate", "pubDate"):
            self.rfc822(channel.find(tag), f"channel {tag}")
        guids = {}
        for n, item in enumerate(channel.findall("item")):
            where = f"item {n + 1}"
            if item.find("title") is None and item.find("description") is None:
                self.fail("item has title or description", where)
            self.rfc822(item.find("pubDate"), f"{where} pubDate")
            guid = text_of(item.find("guid"))
            if guid:
                guids.setdefault(guid, []).append(n + 1)
            source = item.find("source")
            if source is not None and not source.get("url"):
                self.fail("source has url", where)
        for guid, where in guids.items():
            if len(where) > 1:
                self.fail("unique guids", f"{guid!r} in items {where}")

    def rfc822(self, el, where):
        if el is None:
            return
        try:
            email.utils.parsedate_to_datetime(text_of(el))
        except (TypeError, ValueError):
            self.fail("RFC 822 date", f"{where}: {text_of(el)!r}")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    prefix, files = argv[1], argv[2:]
    problems = []
    for path in files:
        name = path.split("/feeds/", 1)[-1]
        checker = Checker(name)
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            checker.fail("well-formed XML", str(e))
        else:
            self_url = prefix + "feeds/" + name
            if path.endswith(".atom"):
                checker.atom(root, self_url)
            else:
                checker.rss(root, self_url)
        problems.extend(checker.problems)
    print(json.dumps(problems, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
