"""`accelsim` command line. Results go to stdout; logs, progress and errors to stderr.

Every file argument is recognised by its content before anything runs (`accelsim.inputs`), and
every option is checked before the first simulation, so a mistake costs nothing and is said in
one paragraph. pandas and matplotlib are imported inside the sub-commands that need them, so
that `accelsim --help` starts fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from accelsim.errors import AccelsimError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from accelsim.display import ProgressReport
    from accelsim.results import RunResult

stderr = Console(stderr=True, soft_wrap=True, markup=False)
"""Logs and errors. Text from files (names, paths, messages) is never read as rich markup; the
few calls that style their own words pass `markup=True` and escape the rest."""


def progress(description: str, total: int | None) -> ProgressReport:
    """Progress of a long command on stderr: a bar on a terminal, plain lines otherwise."""
    from accelsim.display import ProgressReport

    return ProgressReport(description, total, console=stderr)


def _fmt(value: object) -> str:
    """A number in running text: fixed point with 3 significant digits, whole numbers with
    thousands separators, '-' when missing."""
    from accelsim.report.units import fixed, is_missing

    if is_missing(value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{round(value):,}"
    return fixed(value)


def _si(value: object, unit: str) -> str:
    from accelsim.report.units import si

    return si(value, unit)  # type: ignore[arg-type]


def print_table(df: pd.DataFrame | Mapping[str, np.ndarray], columns: Sequence[str],
                title: str = "") -> None:
    """Print selected columns of a DataFrame (or of columns as arrays) on stdout, fitted to the
    terminal (`accelsim.display.print_table`: SI units, one notation per column, no split
    number)."""
    from accelsim.display import print_table as show

    show(df, columns, title)


RUN_COLUMNS = [
    "layer", "op", "engine_mode", "macs_dense", "act_density", "cycles", "latency_s",
    "energy_pj", "dram_bytes", "utilization", "bound", "speedup_vs_dense",
    "energy_saving_vs_dense",
]


def cmd_run(args: argparse.Namespace) -> int:
    from accelsim.api import load_arch, load_workload
    from accelsim.inputs import check_swapped
    from accelsim.simulate import simulate

    check_swapped(args.arch, args.workload, f"accelsim run {args.workload} {args.arch}")
    options = decode_options(args)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise AccelsimError(f"{args.out}: --out names a folder for the results (CSV, Parquet, "
                            "JSON), and this is a file; choose a folder.")
    arch = load_arch(args.arch)
    workload = load_workload(args.workload)
    with progress(f"{arch.name}", len(workload.layers)) as bar:
        result = simulate(workload, arch, on_layer=lambda layer: bar.advance(layer.name),
                          **options)
    warn_coverage(result)
    if args.out:
        paths = result.save(args.out)
        stderr.print(f"wrote {', '.join(str(p) for p in paths)}")
    if args.format == "csv":
        result.layers.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        payload = {"meta": result.meta, "totals": result.totals(),
                   "layers": result.layers.to_dict(orient="records")}
        json.dump(_json_safe(payload), sys.stdout, indent=2, default=str, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from accelsim.kinds import KINDS

        extra = [c for c in result.columns if c.startswith("cycles_if_")]
        extra += [c for c in DECODE_COLUMNS if c in result.columns]
        extra += [c for c in KINDS[arch.kind].shown_columns if c in result.columns]
        shown = RUN_COLUMNS + extra
        print_table(result.columns_with_totals(shown), shown,
                    title=f"{workload.model} on {arch.name} ({arch.kind})")
        note = result.coverage_note()
        if note:
            print(f"TOTAL {note}")
        if "decode" in result.meta:
            tot, d = result.totals(), result.meta["decode"]
            print(f"decode: {d['tokens']} tokens in {d['steps']} steps of {d['batch']} against a "
                  f"KV cache of {d['context']}: {_fmt(tot['tokens_per_s'])} tokens/s, "
                  f"{_si(tot['latency_s_per_token'], 's')} and "
                  f"{_si(tot['energy_pj_per_token'] * 1e-12, 'J')} per token")
        warned = int((result.column("warnings") != "").sum())
        if warned:
            print(f"{warned} layer(s) with warnings: see the `warnings` column "
                  "(--format csv or json)")
        summary = result.meta.get("engine_summary", {}).get("arch", {})
        scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
        if scalars:
            print("whole network: " + ", ".join(f"{k} {_fmt(v)}" for k, v in scalars.items()))
        if "best_kernel" in result.columns:
            print_kernel_choice(result.layers, f"kernel choice per layer on {arch.name}")
    return 0


def print_kernel_choice(layers: pd.DataFrame, title: str) -> None:
    """Per layer: each kernel's time, the fastest allowed one, its speed-up, the break-evens."""
    cols = list(layers.columns)
    times = [c for c in cols if c.startswith("time_") and c.endswith("_s")]
    evens = [c for c in cols if c.startswith("breakeven_density_")]
    print_table(layers, ["layer", "a_density", *times, "best_kernel", "speedup_vs_dense",
                         *evens],
                title=f"{title} (time_<kernel>: its time per layer; breakeven_density_<kernel>: "
                      "the activation density below which it beats dense, '-' never)")


