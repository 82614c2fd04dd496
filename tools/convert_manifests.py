"""Write the state-dict manifests of the released checkpoints (package data) from the reference.

    python tools/convert_manifests.py SRC DEST

SRC is the reference ``state_dicts.json`` (per family ``{"num_params", "keys": [[key, shape,
dtype], ...]}`` as the original code builds the released models); DEST (normally
``gabic/catalogue/manifests.json``) gets, per family, the keys and shapes in the original order,
the number of parameters and the note on which shapes depend on ``update()``. Keys are copied
unchanged (the legacy entropy-bottleneck names included): :mod:`gabic.released` normalises both
sides when it compares a downloaded file with them. The other families DEST already holds (the
CompressAI zoo's, generated from gabic's own classes, see ``gabic/catalogue/README.md``) are kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def convert(src: Path, dest: Path) -> dict:
    reference = json.loads(src.read_text())
    kept = json.loads(dest.read_text()) if dest.is_file() else {}
    out = {**kept, "about": reference["about"], "configs": {**kept.get("configs", {}), **reference["configs"]}}
    out["families"] = dict(kept.get("families", {}))
    for family in ("gabic", "wacnn", "stf"):
        entry = reference[family]
        out["families"][family] = {
            "num_params": entry["num_params"],
            "keys": [[key, list(shape)] for key, shape, _dtype in entry["keys"]],
        }
    dest.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    out = convert(args.src, args.dest)
    for family, entry in out["families"].items():
        print(f"{family}: {len(entry['keys'])} keys, {entry['num_params']} parameters")


if __name__ == "__main__":
    main()
