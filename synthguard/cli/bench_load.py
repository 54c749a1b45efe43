"""``synthguard bench`` commands that measure cost and load: memory per input size, the ledger under concurrent
writers, lookups through ``ledger serve`` (registered on the ``bench`` group by ``cli.bench``)."""

from __future__ import annotations

import click

from synthguard.cli import options
from synthguard.cli.render import print_json
from synthguard.errors import InputError


def _sizes(ctx, param, value: str) -> tuple[float, ...]:
    try:
        sizes = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected sizes in MB separated by commas, got {value!r}") from None
    if not sizes or any(not 0 < s <= 64 for s in sizes):
        raise click.BadParameter(f"sizes must be in (0, 64] MB (64 MB is the largest accepted text), got {value!r}")
    return sizes


@click.command("text-memory")
@click.option("--sizes", default="1,5,20,64", show_default=True, callback=_sizes,
              help="Text sizes in MB (2**20 bytes), separated by commas.")
@click.option("--text-scorer", default="builtin", show_default=True,
              help="Also compute the machine-text score under this model ('none': off).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the generated texts.")
@options.json_output()
def bench_text_memory(sizes, text_scorer, seed, as_json) -> None:
    """Peak RSS and seconds of `synthguard detect` on generated texts of each size, each in a fresh process.

    \b
    Examples:
      synthguard bench text-memory
      synthguard bench text-memory --sizes 1,5 --json
    """
    from synthguard.bench.text_memory_bench import render, run  # noqa: PLC0415

    result = run(sizes, scorer=None if text_scorer == "none" else text_scorer, seed=seed,
                 log=lambda m: click.echo(m, err=True))
    if as_json:
        print_json(result)
    else:
        click.echo(render(result))


@click.command("image-memory")
@click.option("--sizes", "sizes_mp", default="1,25,50,100", show_default=True,
              help="Image sizes in megapixels, separated by commas (at most the pixel budget).")
@click.option("--formats", default="png,jpeg", show_default=True, help="png, jpeg or both, separated by commas.")
@options.json_output()
def bench_image_memory(sizes_mp: str, formats: str, as_json: bool) -> None:
    """Peak RSS and seconds of inspecting one photo-like image of each size and format (default policy, classifier
    on), each in a fresh process as a `verify` worker, beside the stated per-worker bound.

    \b
    Examples:
      synthguard bench image-memory
      synthguard bench image-memory --sizes 1,12 --formats png --json
    """
    from synthguard.bench.image_memory_bench import run, table  # noqa: PLC0415

    try:
        sizes = tuple(float(s) for s in sizes_mp.split(",") if s.strip())
    except ValueError:
        raise InputError(f"--sizes must be comma-separated numbers of megapixels, not {sizes_mp!r}") from None
    kinds = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not sizes or min(sizes) <= 0 or not kinds:
        raise InputError("--sizes needs at least one size > 0 and --formats at least one format")
    rows = run(sizes, kinds, log=lambda line: click.echo(line, err=True))
    if as_json:
        print_json(rows)
    else:
        click.echo(table(rows))


@click.command("ledger")
@click.option("--database", "url", metavar="URL",
              help="An empty ledger database (postgresql://... or a SQLite path); default: a new SQLite file. A "
                   "PostgreSQL run is followed by the same run on SQLite, side by side.")
@click.option("--records", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--processes", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Writer processes recording at once.")
@click.option("--lookups", default=3000, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--stamp", is_flag=True, help="Each record is a real stamp (a 256 px image watermarked and signed), "
                                           "not a synthetic record.")
@options.json_output()
def bench_ledger(url, records, processes, lookups, stamp, as_json) -> None:
    """Several processes recording into one ledger at once: records stored, duplicates, lost; inserts and lookups
    per second with p50/p99.

    \b
    Examples:
      synthguard bench ledger
      synthguard bench ledger --database postgresql://synthguard@127.0.0.1/bench --stamp
    """
    from synthguard.bench.ledger_bench import run_ledger_benchmark  # noqa: PLC0415

    result = run_ledger_benchmark(url, records=records, processes=processes, lookups=lookups, stamp=stamp)
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo("\n".join(result.describe()))
    if not result.ok:
        raise InputError("the ledger lost, duplicated or mis-answered records (see above)")


@click.command("resolver")
@click.option("--database", "url", metavar="URL", help="An empty ledger database to serve (default: a new SQLite "
                                                       "file).")
@click.option("--records", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--lookups", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--clients", default="1,4", show_default=True, help="Client thread counts, separated by commas.")
@options.json_output()
def bench_resolver(url, records, lookups, clients, as_json) -> None:
    """Lookups per second and p50/p99 latency through a real `synthguard ledger serve` (the Soft Binding
    Resolution API on loopback), beside the same lookups made in-process on the ledger.

    \b
    Examples:
      synthguard bench resolver
      synthguard bench resolver --records 10000 --clients 1,2,8 --json
    """
    from synthguard.bench.resolver_bench import run_resolver_benchmark  # noqa: PLC0415

    try:
        counts = tuple(int(c) for c in clients.split(",") if c.strip())
    except ValueError:
        raise InputError(f"--clients must be whole numbers separated by commas, not {clients!r}") from None
    result = run_resolver_benchmark(url, records=records, lookups=lookups, clients=counts)
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo("\n".join(result.describe()))
    if not result.ok:
        raise InputError("some lookups were answered wrongly or failed (see above)")
