"""The ``ftsweep`` command: run, validate, list, table, export, stamp, ui, pretrain.

Bad input exits with code 2 and one line ``ftsweep: error: <field>: <value> — <allowed>``,
before Ray starts and before any MLflow run is created.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from ftsweep.config import ConfigError

EXIT_BAD_INPUT = 2


def _version(text: str) -> int | str:
    """``--version`` as :func:`ftsweep.runs.load_runs` takes it: a number, ``latest`` or ``all``."""
    return int(text) if text.isdigit() else text


def _version_runs(args: argparse.Namespace):  # noqa: ANN202 — a DataFrame
    """The finished runs of ``--experiment`` in ``--version`` (``latest``, N, or ``all``).

    Raises:
        ConfigError: a bad ``--version``, an unknown experiment, or no finished run.
    """
    from ftsweep.runs import load_runs

    version = args.version
    if not (version == "latest" or version.isdigit() or version == "all"):
        raise ConfigError("--version", version, "must be a version number, latest or all")
    try:
        df = load_runs(args.experiment, args.tracking_uri, version=_version(version))
    except KeyError as e:
        raise ConfigError("--experiment", args.experiment, str(e.args[0])) from None
    except FileNotFoundError as e:  # a reading command never creates a store
        raise ConfigError(
            *_tracking_field(args.tracking_uri), f"{e}; give the store the sweep logged to"
        ) from None
    if df.empty:
        raise _no_finished_runs(args.experiment, args.tracking_uri, version)
    if version.isdigit():
        _note_shared_versions(args.experiment, args.tracking_uri, int(version))
    return df


def _note_shared_versions(experiment: str, tracking_uri: str | None, version: int) -> None:
    """Versions are numbered per spec: where several specs log to ``experiment``, ``--version N``
    is each one's vN — say whose it is, and which specs have none (their rows are missing)."""
    from ftsweep.runs import sweep_versions

    specs = sweep_versions(experiment, tracking_uri)
    if len(specs) < 2:
        return
    have = sorted(name for name, vs in specs.items() if version in vs)
    lack = {name: vs for name, vs in sorted(specs.items()) if version not in vs}
    print(
        f"ftsweep: note: {len(specs)} specs log to {experiment!r} and number their versions each: "
        f"--version {version} is v{version} of {', '.join(have)}"
        + "".join(
            f"; {name} has no v{version} (its versions: {', '.join(map(str, vs))})"
            for name, vs in lack.items()
        ),
        file=sys.stderr,
    )


def _select_by(args: argparse.Namespace, df):  # noqa: ANN001, ANN202 — a DataFrame; str | None
    """What ``table`` / ``export`` select a cell's configuration by: ``--select-by``, else the
    ``table.select_by`` of the spec the runs came from (their tag ``select_by``, as the run's own
    table used it), else ``best/val/acc`` (None for runs without a validation split). A paper
    layout selects as it says.

    Raises:
        ConfigError: a ``--select-by`` the runs do not have; runs of specs that select by
            different metrics, without ``--select-by``.
    """
    from ftsweep.tables import default_select_by

    if args.select_by is not None:
        if args.select_by not in df.columns:
            metrics = ", ".join(sorted(c for c in df.columns if "/" in c))
            raise ConfigError(
                "--select-by", args.select_by, f"is not a metric of the runs; they have {metrics}"
            )
        return args.select_by
    named = df.attrs.get("select_by", [])
    if len(named) > 1:
        raise ConfigError(
            "--select-by",
            None,
            f"must be given: the runs' specs select by {' and '.join(named)} (table.select_by)",
        )
    return named[0] if named else default_select_by(df)


def _no_finished_runs(experiment: str, tracking_uri: str | None, version: str) -> ConfigError:
    """The error for a ``--version`` without finished runs: a version the experiment does not
    have names the ones it has; one it has counts its runs by status."""
    from collections import Counter

    from ftsweep.runs import load_runs, sweep_versions

    if version.isdigit():
        # from the version runs: "all" counts each trial once, under its latest version only
        every = load_runs(experiment, tracking_uri, status=None, version="all")
        versions = sorted(
            {int(v) for v in every["sweep_version"]}.union(*sweep_versions(experiment, tracking_uri).values())
        )
        if int(version) not in versions:
            have = ", ".join(map(str, versions)) or "none (no trial has run)"
            return ConfigError("--version", version, f"experiment {experiment!r} has versions {have}")
    tried = load_runs(experiment, tracking_uri, status=None, version=_version(version))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(Counter(tried["status"]).items())) if len(tried) else ""
    return ConfigError(
        "--experiment",
        experiment,
        f"has no finished runs (version {version}{': ' + counts if counts else ''})",
    )


def _seeds_tried(args: argparse.Namespace) -> int:
    """How many seeds the runs of ``--version`` tried, finished or not (FAILED, RUNNING, KILLED):
    a table cell with fewer finished seeds is marked ``(n=k/N)``, as in ``run``'s table."""
    from ftsweep.runs import load_runs

    runs = load_runs(args.experiment, args.tracking_uri, status=None, version=_version(args.version))
    return int(runs["seed"].nunique())


