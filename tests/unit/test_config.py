"""Each setting is declared once (server/config.py); its flag, its FOOTFALL_* variable and
its check all come from that declaration."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from server.config import (
    COMMA_LIST,
    COUNT_OR_AUTO,
    INTEGER,
    LOG_FORM,
    LOG_LEVEL,
    NUMBER,
    OPTIONS,
    STORE,
    SWITCH,
    TEXT,
    Option,
    Settings,
    add_serve_arguments,
    cores,
    settings_from_args,
)


def parse(args: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env or {})
    return settings_from_args(parser.parse_args(args))


def parsed_args(args: list[str], env: dict[str, str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env or {})
    return parser.parse_args(args)


def test_every_setting_has_a_flag_and_serve_defaults_to_the_declared_values() -> None:
    assert [o.name for o in OPTIONS] == [f.name for f in dataclasses.fields(Settings)]
    # the one difference: `serve` opens the HTTP gateway, Settings() built in code does not
    assert parse([]) == dataclasses.replace(Settings(), http_port=8080)


# text each kind takes that is no option's default
SAMPLE_TEXT = {INTEGER: "4096", NUMBER: "2.5", TEXT: "some text", LOG_LEVEL: "debug",
               LOG_FORM: "JSON",
               SWITCH: "yes", COMMA_LIST: "a, b", COUNT_OR_AUTO: "3", STORE: "./x.db"}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.flag)
def test_a_flag_and_its_variable_parse_alike(option: Option) -> None:
    text = SAMPLE_TEXT[option.kind]
    flag = [option.flag] if option.kind is SWITCH else [option.flag, text]
    from_flag = getattr(parsed_args(flag), option.name)
    from_variable = getattr(parsed_args([], {option.variable: text}), option.name)
    assert from_flag == from_variable == option.kind.parse(text)
    assert from_flag != option.default


@pytest.mark.parametrize(("variable", "text", "line"), [
    ("FOOTFALL_PORT", "abc", "footfall serve: error: FOOTFALL_PORT: not an integer: 'abc'"),
    ("FOOTFALL_LEASE_SECONDS", "soon",
     "footfall serve: error: FOOTFALL_LEASE_SECONDS: not a number: 'soon'"),
    ("FOOTFALL_STRICT_EVENT_TYPES", "maybe",
     "footfall serve: error: FOOTFALL_STRICT_EVENT_TYPES: not a boolean: 'maybe'"),
    # an unknown level was taken, then the start ended in a traceback (exit code 1)
    ("FOOTFALL_LOG_LEVEL", "verbose",
     "footfall serve: error: FOOTFALL_LOG_LEVEL: not one of DEBUG, INFO, WARNING, ERROR: "
     "'verbose'"),
])
def test_a_bad_variable_stops_the_start_with_one_line(
        variable: str, text: str, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse([], {variable: text})
    assert stopped.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_a_flag_wins_over_its_bad_variable() -> None:
    assert parse(["--port", "5"], {"FOOTFALL_PORT": "abc"}).port == 5
    assert parse(["--strict-event-types"], {"FOOTFALL_STRICT_EVENT_TYPES": "?"}).strict_event_types


def test_variables_of_every_kind() -> None:
    settings = parse([], {"FOOTFALL_LOG_LEVEL": "warning", "FOOTFALL_CORS_ORIGINS": "a, b,,c",
                          "FOOTFALL_TRUST_FORWARDED_FOR": "ON", "FOOTFALL_GRACE_SECONDS": "2.5",
                          "FOOTFALL_ALLOW_FAULT_INJECTION": ""})
    assert (settings.log_level, settings.cors_origins, settings.trust_forwarded_for,
            settings.grace_seconds, settings.allow_fault_injection) == \
        ("WARNING", ("a", "b", "c"), True, 2.5, False)


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "70000"], "--port must be 0..65535, got 70000"),
    (["--port", "-1"], "--port must be 0..65535, got -1"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--operation-workers", "0"], "--operation-workers must be at least 1, got 0"),
    (["--lease-seconds", "0"], "--lease-seconds must be positive, got 0.0"),
    (["--http-port", "-2"], "--http-port must be -1..65535, got -2"),
    (["--http-port", "65536"], "--http-port must be -1..65535, got 65536"),
    (["--quota-writes-per-minute", "-1"], "--quota-writes-per-minute must not be negative, got -1"),
    (["--max-request-bytes", "1023"], "--max-request-bytes must be 1024..2147483647, got 1023"),
    # (grpc's options are C ints: a larger one ended the start in a traceback)
    (["--max-request-bytes", "2147483648"],
     "--max-request-bytes must be 1024..2147483647, got 2147483648"),
    # (grpc's options are C ints: past it, the start ended in an OverflowError's traceback)
    (["--grpc-max-calls-per-connection", "2147483648"],
     "--grpc-max-calls-per-connection must be 0..2147483647, got 2147483648"),
    (["--grpc-max-calls-per-connection", "-1"],
     "--grpc-max-calls-per-connection must be 0..2147483647, got -1"),
    (["--tls-key", "k.pem"], "--tls-cert and --tls-key go together: give both or neither"),
    # (said as "cannot listen for HTTP on 127.0.0.1:53113: Address already in use")
    (["--port", "53113", "--http-port", "53113"],
     "--port and --http-port are both 53113: gRPC and HTTP each need a port of their own"),
    (["--processes", "0"], "--processes must be at least 1, got 0"),
    (["--operations-keep-days", "-1"], "--operations-keep-days must not be negative, got -1"),
    (["--max-concurrent-rpcs", "2000"],
     "--max-concurrent-rpcs (2000) must exceed --max-watches (1000) plus --max-streams (1000): "
     "else open streams alone could take every call, writes and health checks included"),
    (["--max-streams", "100", "--max-keyless-streams", "100"],
     "--max-keyless-streams (100) must be less than --max-streams (100): else callers "
     "without a key could take every stream, and leave none for those with one"),
    # (0 refused every watch: "project 'p' has 0 watches open ... close one")
    (["--max-watches-per-project", "0"], "--max-watches-per-project must be -1 or at least 1, "
                                         "got 0"),
    # (1,000 ms is the whole of each second of the loop: a larger budget bounded nothing)
    (["--watch-send-ms", "1001"], "--watch-send-ms must be 0..1000 (milliseconds of each "
                                  "second of the event loop, which has 1,000), got 1001"),
    (["--processes", "2", "--store", "memory://"],
     "--processes 2 needs a store the processes share: memory:// lives inside one process; "
     "use sqlite:/// or postgresql://"),
])
def test_checks_refuse_with_one_line(args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(args)
    assert stopped.value.code == message


@pytest.mark.parametrize("value", [0, 1000])
def test_the_watch_send_budget_takes_none_to_the_whole_loop(value: int) -> None:
    assert parse(["--watch-send-ms", str(value)]).watch_send_ms == value


@pytest.mark.parametrize("flag", ["--processes", "--import-processes"])
def test_processes_past_4_per_core_are_refused(flag: str) -> None:
    # 1,000 server processes on 2 cores started, and the machine's load went to 500.
    most = 4 * cores()
    assert parse([flag, str(most)]) is not None
    with pytest.raises(SystemExit) as stopped:
        parse([flag, str(most + 1)])
    assert stopped.value.code == (f"{flag} {most + 1} is more than 4 per core ({cores()} "
                                  f"here): each is a whole process, and past one per core "
                                  f"they only take turns")


PER_PROJECT_ABOVE_ALL = (
    "--rejections-keep-per-project (600) is more than --rejections-keep (500): only the "
    "latest 500 of every project are kept, so it could never bind; give at most 500, or leave "
    "it out")


@pytest.mark.parametrize(("args", "env"), [
    (["--rejections-keep", "500", "--rejections-keep-per-project", "600"], {}),
    ([], {"FOOTFALL_REJECTIONS_KEEP": "500", "FOOTFALL_REJECTIONS_KEEP_PER_PROJECT": "600"}),
    (["--rejections-keep-per-project", "600"], {"FOOTFALL_REJECTIONS_KEEP": "500"}),
])
def test_a_per_project_bound_given_above_the_total_is_refused(args: list[str],
                                                              env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(args, env)
    assert stopped.value.code == PER_PROJECT_ABOVE_ALL


@pytest.mark.parametrize(("args", "kept"), [
    (["--rejections-keep", "500"], (500, 2000)),  # the default per-project bound: not given
    (["--rejections-keep", "500", "--rejections-keep-per-project", "500"], (500, 500)),
    (["--rejections-keep", "0", "--rejections-keep-per-project", "600"], (0, 600)),  # none kept
])
def test_a_per_project_bound_that_is_not_given_or_not_above_is_taken(
        args: list[str], kept: tuple[int, int]) -> None:
    settings = parse(args)
    assert (settings.rejections_keep, settings.rejections_keep_per_project) == kept


def test_processes_auto_is_one_per_core_this_process_may_use() -> None:
    assert parse(["--processes", "auto"]).processes == cores() >= 1
    assert parse([], {"FOOTFALL_PROCESSES": "AUTO"}).processes == cores()
    assert parse([]).processes == 1


def test_a_variable_is_checked_like_its_flag() -> None:
    with pytest.raises(SystemExit) as stopped:
        parse([], {"FOOTFALL_PORT": "70000"})
    assert stopped.value.code == "--port must be 0..65535, got 70000"


def test_bad_flag_text_is_said_as_its_variable_would_be(
        capsys: pytest.CaptureFixture[str]) -> None:
    # argparse said "invalid _count_or_auto value: 'two'", naming our function
    for args, words in ((["--port", "abc"], "argument --port: not an integer: 'abc'"),
                        (["--grace-seconds", "x"], "argument --grace-seconds: not a number: 'x'"),
                        (["--log-level", "VERBOSE"], "argument --log-level: not one of DEBUG, "
                                                     "INFO, WARNING, ERROR: 'VERBOSE'"),
                        (["--processes", "two"],
                         "argument --processes: not an integer or auto: 'two'")):
        with pytest.raises(SystemExit) as stopped:
            parse(args)
        error = capsys.readouterr().err
        assert stopped.value.code == 2 and words in error and "invalid" not in error, error
