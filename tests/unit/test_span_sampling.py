"""Head sampling of the exported spans: which setting decides, and what
each sampler keeps."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from pydantic import ValidationError

from dotmac.ticketing.service.settings import Settings
from dotmac.ticketing.service.span_export import SpanSampling

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str)
        monkeypatch.delenv(field.validation_alias, raising=False)


def test_by_default_one_new_trace_in_ten_after_the_callers_decision() -> None:
    assert Settings().trace_sampler == ("parentbased_traceidratio", 0.1)


def test_the_ratio_setting_sets_the_share_of_new_traces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETING_OTLP_SAMPLE_RATIO", "0.25")

    assert Settings().trace_sampler == ("parentbased_traceidratio", 0.25)


def test_opentelemetrys_own_variables_decide_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETING_OTLP_SAMPLE_RATIO", "0.25")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    assert Settings().trace_sampler == ("traceidratio", 0.5)

    # Without an argument the ratio is 1, as the specification has it.
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG")
    assert Settings().trace_sampler == ("traceidratio", 1.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("TICKETING_OTLP_SAMPLE_RATIO", "-0.1"),
    ],
)
def test_a_sampler_it_cannot_run_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=variable):
        Settings()


def recorded(sampling: SpanSampling, parent_flags: int | None) -> bool:
    """Whether ``sampling`` records a span whose parent has these trace
    flags (None: a new trace)."""
    context = None
    if parent_flags is not None:
        parent = SpanContext(
            trace_id=TRACE_ID,
            span_id=0x00F067AA0BA902B7,
            is_remote=True,
            trace_flags=TraceFlags(parent_flags),
        )
        context = trace.set_span_in_context(NonRecordingSpan(parent))
    result = sampling.sdk_sampler().should_sample(context, TRACE_ID, "request")
    return result.decision.is_sampled()


SAMPLED, NOT_SAMPLED, NEW = 0x01, 0x00, None


@pytest.mark.parametrize(
    ("sampling", "sampled_parent", "unsampled_parent", "new_trace"),
    [
        (SpanSampling("parentbased_traceidratio", 0.0), True, False, False),
        (SpanSampling("parentbased_traceidratio", 1.0), True, False, True),
        (SpanSampling("parentbased_always_on"), True, False, True),
        (SpanSampling("parentbased_always_off"), True, False, False),
        (SpanSampling("traceidratio", 0.0), False, False, False),
        (SpanSampling("always_on"), True, True, True),
        (SpanSampling("always_off"), False, False, False),
    ],
)
def test_each_sampler_keeps_what_its_name_says(
    sampling: SpanSampling,
    sampled_parent: bool,
    unsampled_parent: bool,
    new_trace: bool,
) -> None:
    assert recorded(sampling, SAMPLED) is sampled_parent
    assert recorded(sampling, NOT_SAMPLED) is unsampled_parent
    assert recorded(sampling, NEW) is new_trace


def test_an_unknown_sampler_is_refused() -> None:
    with pytest.raises(ValueError, match="xray"):
        SpanSampling("xray").sdk_sampler()