def _fail(msg: str) -> int:
    print(f"ftsweep: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


#: the schemes of the MLflow tracking stores ftsweep logs to and reads (sqlite:///PATH is the
#: default); a plain path or ``file:`` URI is MLflow's filesystem store, which MLflow refuses
#: unless ``MLFLOW_ALLOW_FILE_STORE`` is set
STORE_SCHEMES = (
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "http",
    "https",
    "databricks",
    "databricks-uc",
    "uc",
)


def _tracking_field(given: str | None) -> tuple[str, str]:
    """Where the tracking URI came from, as ``(field, value)``: ``--tracking-uri``, else
    ``$MLFLOW_TRACKING_URI``, else the default (see :func:`ftsweep.tracking.tracking_uri`)."""
    from ftsweep.tracking import DEFAULT_TRACKING_URI

    if given:
        return "--tracking-uri", given
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return "MLFLOW_TRACKING_URI", env
    return "--tracking-uri", DEFAULT_TRACKING_URI


def _check_tracking_uri(given: str | None) -> None:
    """The tracking URI names a store MLflow opens, and a SQLite file's folder can be made.

    Raises:
        ConfigError: a plain path or ``file:`` URI (MLflow's filesystem store), an unknown
            scheme, or a SQLite path below a file.
    """
    from importlib.metadata import entry_points
    from urllib.parse import urlparse

    from ftsweep.tracking import sqlite_path, tracking_uri

    field, value = _tracking_field(given)
    scheme = urlparse(value).scheme.lower()
    if value in ("databricks", "databricks-uc", "uc"):
        return
    if scheme in ("", "file"):
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

        if MLFLOW_ALLOW_FILE_STORE.get():  # MLflow's own opt-out of its refusal
            return
        raise ConfigError(
            field,
            value,
            "a plain path or file: URI is MLflow's filesystem store, which MLflow no longer opens; "
            "give sqlite:///PATH (e.g. sqlite:///mlflow.db)",
        )
    plugins = {ep.name for ep in entry_points(group="mlflow.tracking_store")}
    if scheme.split("+", 1)[0] not in STORE_SCHEMES and scheme not in plugins:
        raise ConfigError(
            field,
            value,
            "must be sqlite:///PATH, http(s)://HOST:PORT, databricks, or a postgresql://, mysql:// "
            "or mssql:// database URI",
        )
    if scheme == "sqlite" and sqlite_path(value) is None:  # sqlite:/// or sqlite:///:memory:
        raise ConfigError(
            field,
            value,
            "needs a database file: sqlite:///PATH (an in-memory store is neither seen by the "
            "trials' workers nor kept)",
        )
    db = sqlite_path(tracking_uri(value))
    if db is not None:
        _folder(field, db.parent, value)
        if db.is_dir():
            raise ConfigError(field, value, f"must name a SQLite database file; {db} is a folder")
        if db.is_file() and db.stat().st_size and not _is_sqlite(db):
            raise ConfigError(field, value, f"must name a SQLite database file; {db} is another kind of file")


def _is_sqlite(path: Path) -> bool:
    """``path`` starts with SQLite's file header."""
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _folder(field: str, path: str | Path, value: object = None) -> Path:
    """``path`` as a folder to write into: it, or else its nearest existing parent, is a
    directory (nothing is created here).

    Raises:
        ConfigError: on ``field`` (reporting ``value``, default ``path``): a file is in the way.
    """
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "it is a file" if p == path and value is None else f"{p} is a file"
                raise ConfigError(field, str(path) if value is None else value, f"must be a folder; {where}")
            break
    return path


def _output_file(field: str, path: str) -> Path:
    """``path`` as a file to write (its missing parent folders are made when it is written).

    Raises:
        ConfigError: ``path`` is a folder, or a file is in the way of its parent folder.
    """
    out = Path(path)
    if out.is_dir():
        raise ConfigError(field, path, "must be a file path; it is a folder")
    _folder(field, out.parent, path)
    return out


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _axes(args: argparse.Namespace) -> tuple[str | list[str], str | list[str]]:
    """``--rows`` and ``--cols``: comma-separated run columns, each named once in either
    (one name as a string, as :func:`ftsweep.tables.summarize` takes it).

    Raises:
        ConfigError: an empty name, or a name given twice.
    """
    rows = args.rows.split(",")
    cols = args.cols.split(",")
    for flag, text, names in (("--rows", args.rows, rows), ("--cols", args.cols, cols)):
        if "" in names:
            raise ConfigError(flag, text, "must be comma-separated column names (method,dataset)")
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(flag, text, f"must not repeat a name ({name})")
            if names is cols and name in rows:
                raise ConfigError(flag, text, f"must not repeat a name of --rows ({name})")
    return (rows if len(rows) > 1 else rows[0]), (cols if len(cols) > 1 else cols[0])


def _layout_error(layout: str, err: KeyError | ValueError) -> ConfigError:
    """A paper layout these runs cannot fill (it reads a column or a selection they lack)."""
    return ConfigError(
        "--layout", layout, f"cannot be filled from these runs: {err.args[0] if err.args else err}"
    )


def _layout_frame(args: argparse.Namespace, df) -> Any:  # noqa: ANN001 — a DataFrame
    """The frame of ``--layout`` over ``df``; with ``--paper``: ours | paper | Δ per cell.

    Raises:
        ConfigError: an unknown layout, or one these runs cannot fill.
    """
    from ftsweep.config.spec import load_layout

    layout = load_layout(args.layout, "--layout")
    try:
        if args.paper:  # ours (mean ± std, n) | paper | Δ, significance vs the baseline row
            from ftsweep.tables import paper_frame

            return paper_frame(df, layout, args.format)
        return layout(df)
    except ConfigError:  # a ValueError of its own (--paper of a layout without paper numbers)
        raise
    except (KeyError, ValueError) as e:  # a column it reads; a cell of several methods or configs
        raise _layout_error(args.layout, e) from None


def _spec_table(spec, args: argparse.Namespace, out: Path, version: int, run_id: str | None = None) -> None:  # noqa: ANN001
    """The spec's table of one version (its own runs: another spec that logs to the same
    ``experiment:`` has its own vN), printed and written to its folder (a cell with fewer
    finished seeds than the spec asks for is marked), then its paper layout, and both on the
    version's MLflow run; a table the runs cannot fill is reported, and the layout still made."""
    from ftsweep.runs import load_runs

    table = spec.table
    df = load_runs(spec.experiment, args.tracking_uri, version=version)
    df = df[df["sweep"] == spec.name] if not df.empty else df  # specs may share an experiment
    if df.empty:
        print("ftsweep: no finished trials to tabulate")
        return
    _plain_table(spec, df, out, version)
    if table.get("layout"):
        _spec_layout(table["layout"], df, out)
    if run_id is not None:  # the tables on the version's MLflow run
        from ftsweep.tracking import log_files

        names = ("table.md", "table.csv", "table.parquet", "paper_table.md")
        try:
            log_files(args.tracking_uri, run_id, [out / n for n in names])
        except Exception as e:  # noqa: BLE001 — an artifact store that refuses: the tables are on disk
            print(
                f"ftsweep: tables not attached to the MLflow run ({type(e).__name__}: {e}); they are in {out}"
            )


def _plain_table(spec, df, out: Path, version: int) -> None:  # noqa: ANN001
    """``table:``'s rows × cols of ``metric``, printed and written as table.md / .csv / .parquet.
    Runs without a validation split (stage 1 alone: no ``best/val/acc``) select no
    configuration unless ``select_by`` says how: each cell must then hold one."""
    from ftsweep.config.spec import metric_direction
    from ftsweep.tables import default_select_by, format_table, summarize, write_table

    table = spec.table
    rows, cols = table.get("rows", "method"), table.get("cols", "dataset")
    metric = table.get("metric", "test/acc")
    baseline = table.get("baseline")
    labels = [m.label for m in spec.methods]
    select_by = table.get("select_by", default_select_by(df))
    try:
        mean, std, n = summarize(df, rows, cols, metric, select_by=select_by)
    except (KeyError, ValueError) as e:
        print(f"ftsweep: no table: {e.args[0]} (set the spec's table: rows/cols/metric/select_by)")
        return
    if rows == "method":
        mean, std, n = (x.reindex([lbl for lbl in labels if lbl in x.index]) for x in (mean, std, n))
    if baseline not in mean.index:
        baseline = None
    seeds = len(spec.seeds)
    how = (
        "config selected on validation, epoch by each job's select"
        if select_by
        else "one configuration a cell"
    )
    print(f"\n{spec.description or spec.name} — {metric} (mean ± std over seeds; {how}; v{version})\n")
    higher = metric_direction(metric) != "min"  # a loss: the lowest is bold, Δ from the lowest
    print(format_table(mean, std, baseline=baseline, fmt="md", n=n, expected=seeds, higher_is_better=higher))
    for suffix in (".md", ".csv", ".parquet"):
        write_table(
            mean, std, n, out / f"table{suffix}", baseline=baseline, expected=seeds, higher_is_better=higher
        )
    print(f"\nftsweep: table written to {out}/table.md (.csv, .parquet)")


def _spec_layout(layout: str, df, out: Path) -> None:  # noqa: ANN001
    """The spec's paper layout (``table: {layout: analysis.<paper>:<fn>}``), printed and written
    to ``paper_table.md``; a layout that cannot be filled from these runs is reported, not raised
    (the sweep itself has finished)."""
    from ftsweep.config.spec import load_layout
    from ftsweep.tables import render_frame

    try:
        frame = load_layout(layout)(df)
    except Exception as e:  # noqa: BLE001 — e.g. a smoke run without the layout's columns
        print(f"ftsweep: paper layout {layout} not rendered: {type(e).__name__}: {e}")
        return
    text = render_frame(frame, "md")
    print(f"\nPaper layout ({layout}):\n\n{text}")
    (out / "paper_table.md").write_text(text + "\n")
    print(f"\nftsweep: paper layout written to {out}/paper_table.md")


#: exit codes of ``ftsweep run``
EXIT_FAILED_TRIALS = 1
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


def _resume_command(args: argparse.Namespace) -> str:
    """The ``ftsweep run … --resume`` line that continues this sweep as it was started (every
    flag that changes where or how it runs, each argument shell-quoted)."""
    import shlex

    parts = ["ftsweep", "run", args.spec, "--resume"]
    if args.retry_failed:  # interrupted before or during its retry: it continues as asked
        parts.append("--retry-failed")
    if args.smoke:
        parts.append("--smoke")
    for item in args.set:
        parts += ["--set", item]
    if args.results != "results":
        parts += ["--results", args.results]
    for flag, value in (
        ("--tracking-uri", args.tracking_uri),
        ("--address", args.address),
        ("--num-cpus", args.num_cpus),
        ("--artifacts", args.artifacts),
    ):
        if value is not None and value != "":
            parts += [flag, str(value)]
    if args.allow_pending:
        parts.append("--allow-pending")
    if args.quiet:
        parts.append("-q")
    return shlex.join(parts)


def cmd_run(args: argparse.Namespace) -> int:
    import shlex
    from urllib.parse import urlparse

    from ftsweep.config.spec import load_spec
    from ftsweep.runner import check_address, check_jobs, run_spec

    try:
        spec = load_spec(args.spec, smoke=args.smoke, overrides=args.set)
        check_jobs(spec)
        if args.retry_failed and not args.resume:
            raise ConfigError("--retry-failed", True, "goes with --resume")
        if args.resume and args.new:
            raise ConfigError(
                "--new", True, "contradicts --resume: give one (resume the latest version or start a new one)"
            )
        if args.num_cpus is not None and args.num_cpus < 1:
            raise ConfigError(
                "--num-cpus", args.num_cpus, "must be an integer >= 1 (CPUs of a local Ray instance)"
            )
        _folder("--results", args.results)
        _check_tracking_uri(args.tracking_uri)
        check_address(args.address)
        local = urlparse(args.artifacts or "")
        if args.artifacts and local.scheme in ("", "file"):  # a local folder, or file:///PATH
            _folder("--artifacts", local.path if local.scheme else args.artifacts)
        from ftsweep.plan import search_notes

        notes = search_notes(spec, slots=1)  # the cluster's trial slots are known once Ray is up
    except ConfigError as e:
        return _fail(str(e))
    except KeyboardInterrupt:  # the checks can take minutes (every image header, checkpoints)
        print("\nftsweep: interrupted (SIGINT) while checking the spec; nothing was started or written")
        return EXIT_SIGNAL["SIGINT"]
    for note in notes:
        print(f"ftsweep: note: {note}", flush=True)
    import ray

    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    try:
        res = run_spec(
            spec,
            results_dir=args.results,
            resume=args.resume,
            new=args.new,
            retry_failed=args.retry_failed,
            allow_pending=args.allow_pending,
            command=" ".join(sys.argv),
            tracking_uri=args.tracking_uri,
            address=args.address,
            num_cpus=args.num_cpus,
            log=not args.quiet,
            artifacts=args.artifacts,
        )
    except ConfigError as e:  # the version and resource checks, before anything is written
        return _fail(str(e))
    except KeyboardInterrupt:  # a second signal as the sweep left its handlers: its state is saved
        print(
            f"\nftsweep: interrupted (SIGINT); a version whose trials had started resumes with:\n"
            f"  {_resume_command(args)}"
        )
        return EXIT_SIGNAL["SIGINT"]
    late = None  # a signal after the sweep ended: its state and runs are saved; say so and leave
    try:
        ray.shutdown()
    except KeyboardInterrupt:
        late = "SIGINT"
    print(
        f"ftsweep: v{res.version}: {res.finished} of {res.trials} trials finished, {res.errors} failed, "
        f"{res.interrupted} not ended, in {res.seconds:.0f} s; MLflow experiment {res.experiment!r}"
    )
    for line in res.failures:
        print(f"  failed: {line}")
    if res.finished and late is None:
        try:
            _spec_table(spec, args, res.storage, res.version, res.sweep_run_id)
        except KeyboardInterrupt:
            late = "SIGINT"
    if late is not None and not res.interrupted:
        print(
            f"\nftsweep: {late} after the sweep ended: the table was not made; "
            f"`ftsweep table --experiment {shlex.quote(res.experiment)} --version {res.version}` makes it"
        )
    from ftsweep.tracking import tracking_uri

    print(f"\nOpen the MLflow UI with:  ftsweep ui   (tracking URI {tracking_uri(args.tracking_uri)})")
    if res.interrupted:
        print(f"\nftsweep: interrupted ({res.signal or 'stopped'}); resume with:\n  {_resume_command(args)}")
        return EXIT_SIGNAL.get(res.signal or "SIGINT", 130)
    if late is not None:
        return EXIT_SIGNAL[late]
    return EXIT_FAILED_TRIALS if res.errors else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ftsweep.config.spec import load_spec
    from ftsweep.plan import format_plan, plan_spec
    from ftsweep.runner import check_jobs, job_trials

    try:
        spec = load_spec(args.spec, smoke=args.smoke, overrides=args.set)
        jobs = spec.jobs()
        check_jobs(spec)
        if not args.smoke and "smoke" in spec.raw:  # the smoke: block too, as --smoke reads it
            try:
                check_jobs(load_spec(args.spec, smoke=True, overrides=args.set))
            except ConfigError as e:
                raise ConfigError(f"{e.field} (with --smoke)", e.value, e.allowed) from None
        throughput = _throughput(args, spec)
        # without a cluster size: one trial's worth of GPUs
        gpus = args.gpus if args.gpus is not None else (spec.resources.get("gpu", 0) or None)
        plan = plan_spec(spec, throughput=throughput, gpus=gpus, cpus=args.cpus, gpu_kind=args.gpu_kind)
    except ConfigError as e:
        return _fail(str(e))
    counts = {j.name: job_trials(spec, j) for j in jobs}
    seeds = len(spec.seeds)
    print(
        f"{args.spec}: OK — {len(jobs)} jobs ({', '.join(j.name for j in jobs)}), {seeds} seed(s), "
        f"searcher {spec.searcher}, {sum(counts.values())} trials"
    )
    print(format_plan(plan))
    return 0


def _throughput(args: argparse.Namespace, spec: Any) -> Any:
    """The throughput table ``--throughput FILE`` names, or ``--calibrate``'s (``plan`` only)."""
    from ftsweep.plan import calibrate, load_throughput

    calibrating = getattr(args, "calibrate", False)
    if args.throughput and calibrating:
        raise ConfigError("--calibrate", True, "give --throughput FILE or --calibrate, not both")
    if args.throughput:
        if not Path(args.throughput).is_file():
            raise ConfigError(
                "--throughput", args.throughput, "must be an existing JSON/YAML throughput file"
            )
        return load_throughput(args.throughput)
    return calibrate(spec) if calibrating else None


def cmd_plan(args: argparse.Namespace) -> int:
    from ftsweep.config.spec import load_spec
    from ftsweep.plan import format_plan, plan_spec
    from ftsweep.runner import check_jobs

    try:
        spec = load_spec(args.spec, smoke=args.smoke, overrides=args.set)
        check_jobs(spec)  # as validate: a plan of trials that would fail is no plan
        plan = plan_spec(
            spec, throughput=_throughput(args, spec), gpus=args.gpus, cpus=args.cpus, gpu_kind=args.gpu_kind
        )
    except ConfigError as e:
        return _fail(str(e))
    print(format_plan(plan))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ftsweep.backbones import list_backbones
    from ftsweep.data import DATASETS
    from ftsweep.registry import methods

    if args.sweeps is not None and not Path(args.sweeps).is_dir():  # the default may be absent
        return _fail(str(ConfigError("--sweeps", args.sweeps, "must be a folder of sweep specs (*.yaml)")))
    print("methods:   " + ", ".join(sorted(methods())))
    print("datasets:  " + ", ".join(sorted(DATASETS)))
    print(
        "backbones: " + ", ".join(list_backbones()) + ", or any timm model name (tags too: resnet50.a1_in1k)"
    )
    from ftsweep.backbones import list_weights

    print("weights:   " + ", ".join(list_weights()))
    folder = args.sweeps or "sweeps"
    sweeps = sorted(p.name for p in Path(folder).glob("*.yaml"))
    print("sweeps:    " + (", ".join(sweeps) if sweeps else f"(none in {folder})"))
    return 0


SELECT_BY_HELP = (
    "the metric a cell's configuration is selected by (default the spec's table.select_by, as the "
    "run's own table, else best/val/acc; a loss: the lowest)"
)

#: ``table``'s --rows / --cols / --metric when no --layout is given
TABLE_DEFAULTS = {"rows": "method", "cols": "dataset", "metric": "test/acc"}


def _refuse_beside_layout(args: argparse.Namespace, flags: tuple[str, ...], what: str) -> None:
    """``--layout`` names its own cells (``what``): one of ``flags`` given beside it would be
    ignored, so it is refused."""
    given = [k for k in flags if getattr(args, k) is not None]
    if args.layout and given:
        raise ConfigError(
            f"--{given[0].replace('_', '-')}",
            getattr(args, given[0]),
            f"is not read with --layout (the layout {args.layout} names its {what}); drop one of them",
        )


def _table_axes_or_layout(args: argparse.Namespace) -> None:
    """``--layout`` names its own rows, columns, metric, baseline and selection: a --rows,
    --cols, --metric, --baseline or --select-by beside it is refused; without a layout the
    unset ones take :data:`TABLE_DEFAULTS`."""
    _refuse_beside_layout(
        args,
        ("rows", "cols", "metric", "baseline", "select_by"),
        "rows, columns, metric, baseline and selection",
    )
    for k, v in TABLE_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)


