"""``splitlab analyze`` (per-unit file -> variance-reduced analysis) and ``splitlab power``."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from splitlab.cli.files import read_table
from splitlab.cli.output import PIPED_WIDTH, emit, stdout_console, usage_error

if TYPE_CHECKING:
    pass


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


# The choices are the library's closed sets (tests/unit/cli/test_analyze_cli.py checks it).
class Method(StrEnum):
    auto = "auto"
    none = "none"
    cuped = "cuped"
    regression = "regression"
    cupac = "cupac"


class Alternative(StrEnum):
    two_sided = "two-sided"
    greater = "greater"
    less = "less"


class Correction(StrEnum):
    holm = "holm"
    bonferroni = "bonferroni"
    benjamini_hochberg = "benjamini-hochberg"
    none = "none"


class SegmentCorrection(StrEnum):
    holm = "holm"
    benjamini_hochberg = "benjamini-hochberg"


class MetricType(StrEnum):
    mean = "mean"
    proportion = "proportion"


class MdeType(StrEnum):
    absolute = "absolute"
    relative = "relative"


class PowerFormat(StrEnum):
    table = "table"
    json = "json"


_OPTION_NAMES = {
    "control=": "--control ",
    "variant_col": "--variant-col",
    "metrics must": "--metric must",
    "covariates=[...]": "--covariate",
    "weights has": "--weight has",
    "weights must": "--weight must",
    "mde_type": "--mde-type",
    "metric_type": "--metric-type",
    "treatment_ratio": "--treatment-ratio",
    "variance_reduction": "--variance-reduction",
    "daily_units": "--daily-units",
    "n_variants": "--variants",
    "continuity_correction": "--continuity-correction",
    "power must": "--power must",
    "baseline must": "--baseline must",
    "sd must": "--sd must",
    "mde must": "--mde must",
    "segment_correction": "--segment-correction",
    "segment_min_units": "--segment-min-units",
    "segment=": "--segment ",
    "segment attribute": "--segment attribute",
    "tests:": "--test:",
    "tests names": "--test names",
    "quantiles:": "--quantile:",
    "quantiles names": "--quantile names",
    "resamples must": "--resamples must",
    "cluster_col": "--cluster",
    "in_experiment_covariates": "--in-experiment-covariate",
    "balance_alpha": "--balance-alpha",
}


def _cli_names(message: str) -> str:
    """Name the command-line option instead of the Python argument."""
    message = re.sub(r"\b(test|quantile)s\['([^']*)'\]", r"--\1 \2", message)
    # alpha alone: "balance_alpha must" is --balance-alpha (the table), not "balance_--alpha"
    message = re.sub(r"(?<![\w-])alpha must", "--alpha must", message)
    for python_name, option in _OPTION_NAMES.items():
        message = message.replace(python_name, option)
    return message


def _fail(message: str) -> typer.Exit:
    return usage_error(_cli_names(message))


def _pairs(values: list[str], option: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} expects NAME=VALUE, got {item!r}")
        try:
            out[key] = convert(value)
        except ValueError:
            raise ValueError(f"{option} {item!r}: {value!r} is not valid") from None
    return out


def _period_weights(items: list[str]) -> dict[Any, dict[str, float]] | None:
    """``--period-weight PERIOD:VARIANT=WEIGHT`` items -> ``{period: {variant: weight}}``;
    a period that looks like an integer is one (CSV columns of period ids are)."""
    out: dict[Any, dict[str, float]] = {}
    for item in items:
        period, sep, pair = item.partition(":")
        if not sep or not period:
            raise ValueError(f"--period-weight expects PERIOD:VARIANT=WEIGHT, got {item!r}")
        key: Any = int(period) if period.lstrip("-").isdigit() else period
        out.setdefault(key, {}).update(_pairs([pair], "--period-weight", float))
    return out or None


def _ratio(value: str) -> tuple[str, str]:
    num, sep, den = value.partition("/")
    if not sep or not num or not den:
        raise ValueError(value)
    return num, den


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        emit(text, output)


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_command(
        file: Annotated[
            Path, typer.Argument(help="Per-unit data (CSV or Parquet), one row per unit.")
        ],
        metric: Annotated[
            list[str],
            typer.Option("--metric", help="Metric column (repeatable); the first is primary."),
        ] = [],  # noqa: B006
        covariate: Annotated[
            list[str], typer.Option("--covariate", help="Pre-exposure column (repeatable).")
        ] = [],  # noqa: B006
        method: Annotated[
            Method, typer.Option("--method", help="Variance reduction.")
        ] = Method.auto,
        output_format: Annotated[
            OutputFormat, typer.Option("--format", help="Output.")
        ] = OutputFormat.table,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write to this file.")
        ] = None,
        variant_col: Annotated[
            str, typer.Option("--variant-col", help="Variant column.")
        ] = "variant",
        control: Annotated[
            str, typer.Option("--control", help="Control variant label.")
        ] = "control",
        alpha: Annotated[
            float, typer.Option("--alpha", help="Significance level in (0, 1).")
        ] = 0.05,
        alternative: Annotated[Alternative, typer.Option("--alternative")] = Alternative.two_sided,
        sequential: Annotated[
            bool, typer.Option("--sequential", help="Always-valid CIs and p-values.")
        ] = False,
        weight: Annotated[
            list[str],
            typer.Option("--weight", help="Configured split for SRM: VARIANT=WEIGHT (repeatable)."),
        ] = [],  # noqa: B006
        ratio: Annotated[
            list[str],
            typer.Option("--ratio", help="Ratio metric NAME=NUMERATOR/DENOMINATOR (repeatable)."),
        ] = [],  # noqa: B006
        correction: Annotated[
            Correction, typer.Option("--correction", help="Multiple-arm correction.")
        ] = Correction.holm,
        guardrail: Annotated[
            list[str],
            typer.Option(
                "--guardrail", help="METRIC=MARGIN: largest acceptable relative harm (repeatable)."
            ),
        ] = [],  # noqa: B006
        lower_is_better: Annotated[
            list[str],
            typer.Option("--lower-is-better", help="Metric where lower is better (repeatable)."),
        ] = [],  # noqa: B006
        mde: Annotated[
            float | None,
            typer.Option(
                "--mde",
                help="Relative minimum detectable effect of the primary metric (0.05 = 5%): "
                "reports the power the sample has so far to detect it.",
            ),
        ] = None,
        min_sample: Annotated[
            int | None, typer.Option("--min-sample", help="Units per arm before a decision.")
        ] = None,
        cupac_folds: Annotated[int, typer.Option("--cupac-folds", help="Cross-fitting folds.")] = 5,
        cupac_time_budget: Annotated[
            float, typer.Option("--cupac-time-budget", help="Seconds for CUPAC model selection.")
        ] = 300.0,
        seed: Annotated[int, typer.Option("--seed", help="Random seed (folds, models).")] = 0,
        period_col: Annotated[
            str | None,
            typer.Option(
                "--period-col",
                help="Column with each unit's allocation period (of its first exposure).",
            ),
        ] = None,
        period_weight: Annotated[
            list[str],
            typer.Option(
                "--period-weight",
                help="A period's split: PERIOD:VARIANT=WEIGHT (repeatable; with --period-col).",
            ),
        ] = [],  # noqa: B006
        segment: Annotated[
            str | None,
            typer.Option(
                "--segment",
                help="Results per segment of this column too: COLUMN, or COLUMN:EDGES for "
                "numeric buckets (tenure_days:0,30,180,365).",
            ),
        ] = None,
        segment_correction: Annotated[
            SegmentCorrection,
            typer.Option("--segment-correction", help="Across segments: holm or BH."),
        ] = SegmentCorrection.holm,
        segment_min_units: Annotated[
            int,
            typer.Option(
                "--segment-min-units", help="Units per arm below which a segment is warned about."
            ),
        ] = 100,
        test: Annotated[
            list[str],
            typer.Option(
                "--test",
                help="A metric's test METRIC=TEST (repeatable): welch (default), z, chi2, "
                "mann_whitney, bootstrap_bca, bootstrap_percentile.",
            ),
        ] = [],  # noqa: B006
        quantile: Annotated[
            list[str],
            typer.Option(
                "--quantile",
                help="METRIC=Q: the quantile in (0, 1) a bootstrap test compares (default 0.5).",
            ),
        ] = [],  # noqa: B006
        resamples: Annotated[
            int, typer.Option("--resamples", help="Bootstrap resamples of a bootstrap test.")
        ] = 2000,
        cluster: Annotated[
            str | None,
            typer.Option(
                "--cluster",
                help="Randomisation-unit column when the file has several rows per unit "
                "(sessions, requests): metrics become per-row means by the delta method.",
            ),
        ] = None,
        in_experiment_covariate: Annotated[
            list[str],
            typer.Option(
                "--in-experiment-covariate",
                help="Column measured during the experiment that the treatment cannot move "
                "(CUNOPAC, repeatable); tested for balance first, refused if moved.",
            ),
        ] = [],  # noqa: B006
        balance_alpha: Annotated[
            float | None,
            typer.Option(
                "--balance-alpha",
                help="Level of the in-experiment covariates' balance test (default 0.01).",
            ),
        ] = None,
    ) -> None:
        """Analyze an experiment from a per-unit file: every treatment against control.

        Example: splitlab analyze data.csv --metric revenue --covariate revenue_pre --format
        html --output report.html
        """
        import warnings

        from splitlab.core.analysis.analyze import CovariateRefusedWarning, analyze
        from splitlab.core.stats.balance import BALANCE_ALPHA

        console = Console(stderr=True)
        try:
            data = read_table(file)
            weights = _pairs(weight, "--weight", float) or None
            ratios = _pairs(ratio, "--ratio", _ratio)
            guardrails = _pairs(guardrail, "--guardrail", float)
            period_weights = _period_weights(period_weight)
            tests = _pairs(test, "--test", str)
            quantiles = _pairs(quantile, "--quantile", float)
            if period_weights and period_col is None:
                raise ValueError("--period-weight needs --period-col (the column of periods)")
            if not metric and not ratios:
                raise ValueError("--metric is required: name at least one metric column")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CovariateRefusedWarning)
                result = _run_with_progress(
                    console,
                    lambda progress: analyze(
                        data,
                        variant_col=variant_col,
                        control=control,
                        metrics=metric,
                        covariates=covariate,
                        method=method.value,
                        alpha=alpha,
                        alternative=alternative.value,
                        sequential=sequential,
                        weights=weights,
                        ratio_metrics=ratios,
                        correction=correction.value,
                        guardrails=guardrails,
                        lower_is_better=lower_is_better,
                        min_sample=min_sample,
                        mde=mde,
                        cupac_folds=cupac_folds,
                        cupac_time_budget_s=cupac_time_budget,
                        random_state=seed,
                        progress=progress,
                        period_col=period_col,
                        period_weights=period_weights,
                        cluster_col=cluster,
                        in_experiment_covariates=in_experiment_covariate,
                        balance_alpha=BALANCE_ALPHA if balance_alpha is None else balance_alpha,
                        segment=segment,
                        segment_correction=segment_correction.value,
                        segment_min_units=segment_min_units,
                        tests=tests,
                        quantiles=quantiles,
                        resamples=resamples,
                    ),
                )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        for warning in caught:
            if issubclass(warning.category, CovariateRefusedWarning):
                typer.echo(f"warning: {warning.message}", err=True)

        if output_format is OutputFormat.json:
            _emit(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", output)
        elif output_format is OutputFormat.html:
            from splitlab.reports.analysis import html_report

            columns = {c: data[c].to_numpy() for c in data.columns}
            _emit(
                html_report(result, columns, variant_col, title=f"SplitLab analysis: {file.name}"),
                output,
            )
        else:
            from splitlab.reports.analysis import summary_tables

            target = (
                Console(record=True, width=PIPED_WIDTH, file=io.StringIO())
                if output
                else stdout_console()
            )
            for table in summary_tables(result):
                target.print(table)
            if output is not None:
                _emit(target.export_text(), output)

    @app.command("power")
    def power_command(
        metric_type: Annotated[
            MetricType, typer.Option("--metric-type", help="proportion or mean.")
        ],
        baseline: Annotated[float, typer.Option("--baseline", help="Control mean or proportion.")],
        mde: Annotated[float, typer.Option("--mde", help="Minimum detectable effect.")],
        sd: Annotated[float | None, typer.Option("--sd", help="Per-unit sd (means).")] = None,
        mde_type: Annotated[MdeType, typer.Option("--mde-type")] = MdeType.absolute,
        alpha: Annotated[float, typer.Option("--alpha")] = 0.05,
        power: Annotated[float, typer.Option("--power")] = 0.8,
        alternative: Annotated[Alternative, typer.Option("--alternative")] = Alternative.two_sided,
        continuity_correction: Annotated[
            bool, typer.Option("--continuity-correction", help="Fleiss correction (proportions).")
        ] = False,
        treatment_ratio: Annotated[
            float, typer.Option("--treatment-ratio", help="n_treatment / n_control.")
        ] = 1.0,
        variants: Annotated[int, typer.Option("--variants", help="Arms including control.")] = 2,
        variance_reduction: Annotated[
            float,
            typer.Option("--variance-reduction", help="Expected from CUPED/CUPAC, in [0, 1)."),
        ] = 0.0,
        daily_units: Annotated[
            float | None,
            typer.Option(
                "--daily-units",
                help="Traffic: eligible units per day (all variants); answers how many days.",
            ),
        ] = None,
        cupac_metric: Annotated[
            str | None,
            typer.Option(
                "--cupac-metric",
                help="Read the variance reduction from the trainer's CUPAC model of this "
                "metric (its out-of-fold R^2) instead of --variance-reduction.",
            ),
        ] = None,
        cupac_experiment: Annotated[
            str | None,
            typer.Option("--cupac-experiment", help="With --cupac-metric: that experiment's."),
        ] = None,
        output_format: Annotated[PowerFormat, typer.Option("--format")] = PowerFormat.table,
    ) -> None:
        """Sample size per variant for a target MDE (normal approximation), and with
        --daily-units how many days it takes.

        Example: splitlab power --metric-type proportion --baseline 0.07 --mde 0.04 --power 0.9
        --continuity-correction (CTR 7% -> 11%, an absolute change of 4 points: 1,124 per arm)
        """
        from splitlab.core.stats.power import sample_size

        source = None
        if cupac_metric is not None:
            from splitlab.cli.extras import missing_extra_message, missing_modules

            missing = missing_modules("client")
            if missing:
                raise _fail(f"--cupac-metric: {missing_extra_message('client', missing)}")
            from splitlab.cli.experiments import CommandError
            from splitlab.cli.planning import cupac_variance_reduction

            if variance_reduction:
                raise _fail(
                    "pass either --variance-reduction or --cupac-metric, not both "
                    "(--cupac-metric reads the reduction from the trainer)"
                )
            try:
                read = cupac_variance_reduction(cupac_metric, cupac_experiment)
            except CommandError as exc:
                raise _fail(str(exc)) from None
            variance_reduction = read.variance_reduction
            source = (
                f"CUPAC model {read.model.get('id')} of {read.model.get('experiment_key')} "
                f"(R^2 {read.model.get('r2'):.3f})"
            )
        elif cupac_experiment is not None:
            raise _fail("--cupac-experiment needs --cupac-metric (the metric whose model to read)")

        try:
            result = sample_size(
                baseline,
                mde,
                metric_type=metric_type.value,
                sd=sd,
                mde_type=mde_type.value,
                alpha=alpha,
                power=power,
                alternative=alternative.value,
                treatment_ratio=treatment_ratio,
                n_variants=variants,
                variance_reduction=variance_reduction,
                continuity_correction=continuity_correction,
                daily_units=daily_units,
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if output_format is PowerFormat.json:
            answer = result.to_dict()
            if source is not None:
                answer["variance_reduction_source"] = source
            typer.echo(json.dumps(answer, indent=2, allow_nan=False))
            return
        from rich.table import Table

        table = Table(
            title=f"Sample size ({metric_type.value}, {alternative.value})", title_justify="left"
        )
        table.add_column("measure")
        table.add_column("value", justify="right")
        rows = [
            ("n per variant", f"{result.n_per_variant:,}"),
            ("n control / treatment", f"{result.n_control:,} / {result.n_treatment:,}"),
            ("total n", f"{result.total_n:,}"),
            ("mde (absolute)", f"{result.mde_absolute:.4g}"),
            ("mde (relative)", f"{result.mde_relative:.2%}"),
            ("alpha / power", f"{result.alpha} / {result.power}"),
        ]
        if result.variance_reduction:
            reduction = f"{result.variance_reduction:.1%}"
            rows.append(("variance reduction", f"{reduction} ({source})" if source else reduction))
        if result.runtime_days is not None:
            rows.append(("runtime (days)", f"{result.runtime_days:g}"))
        for name, value in rows:
            table.add_row(name, value)
        stdout_console().print(table)


def _run_with_progress(console: Console, run: Callable[[Any], Any]) -> Any:
    """Run ``run(progress_callback)`` with a rich progress bar for CUPAC's model fits."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("CUPAC", total=None, visible=False)

        def update(description: str, completed: int, total: int) -> None:
            bar.update(
                task, description=description, completed=completed, total=total, visible=True
            )

        return run(update)
