"""``synthguard data``: the datasets that training, evaluation and the benchmarks read, and their cache."""

from __future__ import annotations

from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.render import print_json


@click.group()
def data() -> None:
    """The dataset cache ($SYNTHGUARD_DATA, else $SYNTHGUARD_HOME/datasets): list it, fill it.

    Nothing here is needed to generate, sign, detect or verify; training and the benchmarks read these datasets.

    \b
    Examples:
      synthguard data list
      synthguard data fetch mnist                     # download from the public source, checksums verified
      synthguard data fetch mnist --from ~/Downloads/mnist/   # a folder with the four idx .gz files
      synthguard data fetch tinyshakespeare --from input.txt
    """


@data.command("list")
@options.json_output()
def data_list(as_json: bool) -> None:
    """Each dataset: what it is, whether the cache holds it, where it comes from.

    \b
    Examples:
      synthguard data list
      synthguard data list --json
    """
    from synthguard.core.datasets import DATASETS, data_dir, file_problem  # noqa: PLC0415

    cache = data_dir()
    rows = []
    for ds in DATASETS.values():
        problems = [p for f in ds.files if (p := file_problem(f, cache / f.name))]
        state = "cached" if not problems else "missing" if all(p == "missing" for p in problems) else "damaged"
        rows.append({"name": ds.name, "title": ds.title, "state": state, "path": str(cache / ds.target),
                     "description": ds.description, "source": ds.source, "licence": ds.licence})
    if as_json:
        print_json({"cache": str(cache), "datasets": rows})
        return
    click.echo(f"dataset cache: {cache}")
    for row in rows:
        click.echo(f"  {row['name']:16} {row['state']:8} {row['description']}")


@data.command("fetch")
@click.argument("name")
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path),
              help="A local copy instead of the download: the dataset as cached, or a folder of its public files.")
def data_fetch(name: str, source: Path | None) -> None:
    """Put dataset NAME into the cache (verified against its published sha256); a cached one is only checked.

    \b
    Examples:
      synthguard data fetch c2pa-photos
      synthguard data fetch mnist --from ./mnist-idx/
    """
    from synthguard.core.datasets import dataset_path, install  # noqa: PLC0415

    path = install(name, source) if source is not None else dataset_path(name)
    click.echo(f"{name}: {path}")