def _json_safe(value: object) -> object:
    """NaN/Inf become None and numpy scalars Python numbers, so that the output is strict
    JSON at full precision."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers, e.g. 0.01,0.05,0.1") from None
    if not values or any(not (0.0 < t <= 1.0) for t in values):
        raise argparse.ArgumentTypeError(
            f"thresholds are fractions of max |x| in (0, 1], got {text!r}")
    return values


def _print_transforms(transforms: list) -> None:
    for i, t in enumerate(transforms, 1):
        if isinstance(t, dict):
            print(f"transform {i}: {t.get('method')} {t.get('params')} on "
                  f"{len(t.get('layers', []))} tensor(s), sparsity "
                  f"{_fmt(t.get('sparsity_before'))} -> {_fmt(t.get('sparsity_after'))}")


def _print_grouped(df: pd.DataFrame, prefixes: dict[str, str], title: str) -> None:
    """Print `layer` and the columns named by (or starting with) each key, relabelled."""
    import pandas as pd

    shown = pd.DataFrame({"layer": df["layer"]})
    for prefix, label in prefixes.items():
        for col in df.columns:
            if col == prefix or (prefix.endswith("@") and col.startswith(prefix)):
                shown[label + col[len(prefix):]] = df[col]
    print_table(shown, list(shown.columns), title=title)


INSPECT_LEGEND = {
    "zero_fraction": "share of the layer's input elements that are exactly zero",
    "act_density": "non-zeros / elements (the declared density for a shapes-only layer)",
    "near0@T": "share of elements with |x| <= T * max|x| over the tensor (T: --thresholds)",
    "2:4_ok": "share of 4-element groups along the reduction axis with at most 2 non-zeros "
              "(what a 2:4 sparse tensor core accepts; '-' where the axis is shorter than 4)",
    "dead_ch": "input channels zero in every row of the trace",
    "row_p50": "median over rows (tokens or input pixels) of each row's density",
    "blk_1x4": "share of non-empty 4-element vectors along the reduction axis",
    "hoyer": "Hoyer sparsity of the magnitudes: 0 all equal, 1 a single non-zero (JMLR 2004)",
    "mode": "trace (activations stored) or statistical (shapes and a declared density only)",
    "alias_of": "the layer whose input this one reads too (e.g. Q/K/V)",
}
"""What each column of `accelsim inspect`'s table means (printed below it and in --help)."""


def inspect_legend(width: int = 100) -> str:
    """`INSPECT_LEGEND` as lines of text at most `width` characters wide."""
    import textwrap

    return "\n".join(textwrap.fill(f"{key}: {text}", width, initial_indent="  ",
                                   subsequent_indent="    ", break_on_hyphens=False)
                     for key, text in INSPECT_LEGEND.items())


