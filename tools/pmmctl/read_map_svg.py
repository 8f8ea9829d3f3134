"""Reads a `pmmctl map` SVG back, for the tests: parses it with a real XML
parser (a malformed picture raises, exit status 1) and prints a JSON summary
of what it draws: the extents (offset, size, used, device, uid), the largest
free extent, the barriers and the legend's lines.

Usage: /usr/bin/python3 read_map_svg.py FILE.svg
"""
import json
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def main(path):
    root = ET.parse(path).getroot()
    if root.tag != NS + "svg":
        raise SystemExit("root element is %s, not svg" % root.tag)
    out = {"extents": [], "largest": None, "barriers": [], "legend": []}
    for g in root.iter(NS + "g"):
        cls = g.get("class")
        if cls == "extent":
            out["extents"].append({
                "offset": int(g.get("data-offset")),
                "size": int(g.get("data-size")),
                "used": int(g.get("data-used")),
                "device": g.get("data-device"),
                "uid": int(g.get("data-uid")) if g.get("data-uid") is not None else None,
                "rects": len(g.findall(NS + "rect")),
            })
        elif cls == "largest":
            out["largest"] = {"offset": int(g.get("data-offset")), "size": int(g.get("data-size"))}
        elif cls == "legend":
            out["legend"] = ["".join(t.itertext()) for t in g.findall(NS + "text")]
    for line in root.iter(NS + "line"):
        if line.get("class") == "barrier":
            out["barriers"].append({"offset": int(line.get("data-offset")),
                                    "phys": line.get("data-phys")})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