def cmd_table(args: argparse.Namespace) -> int:
    from ftsweep.config.spec import metric_direction
    from ftsweep.tables import format_table, render_frame, summarize, write_table

    try:
        _check_tracking_uri(args.tracking_uri)
        if args.paper and not args.layout:
            raise ConfigError(
                "--paper", True, "goes with --layout (ours | paper | Δ per cell of a paper layout)"
            )
        _table_axes_or_layout(args)
        rows, cols = _axes(args)
        if args.format == "parquet" and not args.output:
            raise ConfigError("--format", "parquet", "needs --output PATH")
        if args.output and (Path(args.output).suffix == ".parquet") != (args.format == "parquet"):
            # the file is written in --format: a parquet name of text, or parquet under .csv, misleads
            raise ConfigError(
                "--output",
                args.output,
                "must end in .parquet with --format parquet"
                if args.format == "parquet"
                else f"is a .parquet name but --format is {args.format}; give --format parquet or another name",
            )
        output = _output_file("--output", args.output) if args.output else None
        df = _version_runs(args)
        select_by = None if args.layout else _select_by(args, df)
        frame = _layout_frame(args, df) if args.layout else None
    except ConfigError as e:
        return _fail(str(e))
    if frame is not None:
        if output is not None and args.format == "parquet":
            output.parent.mkdir(parents=True, exist_ok=True)
            frame.astype(str).to_parquet(output, engine="pyarrow")
        else:
            text = render_frame(frame, args.format)
            print(text)
            if output is not None:
                _write_text(output, text)
        return 0
    try:
        mean, std, n = summarize(df, rows, cols, args.metric, select_by=select_by)
    except (KeyError, ValueError) as e:
        return _fail(f"--rows/--cols/--metric: {e.args[0]}")
    baseline = args.baseline
    if baseline is not None and baseline not in mean.index:
        return _fail(f"--baseline: {baseline!r} — must be one of the rows: {', '.join(map(str, mean.index))}")
    if output is not None and args.format == "parquet":
        write_table(mean, std, n, output)
        print(f"wrote {output}")
        return 0
    higher = metric_direction(args.metric) != "min"  # a loss: the lowest is bold
    seeds = _seeds_tried(args)
    text = format_table(
        mean, std, baseline=baseline, fmt=args.format, higher_is_better=higher, n=n, expected=seeds
    )
    print(text)
    if output is not None:
        _write_text(output, str(text))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Each table cell's selected run: ``<output>/<row>__<col>/`` with ``model.pt`` (its selected
    epoch's state_dict), ``config.json`` and ``load.txt`` (:mod:`ftsweep.export`)."""
    from ftsweep.config.spec import load_layout
    from ftsweep.export import export_runs

    try:
        _check_tracking_uri(args.tracking_uri)
        _refuse_beside_layout(args, ("rows", "cols", "select_by"), "cells and their selection")
        args.rows, args.cols = args.rows or TABLE_DEFAULTS["rows"], args.cols or TABLE_DEFAULTS["cols"]
        rows, cols = _axes(args)
        out = _folder("--output", args.output or Path("results") / args.experiment / "export")
        df = _version_runs(args)
        select_by = _select_by(args, df) or "best/val/acc"
        layout = load_layout(args.layout, "--layout") if args.layout else None
        try:
            cells = export_runs(
                df,
                out,
                rows=rows,
                cols=cols,
                layout=layout,
                tracking_uri=args.tracking_uri,
                results=args.results,
                select_by=select_by,
                force=args.force,
            )
        except ConfigError:  # a ValueError of its own: said as it is, below
            raise
        except (KeyError, ValueError) as e:  # a column the runs lack; a cell of several methods
            if layout is None:
                return _fail(f"--rows/--cols: {e.args[0]}")
            raise _layout_error(args.layout, e) from None
    except ConfigError as e:
        return _fail(str(e))
    except FileNotFoundError as e:
        return _fail(f"checkpoint: {e} (give the sweep's --results)")
    for c in cells:
        where = f"epoch {c.epoch}" + (
            "" if c.weights == "selected_epoch" else " (LAST epoch, not the selected)"
        )
        print(f"{c.path}  {c.row} × {c.col}: {c.method} seed={c.seed} run {c.run_id} {where}")
    print(f"ftsweep: {len(cells)} cell(s) exported to {out}/")
    return 0