def cmd_inspect(args: argparse.Namespace) -> int:
    from accelsim.api import load_workload
    from accelsim.workload.stats import (
        flatten_stats,
        model_totals,
        select_layers,
        threshold_key,
        workload_stats,
    )

    workload = load_workload(args.workload)
    with progress("inspect", len(select_layers(workload, args.layers))) as bar:
        stats = workload_stats(workload, args.thresholds, layers=args.layers,
                               on_layer=bar.advance)
    totals = model_totals(workload)
    transforms = workload.extra_meta.get("transforms", [])
    if args.json:
        payload = {"model": workload.model, "source": workload.source,
                   "created": workload.created, "thresholds": list(args.thresholds),
                   "transforms": transforms, "totals": totals, "layers": stats}
        json.dump(_json_safe(payload), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    df = flatten_stats(stats)
    t = threshold_key(0.01 if 0.01 in args.thresholds else args.thresholds[0])
    short = {f"near_zero_tensor@{t}": f"near0@{t}", "nm_conformance@2:4": "2:4_ok",
             "dead_channels": "dead_ch", "row_density_percentiles@p50": "row_p50",
             "block_density@1x4": "blk_1x4"}
    print_table(df.rename(columns=short),
                ["layer", "op", "shape", "macs_dense", "zero_fraction", "act_density",
                 *short.values(), "hoyer",
                 "mode", "alias_of"],
                title=f"{workload.model}: {totals['layers']} layers, {len(workload.edges)} edges, "
                      f"{totals['macs_dense']:,} MACs, MAC-weighted act density "
                      f"{_fmt(totals['act_density_mac_weighted'])}")
    from accelsim.display import output_width

    legend = inspect_legend(min(100, output_width(Console())))
    print("columns:\n" + legend.replace("near0@T", f"near0@{t}") + "\n  (all statistics, "
          "more thresholds and patterns: --detail or --json)")
    if args.detail:
        for c in ("rows", "row_length", "dead_channels"):
            df[c] = [_fmt(int(v)) if v == v else "-" for v in df[c]]
        _print_grouped(df, {"near_zero_tensor@": "tensor ", "near_zero_row@": "row "},
                       "near-zero: share with |x| <= t * max|x| (tensor / row)")
        _print_grouped(df, {"rows": "rows", "row_length": "row_len", "nm_conformance@": "ok ",
                            "nm_excess@": "excess ", "block_density@": "blocks ",
                            "dead_channels": "dead_ch", "dead_channel_fraction": "dead_frac"},
                       "along the reduction axis: N:M groups within limit, non-zeros beyond N, "
                       "non-empty blocks (rows x elements), dead channels")
        _print_grouped(df, {"row_density_percentiles@": "row density ", "hoyer": "hoyer",
                            "hoyer_row_mean": "hoyer_row_mean", "max_abs": "max_abs"},
                       "per-row density percentiles and magnitude spread")
    _print_transforms(transforms)
    return 0


def cmd_sparsify(args: argparse.Namespace) -> int:
    from accelsim.api import load_workload
    from accelsim.workload import save_workload
    from accelsim.workload.sparsify import REPORT_COLUMNS, sparsify

    workload = load_workload(args.workload)
    with progress(args.method, len(workload.layers)) as bar:
        result = sparsify(
            workload, args.method, target=args.target, threshold=args.threshold,
            scope=args.scope, normalize=args.normalize, k=args.k,
            keep_fraction=args.keep_fraction, n=args.n, m=args.m, step=args.step, glu=args.glu,
            layers=args.layers, output_error=not args.no_output_error,
            on_layer=bar.advance)
    for note in result.notes:
        stderr.print(f"note: {note}", highlight=False)
    emptied = result.report[(result.report["density_after"] == 0)
                            & (result.report["density_before"] > 0)]
    for name in emptied["layer"]:
        stderr.print(f"warning: {name}: every input is now zero (density 0): this layer does "
                     "no work on any hardware. Keep more (a larger --keep-fraction, --k or a "
                     "smaller --target) or leave it out with --layers.", highlight=False)
    save_workload(result.workload, args.output)
    record = result.record
    if args.json:
        json.dump(_json_safe(record), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print_table(result.report, REPORT_COLUMNS,
                    title=f"{workload.model}: {args.method} {record['params']}")
    weighted = ""
    if "mac_weighted_sparsity_after" in record:
        weighted = (f" (MAC-weighted {record['mac_weighted_sparsity_before']:.4f} -> "
                    f"{record['mac_weighted_sparsity_after']:.4f})")
    stderr.print(f"wrote {args.output}: sparsity {record['sparsity_before']:.4f} -> "
                 f"{record['sparsity_after']:.4f}{weighted} over {len(record['layers'])} "
                 "tensor(s)", highlight=False)
    return 0


def cmd_import_scalesim(args: argparse.Namespace) -> int:
    from accelsim.workload import save_workload
    from accelsim.workload.scalesim_import import read_scalesim_topology

    workload = read_scalesim_topology(args.topology, gemm=args.gemm,
                                      act_density=args.act_density)
    save_workload(workload, args.output)
    stderr.print(f"wrote {args.output}: {len(workload.layers)} shapes-only layers "
                 f"at act_density {args.act_density}")
    return 0


def cmd_import_llm(args: argparse.Namespace) -> int:
    from accelsim.workload import save_workload
    from accelsim.workload.llm_shapes import import_llm

    workload = import_llm(args.model, tokens=args.tokens, act_density=args.act_density,
                          densities=args.density, borrow=args.borrow)
    save_workload(workload, args.output)
    shown = ", ".join(f"{r} {d:.3g}" for r, d in workload.source["densities"].items()) or "dense"
    stderr.print(f"wrote {args.output}: {workload.model}, {len(workload.layers)} shapes-only "
                 f"layers over {args.tokens} tokens, densities: {shown}", highlight=False)
    return 0


def _role_densities(text: str) -> dict[str, float]:
    try:
        pairs = [item.split("=") for item in text.split(",")]
        return {role.strip(): float(value) for role, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ROLE=DENSITY pairs such as down=0.4,qkv=0.6, got '{text}'") from None


def _add_import_llm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-llm", help="a shapes-only decoder LLM workload from its published dimensions",
        description="Build a shapes-only workload (causal, so it replays with --phase decode) "
                    "from a model file such as arch_configs/models/llama2_7b.yaml; activation "
                    "densities per layer role (qkv, o, gate_up, down, lm_head) declared or "
                    "borrowed from a real trace.")
    p.add_argument("model", help="model file (YAML: hidden_size, intermediate_size, layers, "
                   "heads, kv_heads, vocab_size, mlp, source)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output workload (.npz)")
    p.add_argument("--tokens", type=_positive, default=128,
                   help="tokens of the sequence (default 128)")
    p.add_argument("--act-density", type=float, help="density of every layer input")
    p.add_argument("--density", type=_role_densities, metavar="ROLE=D,...",
                   help="density per role, e.g. down=0.4,qkv=0.6 (overrides the others)")
    p.add_argument("--borrow", type=Path, metavar="TRACE.npz",
                   help="take each role's mean density from a real trace's layers of that role")
    p.set_defaults(func=cmd_import_llm)


DECODE_COLUMNS = ["tokens_per_s", "latency_s_per_token", "energy_pj_per_token",
                  "weight_read_bytes_per_token"]


def add_decode_arguments(p: argparse.ArgumentParser) -> None:
    """--phase, --batch and --context (LLM decode replay, see `accelsim.decode`)."""
    p.add_argument("--phase", choices=["prefill", "decode"], default="prefill",
                   help="prefill (default: the trace as captured) or decode: a causal LM's "
                        "tokens replayed as decode steps, results per token")
    p.add_argument("--batch", type=_positive, metavar="B",
                   help="decode: tokens per decode step (default: the trace's decode metadata, "
                        "else 1)")
    p.add_argument("--context", type=_positive, metavar="L",
                   help="decode: KV-cache positions each step reads (default: the trace's "
                        "decode metadata, else its prefill length)")


def decode_options(args: argparse.Namespace) -> dict:
    """The simulate() keywords of --phase/--batch/--context; refuses decode-only options in a
    prefill run."""
    if args.phase == "prefill" and (args.batch or args.context):
        raise AccelsimError("--batch and --context apply to --phase decode only; add "
                            "`--phase decode` or drop them.")
    return {"phase": args.phase, "batch": args.batch, "context": args.context}


def _fractions(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",")]
    except ValueError:
        values = []
    if not values or any(not 0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sparsities in [0, 1), e.g. 0,0.4,0.5, got '{text}'")
    return sorted(set(values))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="simulate one workload on one architecture")
    p.add_argument("arch", help="architecture YAML")
    p.add_argument("workload", help="workload trace (.npz)")
    p.add_argument("--out", type=Path, help="folder for results CSV, Parquet and JSON")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="what to print on stdout (default: table)")
    add_decode_arguments(p)
    p.set_defaults(func=cmd_run)


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    from accelsim.workload.stats import DEFAULT_THRESHOLDS

    p = sub.add_parser("inspect", help="per-layer shapes, MACs and sparsity statistics of a trace",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="columns of the table:\n" + inspect_legend(78))
    p.add_argument("workload", help="workload trace (.npz)")
    p.add_argument("--json", action="store_true", help="print all statistics as JSON")
    p.add_argument("--detail", action="store_true",
                   help="also print near-zero, N:M/block/dead-channel and percentile tables")
    p.add_argument("--thresholds", type=_thresholds, default=DEFAULT_THRESHOLDS,
                   metavar="T1,T2,...",
                   help="near-zero thresholds as fractions of max |x| (default "
                        f"{','.join(f'{t:g}' for t in DEFAULT_THRESHOLDS)})")
    p.add_argument("--layers", nargs="+", metavar="GLOB", help="only layers matching these globs")
    p.set_defaults(func=cmd_inspect)


