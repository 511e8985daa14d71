"""Does a head trained on the job's own weak labels localize better? 2-fold on a VOC folder.

    python -m benchmarks.trained_head [--voc DIR] [--out DIR] [--train-args "ARGS"]
        [-- JOB OPTIONS ...]

The photos are split in two halves (alternate file names, as in
``benchmarks.localization --calibrate``). For each half A in turn, with the product's
own commands: the job labels both halves with ``--synsets voc`` (JOB OPTIONS after
``--`` go to every run); ``python -m pipeline.train`` fits a head on half A's labels
alone (no ground truth: pseudo-masks of the job's own maps, early stopping on a part
of half A); the job labels the other half B again with ``--head`` (its maps alone, and
fused with the classifier's); ``pipeline.evaluate --classes voc`` scores half B's runs
against its annotations. Prints CorLoc and MaxBoxAccV2 over both halves' non-person
pairs, with and without the head, and the labelling rate of each.

Default DIR: ../shared/voc07-dev beside the repository (read the photos there, never
copy them into the repository).
"""
from __future__ import annotations

import json
import shlex
import sys

from benchmarks.common import machine, table
from benchmarks.localization import halves, is_voc_folder, label, score, voc_benchmark_parser
from pipeline.train import main as train

SETTINGS = {"without head": [], "head maps": ["--head-maps", "head"],
            "head fused with the classifier's": ["--head-maps", "fused"]}


def main(argv: list[str] | None = None) -> int:
    parser = voc_benchmark_parser(__doc__.split("\n\n")[0], "output/trained-head")
    parser.add_argument("--train-args", default="",
                        help="options for python -m pipeline.train, quoted (e.g. \"--epochs 10\")")
    args = parser.parse_args(argv)
    if not is_voc_folder(args.voc):
        return 2
    folds = halves(args.voc, args.out)
    plain = []
    for i, (images, _) in enumerate(folds):
        plain.append(args.out / f"half{i}")
        label(images, plain[i], args.job_args)
    results = {name: [] for name in SETTINGS}
    for a, b in ((0, 1), (1, 0)):
        head = args.out / f"head-of-half{a}"
        if train(["--labels", str(plain[a]), "--out", str(head), *shlex.split(args.train_args)]):
            raise SystemExit(f"training on half {a} failed")
        images, annotations = folds[b]
        for name, flags in SETTINGS.items():
            output = plain[b] if not flags else args.out / f"half{b}-{flags[-1]}-of-half{a}"
            record = (json.loads((output / "run.json").read_text()) if not flags else
                      label(images, output, [*args.job_args, "--head", str(head), *flags]))
            metrics = score(output, annotations, args.out / f"metrics-{output.name}.json")["overall"]
            results[name].append({**{k: metrics[k] for k in ("pairs", "corloc", "max_box_acc_v2")},
                                  "images_per_s": record["images_per_s"]})
    rows, summary = [], {"machine": machine(), "job_args": args.job_args,
                         "train_args": args.train_args, "settings": {}}
    for name, halves_ in results.items():
        pairs = sum(h["pairs"] for h in halves_)
        overall = {"pairs": pairs, **{k: sum(h[k] * h["pairs"] for h in halves_) / pairs
                                      for k in ("corloc", "max_box_acc_v2", "images_per_s")}}
        summary["settings"][name] = {"overall": overall, "halves": halves_}
        rows.append([name, pairs, f"{overall['corloc']:.1f}", f"{overall['max_box_acc_v2']:.1f}",
                     f"{overall['images_per_s']:.2f}"])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nmachine: {machine()}")
    print(f"job options: {' '.join(args.job_args) or '(defaults)'}; "
          f"train options: {args.train_args or '(defaults)'}")
    print(table(["maps (evaluated on the half not trained on)", "pairs", "CorLoc", "MaxBoxAccV2",
                 "images/s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