def cmd_stamp(args: argparse.Namespace) -> int:
    """Write the checkout's commit (``-dirty`` with uncommitted changes) to ``.ftsweep_commit``,
    which ``ray job submit --working-dir .`` uploads and ``git_commit()`` reads on the cluster."""
    from ftsweep.gitinfo import COMMIT_FILE, stamp_commit

    try:
        commit = stamp_commit(args.dir)
    except RuntimeError as e:
        return _fail(f"stamp: {e}")
    print(f"ftsweep: {commit} written to {Path(args.dir) / COMMIT_FILE}")
    return 0


def mlflow_ui_command(uri: str, port: int) -> list[str]:
    """The MLflow UI over ``uri``, bound to 127.0.0.1."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def cmd_ui(args: argparse.Namespace) -> int:
    from ftsweep.runs import missing_store
    from ftsweep.tracking import tracking_uri

    try:
        if not 1 <= args.port <= 65535:
            raise ConfigError("--port", args.port, "must be an integer in [1, 65535]")
        _check_tracking_uri(args.tracking_uri)
        uri = tracking_uri(args.tracking_uri)
        if (missing := missing_store(uri)) is not None:  # MLflow would make an empty one there
            raise ConfigError(
                *_tracking_field(args.tracking_uri),
                f"no MLflow store there ({missing} does not exist): give the store a sweep logged to "
                "(ftsweep run writes sqlite:///mlflow.db in its working folder)",
            )
    except ConfigError as e:
        return _fail(str(e))
    cmd = mlflow_ui_command(uri, args.port)
    print(f"MLflow UI on http://127.0.0.1:{args.port}  (store {uri}; Ctrl-C to stop)", flush=True)
    os.execv(sys.executable, cmd)
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ftsweep.cache import CachedBuildError
    from ftsweep.config.checks import check_backbone_name, check_dataset_files, check_image_size
    from ftsweep.data import get_dataset_info
    from ftsweep.pretrain import SimCLRConfig, pretrain_simclr

    given = {k: v for k, v in vars(args).items() if k in SimCLRConfig.field_names() and v is not None}
    try:
        try:
            cfg = SimCLRConfig.from_dict(given)
        except ConfigError as e:  # reported as the flag that gave it
            raise ConfigError(f"--{e.field}" if e.field in given else e.field, e.value, e.allowed) from None
        check_backbone_name(cfg.backbone, {"backbone": "--backbone"})
        side = get_dataset_info(cfg.dataset).image_size  # SimCLR's views: the dataset's own size
        check_image_size(cfg.backbone, side, {"backbone": "--backbone"}, field="backbone", value=cfg.backbone)
        check_dataset_files(
            cfg.dataset,
            cfg.data_root,
            cfg.download,
            {"dataset": "--dataset"},
            download_hint="pass --download",
        )
        root = _folder("--results", Path(args.results) / "pretrained", args.results)
    except ConfigError as e:
        return _fail(str(e))
    try:
        path = pretrain_simclr(cfg, root=root, force=args.force)
    except CachedBuildError as e:  # this build, or an earlier one remembered in <file>.failed
        print(f"ftsweep: pretrain: {str(e).splitlines()[0]}\n(fix the cause, then pass --force to try again)")
        return 1
    print(path)
    return 0


SET_HELP = "override one spec value: dotted KEY, YAML VALUE (config.epochs=5, seeds=[0,1]); repeatable"


def _cost_arguments(parser: argparse.ArgumentParser) -> None:
    """``--throughput``, ``--gpus``, ``--cpus``, ``--gpu-kind``: what ``plan`` and ``validate``
    estimate from."""
    parser.add_argument(
        "--throughput", default=None, help="a measured-throughput table (JSON/YAML, see ftsweep.plan)"
    )
    parser.add_argument(
        "--gpus", type=_cluster_size, default=None, help="GPUs of the cluster the sweep would run on"
    )
    parser.add_argument("--cpus", type=_cluster_size, default=None, help="CPUs of that cluster")
    parser.add_argument(
        "--gpu-kind",
        default=None,
        help="the cluster's GPU as the throughput table names it (where it has several kinds)",
    )


def _cluster_size(text: str) -> float:
    """``--gpus`` / ``--cpus``: a finite number > 0 (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} — must be a finite number > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ftsweep", description="Ray Tune sweeps for contrastive and data-reuse fine-tuning."
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a sweep spec with Ray Tune, log to MLflow, print its table")
    r.add_argument("spec")
    r.add_argument(
        "--smoke", action="store_true", help="shrunk CPU check of the spec (digits, 2 epochs, 1 seed)"
    )
    r.add_argument("--results", default="results", help="where Tune results, checkpoints and tables go")
    r.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow URI (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    r.add_argument(
        "--address", default=None, help="Ray cluster address (default $RAY_ADDRESS or a local instance)"
    )
    r.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue the latest unfinished version of this spec (finished trials are not re-run)",
    )
    r.add_argument(
        "--artifacts",
        default=None,
        help="artifact location of a new MLflow experiment (default: mlartifacts/ beside a SQLite store)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress lines while the sweep runs")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    r.add_argument("--retry-failed", action="store_true", help="with --resume: also restart failed trials")
    r.add_argument("--new", action="store_true", help="start a new version even if the latest is unfinished")
    r.add_argument(
        "--allow-pending",
        action="store_true",
        help="let trials wait for resources no node has now (an autoscaling cluster adds them)",
    )
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a spec without running anything")
    v.add_argument("spec")
    v.add_argument("--smoke", action="store_true")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    _cost_arguments(v)
    v.set_defaults(func=cmd_validate)

    pl = sub.add_parser("plan", help="trials, epochs, images and the estimated time and GPU-hours of a spec")
    pl.add_argument("spec")
    pl.add_argument("--smoke", action="store_true")
    pl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    _cost_arguments(pl)
    pl.add_argument(
        "--calibrate", action="store_true", help="time a few real steps of each job on this machine"
    )
    pl.set_defaults(func=cmd_plan)

    ls = sub.add_parser("list", help="methods, datasets, backbones and sweeps")
    ls.add_argument("--sweeps", default=None, help="a folder of sweep specs (default sweeps, if present)")
    ls.set_defaults(func=cmd_list)

    t = sub.add_parser("table", help="render a paper table from an MLflow experiment")
    t.add_argument("--experiment", required=True)
    t.add_argument("--rows", default=None, help="run columns, comma-separated (default method)")
    t.add_argument("--cols", default=None, help="run columns, comma-separated (default dataset)")
    t.add_argument("--metric", default=None, help="the metric of the cells (default test/acc)")
    t.add_argument("--format", default="md", choices=("md", "latex", "csv", "parquet"))
    t.add_argument("--select-by", default=None, help=SELECT_BY_HELP)
    t.add_argument("--baseline", default=None)
    t.add_argument("--layout", default=None, help="a paper layout, e.g. analysis.coin:table4")
    t.add_argument("--paper", action="store_true", help="with --layout: ours | paper | Δ per cell, p-values")
    t.add_argument("--output", default=None)
    t.add_argument(
        "--version",
        default="latest",
        help="sweep version N, latest (default) or all (each trial's latest finished run counts once)",
    )
    t.add_argument("--tracking-uri", default=None)
    t.set_defaults(func=cmd_table)

    ex = sub.add_parser("export", help="each table cell's selected model: model.pt, config.json, load.txt")
    ex.add_argument("--experiment", required=True)
    ex.add_argument(
        "--version",
        default="latest",
        help="sweep version N, latest (default) or all (each trial identity's latest finished run counts once)",
    )
    ex.add_argument("--output", default=None, help="folder (default results/<experiment>/export)")
    ex.add_argument("--rows", default=None, help="run columns of the rows (default method)")
    ex.add_argument("--cols", default=None, help="run columns of the columns (default dataset)")
    ex.add_argument("--layout", default=None, help="the cells of a paper layout, e.g. analysis.coin:table4")
    ex.add_argument("--select-by", default=None, help=SELECT_BY_HELP)
    ex.add_argument("--results", default="results", help="the sweep's --results (where its checkpoints are)")
    ex.add_argument(
        "--force", action="store_true", help="replace cell folders an earlier export wrote in --output"
    )
    ex.add_argument("--tracking-uri", default=None)
    ex.set_defaults(func=cmd_export)

    st = sub.add_parser("stamp", help="write the git commit to .ftsweep_commit before `ray job submit`")
    st.add_argument("--dir", default=".", help="the checkout (and the job's working dir)")
    st.set_defaults(func=cmd_stamp)

    u = sub.add_parser("ui", help="MLflow UI on the sqlite store, bound to 127.0.0.1")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--tracking-uri", default=None)
    u.set_defaults(func=cmd_ui)

    pt = sub.add_parser("pretrain", help="build ftsweep's self-supervised (SimCLR) digits checkpoint")
    pt.add_argument("--dataset", default=None)
    pt.add_argument("--data-root", default=None, help="where the dataset's files are (default data)")
    pt.add_argument(
        "--download", action="store_true", default=None, help="let torchvision fetch a missing dataset"
    )
    pt.add_argument("--backbone", default=None)
    pt.add_argument("--epochs", type=int, default=None)
    pt.add_argument("--seed", type=int, default=None)
    pt.add_argument("--results", default="results")
    pt.add_argument("--force", action="store_true", help="rebuild even if the checkpoint exists")
    pt.set_defaults(func=cmd_pretrain)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def entry() -> None:
    """The ``ftsweep`` / ``python -m ftsweep`` process: :func:`main`, then exit with its code; a
    Ctrl-C that no command handles (while modules import, a table loads, a calibration runs) is
    one line and exit 130, not a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("\nftsweep: interrupted (SIGINT)", file=sys.stderr)
        code = EXIT_SIGNAL["SIGINT"]
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
