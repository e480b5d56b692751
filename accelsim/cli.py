"""`accelsim` command line. Results go to stdout; logs, progress and errors to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accelsim.errors import AccelsimError

stderr = Console(stderr=True)


def progress_bar(description: str, total: int) -> Progress:
    """A progress bar on stderr, shown only when stderr is a terminal."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=stderr, transient=True, disable=not stderr.is_terminal,
    )
    progress.add_task(description, total=total)
    return progress


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if value == 0:
            return "0"
        if abs(value) >= 1e6 or abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(df: pd.DataFrame, columns: Sequence[str], title: str = "") -> None:
    """Print selected columns of a DataFrame as a rich table on stdout."""
    table = Table(title=title or None, show_lines=False)
    for col in columns:
        table.add_column(col, justify="left" if df[col].dtype == object else "right")
    for _, row in df.iterrows():
        table.add_row(*(_fmt(row[c]) for c in columns))
    Console(width=max(160, Console().width)).print(table)


RUN_COLUMNS = [
    "layer", "op", "engine_mode", "macs_dense", "act_density", "cycles", "latency_s",
    "energy_pj", "dram_bytes", "utilization", "bound", "speedup_vs_dense",
    "energy_saving_vs_dense",
]


def cmd_run(args: argparse.Namespace) -> int:
    from accelsim.arch import load_arch
    from accelsim.simulate import simulate
    from accelsim.workload import load_workload

    arch = load_arch(args.arch)
    workload = load_workload(args.workload)
    with progress_bar(f"{arch.name}", len(workload.layers)) as bar:
        result = simulate(workload, arch, on_layer=lambda _layer: bar.advance(bar.task_ids[0]))
    if args.out:
        paths = result.save(args.out)
        stderr.print(f"wrote {', '.join(str(p) for p in paths)}")
    if args.format == "csv":
        result.layers.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        payload = {"meta": result.meta, "totals": result.totals(),
                   "layers": json.loads(result.layers.to_json(orient="records"))}
        json.dump(payload, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        extra = [c for c in result.layers.columns if c.startswith("cycles_if_")]
        print_table(result.with_totals(), RUN_COLUMNS + extra,
                    title=f"{workload.model} on {arch.name} ({arch.kind})")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from accelsim.workload import load_workload
    from accelsim.workload.stats import layer_summary

    workload = load_workload(args.workload)
    summary = layer_summary(workload)
    if args.json:
        json.dump({"model": workload.model, "source": workload.source,
                   "layers": json.loads(summary.to_json(orient="records"))},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(summary, list(summary.columns),
                    title=f"{workload.model}: {len(workload.layers)} layers, "
                          f"{len(workload.edges)} edges")
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


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="simulate one workload on one architecture")
    p.add_argument("arch", help="architecture YAML")
    p.add_argument("workload", help="workload trace (.npz)")
    p.add_argument("--out", type=Path, help="folder for results CSV, Parquet and JSON")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="what to print on stdout (default: table)")
    p.set_defaults(func=cmd_run)


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="per-layer shapes, MACs and sparsity of a trace")
    p.add_argument("workload", help="workload trace (.npz)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_inspect)


def _add_import_scalesim(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-scalesim", help="convert a SCALE-Sim topology CSV to a workload")
    p.add_argument("topology", help="SCALE-Sim topology CSV")
    p.add_argument("-o", "--output", required=True, type=Path, help="output workload (.npz)")
    p.add_argument("--gemm", action="store_true", help="the CSV is SCALE-Sim's GEMM form (M, N, K)")
    p.add_argument("--act-density", type=float, default=1.0,
                   help="activation density to assume for every layer (default 1.0)")
    p.set_defaults(func=cmd_import_scalesim)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_run, _add_inspect, _add_import_scalesim,
]


def build_parser() -> argparse.ArgumentParser:
    from accelsim import __version__

    parser = argparse.ArgumentParser(
        prog="accelsim",
        description="Replay real activation-sparsity traces on configurable hardware.",
    )
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AccelsimError as exc:
        stderr.print(f"[bold red]accelsim: error:[/] {escape(str(exc))}", highlight=False,
                     soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        stderr.print("accelsim: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