def _add_sparsify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sparsify", help="what-if: zero activations by threshold, TEAL, CATS, top-k, N:M or per "
                         "channel",
        description="Zero input activations of a trace (values needed) and record the transform "
                    "in its metadata; with weights in the trace, report ||XW - X~W|| / ||XW||.")
    p.add_argument("workload", help="input workload trace (.npz) with activation values")
    p.add_argument("-o", "--output", required=True, type=Path, help="output workload (.npz)")
    p.add_argument("--method", required=True,
                   choices=["threshold", "teal", "cats", "topk", "nm", "channel"])
    p.add_argument("--target", type=float,
                   help="threshold/channel/cats: sparsity to reach per tensor; teal: MAC-weighted "
                        "sparsity over the selected layers (share of zeros, 0..1)")
    p.add_argument("--threshold", type=float, help="threshold: fixed cut-off, zero every |x| <= T")
    p.add_argument("--scope", choices=["layer", "model"],
                   help="threshold --target: per layer (default) or one model-wide cut-off on "
                        "|x|/RMS (not TEAL's allocation: that is --method teal)")
    p.add_argument("--normalize", choices=["rms", "none"],
                   help="--scope model: divide |x| by each layer's RMS first (default rms)")
    p.add_argument("--k", type=int, help="topk: values kept per row")
    p.add_argument("--keep-fraction", type=float, help="topk: share of each row kept")
    p.add_argument("--n", type=int, help="nm: non-zeros kept per group (e.g. 2)")
    p.add_argument("--m", type=int, help="nm: group size along the reduction axis (e.g. 4)")
    p.add_argument("--step", type=float,
                   help="teal: share of a tensor's elements one greedy step zeroes (default 0.05)")
    p.add_argument("--glu", nargs=3, metavar=("GATE", "UP", "DOWN"),
                   help="cats: last name components of a GLU MLP's projections "
                        "(default gate_proj up_proj down_proj)")
    p.add_argument("--layers", nargs="+", metavar="GLOB",
                   help="only layers matching these globs (cats: down projections)")
    p.add_argument("--no-output-error", action="store_true",
                   help="skip the ||XW - X~W|| / ||XW|| computation")
    p.add_argument("--json", action="store_true", help="print the transform record as JSON")
    p.set_defaults(func=cmd_sparsify)


def cmd_breakeven(args: argparse.Namespace) -> int:
    from accelsim.breakeven import breakeven
    from accelsim.inputs import check

    check(args.arch, "arch", "breakeven's ARCH argument")

    result = breakeven(args.arch, args.shape, dtype=args.dtype, pattern=args.pattern,
                       plot=args.plot)
    arch, table, summary = result.arch, result.curve, result.summary
    if result.plot is not None:
        stderr.print(f"wrote {result.plot}")
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        payload = {"arch": arch.name, "dtype": arch.dtype, "shape": list(args.shape),
                   "pattern": args.pattern, "curve": table.to_dict(orient="records"),
                   "breakeven": summary.to_dict(orient="records")}
        json.dump(_json_safe(payload), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        m, k, n = args.shape
        speedups = [c for c in table.columns if c.startswith("speedup_") and c != "speedup_dense"]
        print_table(table, ["density", "sparsity", "time_dense_s", *speedups, "best_kernel",
                            "best_speedup"],
                    title=f"[{m}, {k}] x [{k}, {n}] {arch.dtype} on {arch.name}, "
                          f"{args.pattern} zeros: speed-up over dense")
        print_table(summary, ["kernel", "type", "measure", "breakeven_measure",
                              "breakeven_density", "breakeven_sparsity", "chosen_for_activations"],
                    title="break-even with dense ('-': never)")
    return 0


def _shape(text: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            f"expected M,K,N as three positive integers (e.g. 4096,4096,4096), got '{text}'")
    return dims  # type: ignore[return-value]


class LazyChoices(Sequence[str]):
    """An option's allowed values, the sequence `name` of `module`, imported when argparse
    first checks a value or prints help (so that building the parser imports no engine)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @functools.cached_property
    def values(self) -> tuple[str, ...]:
        import importlib

        return tuple(getattr(importlib.import_module(self.module), self.name))

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)


def _add_breakeven(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("breakeven", help="GPU kernels vs dense across densities for one GEMM shape")
    p.add_argument("arch", help="architecture YAML of kind gpu")
    p.add_argument("--shape", type=_shape, required=True, metavar="M,K,N",
                   help="[M, K] activations x [K, N] weights")
    p.add_argument("--dtype", choices=LazyChoices("accelsim.engines.gpu.kernels", "DTYPES"),
                   metavar="DTYPE",
                   help="math type: %(choices)s (default: the arch's dtype)")
    p.add_argument("--pattern", choices=LazyChoices("accelsim.engines.gpu.breakeven", "PATTERNS"),
                   default="random", metavar="PATTERN",
                   help="where zeros fall: independently (random, default) or in whole blocks, "
                        "columns and N:M groups (structured, best case); one of %(choices)s")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also draw the curves to this PNG")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="what to print on stdout (default: table)")
    p.set_defaults(func=cmd_breakeven)


def _add_import_scalesim(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-scalesim", help="convert a SCALE-Sim topology CSV to a workload")
    p.add_argument("topology", help="SCALE-Sim topology CSV")
    p.add_argument("-o", "--output", required=True, type=Path, help="output workload (.npz)")
    p.add_argument("--gemm", action="store_true", help="the CSV is SCALE-Sim's GEMM form (M, N, K)")
    p.add_argument("--act-density", type=float, default=1.0,
                   help="activation density to assume for every layer (default 1.0)")
    p.set_defaults(func=cmd_import_scalesim)


def cmd_import_akida(args: argparse.Namespace) -> int:
    from accelsim.workload import save_workload
    from accelsim.workload.akida_import import import_akida_file

    workload = import_akida_file(args.model, args.inputs, frames=args.frames, seed=args.seed)
    save_workload(workload, args.output)
    stderr.print(f"wrote {args.output}: {len(workload.layers)} layers from akida model "
                 f"{args.model}, {workload.source['frames']} input(s) "
                 f"({workload.source['inputs']})", highlight=False)
    return 0


def _add_import_akida(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-akida", help="run a BrainChip akida model and save its layers' input codes",
        description="Run akida's software forward pass on the inputs and save every NP layer's "
                    "geometry, bit widths and real input codes as a trace (needs the akida "
                    "package: pip install 'accelsim[akida]').")
    p.add_argument("model", type=Path, help="akida model (.fbz), or a quantized Keras .h5 "
                   "(converted with cnn2snn)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output workload (.npz)")
    p.add_argument("--inputs", type=Path, default=None,
                   help="model inputs, a .npy of (N, H, W, C) integer codes (default: "
                        "--frames random codes over the input's range)")
    p.add_argument("--frames", type=int, default=4,
                   help="how many inputs to generate when --inputs is not given (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated inputs")
    p.set_defaults(func=cmd_import_akida)


def cmd_capture(args: argparse.Namespace) -> int:
    from accelsim.workload import save_workload
    from accelsim.workload.recipes import recipe_options, run_recipe

    options = recipe_options(args.recipe, vars(args))
    stderr.print(f"capturing recipe '{args.recipe}' ...")
    workload = run_recipe(args.recipe, keep=args.keep, with_weights=args.with_weights,
                          max_mb=args.max_mb, **options)
    save_workload(workload, args.output)
    size_mb = args.output.stat().st_size / 2**20
    stderr.print(f"wrote {args.output}: {len(workload.layers)} layers, {len(workload.edges)} "
                 f"edges, {size_mb:.2f} MiB", highlight=False)
    return 0


class DeferredParser(argparse.ArgumentParser):
    """A sub-command's parser whose `fill(parser)`, when set, adds the options that need heavy
    imports (the recipes of `capture`) the first time it parses or prints help or usage, so that
    building the whole parser imports only what `accelsim --help` needs."""

    fill: Callable[[argparse.ArgumentParser], None] | None = None

    def _filled(self) -> None:
        fill, self.fill = self.fill, None
        if fill is not None:
            fill(self)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._filled()
        return super().format_help()

    def format_usage(self) -> str:
        self._filled()
        return super().format_usage()


def _add_capture(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capture", help="capture a trace from a built-in real-model recipe (needs torch)")
    p.fill = _fill_capture
    p.set_defaults(func=cmd_capture)


def _fill_capture(p: argparse.ArgumentParser) -> None:
    from accelsim.workload.recipes import RECIPES, add_recipe_arguments

    p.description = ("Run a built-in recipe (real pretrained model, real inputs, offline) and "
                     "save its per-layer input activations as a trace. Recipes: "
                     + "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values()) + ".")
    p.add_argument("recipe", choices=list(RECIPES), help="which model to capture")
    p.add_argument("-o", "--output", required=True, type=Path, help="output workload (.npz)")
    p.add_argument("--keep", choices=["values", "mask"], default="values",
                   help="store float16 values (default) or only non-zero bitmaps")
    p.add_argument("--with-weights", action="store_true",
                   help="also store each layer's weights (second operand of matmul layers)")
    p.add_argument("--max-mb", type=float, default=1024.0,
                   help="refuse traces whose arrays exceed this many MiB uncompressed "
                        "(estimated before capturing; default 1024)")
    add_recipe_arguments(p)


SUMMARY_SHOWN = {"latency_s": "latency_s", "throughput_per_s": "throughput_per_s",
                 "energy_j": "energy_j", "edp_js": "edp_js", "area_mm2": "area_mm2",
                 "speedup_vs_dense": "speedup", "energy_saving_vs_dense": "energy_saving",
                 "tokens_per_s": "tokens_per_s", "energy_pj_per_token": "energy_pj_per_token",
                 "speedup_vs_baseline": "speedup_vs_baseline",
                 "energy_saving_vs_baseline": "energy_saving_vs_baseline"}


def warn_coverage(result: RunResult) -> None:
    """A coverage warning on stderr when the totals leave layers out."""
    note = result.coverage_note()
    if note:
        stderr.print(f"[yellow]warning:[/] {escape(str(result.meta.get('arch')))}: {escape(note)}",
                     highlight=False, markup=True)


COMPARE_EXAMPLE = ("accelsim compare arch_configs/tpu_like_128x128_ws.yaml arch_configs/a100.yaml "
                   "workloads/digits_cnn.npz")


def split_compare_inputs(inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """`compare`'s positional files sorted by content into (architectures, workload traces), in
    the order given; anything else is refused with what it is and what takes it."""
    from accelsim.inputs import USE, WHAT, kind_of

    archs, traces = [], []
    for path in inputs:
        found = kind_of(path)
        if found == "arch":
            archs.append(path)
        elif found == "trace":
            traces.append(path)
        elif found == "missing":
            raise AccelsimError(f"{path}: no such file. compare takes architecture YAML files "
                                f"and workload traces (.npz), e.g. {COMPARE_EXAMPLE}")
        else:
            hint = USE.get(found, "")
            raise AccelsimError(
                f"{path}: this is {WHAT[found]}, and compare takes architecture descriptions "
                "and workload traces only" + (f"; to use this file, {hint.format(path=path)}"
                                              if hint else "") + f". Example: {COMPARE_EXAMPLE}")
    if not archs or not traces:
        missing = "architecture (YAML)" if not archs else "workload trace (.npz)"
        raise AccelsimError(
            f"compare needs one or more architecture YAML files and one or more workload traces "
            f"(.npz); no {missing} among {' '.join(inputs)}. Example: {COMPARE_EXAMPLE}")
    return archs, traces


def check_report_path(path: Path | None) -> None:
    """Refuse a report name whose suffix is neither HTML nor PDF (before anything runs)."""
    if path is not None:
        from accelsim.report import check_output

        check_output(path)


def check_decode(archs: Sequence, workloads: Sequence, options: dict) -> None:
    """Everything decode replay needs, checked before the first simulation: each workload can
    be planned as decode steps and no architecture maps the network as a whole."""
    if options["phase"] != "decode":
        return
    from accelsim import decode
    from accelsim.kinds import engine_for

    for workload in workloads:
        decode.plan(workload, options["batch"], options["context"])
    for arch in archs:
        if getattr(engine_for(arch.kind), "prepare", None) is not None:
            raise AccelsimError(
                f"{arch.name}: decode replay runs each layer as separate steps, which kind "
                f"'{arch.kind}' cannot map as one network. Leave it out of a --phase decode "
                "comparison, or compare without --phase decode.")


def cmd_compare(args: argparse.Namespace) -> int:
    from accelsim.api import load_arch, load_workload
    from accelsim.compare import (
        CURVE_DENSITIES,
        distinct_names,
        folder_name,
        prepare_out,
        run_comparison,
        wants_curve,
    )
    from accelsim.inputs import check

    arch_paths, workload_paths = split_compare_inputs(args.inputs)
    check_report_path(args.report)
    options = decode_options(args)
    if args.sparsities and args.phase != "decode":
        raise AccelsimError("--sparsities sweeps LLM decode: add `--phase decode` (and a causal "
                            "LM's trace), or drop --sparsities.")
    if args.sparsities and len(workload_paths) > 1:
        raise AccelsimError("--sparsities sweeps one workload; give one trace, or compare "
                            "several without --sparsities.")
    if args.baseline:
        check(args.baseline, "arch", "--baseline")
    archs = [load_arch(p) for p in arch_paths]
    baseline = load_arch(args.baseline) if args.baseline else None
    workloads = distinct_names([(load_workload(p), p) for p in workload_paths])
    everyone = ([baseline] if baseline is not None else []) + archs
    check_decode(everyone, [w for w, _ in workloads], options)
    default = (workloads[0][0].model if len(workloads) == 1
               else "_".join(w.model for w, _ in workloads))
    out = args.out or Path("reports") / folder_name(f"compare_{default}", set())
    prepare_out(out, args.force)
    curves = 0 if args.no_curves else sum(wants_curve(a, args.phase) for a in everyone)
    total = sum(len(everyone) * len(w.layers) + curves * len(CURVE_DENSITIES)
                for w, _ in workloads)
    with progress("compare", total) as bar:
        comparison = run_comparison(
            archs, workloads, out, baseline=baseline,
            on_layer=lambda a, layer: bar.advance(f"{a}: {layer.name}"),
            on_curve=lambda a, d: bar.advance(f"{a}: uniform density {d:g}"),
            curves=not args.no_curves, **options)
    results = comparison.runs
    stderr.print(f"wrote results to {out}/ (rebuild a report with `accelsim report {out} -o "
                 "report.html`)", highlight=False)
    for result in results:
        warn_coverage(result)
    if args.sparsities:
        from accelsim.compare import decode_sparsity_sweep

        workload = workloads[0][0]
        with progress("sparsity sweep", len(args.sparsities) * len(everyone)) as bar:
            sweep = decode_sparsity_sweep(
                everyone, workload, args.sparsities, out, method=args.sparsify_method,
                batch=args.batch, context=args.context,
                on_point=lambda a, sp: bar.advance(f"{a} at sparsity {sp:g}"))
        print_table(sweep, ["arch", "target_sparsity", "sparsity", "tokens_per_s",
                            "energy_pj_per_token", "speedup_vs_dense", "speedup_vs_first"],
                    title=f"decode vs activation sparsity ({args.sparsify_method}); speed-up vs "
                          "each arch's dense equivalent and vs its first point")
    table = comparison.summary().rename(columns=SUMMARY_SHOWN)
    from accelsim.report.content import percent

    table["coverage"] = [percent(f) for f in table["covered_macs_fraction"]]
    versus = (f"; vs_baseline: against {baseline.name}, over the layers both cover"
              if baseline is not None else "")
    several = len(workloads) > 1
    names = ", ".join(w.model for w, _ in workloads)
    print_table(table, ["arch", *(["workload"] if several else []), "engine",
                        *(c for c in SUMMARY_SHOWN.values() if c in table), "bound", "coverage"],
                title=f"{names} on {len(archs)} architecture(s): one pass over the trace "
                      "(throughput in passes/s; speed-up and energy saving vs each arch's own "
                      f"dense equivalent{versus}; coverage: share of the model's MACs the row's "
                      "figures cover)")
    if args.report:
        from accelsim.report import write_report

        stderr.print(f"wrote {write_report(out, args.report)}", highlight=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from accelsim.inputs import USE, WHAT, kind_of
    from accelsim.report import check_output, write_report

    check_output(args.output)
    found = kind_of(args.results)
    if found not in ("compare_folder", "sweep_folder", "folder", "missing", "unknown"):
        raise AccelsimError(
            f"{args.results}: this is {WHAT[found]}; report reads a results folder written by "
            "`accelsim compare --out DIR` or `accelsim sweep --out DIR`. To use this file, "
            f"{USE[found].format(path=args.results)}.")
    stderr.print(f"wrote {write_report(args.results, args.output)}", highlight=False)
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="several architectures side by side on one or more workloads, with a "
                        "report",
        description="Run every architecture on every workload (each against its own dense "
                    "equivalent), save the results into --out and print the summary table. "
                    "Files are told apart by their content, in any order. Everything is "
                    "checked before the first simulation.")
    p.add_argument("inputs", nargs="+", metavar="FILE",
                   help="architecture YAML files and workload traces (.npz)")
    p.add_argument("--out", type=Path,
                   help="results folder, empty or new (default reports/compare_<model>)")
    p.add_argument("--force", action="store_true",
                   help="clear --out first when an earlier comparison wrote it")
    p.add_argument("--no-curves", action="store_true",
                   help="skip the speed-up vs density curves of the architectures whose speed "
                        "follows the zeros (each reruns the workload at several uniform "
                        "densities)")
    p.add_argument("--report", type=Path, metavar="REPORT.html|REPORT.pdf",
                   help="also write a report (HTML or PDF, from the file suffix)")
    p.add_argument("--baseline", metavar="BASELINE.yaml",
                   help="another design to compare every architecture with (e.g. a dense "
                        "accelerator): adds speedup_vs_baseline and energy_saving_vs_baseline")
    add_decode_arguments(p)
    p.add_argument("--sparsities", type=_fractions, metavar="S1,S2,...",
                   help="decode: also run every architecture with the linear layers' inputs "
                        "sparsified to each model-level sparsity (e.g. 0,0.25,0.4,0.5): "
                        "tokens/s and energy per token vs sparsity, in the report too")
    p.add_argument("--sparsify-method", default="teal", choices=["teal", "threshold"],
                   help="how --sparsities sparsifies traces with values (default teal: TEAL's "
                        "greedy per-layer allocation; shapes-only layers get the density)")
    p.set_defaults(func=cmd_compare)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML or PDF report from a saved compare or sweep folder",
                       description="Rebuild a report from the results saved by `accelsim "
                                   "compare --out DIR` or `accelsim sweep --out DIR` (recognised "
                                   "by its sweep.json: Pareto front, best points, sensitivity), "
                                   "without simulating again.")
    p.add_argument("results", type=Path,
                   help="results folder written by `accelsim compare` or `accelsim sweep`")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="REPORT.html|REPORT.pdf",
                   help="report file; the suffix picks HTML or PDF")
    p.set_defaults(func=cmd_report)


SWEEP_COLUMNS = ["point", "workload", "latency_s", "energy_pj", "area_mm2", "speedup_vs_dense"]


def cmd_sweep(args: argparse.Namespace) -> int:
    from accelsim.pareto import analyse, pareto_front
    from accelsim.sweep import run_sweep
    from accelsim.sweep_spec import expand, load_sweep

    options = decode_options(args)
    decode = ({"batch": options["batch"], "context": options["context"]}
              if options["phase"] == "decode" else None)
    from accelsim.inputs import check

    check(args.sweep, "sweep", "accelsim sweep")
    spec = load_sweep(args.sweep, decode=decode)
    points = expand(spec)
    out = Path(args.out or Path("runs") / spec.name)
    stderr.print(f"{spec.name}: {len(points)} design points x {len(spec.workloads)} workloads "
                 f"-> {out}")
    bar = progress(spec.name, None)

    def started(total: int, done: int) -> None:
        bar.restart(total, done)
        if done:
            stderr.print(f"resuming: {done} of {total} already finished")

    with bar:
        df = run_sweep(spec, points, out, executor=args.executor, workers=args.workers,
                       scheduler=args.scheduler, resume=args.resume, on_start=started,
                       on_task=bar.advance)
    written = analyse(df, [p.name for p in spec.parameters], out)
    stderr.print(f"wrote {out / 'points.csv'}, " + ", ".join(str(p) for p in written.values()))
    front = pareto_front(df)
    print_table(front, [c for c in SWEEP_COLUMNS + [p.name for p in spec.parameters]
                        if c in front], title=f"Pareto front ({len(front)} of {len(df)} points)")
    return 0


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a design-space sweep; Pareto front over latency, "
                       "energy and area")
    p.add_argument("sweep", help="sweep YAML (base arch, parameters, sampling, constraints, "
                   "workloads)")
    p.add_argument("--out", help="results folder (default runs/<sweep name>)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local process pool (default) or Dask distributed")
    p.add_argument("--scheduler", help="join a running Dask scheduler, e.g. tcp://host:8786 "
                   "(workload paths must be readable on its workers)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (local pool or Dask LocalCluster; default: all CPUs)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep in --out, skipping finished points")
    add_decode_arguments(p)
    p.set_defaults(func=cmd_sweep)


def shipped_archs() -> Path:
    """The folder of shipped architecture descriptions (beside the package in a checkout)."""
    return Path(__file__).resolve().parents[1] / "arch_configs"


def cmd_list(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.what == "kinds":
        from accelsim.kinds import KINDS

        rows = [{"kind": kind, "engine": k.engine.__name__,
                 "what": " ".join((k.engine.Config.__doc__ or "").split("\n\n")[0].split())}
                for kind, k in KINDS.items()]
        title = "hardware kinds (`accelsim describe KIND` lists a kind's YAML keys)"
    elif args.what == "recipes":
        from accelsim.workload.recipes import RECIPES

        rows = [{"recipe": r.name, "what": r.summary} for r in RECIPES.values()]
        title = "capture recipes (`accelsim capture RECIPE -o TRACE.npz`, needs torch)"
    else:
        from accelsim.api import load_arch

        folder = shipped_archs()
        if not folder.is_dir():
            raise AccelsimError(f"{folder}: no shipped architectures here (an installed package "
                                "without the repository); pass your own YAML files instead.")
        rows = []
        for path in sorted(folder.glob("*.yaml")):
            try:
                arch = load_arch(path)
            except AccelsimError as exc:
                rows.append({"file": str(path.relative_to(folder.parent)), "name": "-",
                             "kind": "-", "clock_mhz": float("nan"),
                             "notes": f"does not load: {str(exc).splitlines()[0][:80]}"})
                continue
            rows.append({"file": str(path.relative_to(folder.parent)), "name": arch.name,
                         "kind": arch.kind, "clock_mhz": arch.clock_mhz,
                         "notes": " ".join(arch.notes.split())[:90]})
        title = f"shipped architectures in {folder}"
    if args.format == "json":
        json.dump(_json_safe(rows), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    df = pd.DataFrame(rows)
    print_table(df, list(df.columns), title=title)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    import dataclasses
    import textwrap

    from accelsim.display import output_width, schema_rows
    from accelsim.kinds import KINDS

    if args.kind not in KINDS:
        raise AccelsimError(f"unknown kind '{args.kind}'; the kinds are {', '.join(KINDS)} "
                            "(`accelsim list kinds`).")
    config = KINDS[args.kind].engine.Config
    rows = schema_rows(config)
    if args.format == "json":
        json.dump([dataclasses.asdict(r) for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = min(100, output_width(Console()))
    intro = " ".join((config.__doc__ or "").split())
    print(textwrap.fill(f"kind: {args.kind}: {intro}", width))
    print(textwrap.fill("Keys of an architecture YAML of this kind (dotted keys are nested "
                        "mappings, [] a list item, [dataflow=x] the keys of one variant):", width))
    for r in rows:
        facts = ", ".join(f for f in (r.type, f"default {r.default}" if r.default != "required"
                                      else "required", r.bounds, r.unit and f"unit {r.unit}")
                          if f)
        print(textwrap.fill(f"{r.key}: {facts}", width, subsequent_indent="      ",
                            break_on_hyphens=False))
        if r.doc:
            print(textwrap.fill(r.doc, width, initial_indent="    ", subsequent_indent="    ",
                                break_on_hyphens=False))
    return 0


def _add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="the shipped architectures, the capture recipes or the "
                                    "hardware kinds")
    p.add_argument("what", choices=["archs", "recipes", "kinds"])
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_list)


def _add_describe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="the YAML keys of one hardware kind: types, defaults, "
                                        "bounds, units (from its schema)")
    p.add_argument("kind", help="a kind, e.g. zero_skip (`accelsim list kinds`)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_describe)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_run, _add_inspect, _add_import_scalesim, _add_import_akida, _add_import_llm,
    _add_sparsify, _add_capture, _add_breakeven,
    _add_compare, _add_report,
    _add_sweep, _add_list, _add_describe,
]


def build_parser() -> argparse.ArgumentParser:
    from accelsim import __version__

    parser = argparse.ArgumentParser(
        prog="accelsim",
        description="Replay real activation-sparsity traces on configurable hardware.",
    )
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=DeferredParser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AccelsimError as exc:
        stderr.print(f"[bold red]accelsim: error:[/] {escape(str(exc))}", highlight=False,
                     soft_wrap=True, markup=True)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        stderr.print("accelsim: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
